"""Every real descriptor parses, and its fields and telephony layout match the data folder."""
# ruff: noqa: E501  (the README table below reads best one device per line)

from __future__ import annotations

import re
import tracemalloc

import pytest
from hid_support import ALL_FILES, HID_DATA, NEGATIVE, TELEPHONY, descriptor, layout

from drivers.hid.descriptor import (
    DescriptorError,
    ReportKind,
    parse_descriptor,
    parse_hex,
)
from drivers.hid.events import HeadsetInfo
from drivers.hid.hidraw import DeviceCandidate, candidate_layout
from drivers.hid.layout import layout_from_bytes

PAGES = {0x08, 0x0B, 0x0C}
# LAYOUTS.txt lists every assigned Telephony and LED usage but only these Consumer ones.
LISTED_CONSUMER = {0xCD, 0xE2, 0xE9, 0xEA}


def _listed(usage: int) -> bool:
    page, usage_id = usage >> 16, usage & 0xFFFF
    if page == 0x0C:
        return usage_id in LISTED_CONSUMER
    return page in PAGES and usage_id != 0  # usage ID 0 is "Unassigned" (HUT §3)


_LINE = re.compile(
    r"^(IN|OUT)\s+id=\s*(\d+) bit=\s*(\d+) size=(\S+)(?: ARRAY (\[.*?\]))?(?: ([0-9a-f]{4}):([0-9a-f]{4}))?"
    r" (\S+) lmin=(-?\d+) lmax=(-?\d+)$"
)


def _layouts_txt() -> dict[str, tuple[set[tuple[object, ...]], set[tuple[int, int, int]]]]:
    files: dict[str, tuple[set[tuple[object, ...]], set[tuple[int, int, int]]]] = {}
    current = ""
    for line in (HID_DATA / "LAYOUTS.txt").read_text().splitlines():
        if line.startswith("== "):
            current = line[3:].removesuffix(".hex")
            files[current] = (set(), set())
        elif line.startswith("TLC"):
            m = re.match(r"TLC page=0x([0-9a-f]+) usage=0x([0-9a-f]+) at byte (\d+)", line)
            assert m, line
            files[current][1].add((int(m[1], 16), int(m[2], 16), int(m[3])))
        elif line.startswith(("IN", "OUT")):
            m = _LINE.match(line)
            assert m, line
            kind, rid, bit, size, arr, page, use, flags, lmin, lmax = m.groups()
            if arr:
                usages = tuple(int(u, 16) for u in re.findall(r"0x([0-9a-f]+)", arr))
                key: tuple[object, ...] = (kind, int(rid), int(bit), size, usages)
            else:
                key = (kind, int(rid), int(bit), int(size), (int(page, 16) << 16) | int(use, 16))
            files[current][0].add((*key, flags, int(lmin), int(lmax)))
    return files


LAYOUTS_TXT = _layouts_txt()


def _our_fields(name: str) -> tuple[set[tuple[object, ...]], set[tuple[int, int, int]]]:
    desc = parse_descriptor(descriptor(name))
    fields: set[tuple[object, ...]] = set()
    for item in desc.items:
        if item.kind is ReportKind.FEATURE:
            continue
        kind = "IN" if item.kind is ReportKind.INPUT else "OUT"
        tail = (item.flags.describe(), item.logical_min, item.logical_max)
        if item.is_array:
            usages = tuple(item.usage_at(i) or 0 for i in range(item.usage_count()))
            if any(_listed(u) for u in usages):
                size = f"{item.size}x{item.count}"
                fields.add((kind, item.report_id, item.bit, size, usages, *tail))
            continue
        for bit, usage in item.elements():
            if usage is not None and _listed(usage):
                fields.add((kind, item.report_id, bit, item.size, usage, *tail))
    tlcs = {(c.usage >> 16, c.usage & 0xFFFF, c.offset) for c in desc.top_level()}
    return fields, tlcs


def test_the_data_folder_has_every_descriptor_of_layouts_txt() -> None:
    assert sorted(LAYOUTS_TXT) == ALL_FILES
    assert len(ALL_FILES) == 18


@pytest.mark.parametrize("name", ALL_FILES)
def test_fields_and_collections_match_layouts_txt(name: str) -> None:
    fields, tlcs = _our_fields(name)
    expected_fields, expected_tlcs = LAYOUTS_TXT[name]
    assert fields == expected_fields
    assert tlcs == expected_tlcs


# The per-device table of tests/data/hid/SOURCES.md (shared/data/hid/README.md):
# (hook report, hook bit, mute report, mute bit, {led: (report, bit)}, shared LED report)
README_TABLE = {
    "jabra_evolve_link_ms": (2, 0, 2, 2, {"off_hook": (2, 0), "mute": (2, 1), "ring": (2, 2), "hold": (2, 3), "microphone": (2, 4), "ringer": (2, 5)}),
    "jabra_biz2400_ii": (2, 0, 2, 2, {"off_hook": (2, 0), "mute": (2, 1), "ring": (2, 2), "hold": (2, 3), "microphone": (2, 4), "ringer": (2, 5)}),
    "jabra_speak810": (2, 0, 2, 2, {"off_hook": (2, 0), "mute": (2, 1), "ring": (2, 2), "hold": (2, 3), "microphone": (2, 4), "ringer": (2, 5)}),
    "yealink_wh66": (2, 0, 2, 2, {"off_hook": (2, 0), "mute": (2, 1), "ring": (2, 2), "hold": (2, 3), "microphone": (2, 4), "ringer": (2, 5)}),
    "poly_bt700_dongle": (0x20, 0, 0x20, 1, {"ring": (0x21, 0), "mute": (0x23, 0), "off_hook": (0x24, 0), "hold": (0x25, 0)}),
    "poly_voyager_base_cd": (1, 0, 1, 1, {"ring": (1, 0), "mute": (3, 0), "off_hook": (4, 0), "hold": (5, 0)}),
    "poly_blackwire_c5220": (8, 1, 8, 0, {"mute": (9, 0), "off_hook": (0x17, 0), "ring": (0x18, 0), "hold": (0x20, 0), "on_line": (0x2A, 0)}),
    "plantronics_blackwire3220_if3_telephony": (8, 1, 8, 0, {"mute": (9, 0), "off_hook": (0x17, 0), "ring": (0x18, 0), "hold": (0x20, 0), "on_line": (0x2A, 0)}),
    "plantronics_blackwire3220_if3_full_concat": (8, 1, 8, 0, {"mute": (9, 0), "off_hook": (0x17, 0), "ring": (0x18, 0), "hold": (0x20, 0), "on_line": (0x2A, 0)}),
    "plantronics_unknown_model_2013": (2, 0, 2, 1, {"mute": (9, 0), "off_hook": (0x17, 0), "ring": (0x18, 0), "on_line": (0x2A, 0)}),
    "sennheiser_sc660_anc_usb": (8, 1, 8, 0, {"mute": (9, 0), "off_hook": (9, 1), "ring": (9, 2), "microphone": (9, 3), "on_line": (9, 4), "hold": (9, 5)}),
    "epos_impact_d1": (2, 0, 2, 3, {"off_hook": (3, 0), "microphone": (3, 1), "ring": (3, 2), "mute": (3, 3), "on_line": (3, 4), "hold": (3, 5)}),
    "epos_impact_dw": (2, 2, 2, 5, {"ringer": (3, 0), "off_hook": (3, 1), "microphone": (3, 2), "ring": (3, 3), "mute": (3, 4), "on_line": (3, 5), "hold": (3, 6)}),
    "epos_impact_d": (2, 2, 2, 5, {"ringer": (3, 0), "off_hook": (3, 1), "microphone": (3, 2), "ring": (3, 3), "mute": (3, 4), "on_line": (3, 5), "hold": (3, 6)}),
}  # fmt: skip


def test_readme_table_covers_every_telephony_descriptor() -> None:
    assert sorted(README_TABLE) == sorted(TELEPHONY)


@pytest.mark.parametrize("name", TELEPHONY)
def test_telephony_layout_matches_the_readme_table(name: str) -> None:
    hook_rid, hook_bit, mute_rid, mute_bit, leds = README_TABLE[name]
    lay = layout(name)
    assert lay.telephony
    hook, mute = lay.inputs["hook_switch"], lay.inputs["phone_mute"]
    assert (hook.report_id, hook.bit, hook.size) == (hook_rid, hook_bit, 1)
    assert (mute.report_id, mute.bit, mute.size) == (mute_rid, mute_bit, 1)
    assert {n: (c.report_id, c.bit) for n, c in lay.leds.items()} == leds
    shared = len({rid for rid, _ in leds.values()}) == 1
    assert lay.shared_led_report == shared


@pytest.mark.parametrize("name", TELEPHONY)
def test_hook_is_state_and_mute_encoding_follows_the_flags(name: str) -> None:
    lay = layout(name)
    assert lay.inputs["hook_switch"].encoding.value == "toggle_switch"  # EPOS D1 Abs+Pref too
    expected = "toggle_switch" if name == "plantronics_unknown_model_2013" else "toggle_button"
    assert lay.inputs["phone_mute"].encoding.value == expected


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_controls_report_no_telephony(name: str) -> None:
    lay = layout(name)
    assert not lay.telephony
    assert "hook_switch" not in lay.inputs and not lay.leds and not lay.output_reports


def test_empty_telephony_collection_is_no_call_control() -> None:
    # Razer Kraken Kitty V2 (reference §4): an empty Telephony application collection.
    assert not layout_from_bytes(bytes.fromhex("050b0905a101c0")).telephony


def test_output_report_length_counts_the_report_id_byte() -> None:
    assert layout("jabra_evolve_link_ms").output_reports[2].length == 3  # 02 + 16 bits
    assert {r.length for r in layout("poly_bt700_dongle").output_reports.values()} == {2}


def test_logitech_h540_consumer_mute_is_a_toggle_button() -> None:
    lay = layout("logitech_h540_if3")
    assert lay.inputs["consumer_mute"].encoding.value == "toggle_button"


def test_telephony_collection_found_when_it_is_the_last_of_five() -> None:
    lay = layout("poly_bt700_dongle")
    assert lay.collection_offset == 733


def test_push_pop_negative_minimum_and_no_report_id() -> None:
    # Telephony collection, Push, Logical Minimum -1 (two buttons) for Hook Switch, Pop,
    # Phone Mute with the popped 0..1; no Report ID: bits start at 0, report ID 0.
    desc = parse_hex(
        "05 0b 09 05 a1 01 15 00 25 01 75 02 95 01 a4 15 ff 09 20 81 06 b4 75 01 09 2f"
        " 81 06 75 05 81 03 05 08 09 17 75 01 91 02 75 07 91 03 c0"
    )
    lay = layout_from_bytes(desc)
    hook, mute = lay.inputs["hook_switch"], lay.inputs["phone_mute"]
    assert not lay.uses_report_ids
    assert (hook.report_id, hook.bit, hook.size, hook.encoding.value) == (0, 0, 2, "two_buttons")
    assert hook.logical_min == -1
    assert (mute.bit, mute.logical_min, mute.encoding.value) == (2, 0, "toggle_button")
    assert lay.leds["off_hook"].report_id == 0 and lay.output_reports[0].length == 2


def test_usage_range_and_constant_controls_are_kept() -> None:
    # Hook Switch..Flash (0x20..0x21) as a range on Constant items (Anker-style 0x81 0x23),
    # then Phone Mute Relative Constant (0x81 0x07), inside a nested logical collection.
    desc = parse_hex(
        "05 0b 09 05 a1 01 85 03 a1 02 19 20 29 21 15 00 25 01 75 01 95 02 81 23"
        " 09 2f 95 01 81 07 95 05 81 01 c0 c0"
    )
    lay = layout_from_bytes(desc)
    assert lay.telephony
    assert (lay.inputs["hook_switch"].bit, lay.inputs["flash"].bit) == (0, 1)
    assert (
        lay.inputs["hook_switch"].constant
        and lay.inputs["phone_mute"].encoding.value == "toggle_button"
    )


def test_long_items_are_skipped() -> None:
    desc = parse_hex("fe 02 10 aa bb 05 0b 09 05 a1 01 09 20 15 00 25 01 75 01 95 01 81 02 c0")
    assert layout_from_bytes(desc).inputs["hook_switch"].bit == 0


@pytest.mark.parametrize(
    ("hex_text", "offset", "words"),
    [
        ("05 0b 09", 2, "needs 1 data bytes"),
        ("c0", 0, "End Collection without"),
        ("b4", 0, "Pop without"),
        ("85 00", 0, "Report ID 0"),
        ("a1 01 09 20", 4, "never closed"),
        ("fe 05 00 01", 0, "long item"),
        ("75 01 96 ff ff 81 02", 5, "Report Count"),
        ("0c", 0, "reserved item type"),
    ],
)
def test_bad_descriptors_name_the_byte_and_the_problem(
    hex_text: str, offset: int, words: str
) -> None:
    with pytest.raises(DescriptorError) as err:
        parse_descriptor(parse_hex(hex_text))
    assert err.value.offset == offset
    assert words in str(err.value)


# --- fault 15: descriptors longer than the kernel's limit --------------------------------------

# Telephony Headset application collection holding `usages` Usage items (2 bytes each).
_HEAD, _TAIL = bytes.fromhex("050b0905a101"), bytes.fromhex("c0")


def _descriptor_of_length(length: int) -> bytes:
    """A well-formed descriptor of exactly `length` bytes."""
    usages, odd = divmod(length - len(_HEAD) - len(_TAIL), 2)
    # 0x08: a Usage item with no data bytes pads an odd length.
    return _HEAD + bytes.fromhex("0920") * usages + b"\x08" * odd + _TAIL


def test_a_descriptor_of_the_kernels_maximum_length_still_parses() -> None:
    data = _descriptor_of_length(4096)
    assert len(data) == 4096
    assert len(parse_descriptor(data).collections) == 1


def test_a_descriptor_longer_than_the_kernels_limit_is_refused_naming_the_limit() -> None:
    data = _descriptor_of_length(4098)
    with pytest.raises(DescriptorError) as err:
        parse_descriptor(data)
    assert err.value.offset == 4096
    assert str(err.value) == (
        "byte 4096: the descriptor is 4098 bytes long, over the kernel's limit of 4096 "
        "(HID_MAX_DESCRIPTOR_SIZE): no USB device can have it"
    )


def test_a_10_mb_descriptor_is_refused_before_any_work() -> None:
    data = _descriptor_of_length(10 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(DescriptorError, match="over the kernel's limit of 4096"):
            parse_descriptor(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # parsing it all took 1.2 GB


def test_hex_text_longer_than_any_descriptor_is_refused_before_decoding() -> None:
    text = "0x09, 0x20, " * 20_000  # 240 kB of text, 20,000 bytes
    with pytest.raises(DescriptorError) as err:
        parse_hex(text)
    assert "hex text of 240000 characters is over the limit of 65536" in str(err.value)


def test_hex_text_of_a_maximal_descriptor_in_c_array_style_is_accepted() -> None:
    # "0x09, 0x20,\n" style, 16 bytes a line: the way firmware sources print descriptors.
    data = _descriptor_of_length(4096)
    lines = [", ".join(f"0x{b:02X}" for b in data[i : i + 16]) + "," for i in range(0, 4096, 16)]
    assert parse_hex("\r\n".join(lines)) == data


def test_hidraw_candidate_with_an_oversized_descriptor_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    candidate = DeviceCandidate("/dev/hidraw9", _descriptor_of_length(8192), HeadsetInfo())
    assert candidate_layout(candidate) is None
    assert "over the kernel's limit of 4096" in caplog.text
