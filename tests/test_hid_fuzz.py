"""Random, mutated and well-formed random descriptors, hex text and reports: only our own
errors (DescriptorError, ReportError), fields inside their reports, never a hang."""

from __future__ import annotations

import contextlib

import pytest
from hid_support import ALL_FILES, TELEPHONY, descriptor, layout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.hid.descriptor import (
    MAX_DESCRIPTOR_SIZE,
    MAX_REPORT_BYTES,
    DescriptorError,
    parse_descriptor,
    parse_hex,
)
from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    LedState,
    MuteLocked,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from drivers.hid.layout import TelephonyLayout, telephony_layout
from drivers.hid.protocol import ReportError, TelephonyProtocol

REAL = [descriptor(name) for name in ALL_FILES]
FAST = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _exercise(data: bytes, reports: list[bytes]) -> None:
    try:
        desc = parse_descriptor(data)
    except DescriptorError:
        return
    layout = telephony_layout(desc)
    protocol = TelephonyProtocol(layout)
    protocol.led_reports(LedState(off_hook=True, mute=True, ring=True, hold=True), now=0.0)
    for i, report in enumerate(reports):
        with contextlib.suppress(ReportError):
            protocol.on_input_report(report, now=float(i) * 0.01)
    protocol.led_reports(LedState(), now=10.0)


@FAST
@given(st.binary(max_size=512), st.lists(st.binary(max_size=64), max_size=8))
def test_random_descriptors_and_reports(data: bytes, reports: list[bytes]) -> None:
    _exercise(data, reports)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@FAST
@given(mutated(), st.lists(st.binary(min_size=1, max_size=40), max_size=12))
def test_mutated_real_descriptors_and_reports(data: bytes, reports: list[bytes]) -> None:
    _exercise(data, reports)


@FAST
@given(st.sampled_from(REAL), st.lists(st.binary(min_size=1, max_size=40), max_size=20))
def test_real_descriptors_with_random_reports(data: bytes, reports: list[bytes]) -> None:
    # Put each report on a telephony report ID half of the time so decoding runs.
    layout = telephony_layout(parse_descriptor(data))
    ids = sorted(layout.input_lengths) or [0]
    fixed = [bytes([ids[r[0] % len(ids)]]) + r[1:] if r[0] % 2 else r for r in reports]
    _exercise(data, fixed)


# --- items that parse: random but well-formed item streams reach the layout code ------------

# Short items with a valid prefix: any tag of the Main, Global and Local types, any data size.
_item = st.tuples(
    st.integers(0, 15), st.integers(0, 2), st.integers(0, 3), st.integers(0, 2**32 - 1)
)


def _encode(tag: int, kind: int, size_code: int, value: int) -> bytes:
    size = (0, 1, 2, 4)[size_code]
    return bytes([tag << 4 | kind << 2 | size_code]) + (value % (1 << 8 * size)).to_bytes(
        size, "little"
    )


@st.composite
def item_streams(draw: st.DrawFn) -> bytes:
    """A Telephony (or random-page) application collection of random items, closed."""
    page = draw(st.sampled_from([0x0B, 0x0C, 0x08, 0x01, 0xFFA0]))
    head = _encode(0, 1, 2, page) + _encode(0, 2, 1, 0x05) + bytes.fromhex("a101")
    body = b"".join(_encode(*i) for i in draw(st.lists(_item, max_size=60)))
    return head + body + b"\xc0"


def _check_structure(data: bytes) -> None:
    try:
        desc = parse_descriptor(data)
    except DescriptorError as exc:
        assert 0 <= exc.offset <= max(len(data), MAX_DESCRIPTOR_SIZE)
        return
    for item in desc.items:
        end = item.bit + item.size * item.count
        assert end <= desc.report_bits[(item.kind, item.report_id)]
        assert desc.report_length(item.kind, item.report_id) <= MAX_REPORT_BYTES
    for c in desc.collections:
        assert c.parent is None or c.parent < c.index
    layout = telephony_layout(desc)
    for control in layout.inputs.values():
        length = layout.input_lengths[control.report_id]
        assert control.bit + control.size <= 8 * (length - 1)
    for report in layout.output_reports.values():
        for name in report.leds:
            assert layout.leds[name].bit < 8 * (report.length - 1)


@FAST
@given(st.one_of(item_streams(), mutated(), st.binary(max_size=256)))
def test_parsed_descriptors_keep_every_field_inside_its_report(data: bytes) -> None:
    _check_structure(data)


@settings(FAST, max_examples=200)
@given(item_streams(), st.lists(st.binary(min_size=1, max_size=24), max_size=10))
def test_well_formed_random_items_and_reports_only_raise_our_errors(
    data: bytes, reports: list[bytes]
) -> None:
    _exercise(data, reports)


@settings(FAST, max_examples=50)
@given(st.one_of(mutated(), st.binary(min_size=1, max_size=64)), st.integers(1, 60_000))
def test_any_descriptor_over_the_kernels_limit_is_refused_at_the_limit(
    pattern: bytes, over: int
) -> None:
    length = MAX_DESCRIPTOR_SIZE + over
    data = (pattern or b"\xc0") * (length // max(1, len(pattern)) + 1)
    data = data[:length]
    try:
        parse_descriptor(data)
    except DescriptorError as exc:
        assert exc.offset == MAX_DESCRIPTOR_SIZE
        assert "over the kernel's limit of 4096" in str(exc)
    else:
        raise AssertionError("a descriptor over 4096 bytes was accepted")


# --- hex text (`seatbox headset describe`) -----------------------------------------------------


@FAST
@given(st.one_of(st.text(max_size=200), st.text(alphabet="0123456789abcdefABxX, \t\r\n")))
def test_hex_text_is_bytes_or_an_error_naming_the_byte(text: str) -> None:
    try:
        data = parse_hex(text)
    except DescriptorError as exc:
        assert 0 <= exc.offset <= len(text)
    else:
        assert len(data) <= len(text) // 2


@FAST
@given(
    st.binary(max_size=MAX_DESCRIPTOR_SIZE),
    st.sampled_from(["{:02x}", "{:02X}", "0x{:02x}", "0x{:02X}"]),
    st.sampled_from([" ", ", ", ",", "\n", "", ", \r\n"]),
)
def test_every_usual_hex_style_of_a_descriptor_reads_back_exactly(
    data: bytes, byte_format: str, separator: str
) -> None:
    text = separator.join(byte_format.format(b) for b in data)
    assert parse_hex(text) == data


# --- reports on the real descriptors ----------------------------------------------------------


@st.composite
def real_with_reports(draw: st.DrawFn) -> tuple[TelephonyLayout, list[bytes]]:
    """A real telephony layout and input reports of exactly a declared length."""
    lay = layout(draw(st.sampled_from(TELEPHONY)))
    ids = sorted({c.report_id for c in lay.inputs.values()})
    reports = []
    for _ in range(draw(st.integers(1, 12))):
        rid = draw(st.sampled_from(ids))
        payload = draw(
            st.binary(min_size=lay.input_lengths[rid] - 1, max_size=lay.input_lengths[rid] - 1)
        )
        reports.append(bytes([rid]) + payload if lay.uses_report_ids else payload)
    return lay, reports


EVENT_TYPES = (HookSwitch, PhoneMute, Flash, Redial, Drop, ProgrammableButton, Volume, MuteLocked)


@FAST
@given(real_with_reports(), st.floats(0.0, 0.5))
def test_reports_of_the_declared_length_decode_to_typed_requests(
    case: tuple[TelephonyLayout, list[bytes]], spacing: float
) -> None:
    lay, reports = case
    protocol = TelephonyProtocol(lay)
    for i, report in enumerate(reports):
        for event in protocol.on_input_report(report, now=i * spacing):
            assert isinstance(event, EVENT_TYPES)


@FAST
@given(real_with_reports(), st.integers(1, 8))
def test_a_report_cut_short_is_refused_naming_the_report(
    case: tuple[TelephonyLayout, list[bytes]], cut: int
) -> None:
    lay, reports = case
    protocol = TelephonyProtocol(lay)
    report = reports[0]
    head = 1 if lay.uses_report_ids else 0
    rid = report[0] if head else 0
    short = report[: max(head, len(report) - cut)]
    needed = max((c.bit + c.size + 7) // 8 for c in lay.inputs.values() if c.report_id == rid)
    if not short:
        with pytest.raises(ReportError, match="empty input report"):
            protocol.on_input_report(short, now=0.0)
    elif len(short) - head < needed:
        with pytest.raises(
            ReportError, match=f"input report {rid}: {len(short) - head} data bytes"
        ):
            protocol.on_input_report(short, now=0.0)
    else:
        protocol.on_input_report(short, now=0.0)  # the controls it has are all there


@FAST
@given(
    st.sampled_from(TELEPHONY),
    st.lists(
        st.builds(LedState, st.booleans(), st.booleans(), st.booleans(), st.booleans()), max_size=10
    ),
)
def test_led_reports_always_have_the_declared_id_and_length(
    name: str, states: list[LedState]
) -> None:
    lay = layout(name)
    protocol = TelephonyProtocol(lay)
    for i, leds in enumerate(states):
        for report in protocol.led_reports(leds, now=float(i)):
            out = lay.output_reports[report[0]]
            assert len(report) == out.length
