"""A bounded look at a serial port for `seatbox doctor`: frames, noise, firmware version."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.radar.ld2410 import (
    PROTOCOL_VERSION,
    DataFrame,
    FrameError,
    LD2410Link,
    RadarError,
    SerialPort,
    enable_config,
    end_config,
    frame_kind,
    open_serial,
    parse_config_info,
    parse_firmware,
    read_firmware,
)

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
