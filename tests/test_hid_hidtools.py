"""Cross-check of our parser against hid-tools (GPL, test-only) on every real descriptor."""

from __future__ import annotations

import pytest
from hid_support import ALL_FILES, descriptor

from drivers.hid.descriptor import ReportKind, parse_descriptor

hidtools_hid = pytest.importorskip("hidtools.hid", reason="hid-tools is in the test extra")

KINDS = {
    ReportKind.INPUT: "input_reports",
    ReportKind.OUTPUT: "output_reports",
    ReportKind.FEATURE: "feature_reports",
}


def _ours(name: str) -> tuple[set[tuple[object, ...]], dict[tuple[str, int], int]]:
    desc = parse_descriptor(descriptor(name))
    fields: set[tuple[object, ...]] = set()
    for item in desc.items:
        if not item.size or not item.count:
            continue
        if item.usage_count() == 0:  # padding: one span of size x count bits
            fields.add(("pad", item.kind.value, item.report_id, item.bit, item.size * item.count))
            continue
        if item.is_array and item.flags.constant:
            # hid-tools splits a Constant array into one 1-slot field per slot.
            for bit, _ in item.elements():
                fields.add((item.kind.value, item.report_id, bit, item.size, 1, "arr"))
            continue
        if item.is_array:
            fields.add((item.kind.value, item.report_id, item.bit, item.size, item.count, "arr"))
            continue
        for bit, usage in item.elements():
            assert usage is not None
            fields.add(
                (item.kind.value, item.report_id, bit, item.size, item.logical_min,
                 item.logical_max, item.flags.value & 0x3F, usage & 0xFFFF)
            )  # fmt: skip
    lengths = {(k.value, rid): desc.report_length(k, rid) for (k, rid) in desc.report_bits}
    return fields, lengths


def _theirs(name: str) -> tuple[set[tuple[object, ...]], dict[tuple[str, int], int]]:
    rdesc = hidtools_hid.ReportDescriptor.from_bytes(list(descriptor(name)))
    fields: set[tuple[object, ...]] = set()
    lengths: dict[tuple[str, int], int] = {}
    for kind, attr in KINDS.items():
        for rid, report in getattr(rdesc, attr).items():
            id_bits = 8 if rid else 0
            # hid-tools counts the report-ID byte only for numbered reports; hidapi writes a
            # 0 byte for unnumbered ones, which our length includes.
            lengths[(kind.value, rid)] = report.size + (0 if rid else 1)
            for f in report.fields:
                bit = f.start - id_bits
                if f.type & 0x3 and not f.usages and not f.usage:
                    fields.add(("pad", kind.value, rid, bit, f.size * f.count))
                    continue
                if f.is_array:
                    fields.add((kind.value, rid, bit, f.size, f.count, "arr"))
                    continue
                if f.usage is None:
                    continue
                fields.add(
                    (kind.value, rid, bit, f.size, f.logical_min, f.logical_max,
                     f.type & 0x3F, f.usage & 0xFFFF)
                )  # fmt: skip
    return fields, lengths


@pytest.mark.parametrize("name", ALL_FILES)
def test_fields_agree_with_hid_tools(name: str) -> None:
    # Usage IDs are compared without their page: for `09 07 05 09 81 02` hid-tools (like the
    # kernel) re-pages the usage to Button 7, we keep Telephony Programmable Button (see
    # docs/headsets.md); positions, sizes, ranges and flags must agree exactly.
    ours, our_lengths = _ours(name)
    theirs, their_lengths = _theirs(name)
    assert ours == theirs
    assert our_lengths == their_lengths
