"""Real descriptors of tests/data/hid, helpers to build reports from their layouts, and a
fake hidraw bus whose nodes are real SOCK_SEQPACKET pairs (one report per read, like hidraw)."""

from __future__ import annotations

import queue
import socket
from pathlib import Path

from drivers.hid.events import HeadsetInfo
from drivers.hid.hidraw import DeviceCandidate, FdDevice, HidHandle
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


INFO = HeadsetInfo(vendor_id=0x0B0E, product_id=0x0307, product="EVOLVE LINK MS", usb_path="1-1.3")


class FakeBus:
    """Enumeration and opening of hidraw nodes, each a SOCK_SEQPACKET pair: our end goes to
    the driver as an FdDevice, the test keeps the device end."""

    def __init__(self, name: str, info: HeadsetInfo = INFO, path: str = "/dev/hidraw7") -> None:
        self.candidate = DeviceCandidate(path, descriptor(name), info)
        self.present = True
        self.ends: queue.Queue[socket.socket] = queue.Queue()
        self.opened = 0

    def enumerate(self) -> list[DeviceCandidate]:
        return [self.candidate] if self.present else []

    def open(self, candidate: DeviceCandidate) -> HidHandle:
        host, device = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ends.put(device)
        self.opened += 1
        return FdDevice(host.detach())


def recv(device: socket.socket, timeout: float = 5.0) -> bytes:
    """The next report the driver wrote to the device end (fails after `timeout`)."""
    device.settimeout(timeout)
    return device.recv(4096)
