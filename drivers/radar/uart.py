"""The real presence radar: an HLK-LD2410/B/C on a serial port, read by a thread.

`LD2410Radar` implements `drivers.radar.interface.Radar`; pyserial loads when a port is opened.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import Backoff, Sink
from drivers.radar.events import RadarReport, RadarStatus, Target
from drivers.radar.ld2410 import (
    DataFrame,
    FirmwareVersion,
    FrameError,
    LD2410Link,
    NotLD2410,
    Parameters,
    RadarError,
    engineering,
    open_serial,
)

log = logging.getLogger(__name__)


def report_from_frame(frame: DataFrame) -> RadarReport:
    """The seat's view of a data frame: the target-state byte decides presence."""
    target: Target = frame.target  # type: ignore[assignment]
    return RadarReport(
        target=target,
        moving_cm=frame.moving_cm,
        moving_energy=frame.moving_energy,
        still_cm=frame.still_cm,
        still_energy=frame.still_energy,
        detection_cm=frame.detection_cm,
        moving_gates=frame.moving_gates,
        still_gates=frame.still_gates,
    )


@dataclass(frozen=True, slots=True)
class RadarInfo:
    """What the driver learnt at the last (re)open: for the seat's `info` inventory."""

    port: str
    firmware: str = ""
    parameters: Parameters | None = None


@dataclass
class Watchdog:
    """No valid data frame for `period` seconds means the sensor is lost (time is an argument)."""

    period: float
    last_frame: float = 0.0

    def arm(self, now: float) -> None:
        self.last_frame = now

    def expired(self, now: float) -> bool:
        return now - self.last_frame > self.period


@dataclass
class ReportThrottle:
    """Reports to the seat: at once when the target changes, else the latest every `interval`.

    The module streams ~10 frames/s; the seat queue needs changes plus a steady heartbeat.
    """

    interval: float
    _sent: RadarReport | None = None
    _sent_at: float = 0.0
    _latest: RadarReport | None = None

    def offer(self, report: RadarReport, now: float) -> RadarReport | None:
        self._latest = report
        if self._sent is None or report.target != self._sent.target:
            return self._send(report, now)
        return self.due(now)

    def due(self, now: float) -> RadarReport | None:
        if (
            self._latest is not None
            and self._latest is not self._sent
            and now - self._sent_at >= self.interval
        ):
            return self._send(self._latest, now)
        return None

    def reset(self) -> None:
        self._sent = None
        self._latest = None

    def _send(self, report: RadarReport, now: float) -> RadarReport:
        self._sent = report
        self._sent_at = now
        return report


class LD2410Radar:
    """The real HLK-LD2410/B/C on a serial port (UART pins or a USB-serial adapter).

    `start(sink)` returns at once; a reader thread opens the port, ends configuration mode
    (a module can be left in it), reads firmware and parameters, optionally turns engineering
    mode on, then streams. To the sink it hands:
    - `RadarReport` when the target changes, and otherwise the latest one every
      `report_interval` s (calibration frames, states 04..06, are not handed on);
    - `RadarStatus(ok=True, detail=...)` on the first valid frame after start or after a loss;
    - `RadarStatus(ok=False, detail=...)` once per loss: no valid frame for `watchdog` s, a port
      error, a port that cannot be opened, or a device that is not an LD2410.
    After a loss it reopens the port with back-off (`backoff` s doubling to `backoff_max`).
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 256000,
        *,
        watchdog: float = 2.0,
        report_interval: float = 1.0,
        engineering_mode: bool = False,
        ack_timeout: float = 0.5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        read_timeout: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.engineering_mode = engineering_mode
        self.ack_timeout = ack_timeout
        self.read_timeout = read_timeout
        self.clock = clock
        self._watchdog = Watchdog(watchdog)
        self._throttle = ReportThrottle(report_interval)
        self._backoff = Backoff(backoff, backoff_max)
        self._sink: Sink | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ok: bool | None = None
        self._info = RadarInfo(port)

    # --- Radar protocol ------------------------------------------------------------------

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            raise RuntimeError("LD2410Radar already started")
        self._sink = sink
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"ld2410 {self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        self._sink = None

    def info(self) -> RadarInfo:
        return self._info

    # --- reader thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            link: LD2410Link | None = None
            try:
                link = LD2410Link(
                    open_serial(self.port, self.baudrate, self.read_timeout),
                    name=self.port,
                    ack_timeout=self.ack_timeout,
                    clock=self.clock,
                )
                self._handshake(link)
                self._stream(link)
            except NotLD2410 as exc:
                self._lost(str(exc))
            except RadarError as exc:
                self._lost(str(exc))
            except OSError as exc:  # pyserial's SerialException is an OSError (IOError)
                self._lost(f"{self.port}: port error: {exc}")
            except Exception as exc:  # never let the reader thread die: report and retry
                log.exception("radar %s: unexpected error", self.port)
                self._lost(f"{self.port}: unexpected error: {exc!r}")
            finally:
                if link is not None:
                    _close_quietly(link)
            if not self._stop.is_set():
                self._pause(self._backoff.next_delay())

    def _handshake(self, link: LD2410Link) -> None:
        """End a configuration mode left behind, identify the module, set engineering mode."""
        try:
            link.end_configuration()
            with link.configuration():
                firmware: FirmwareVersion = link.read_firmware()
                parameters = link.read_parameters()
                if self.engineering_mode:
                    link.command(engineering(True))
            self._info = RadarInfo(self.port, firmware.text, parameters)
            log.info(
                "radar %s: LD2410 firmware %s, max gates %d/%d, no-one duration %d s",
                self.port,
                firmware.text,
                parameters.max_moving_gate,
                parameters.max_still_gate,
                parameters.no_one_duration_s,
            )
        except NotLD2410:
            raise
        except (RadarError, FrameError) as exc:
            # A module that streams but does not answer commands is still a presence sensor;
            # the watchdog decides whether it is alive.
            log.warning("radar %s: configuration at start-up failed: %s", self.port, exc)

    def _stream(self, link: LD2410Link) -> None:
        self._watchdog.arm(self.clock())
        self._throttle.reset()
        while not self._stop.is_set():
            frames = link.read_reports()
            now = self.clock()
            for frame in frames:
                self._watchdog.arm(now)
                if self._ok is not True:
                    self._ok = True
                    self._backoff.reset()
                    self._emit(RadarStatus(ok=True, detail=f"{self.port}: frames arriving"))
                if frame.calibration:
                    continue
                report = self._throttle.offer(report_from_frame(frame), now)
                if report is not None:
                    self._emit(report)
            due = self._throttle.due(now)
            if due is not None:
                self._emit(due)
            if self._watchdog.expired(now):
                self._lost(
                    f"{self.port}: no valid frame for {self._watchdog.period:g} s "
                    f"(power, wiring, or a frozen module: power-cycle it)"
                )
                return

    def _lost(self, detail: str) -> None:
        log.warning("radar lost: %s", detail)
        if self._ok is not False:
            self._ok = False
            self._emit(RadarStatus(ok=False, detail=detail))

    def _emit(self, item: object) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink(item)
        except Exception:  # the seat's problem must not stop the radar or reopen its port
            log.exception("radar %s: the sink failed on %r", self.port, item)

    def _pause(self, seconds: float) -> None:
        """Wait `seconds` on the driver's clock, waking for stop (short real waits)."""
        until = self.clock() + seconds
        while not self._stop.is_set() and self.clock() < until:
            self._stop.wait(min(self.read_timeout, max(0.0, until - self.clock())))


def _close_quietly(link: LD2410Link) -> None:
    with contextlib.suppress(OSError):
        link.close()
