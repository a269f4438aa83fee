"""Random and mutated descriptors and reports: only our own errors, never a hang."""

from __future__ import annotations

import contextlib

from hid_support import ALL_FILES, descriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.hid.descriptor import DescriptorError, parse_descriptor
from drivers.hid.events import LedState
from drivers.hid.layout import telephony_layout
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
