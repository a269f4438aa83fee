"""Real descriptors of tests/data/hid and helpers to build reports from their layouts."""

from __future__ import annotations

from pathlib import Path

from drivers.hid.layout import TelephonyLayout, layout_from_bytes

HID_DATA = Path(__file__).parent / "data" / "hid"
ALL_FILES = sorted(p.stem for p in HID_DATA.glob("*.hex"))
NEGATIVE = [
    "logitech_g535_wireless",
    "logitech_h540_if3",
    "plantronics_blackwire3220_if3_consumer",
    "plantronics_blackwire3220_if3_ffa0",
]
TELEPHONY = [name for name in ALL_FILES if name not in NEGATIVE]


def descriptor(name: str) -> bytes:
    return bytes.fromhex((HID_DATA / f"{name}.hex").read_text().strip())


def layout(name: str) -> TelephonyLayout:
    return layout_from_bytes(descriptor(name))


def input_report(lay: TelephonyLayout, report_id: int, **values: int) -> bytes:
    """An input report of `report_id` with the named controls set (others 0), as hidraw
    delivers it: report ID first when the device numbers its reports."""
    length = lay.input_lengths[report_id] - 1
    bits = 0
    for name, value in values.items():
        control = lay.inputs[name]
        assert control.report_id == report_id, f"{name} is in report {control.report_id}"
        bits |= (value & ((1 << control.size) - 1)) << control.bit
    payload = bits.to_bytes(length, "little")
    return bytes([report_id]) + payload if lay.uses_report_ids else payload
