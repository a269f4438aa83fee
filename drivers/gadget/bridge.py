"""The HID relay of a bridged seat (the `bridge` call source): the PC's softphone <-> the seat.

    bridge = GadgetBridge("auto")      # [bridge] hid_device
    bridge.start(runtime.sink)         # a CallHost: the softphone's LEDs become HostLeds
    runtime.taps.append(bridge.relay)  # the headset's requests become input reports to the PC

One thread reads the gadget's /dev/hidgN (`hidg.HidgDevice`): each output report the softphone
writes is translated (`relay.parse_leds`) and handed to the seat as `HostLeds`, the
authoritative call state; the seat mirrors it on the real headset through its own driver
(`drivers.hid.protocol`: the headset's own layout, echo windows). The headset's requests the
seat receives are translated (`relay.PcReports`) and written to the PC by the same thread, in
order (a press and its release are two reports the PC collects one by one).

What the PC side is doing goes to the seat as `BridgeStatus` whenever it changes, decided by
`BridgeMonitor` (pure, time as an argument): the controller's state in sysfs when the gadget
is in configfs (`configured` = the PC uses it), else what the node says (an LED report read or
an input report taken = connected; ESHUTDOWN, no node = not). The node is looked for again
every `poll` seconds, so a gadget brought up after the seat, or rebuilt, is found; nothing here
raises on the PC's or the node's account. Malformed output reports are logged once per kind
and ignored. Stdlib only: the QEMU guest runs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path

from drivers.gadget.configfs import CONFIGFS_ROOT, UDC_CLASS
from drivers.gadget.hidg import HidgDevice, find_hidg, open_node
from drivers.gadget.relay import OutputReportError, PcReports, parse_leds
from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from drivers.host.events import BridgeStatus, HostLeds

log = logging.getLogger(__name__)

# What the seat hands the bridge (drivers.base.Sink; not imported: the guest imports this).
Sink = Callable[[object], None]

# The headset's requests the PC hears about (Volume in the Consumer report).
REQUESTS = (HookSwitch, PhoneMute, Flash, Redial, Drop, ProgrammableButton, Volume)
# Connected this long without an LED report: the softphone does not drive the headset.
LED_WAIT_S = 60.0
# In [storage] state_dir: the last status, for `seatbox doctor`.
STATUS_FILE_NAME = "bridge-status.json"
# Distinct malformed-report messages remembered for "logged once" (a bound, not a feature).
_LOGGED_MAX = 32


class BridgeMonitor:
    """What the seat is told about the PC side, from what the bridge sees (pure; `now` is
    monotonic seconds). `status()` is the current `BridgeStatus`; `changed()` returns it when
    it differs from the one last returned, else None."""

    def __init__(self, led_wait_s: float = LED_WAIT_S) -> None:
        self.led_wait_s = led_wait_s
        self.pc_connected = False
        self.detail = "not looked at yet"
        self.connected_at: float | None = None
        self.leds_seen = False
        self.last_led_at: float | None = None
        self.bad_report = ""
        self._reported: BridgeStatus | None = None

    def connected(self, now: float, detail: str = "") -> None:
        if not self.pc_connected:
            self.pc_connected = True
            self.connected_at = now
            self.leds_seen = False
            self.bad_report = ""
        self.detail = detail

    def disconnected(self, now: float, detail: str) -> None:
        self.pc_connected = False
        self.connected_at = None
        self.detail = detail

    def led_report(self, now: float) -> None:
        self.leds_seen = True
        self.last_led_at = now

    def malformed(self, now: float, why: str) -> None:
        if not self.bad_report:
            self.bad_report = why

    def led_writes(self, now: float) -> str:
        if self.leds_seen:
            return "seen"
        if self.connected_at is not None and now - self.connected_at >= self.led_wait_s:
            return "missing"
        return "waiting"

    def status(self, now: float) -> BridgeStatus:
        return BridgeStatus(
            pc_connected=self.pc_connected,
            detail=self.detail,
            led_writes=self.led_writes(now),
            led_wait_s=self.led_wait_s,
            bad_report=self.bad_report,
        )

    def changed(self, now: float) -> BridgeStatus | None:
        status = self.status(now)
        if status == self._reported:
            return None
        self._reported = status
        return status

    def next_check(self) -> float | None:
        """When `led_writes` turns `missing` if nothing comes (None: no such time)."""
        if self.leds_seen or self.connected_at is None:
            return None
        return self.connected_at + self.led_wait_s


def udc_state(
    gadget: str = "seatbox", root: Path = CONFIGFS_ROOT, udc_class: Path = UDC_CLASS
) -> tuple[bool | None, str]:
    """Is the PC using the gadget, by configfs and sysfs: (True, ...) when its controller is
    `configured`; (False, why) when the gadget is not bound or the controller is in another
    state; (None, why) when there is no such gadget in configfs (the node alone decides)."""
    path = Path(root) / gadget
    if not path.is_dir():
        return None, f"no gadget {gadget!r} in {root}"
    try:
        udc = (path / "UDC").read_text().strip()
    except OSError:
        udc = ""
    if not udc:
        return False, f"gadget {gadget!r} not bound to a USB device controller"
    try:
        state = (Path(udc_class) / udc / "state").read_text().strip()
    except OSError as err:
        return False, f"controller {udc}: state not readable ({err.strerror or err})"
    if state == "configured":
        return True, f"controller {udc} configured by the PC"
    return False, f"controller {udc} is {state!r}, not configured: the PC is not using it"


class GadgetBridge:
    """The relay's thread; implements `drivers.host.interface.CallHost` (start, stop).

    `status_file`: where the last status is written as JSON for `seatbox doctor` (which must
    not read the node itself: a read takes the softphone's report from the seat).
    """

    def __init__(
        self,
        hid_device: str = "auto",
        *,
        gadget: str = "seatbox",
        root: Path = CONFIGFS_ROOT,
        udc_class: Path = UDC_CLASS,
        opener: Callable[[str], int] = open_node,
        led_wait_s: float = LED_WAIT_S,
        poll: float = 0.5,
        write_timeout: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        status_file: Path | None = None,
    ) -> None:
        self.pc = HidgDevice(hid_device, gadget, root, opener=opener)
        self.gadget, self.root, self.udc_class = gadget, Path(root), Path(udc_class)
        self.monitor = BridgeMonitor(led_wait_s)
        self.reports = PcReports()
        self._reports_lock = threading.Lock()  # the headset's thread (relay) and this one (seen)
        self.poll = poll
        self.write_timeout = write_timeout
        self.clock = clock
        self.status_file = status_file
        # For `seatbox headset watch`: each report as it crosses (called on the bridge thread).
        self.on_pc_read: Callable[[bytes], None] | None = None
        self.on_pc_write: Callable[[bytes, bool], None] | None = None
        self._sink: Sink | None = None
        self._out: queue.Queue[bytes] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._logged: set[str] = set()
        self._last_led_wall: float | None = None
        # The controller's state when configfs has the gadget (None: only the node tells).
        self._udc: bool | None = None

    # --- CallHost ----------------------------------------------------------------------

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stopping.clear()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="gadget-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.pc.close()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r, self._wake_w = -1, -1
        self._sink = None

    # --- the headset side ----------------------------------------------------------------

    def relay(self, item: object) -> None:
        """A tap on the seat's inputs (any thread): the headset's requests go to the PC."""
        if isinstance(item, REQUESTS):
            with self._reports_lock:
                for report in self.reports.reports(item):
                    self._out.put(report)
            self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    # --- the thread ----------------------------------------------------------------------

    def _emit(self, item: object) -> None:
        if self._sink is not None:
            self._sink(item)

    def _run(self) -> None:
        next_poll = self.clock()
        # A node that says readable and then has nothing is not watched until the next look
        # (f_hid does not do that; a thread spinning on it would take a core).
        quiet_until = float("-inf")
        while not self._stopping.is_set():
            now = self.clock()
            if now >= next_poll:
                self._look(now)
                next_poll = now + self.poll
            fd = self.pc.fileno()
            self._report()  # before waiting: the seat knows the PC side as soon as it is known
            watch_fd = fd is not None and now >= quiet_until
            watched = [self._wake_r] + ([fd] if fd is not None and watch_fd else [])
            wake_at = min(t for t in (next_poll, self.monitor.next_check()) if t is not None)
            try:
                ready, _, _ = select.select(watched, [], [], max(0.0, wake_at - self.clock()))
            except (OSError, ValueError):
                self.pc.close()  # the node's fd went bad: reopened on the next look
                ready = []
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            if fd is not None and fd in ready and not self._read():
                quiet_until = next_poll
            self._send()
            self._report()

    def _look(self, now: float) -> None:
        """The PC's side by configfs, the node found or refound (a rebuilt gadget)."""
        state, why = udc_state(self.gadget, self.root, self.udc_class)
        self._udc = state
        auto = self.pc.hid_device == "auto" and self.pc.path is not None
        if auto and find_hidg(self.gadget, self.root) != self.pc.path:
            self.pc.close()  # the gadget was rebuilt: its node is another one
            self.pc.path = None
        fd = self.pc.fileno()
        if state is True and fd is not None:
            self.monitor.connected(now, why)
        elif state is False:
            self.monitor.disconnected(now, why)
        elif fd is None:
            self.monitor.disconnected(now, self.pc.problem)
        elif not self.monitor.pc_connected and self.monitor.detail == "not looked at yet":
            self.monitor.detail = "waiting for the PC (no controller state to read)"

    def _read(self) -> bool:
        """One report from the PC; False when the node had none after all."""
        data = self.pc.read_report()
        now = self.clock()
        if data is None:
            if self.pc.fileno() is None:
                self.monitor.disconnected(now, self.pc.problem)
                return True
            return False
        if self.on_pc_read is not None:
            self.on_pc_read(data)
        try:
            leds = parse_leds(data)
        except OutputReportError as exc:
            why = f"{exc} (got {data[:16].hex()})"
            if str(exc) not in self._logged and len(self._logged) < _LOGGED_MAX:
                self._logged.add(str(exc))
                log.warning("PC output report ignored: %s", why)
            self.monitor.malformed(now, why)
            return True
        if not self.monitor.pc_connected and self._udc is None:
            self.monitor.connected(now, "the softphone wrote an LED report")
        self.monitor.led_report(now)
        self._last_led_wall = time.time()
        self._report()  # the seat learns the softphone drives the headset before its LEDs
        host: HostLeds = leds.host()
        with self._reports_lock:
            self.reports.seen(host)
        self._emit(host)
        return True

    def _send(self) -> None:
        while True:
            try:
                report = self._out.get_nowait()
            except queue.Empty:
                return
            ok = self.pc.write_report(report, timeout=self.write_timeout)
            if self.on_pc_write is not None:
                self.on_pc_write(report, ok)
            now = self.clock()
            if ok:
                if not self.monitor.pc_connected and self._udc is None:
                    self.monitor.connected(now, "the PC took an input report")
                continue
            log.info("input report %s not sent to the PC: %s", report.hex(), self.pc.problem)
            if not self.pc.pc_connected and "not yet collected" not in self.pc.problem:
                self.monitor.disconnected(now, self.pc.problem)
                # The PC cannot take them: stale presses are not replayed later.
                while not self._out.empty():
                    with contextlib.suppress(queue.Empty):
                        self._out.get_nowait()
                return

    def _report(self) -> None:
        status = self.monitor.changed(self.clock())
        if status is None:
            return
        if status.pc_connected:
            log.info("PC side: connected (%s), LED writes %s", status.detail, status.led_writes)
        else:
            log.info("PC side: not connected: %s", status.detail)
        self._write_status(status)
        self._emit(status)

    def _write_status(self, status: BridgeStatus) -> None:
        if self.status_file is None:
            return
        record = {
            "pc_connected": status.pc_connected,
            "detail": status.detail,
            "led_writes": status.led_writes,
            "led_wait_s": status.led_wait_s,
            "bad_report": status.bad_report,
            "node": self.pc.path,
            "written": time.time(),
            "last_led": self._last_led_wall,  # Unix time of the last LED report, or None
        }
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(record) + "\n")
            os.replace(tmp, self.status_file)
        except OSError as exc:
            log.debug("bridge status not written to %s: %s", self.status_file, exc)
