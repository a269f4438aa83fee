"""The real headset backend: hidapi's hidraw backend, a reader thread, hot-plug and inventory.

`HidrawHeadset` implements `drivers.hid.interface.Headset`; the device handle is injectable.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from drivers.base import Backoff, Sink
from drivers.hid.descriptor import MAX_DESCRIPTOR_SIZE, DescriptorError
from drivers.hid.events import HeadsetInfo, HeadsetPlugged, HeadsetUnplugged, LedState
from drivers.hid.layout import TelephonyLayout, layout_from_bytes
from drivers.hid.protocol import ProtocolSettings, ReportError, TelephonyProtocol

log = logging.getLogger(__name__)

SYSFS_HIDRAW = Path("/sys/class/hidraw")
# hidapi linux/hid.c: HID_MAX_DESCRIPTOR_SIZE, the kernel's limit (the parser refuses more).
MAX_DESCRIPTOR = MAX_DESCRIPTOR_SIZE
MIN_READ = 64  # read buffer: at least one full-speed interrupt packet


class HidHandle(Protocol):
    """One open hidraw node: one report per read, report ID first when numbered."""

    def read(self, size: int, timeout_ms: int) -> Sequence[int] | bytes: ...

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeviceCandidate:
    """A hidraw node found by enumeration, with its descriptor and inventory."""

    path: str
    descriptor: bytes
    info: HeadsetInfo


Enumerator = Callable[[], list[DeviceCandidate]]
Opener = Callable[[DeviceCandidate], HidHandle]


class FdDevice:
    """A hidraw-like file descriptor (`/dev/hidrawN`, or a SOCK_SEQPACKET end in tests) with
    hidapi's read/write calls and its disconnect behaviour (POLLHUP -> error)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)

    @classmethod
    def open(cls, path: str) -> FdDevice:
        return cls(os.open(path, os.O_RDWR | os.O_CLOEXEC))

    def read(self, size: int, timeout_ms: int) -> bytes:
        events = self._poll.poll(timeout_ms if timeout_ms > 0 else None)
        if not events:
            return b""
        _, mask = events[0]
        if mask & (select.POLLERR | select.POLLNVAL):
            raise OSError(errno.ENODEV, "device disconnected")
        data = os.read(self._fd, size) if mask & select.POLLIN else b""
        if not data:  # hidraw after unplug: POLLHUP and end of file
            raise OSError(errno.ENODEV, "device disconnected")
        return data

    def write(self, data: bytes) -> int:
        return os.write(self._fd, data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class HidapiDevice:
    """hidapi's hidraw backend (`import hidraw`, never `hid`: that is libusb and detaches
    the kernel driver, hiding the headset from everyone else; reference §6)."""

    def __init__(self, path: str) -> None:
        import hidraw  # the hidapi wheel's hidraw module

        self._device: Any = hidraw.device()
        self._device.open_path(path.encode())

    def read(self, size: int, timeout_ms: int) -> bytes:
        return bytes(self._device.read(size, timeout_ms))

    def write(self, data: bytes) -> int:
        written = int(self._device.write(data))
        if written < 0:
            raise OSError(errno.EIO, f"hid_write failed: {self._device.error()}")
        return written

    def close(self) -> None:
        self._device.close()

    def report_descriptor(self) -> bytes:
        return bytes(self._device.get_report_descriptor(MAX_DESCRIPTOR))


def open_hidapi(candidate: DeviceCandidate) -> HidHandle:
    return HidapiDevice(candidate.path)


# --- inventory ------------------------------------------------------------------------------


def _sysfs_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _bcd_version(bcd: int) -> str:
    """USB 2.0 §9.6.1 bcdDevice, e.g. 0x0123 -> "1.23"."""
    return f"{(bcd >> 8) & 0xFF:x}.{bcd & 0xFF:02x}"


def usb_device_dir(hidraw_path: str, sysfs_hidraw: Path = SYSFS_HIDRAW) -> Path | None:
    """The sysfs directory of the USB device behind /dev/hidrawN (None off USB)."""
    node = sysfs_hidraw / Path(hidraw_path).name / "device"
    try:
        real = node.resolve(strict=True)
    except OSError:
        return None
    for parent in real.parents:
        if (parent / "busnum").exists() and (parent / "devpath").exists():
            return parent
    return None


def sysfs_descriptor(hidraw_path: str) -> bytes | None:
    """The report descriptor from sysfs (readable without access to the node)."""
    try:
        return (SYSFS_HIDRAW / Path(hidraw_path).name / "device" / "report_descriptor").read_bytes()
    except OSError:
        return None


def pyusb_inventory(
    vendor_id: int, product_id: int, bus: int, ports: tuple[int, ...]
) -> dict[str, str]:
    """Strings and firmware from the USB device descriptor via pyusb ({} when unavailable:
    no libusb backend or no access to /dev/bus/usb)."""
    try:
        import usb.core
        import usb.util

        for dev in usb.core.find(find_all=True, idVendor=vendor_id, idProduct=product_id) or []:
            if dev.bus != bus or tuple(dev.port_numbers or ()) != ports:
                continue
            found = {"firmware": _bcd_version(int(dev.bcdDevice))}
            for key, index in (
                ("manufacturer", dev.iManufacturer),
                ("product", dev.iProduct),
                ("serial", dev.iSerialNumber),
            ):
                if index:
                    with contextlib.suppress(usb.core.USBError, ValueError, NotImplementedError):
                        found[key] = str(usb.util.get_string(dev, index) or "")
            return found
    except Exception as exc:  # inventory is best effort, never fatal
        log.debug("pyusb inventory unavailable: %s", exc)
    return {}


def inventory(entry: dict[str, Any]) -> HeadsetInfo:
    """HeadsetInfo from a hidapi enumerate entry, completed from sysfs and pyusb."""
    path = entry.get("path", b"")
    path = path.decode(errors="replace") if isinstance(path, bytes) else str(path)
    info = HeadsetInfo(
        vendor_id=int(entry.get("vendor_id", 0)),
        product_id=int(entry.get("product_id", 0)),
        manufacturer=str(entry.get("manufacturer_string") or ""),
        product=str(entry.get("product_string") or ""),
        serial=str(entry.get("serial_number") or ""),
        firmware=_bcd_version(int(entry.get("release_number", 0))),
    )
    usb_dir = usb_device_dir(path)
    if usb_dir is not None:
        usb_path = usb_dir.name  # e.g. 1-1.3: bus 1, port 1, hub port 3
        bus = int(_sysfs_text(usb_dir / "busnum") or 0)
        devpath = _sysfs_text(usb_dir / "devpath")
        ports = tuple(int(p) for p in devpath.split(".") if p.isdigit())
        extra = pyusb_inventory(info.vendor_id, info.product_id, bus, ports)
        info = replace(
            info,
            usb_path=usb_path,
            manufacturer=extra.get("manufacturer") or info.manufacturer,
            product=extra.get("product") or info.product,
            serial=extra.get("serial") or info.serial,
            firmware=extra.get("firmware") or info.firmware,
        )
    return replace(info, model=info.product or f"{info.vendor_id:04x}:{info.product_id:04x}")


def enumerate_hidraw() -> list[DeviceCandidate]:
    """Every hidraw node once (hidapi >= 0.14 lists one entry per top-level collection, all
    with the same path), with its report descriptor."""
    import hidraw

    seen: dict[str, DeviceCandidate] = {}
    for entry in hidraw.enumerate():
        raw = entry.get("path", b"")
        path = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        if path in seen:
            continue
        descriptor = sysfs_descriptor(path)
        if descriptor is None:
            try:
                device = HidapiDevice(path)
                try:
                    descriptor = device.report_descriptor()
                finally:
                    device.close()
            except (OSError, ValueError) as exc:
                log.info("%s: cannot read its report descriptor: %s", path, exc)
                continue
        seen[path] = DeviceCandidate(path=path, descriptor=descriptor, info=inventory(entry))
    return list(seen.values())


def _uevent(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _sysfs_text(path).splitlines():
        key, _, value = line.partition("=")
        fields[key] = value
    return fields


def _node_number(entry: Path) -> int:
    digits = entry.name.removeprefix("hidraw")
    return int(digits) if digits.isdigit() else -1


def enumerate_sysfs(
    sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev")
) -> list[DeviceCandidate]:
    """Every hidraw node the kernel lists, in node order, from sysfs alone: no access to the
    nodes and no hidapi needed (`seatbox doctor` sees what the service user may not open).

    Inventory from the HID device's uevent (HID_ID bus:vendor:product, HID_NAME, HID_UNIQ) and,
    on USB, the USB device's strings and bcdDevice.
    """
    sysfs_hidraw = sys_root / "class/hidraw"
    found: list[DeviceCandidate] = []
    for entry in sorted(sysfs_hidraw.glob("hidraw*"), key=_node_number):
        try:
            descriptor = (entry / "device/report_descriptor").read_bytes()
        except OSError:
            continue
        uevent = _uevent(entry / "device/uevent")
        ids = uevent.get("HID_ID", "").split(":")  # 0003:00000B0E:00002453
        try:
            vendor, product = (int(ids[1], 16), int(ids[2], 16)) if len(ids) == 3 else (0, 0)
        except ValueError:
            vendor, product = 0, 0
        info = HeadsetInfo(
            vendor_id=vendor,
            product_id=product,
            product=uevent.get("HID_NAME", ""),
            serial=uevent.get("HID_UNIQ", ""),
        )
        usb_dir = usb_device_dir(entry.name, sysfs_hidraw)
        if usb_dir is not None:
            bcd = _sysfs_text(usb_dir / "bcdDevice")
            info = replace(
                info,
                usb_path=usb_dir.name,
                manufacturer=_sysfs_text(usb_dir / "manufacturer"),
                product=_sysfs_text(usb_dir / "product") or info.product,
                serial=_sysfs_text(usb_dir / "serial") or info.serial,
                firmware=_bcd_version(int(bcd, 16)) if bcd else "",
            )
        model = info.product or f"{vendor:04x}:{product:04x}"
        found.append(
            DeviceCandidate(str(dev_root / entry.name), descriptor, replace(info, model=model))
        )
    return found


def candidate_layout(candidate: DeviceCandidate) -> TelephonyLayout | None:
    try:
        return layout_from_bytes(candidate.descriptor)
    except DescriptorError as exc:
        log.warning("%s: report descriptor not usable: %s", candidate.path, exc)
        return None


# --- the backend ----------------------------------------------------------------------------


class HidrawHeadset:
    """A telephony headset on hidraw: finds it, reads it in its own thread, answers it.

    device: "auto" (the first device with a Telephony collection) or a /dev/hidrawN path.
    """

    def __init__(
        self,
        device: str = "auto",
        settings: ProtocolSettings | None = None,
        *,
        read_timeout: float = 0.2,
        reconnect_min: float = 0.5,
        reconnect_max: float = 10.0,
        enumerate: Enumerator = enumerate_hidraw,
        opener: Opener = open_hidapi,
        clock: Callable[[], float] = time.monotonic,
        hotplug: bool = True,
    ) -> None:
        self._device = device
        self._settings = settings or ProtocolSettings()
        self._read_timeout_ms = max(1, int(read_timeout * 1000))
        self._reconnect_min = reconnect_min
        self._reconnect_max = max(reconnect_min, reconnect_max)
        self._enumerate = enumerate
        self._opener = opener
        self._clock = clock
        self._hotplug = hotplug
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._sink: Sink | None = None
        self._handle: HidHandle | None = None
        self._protocol: TelephonyProtocol | None = None
        self._info: HeadsetInfo | None = None
        self._leds = LedState()
        self.on_write: Callable[[bytes], None] | None = None  # for `seatbox headset watch`

    # --- Headset interface --------------------------------------------------------------

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stopping.clear()
        if self._hotplug:
            self._observer = _start_udev_observer(self.notify_hotplug)
        self._thread = threading.Thread(target=self._run, name="hidraw-headset", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._observer is not None:
            # Stopping pyudev must never block or break shutdown.
            with contextlib.suppress(Exception):
                self._observer.stop()
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def info(self) -> HeadsetInfo | None:
        with self._lock:
            return self._info

    def layout(self) -> TelephonyLayout | None:
        with self._lock:
            return self._protocol.layout if self._protocol else None

    def write_leds(self, leds: LedState) -> None:
        """Show the host's LED state: composed reports, the changed ones plus those that
        answer a pending hook/mute request. Kept for the next device when none is open."""
        with self._lock:
            self._leds = leds
            self._write_locked()

    def notify_hotplug(self) -> None:
        """A hidraw node came or went (pyudev): look for the device now."""
        self._wake.set()

    # --- internals ----------------------------------------------------------------------

    def _write_locked(self) -> None:
        if self._handle is None or self._protocol is None:
            return
        for report in self._protocol.led_reports(self._leds, self._clock()):
            try:
                self._handle.write(report)
            except OSError as exc:
                log.warning("LED report %s not written: %s", report.hex(), exc)
                return  # the reader sees the disconnect and reconnects
            if self.on_write is not None:
                self.on_write(report)

    def _emit(self, item: object) -> None:
        if self._sink is not None:
            self._sink(item)

    def _find(self) -> tuple[DeviceCandidate, TelephonyLayout] | None:
        try:
            candidates = self._enumerate()
        except Exception as exc:  # enumeration failing means "not found yet"
            log.warning("cannot enumerate hidraw devices: %s", exc)
            return None
        for candidate in candidates:
            if self._device != "auto" and candidate.path != self._device:
                continue
            layout = candidate_layout(candidate)
            if layout is None:
                continue
            if layout.telephony or self._device != "auto":
                return candidate, layout
        return None

    def _run(self) -> None:
        backoff = Backoff(self._reconnect_min, self._reconnect_max)
        while not self._stopping.is_set():
            found = self._find()
            handle: HidHandle | None = None
            if found is not None:
                candidate, layout = found
                try:
                    handle = self._opener(candidate)
                except OSError as exc:
                    log.warning("%s: cannot open: %s", candidate.path, exc)
            if found is None or handle is None:
                self._wake.wait(backoff.next_delay())
                self._wake.clear()
                continue
            backoff.reset()
            info = replace(candidate.info, telephony=layout.telephony)
            with self._lock:
                self._handle = handle
                self._protocol = TelephonyProtocol(layout, self._settings)
                self._info = info
            # USB port when on USB ("1-1.3"); a uhid or Bluetooth device has none.
            where = f" ({info.usb_path})" if info.usb_path else ""
            log.info("headset %s on %s%s", info.product, candidate.path, where)
            self._emit(HeadsetPlugged(info))
            with self._lock:  # after a (re-)plug the whole LED state goes out again
                self._write_locked()
            reason = self._read_loop(handle, layout)
            with self._lock:
                self._handle = None
                self._protocol = None
                self._info = None
            handle.close()
            if reason:
                log.info("headset on %s gone: %s", candidate.path, reason)
                self._emit(HeadsetUnplugged(reason=reason))

    def _read_loop(self, handle: HidHandle, layout: TelephonyLayout) -> str:
        size = max([MIN_READ, *layout.input_lengths.values()])
        while not self._stopping.is_set():
            try:
                data = handle.read(size, self._read_timeout_ms)
            except OSError as exc:
                return f"read failed: {exc.strerror or exc}"
            if not data:
                continue
            with self._lock:
                protocol = self._protocol
                if protocol is None:
                    return "closed"
                try:
                    events = protocol.on_input_report(bytes(data), self._clock())
                except ReportError as exc:
                    log.warning("malformed input report %s: %s", bytes(data).hex(), exc)
                    continue
            for event in events:
                self._emit(event)
        return ""


def _start_udev_observer(callback: Callable[[], None]) -> Any:
    """pyudev netlink monitor on `hidraw`; None (polling with back-off) when unavailable,
    e.g. in containers without a udev netlink socket."""
    try:
        import pyudev

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by("hidraw")
        observer = pyudev.MonitorObserver(monitor, callback=lambda _device: callback())
        observer.daemon = True
        observer.start()
        return observer
    except Exception as exc:  # any failure falls back to polling
        log.info("no udev hot-plug events (%s); polling for the headset", exc)
        return None
