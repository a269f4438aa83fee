"""The presence radar (HLK-LD2410 family): its readings in, its configuration out.

Typed inputs `RadarReport`/`RadarStatus`; real driver `LD2410Radar`; twin `VirtualRadar`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from drivers.base import Backoff, Sink
from drivers.ld2410 import (
    PROTOCOL_VERSION,
    DataFrame,
    FirmwareVersion,
    FrameError,
    LD2410Link,
    NotLD2410,
    Parameters,
    RadarError,
    SerialPort,
    enable_config,
    end_config,
    engineering,
    frame_kind,
    open_serial,
    parse_config_info,
    parse_firmware,
    read_firmware,
)

log = logging.getLogger(__name__)

Target = Literal["none", "moving", "still", "both"]


@dataclass(frozen=True, slots=True)
class RadarReport:
    """One data frame's meaning: presence comes from `target`, never from distances alone."""

    target: Target
    moving_cm: int = 0
    moving_energy: int = 0
    still_cm: int = 0
    still_energy: int = 0
    detection_cm: int = 0  # 0 on older firmware (V1.07.22091516 fills only moving_cm)
    moving_gates: tuple[int, ...] = ()  # engineering mode: energy per gate 0..8, else empty
    still_gates: tuple[int, ...] = ()

    @property
    def present(self) -> bool:
        return self.target != "none"


@dataclass(frozen=True, slots=True)
class RadarStatus:
    """The radar link: `ok=False` when no valid frame arrived for the watchdog period."""

    ok: bool
    detail: str = ""


class Radar(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...


class VirtualRadar:
    """Virtual twin: a scenario says someone is there (a still target) or not."""

    def __init__(self) -> None:
        self._sink: Sink | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        sink(RadarStatus(ok=True, detail="virtual"))

    def stop(self) -> None:
        self._sink = None

    def present(self, moving: bool = False) -> None:
        if self._sink is not None:
            if moving:  # a moving target carries its energy in the moving fields
                self._sink(RadarReport(target="moving", moving_cm=80, moving_energy=60))
            else:
                self._sink(RadarReport(target="still", still_cm=60, still_energy=60))

    def absent(self) -> None:
        if self._sink is not None:
            self._sink(RadarReport(target="none"))

    def lose(self) -> None:
        """The sensor falls silent, as the real driver's watchdog would report it."""
        if self._sink is not None:
            self._sink(RadarStatus(ok=False, detail="simulated: no frames"))


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


# --- a bounded probe (seatbox doctor) -------------------------------------------------------------

# The module reports about every 100 ms (reference: presence-ld2410.md §2): 1 s is ~10 frames.
PROBE_LISTEN_S = 1.0
# An answer takes about 10 ms (Tasmota); 30 times that keeps a whole probe near 2 s.
PROBE_ACK_TIMEOUT_S = 0.3
# Once in step with the frames, a clean line carries nothing between them; more than a few
# stray bytes (or one frame cut short) in a second is noise worth a look.
PROBE_STRAY_BYTES = 8


@dataclass(frozen=True)
class RadarProbe:
    """What one port said during `probe`: bytes, valid frames by kind, and the identification."""

    port: str
    listened_s: float
    received: int  # bytes read
    frames: dict[str, int]  # valid data frames by kind: basic / engineering
    stray: int  # bytes outside valid frames after the first one (garbage, cut frames)
    malformed: int  # frames cut short or garbled after the first valid one
    firmware: str = ""  # V1.07.22091516; "" when not read
    answered: bool = False  # it answered at least one command
    command_error: str = ""  # why identification failed ("" when it worked)
    not_ld2410: str = ""  # it answers, but as another model
    was_in_config_mode: bool = False  # it streamed only after end-config

    @property
    def data_frames(self) -> int:
        return sum(self.frames.values())

    @property
    def rate(self) -> float:
        return self.data_frames / self.listened_s if self.listened_s > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.stray > PROBE_STRAY_BYTES or self.malformed > 0


class _CountingPort:
    """A serial port that counts the bytes read through it."""

    def __init__(self, port: SerialPort) -> None:
        self._port = port
        self.received = 0

    @property
    def in_waiting(self) -> int:
        return self._port.in_waiting

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        self.received += len(data)
        return data

    def write(self, data: bytes, /) -> int | None:
        return self._port.write(data)

    def close(self) -> None:
        self._port.close()


def probe(
    port: str,
    baudrate: int = 256000,
    *,
    listen_s: float = PROBE_LISTEN_S,
    ack_timeout: float = PROBE_ACK_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> RadarProbe:
    """Listen to `port` for `listen_s`, then read the firmware version (enable-config, read,
    end-config, one try each). A port that stays silent gets one end-config first (a module
    left in configuration mode streams nothing) and, if it answers, `listen_s` more.

    Takes at most 2 * listen_s + 4 * ack_timeout. RadarError when the port does not open.
    """
    serial_port = open_serial(port, baudrate, timeout=0.05)
    flush = getattr(serial_port, "reset_input_buffer", None)
    if flush is not None:
        flush()  # what queued up before we opened says nothing about the rate now
    counting = _CountingPort(serial_port)
    link = LD2410Link(counting, name=port, ack_timeout=ack_timeout, clock=clock)
    frames: dict[str, int] = {}
    listened = 0.0
    firmware, error, other, answered, config_mode = "", "", "", False, False

    # The parser's counts when the first frame came: what it threw away before (the end of a
    # frame the port opened into) is no sign of noise.
    in_step: tuple[int, int] | None = None

    def listen() -> None:
        nonlocal listened, in_step
        start = clock()
        while clock() - start < listen_s:
            got = link.read_frames()
            if got and in_step is None:
                in_step = (link.parser.discarded, link.parser.malformed)
            for frame in got:
                if isinstance(frame, DataFrame):
                    kind = frame_kind(frame)
                    frames[kind] = frames.get(kind, 0) + 1
        listened += clock() - start

    try:
        listen()
        try:
            if not frames:
                link.command(end_config(), retries=0)
                answered = True
            info = parse_config_info(link.command(enable_config(), retries=0))
            answered = True
            try:
                if info.protocol_version != PROTOCOL_VERSION:
                    other = (
                        f"{port}: enable-config answered protocol version "
                        f"{info.protocol_version}, an LD2410/B/C answers {PROTOCOL_VERSION} "
                        "(is this an LD2420?)"
                    )
                else:
                    firmware = parse_firmware(link.command(read_firmware(), retries=0)).text
            finally:
                link.command(end_config(), retries=0)
        except (RadarError, FrameError) as exc:
            error = str(exc)
        if not frames and answered and not other:
            listen()
            config_mode = bool(frames)
    except OSError as exc:  # the port went away under us
        error = f"{port}: port error: {exc}"
    finally:
        with contextlib.suppress(OSError):
            link.close()
    return RadarProbe(
        port=port,
        listened_s=listened,
        received=counting.received,
        frames=frames,
        stray=link.parser.discarded - (in_step[0] if in_step else 0),
        malformed=link.parser.malformed - (in_step[1] if in_step else 0),
        firmware=firmware,
        answered=answered,
        command_error=error,
        not_ld2410=other,
        was_in_config_mode=config_mode,
    )
