"""A headset emulated through the kernel's /dev/uhid from a real report descriptor (stdlib only).

The kernel makes a real HID device of it: hid-generic binds, a /dev/hidrawN node appears, and
whatever the host writes to that node comes back here as UHID_OUTPUT (or UHID_SET_REPORT)
events; `send_input` is the headset's interrupt-IN report. Runs in the QEMU guest of
tests/guest/ (this machine's own kernel has no uhid).

The event layout is the kernel's `include/uapi/linux/uhid.h` (packed structs, native byte
order): `struct uhid_event { __u32 type; union { ... } u; }`, with

- UHID_CREATE2 (11): name[128] phys[64] uniq[64] rd_size:u16 bus:u16 vendor:u32 product:u32
  version:u32 country:u32 rd_data[4096];
- UHID_INPUT2 (12): size:u16 data[4096];
- UHID_OUTPUT (6): data[4096] size:u16 rtype:u8 (rtype 1 = output report);
- UHID_GET_REPORT (9): id:u32 rnum:u8 rtype:u8, answered by UHID_GET_REPORT_REPLY (10):
  id:u32 err:u16 size:u16 data[4096];
- UHID_SET_REPORT (13): id:u32 rnum:u8 rtype:u8 size:u16 data[4096], answered by
  UHID_SET_REPORT_REPLY (14): id:u32 err:u16;
- UHID_START (2): dev_flags:u64; UHID_STOP (3), UHID_OPEN (4), UHID_CLOSE (5): no payload;
  UHID_DESTROY (1): written, no payload.

    python3 uhid_headset.py DESCRIPTOR.hex [--vendor 0x0b0e --product 0x0307 --name NAME]

creates the device, prints its hidraw node and every report the host writes, until ^C.
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import struct
import time
from dataclasses import dataclass
from pathlib import Path

UHID_PATH = "/dev/uhid"

UHID_DESTROY = 1
UHID_START = 2
UHID_STOP = 3
UHID_OPEN = 4
UHID_CLOSE = 5
UHID_OUTPUT = 6
UHID_GET_REPORT = 9
UHID_GET_REPORT_REPLY = 10
UHID_CREATE2 = 11
UHID_INPUT2 = 12
UHID_SET_REPORT = 13
UHID_SET_REPORT_REPLY = 14

UHID_FEATURE_REPORT, UHID_OUTPUT_REPORT, UHID_INPUT_REPORT = 0, 1, 2
BUS_USB = 0x03  # linux/input.h
HID_MAX_DESCRIPTOR_SIZE = 4096
UHID_DATA_MAX = 4096

_CREATE2 = struct.Struct(f"=I128s64s64sHHIIII{HID_MAX_DESCRIPTOR_SIZE}s")
_INPUT2_HEAD = struct.Struct("=IH")
_OUTPUT = struct.Struct(f"={UHID_DATA_MAX}sHB")
_GET_REPORT = struct.Struct("=IBB")
_GET_REPORT_REPLY = struct.Struct(f"=IIHH{UHID_DATA_MAX}s")
_SET_REPORT = struct.Struct("=IBBH")
_SET_REPORT_REPLY = struct.Struct("=IIH")
# The largest member of the union is uhid_create2_req: 4 + 4372 bytes.
EVENT_SIZE = _CREATE2.size
EIO = errno.EIO


@dataclass(frozen=True)
class HostWrite:
    """A report the host wrote to the device (UHID_OUTPUT, or UHID_SET_REPORT on the control
    pipe), report ID first when the device numbers its reports; `at` is time.monotonic()."""

    data: bytes
    via: str  # "output" or "set_report"
    rtype: int
    at: float


class UhidHeadset:
    """One emulated device on /dev/uhid. `create()` makes it appear, `destroy()` unplugs it
    (the open file stays usable for a new `create()`), `close()` unplugs and closes."""

    def __init__(
        self,
        descriptor: bytes,
        *,
        name: str = "uhid headset",
        vendor: int = 0,
        product: int = 0,
        version: int = 0x0100,
        bus: int = BUS_USB,
        phys: str = "seatbox-uhid",
        uniq: str = "",
        path: str = UHID_PATH,
    ) -> None:
        if len(descriptor) > HID_MAX_DESCRIPTOR_SIZE:
            raise ValueError(f"descriptor: {len(descriptor)} bytes, at most 4096")
        self.descriptor = descriptor
        self.name, self.vendor, self.product, self.version = name, vendor, product, version
        self.bus, self.phys, self.uniq = bus, phys, uniq
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
        self.created = False
        self.started = False
        self.opened = False
        self.writes: list[HostWrite] = []  # every report the host wrote, in order
        self.events: list[tuple[int, float]] = []  # (event type, time) of every event read

    # --- the device -------------------------------------------------------------------------

    def create(self) -> None:
        event = _CREATE2.pack(
            UHID_CREATE2,
            self.name.encode()[:127],
            self.phys.encode()[:63],
            self.uniq.encode()[:63],
            len(self.descriptor),
            self.bus,
            self.vendor,
            self.product,
            self.version,
            0,
            self.descriptor,
        )
        os.write(self._fd, event)
        self.created = True

    def destroy(self) -> None:
        if self.created:
            os.write(self._fd, struct.pack("=I", UHID_DESTROY))
            self.created = self.started = self.opened = False

    def close(self) -> None:
        try:
            self.destroy()
        finally:
            os.close(self._fd)

    def __enter__(self) -> UhidHeadset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_input(self, report: bytes) -> float:
        """One input report (report ID first when numbered), as the headset's interrupt-IN
        endpoint would deliver it; returns the time it was handed to the kernel."""
        if len(report) > UHID_DATA_MAX:
            raise ValueError(f"input report: {len(report)} bytes, at most {UHID_DATA_MAX}")
        at = time.monotonic()
        os.write(self._fd, _INPUT2_HEAD.pack(UHID_INPUT2, len(report)) + report)
        return at

    # --- what the kernel tells the device -----------------------------------------------------

    def pump(self, timeout: float) -> int:
        """Read every event available within `timeout` seconds (the first may wait, the rest
        are taken while they keep coming); answers report requests. Returns how many."""
        count = 0
        wait = timeout
        while True:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, wait))
            if not ready:
                return count
            try:
                raw = os.read(self._fd, EVENT_SIZE)
            except BlockingIOError:
                return count
            self._handle(raw, time.monotonic())
            count += 1
            wait = 0.0

    def wait_writes(self, count: int, timeout: float) -> list[HostWrite]:
        """Until `count` host writes have arrived in all (or the deadline); all of them."""
        deadline = time.monotonic() + timeout
        while len(self.writes) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(left)
        return list(self.writes)

    def wait_event(self, kind: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not any(k == kind for k, _ in self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.1))
        return True

    def _handle(self, raw: bytes, at: float) -> None:
        (kind,) = struct.unpack_from("=I", raw)
        self.events.append((kind, at))
        body = raw[4:]
        if kind == UHID_START:
            self.started = True
        elif kind == UHID_STOP:
            self.started = False
        elif kind == UHID_OPEN:
            self.opened = True
        elif kind == UHID_CLOSE:
            self.opened = False
        elif kind == UHID_OUTPUT:
            data, size, rtype = _OUTPUT.unpack_from(body)
            self.writes.append(HostWrite(data[:size], "output", rtype, at))
        elif kind == UHID_SET_REPORT:
            ident, rnum, rtype, size = _SET_REPORT.unpack_from(body)
            start = _SET_REPORT.size
            data = body[start : start + size]
            self.writes.append(HostWrite(data, "set_report", rtype, at))
            os.write(self._fd, _SET_REPORT_REPLY.pack(UHID_SET_REPORT_REPLY, ident, 0))
        elif kind == UHID_GET_REPORT:
            # No feature or input report to give: answer EIO at once rather than let the
            # kernel wait its 5 s for a reply.
            ident, _rnum, _rtype = _GET_REPORT.unpack_from(body)
            os.write(
                self._fd,
                _GET_REPORT_REPLY.pack(UHID_GET_REPORT_REPLY, ident, EIO, 0, b""),
            )


def hidraw_of(name: str, sys_root: Path = Path("/sys")) -> str | None:
    """The /dev/hidrawN of the HID device with this HID_NAME (None when not there yet)."""
    for entry in sorted((sys_root / "class" / "hidraw").glob("hidraw*")):
        try:
            uevent = (entry / "device" / "uevent").read_text()
        except OSError:
            continue
        if f"HID_NAME={name}\n" in uevent:
            return f"/dev/{entry.name}"
    return None


def wait_hidraw(name: str, present: bool, timeout: float) -> str | None:
    """Poll sysfs until the node for `name` is there (present) or gone; the node or None."""
    deadline = time.monotonic() + timeout
    while True:
        node = hidraw_of(name)
        if (node is not None) == present and (node is None or os.path.exists(node)):
            return node
        if time.monotonic() > deadline:
            return node
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("descriptor", type=Path, help="a report descriptor as hex text")
    parser.add_argument("--vendor", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--product", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--name", default="uhid headset")
    args = parser.parse_args()
    descriptor = bytes.fromhex(args.descriptor.read_text().strip())
    with UhidHeadset(
        descriptor, name=args.name, vendor=args.vendor, product=args.product
    ) as device:
        device.create()
        print(f"{args.name}: {wait_hidraw(args.name, True, 5.0)}", flush=True)
        seen = 0
        try:
            while True:
                device.pump(1.0)
                for write in device.writes[seen:]:
                    print(f"{write.via} {write.data.hex()}", flush=True)
                seen = len(device.writes)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
