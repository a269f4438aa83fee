"""The HLK-LD2410 / LD2410B / LD2410C UART protocol: frames, commands, ACKs, stream parser.

Pure bytes in and out (no I/O) except `LD2410Link`, which runs commands over a serial port.
"""

from __future__ import annotations

import re
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from drivers.errors import DeviceError, ParseError

# Framing, vendor protocol V1.07 §2.1 / §2.3 (reference §3). All fields little-endian, no checksum.
DATA_HEADER = b"\xf4\xf3\xf2\xf1"
DATA_FOOTER = b"\xf8\xf7\xf6\xf5"
CMD_HEADER = b"\xfd\xfc\xfb\xfa"
CMD_FOOTER = b"\x04\x03\x02\x01"
HEADERS = (DATA_HEADER, CMD_HEADER)
# The module's buffer is 64 bytes (enable-config ACK), Tasmota rejects frames over 64 bytes:
# a length field above 64 - 10 framing bytes is a false header.
MAX_FRAME = 64
MAX_LENGTH = MAX_FRAME - 10

FRAME_BASIC = 0x02
FRAME_ENGINEERING = 0x01
DATA_HEAD = 0xAA  # data byte 1 (frame offset 7)
DATA_TAIL = b"\x55\x00"  # tail + check byte before the footer
BASIC_LENGTH = 0x0D
ENGINEERING_LENGTH = 0x23
MAX_GATE = 8  # gates 0..8 at 0.75 m (or 0.2 m) per gate
MAX_ENERGY = 100  # energies and sensitivities are 0..100 (V1.07 tables 13, 15)
ACK_BIT = 0x0100  # ACK command word = command word | 0x0100

# Target state byte (V1.07 table 12). 0x04..0x06 exist only while background-noise
# calibration (0x000B) runs; they are states of the procedure, not bit flags.
TARGET_STATES: dict[int, str] = {0: "none", 1: "moving", 2: "still", 3: "both"}
CALIBRATION_STATES: dict[int, str] = {4: "noise_detection", 5: "succeeded", 6: "failed"}

# Command words (V1.07 §2.2).
CMD_ENABLE_CONFIG = 0x00FF
CMD_END_CONFIG = 0x00FE
CMD_SET_MAX_GATES = 0x0060
CMD_READ_PARAMETERS = 0x0061
CMD_ENGINEERING_ON = 0x0062
CMD_ENGINEERING_OFF = 0x0063
CMD_GATE_SENSITIVITY = 0x0064
CMD_READ_FIRMWARE = 0x00A0
CMD_SET_BAUD = 0x00A1
CMD_FACTORY_RESET = 0x00A2
CMD_RESTART = 0x00A3
COMMAND_NAMES: dict[int, str] = {
    CMD_ENABLE_CONFIG: "enable_config",
    CMD_END_CONFIG: "end_config",
    CMD_SET_MAX_GATES: "set_max_gates",
    CMD_READ_PARAMETERS: "read_parameters",
    CMD_ENGINEERING_ON: "engineering_on",
    CMD_ENGINEERING_OFF: "engineering_off",
    CMD_GATE_SENSITIVITY: "gate_sensitivity",
    CMD_READ_FIRMWARE: "read_firmware",
    CMD_SET_BAUD: "set_baud",
    CMD_FACTORY_RESET: "factory_reset",
    CMD_RESTART: "restart",
    0x00A4: "bluetooth",
    0x00A5: "read_mac",
    0x00AA: "set_resolution",
    0x00AB: "read_resolution",
    0x00AD: "set_light_control",
    0x00AE: "read_light_control",
    0x000B: "start_calibration",
    0x001B: "query_calibration",
}
ALL_GATES = 0xFFFF  # 0x0064 gate word: every gate at once
PROTOCOL_VERSION = 1  # enable-config ACK of the LD2410 family; the LD2420 answers 2


def command_name(word: int) -> str:
    return COMMAND_NAMES.get(word, f"0x{word:04X}")


class FrameError(ParseError):
    """A frame is malformed: `offset` is the byte where it went wrong, `expected` what should be."""

    def __init__(self, offset: int, expected: str, got: str = "") -> None:
        self.offset = offset
        self.expected = expected
        self.got = got
        text = f"byte {offset}: expected {expected}"
        super().__init__(f"{text}, got {got}" if got else text)


# --- frame objects ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A report frame as the module sent it (basic or engineering); fields named as in V1.07."""

    engineering: bool
    target_state: int
    moving_cm: int
    moving_energy: int
    still_cm: int
    still_energy: int
    detection_cm: int
    moving_gates: tuple[int, ...] = ()  # engineering: energy per gate 0..N
    still_gates: tuple[int, ...] = ()
    light: int | None = None  # engineering, V1.06+: light sensor 0..255
    out_pin: int | None = None  # engineering, V1.06+: OUT pin level

    @property
    def target(self) -> str:
        """none / moving / still / both; calibration states count as none (room must be empty)."""
        return TARGET_STATES.get(self.target_state, "none")

    @property
    def calibration(self) -> str:
        return CALIBRATION_STATES.get(self.target_state, "")


@dataclass(frozen=True, slots=True)
class Ack:
    """A module's answer: the command word it answers, status 0 = success, and return data."""

    command: int
    status: int
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == 0


@dataclass(frozen=True, slots=True)
class Command:
    """A host command: word and value bytes (length = 2 + len(value))."""

    command: int
    value: bytes = b""

    def encode(self) -> bytes:
        body = struct.pack("<H", self.command) + self.value
        return CMD_HEADER + struct.pack("<H", len(body)) + body + CMD_FOOTER


Frame = DataFrame | Ack | Command


@dataclass(frozen=True, slots=True)
class Parameters:
    """Read-parameters (0x0061) return data."""

    max_gate: int
    max_moving_gate: int
    max_still_gate: int
    moving_sensitivity: tuple[int, ...]
    still_sensitivity: tuple[int, ...]
    no_one_duration_s: int

    def to_dict(self) -> dict[str, object]:
        return {
            "max_gate": self.max_gate,
            "max_moving_gate": self.max_moving_gate,
            "max_still_gate": self.max_still_gate,
            "moving_sensitivity": list(self.moving_sensitivity),
            "still_sensitivity": list(self.still_sensitivity),
            "no_one_duration_s": self.no_one_duration_s,
        }


@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """Read-firmware (0x00A0) return data: type u16, major u16, minor u32."""

    type: int
    major: int
    minor: int

    @property
    def text(self) -> str:
        # Printed as V<major high>.<major low, 2 hex>.<minor, 8 hex> (Tasmota, aio-ld2410).
        return f"V{self.major >> 8}.{self.major & 0xFF:02x}.{self.minor:08x}"


@dataclass(frozen=True, slots=True)
class ConfigInfo:
    """Enable-config (0x00FF) return data."""

    protocol_version: int
    buffer_size: int


# --- decoding --------------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def decode_frame(frame: bytes) -> Frame:
    """Decode exactly one frame; raise FrameError naming the byte offset and the expectation."""
    if len(frame) < 4:
        raise FrameError(len(frame), "4 header bytes F4 F3 F2 F1 or FD FC FB FA", "end of data")
    head = bytes(frame[:4])
    if head not in HEADERS:
        like = DATA_HEADER if head[0] == 0xF4 else CMD_HEADER
        for i, (a, b) in enumerate(zip(head, like, strict=True)):
            if a != b:
                raise FrameError(
                    i, "header F4 F3 F2 F1 (data) or FD FC FB FA (command/ACK)", f"{_hex(head)}"
                )
    if len(frame) < 6:
        raise FrameError(len(frame), "a 2-byte length after the header", "end of data")
    (length,) = struct.unpack_from("<H", frame, 4)
    if length > MAX_LENGTH:
        raise FrameError(4, f"length <= {MAX_LENGTH}", str(length))
    total = 10 + length
    if len(frame) < total:
        raise FrameError(len(frame), f"{total} bytes for length {length}", f"{len(frame)} bytes")
    footer = DATA_FOOTER if head == DATA_HEADER else CMD_FOOTER
    got_footer = bytes(frame[total - 4 : total])
    if got_footer != footer:
        bad = next(i for i in range(4) if got_footer[i] != footer[i])
        raise FrameError(total - 4 + bad, f"footer {_hex(footer)}", _hex(got_footer))
    if len(frame) > total:
        raise FrameError(total, f"end of frame after {total} bytes", f"{len(frame) - total} more")
    body = bytes(frame[6 : total - 4])
    if head == DATA_HEADER:
        return _decode_data(body)
    return _decode_command(body)


def _decode_data(body: bytes) -> DataFrame:
    # Offsets in errors are frame offsets: the body starts at byte 6.
    kind = body[0] if body else -1
    if kind not in (FRAME_BASIC, FRAME_ENGINEERING):
        raise FrameError(6, "data type 01 (engineering) or 02 (basic)", f"{kind:02X}")
    expected_len = BASIC_LENGTH if kind == FRAME_BASIC else ENGINEERING_LENGTH
    if len(body) != expected_len:
        name = "basic" if kind == FRAME_BASIC else "engineering"
        raise FrameError(4, f"length {expected_len} for a {name} frame", str(len(body)))
    if body[1] != DATA_HEAD:
        raise FrameError(7, "AA (data head)", f"{body[1]:02X}")
    if body[-2:] != DATA_TAIL:
        raise FrameError(6 + len(body) - 2, "55 00 (data tail)", _hex(body[-2:]))
    state = body[2]
    if state not in TARGET_STATES and state not in CALIBRATION_STATES:
        raise FrameError(8, "target state 00..06", f"{state:02X}")
    moving_cm, moving_energy, still_cm, still_energy, detection_cm = struct.unpack_from(
        "<HBHBH", body, 3
    )
    for offset, energy in ((11, moving_energy), (14, still_energy)):
        if energy > MAX_ENERGY:
            raise FrameError(offset, f"energy 0..{MAX_ENERGY}", str(energy))
    if kind == FRAME_BASIC:
        return DataFrame(
            False, state, moving_cm, moving_energy, still_cm, still_energy, detection_cm
        )
    max_moving, max_still = body[11], body[12]
    for offset, gate in ((17, max_moving), (18, max_still)):
        if gate > MAX_GATE:
            raise FrameError(offset, f"max gate 0..{MAX_GATE}", str(gate))
    gates = body[13:31]  # 9 moving then 9 still energies (frame offsets 19..36)
    for i, energy in enumerate(gates):
        if energy > MAX_ENERGY:
            raise FrameError(19 + i, f"gate energy 0..{MAX_ENERGY}", str(energy))
    return DataFrame(
        True,
        state,
        moving_cm,
        moving_energy,
        still_cm,
        still_energy,
        detection_cm,
        moving_gates=tuple(gates[:9]),
        still_gates=tuple(gates[9:18]),
        light=body[31],
        out_pin=body[32],
    )


def _decode_command(body: bytes) -> Ack | Command:
    if len(body) < 2:
        raise FrameError(6, "a 2-byte command word", f"{len(body)} bytes")
    (word,) = struct.unpack_from("<H", body, 0)
    if not word & ACK_BIT:
        return Command(word, body[2:])
    if len(body) < 4:
        raise FrameError(8, "a 2-byte ACK status", f"{len(body) - 2} bytes")
    (status,) = struct.unpack_from("<H", body, 2)
    if status > 1:
        raise FrameError(8, "ACK status 0 (success) or 1 (failure)", str(status))
    return Ack(word & ~ACK_BIT, status, body[4:])


def parse_parameters(ack: Ack) -> Parameters:
    """Read-parameters return data: AA, N, moving N, still N, N+1 + N+1 sensitivities, u16 s."""
    data = ack.data
    if len(data) < 4 or data[0] != DATA_HEAD:
        raise FrameError(10, "AA then max gate, moving gate, still gate", _hex(data[:4]))
    max_gate = data[1]
    if max_gate > MAX_GATE:
        raise FrameError(11, f"max gate 0..{MAX_GATE}", str(max_gate))
    n = max_gate + 1
    if len(data) != 4 + 2 * n + 2:
        raise FrameError(10, f"{4 + 2 * n + 2} bytes of parameters", f"{len(data)}")
    (duration,) = struct.unpack_from("<H", data, 4 + 2 * n)
    return Parameters(
        max_gate=max_gate,
        max_moving_gate=data[2],
        max_still_gate=data[3],
        moving_sensitivity=tuple(data[4 : 4 + n]),
        still_sensitivity=tuple(data[4 + n : 4 + 2 * n]),
        no_one_duration_s=duration,
    )


def parse_firmware(ack: Ack) -> FirmwareVersion:
    if len(ack.data) != 8:
        raise FrameError(10, "8 bytes: type u16, major u16, minor u32", f"{len(ack.data)} bytes")
    kind, major, minor = struct.unpack("<HHI", ack.data)
    return FirmwareVersion(kind, major, minor)


def parse_config_info(ack: Ack) -> ConfigInfo:
    # The LD2420 answers with the protocol version only (frames.md 4.1): keep it readable so
    # the identification can say what the device is instead of "malformed".
    if len(ack.data) not in (2, 4):
        raise FrameError(10, "protocol version u16 and buffer size u16", f"{len(ack.data)} bytes")
    (version,) = struct.unpack_from("<H", ack.data)
    size = struct.unpack_from("<H", ack.data, 2)[0] if len(ack.data) == 4 else 0
    return ConfigInfo(version, size)


# --- encoding --------------------------------------------------------------------------------


def encode_data(frame: DataFrame) -> bytes:
    """The bytes a module sends for this report (used by the emulator and the tests)."""
    body = bytes([FRAME_ENGINEERING if frame.engineering else FRAME_BASIC, DATA_HEAD])
    body += struct.pack(
        "<BHBHBH",
        frame.target_state,
        frame.moving_cm,
        frame.moving_energy,
        frame.still_cm,
        frame.still_energy,
        frame.detection_cm,
    )
    if frame.engineering:
        moving = (tuple(frame.moving_gates) + (0,) * 9)[:9]
        still = (tuple(frame.still_gates) + (0,) * 9)[:9]
        body += bytes([MAX_GATE, MAX_GATE, *moving, *still])
        body += bytes([frame.light or 0, frame.out_pin or 0])
    body += DATA_TAIL
    return DATA_HEADER + struct.pack("<H", len(body)) + body + DATA_FOOTER


def encode_ack(command: int, status: int = 0, data: bytes = b"") -> bytes:
    body = struct.pack("<HH", command | ACK_BIT, status) + data
    return CMD_HEADER + struct.pack("<H", len(body)) + body + CMD_FOOTER


def _words(*pairs: tuple[int, int]) -> bytes:
    # 0x0060 / 0x0064 values: (parameter word u16, value u32) pairs.
    return b"".join(struct.pack("<HI", word, value) for word, value in pairs)


def enable_config() -> Command:
    return Command(CMD_ENABLE_CONFIG, b"\x01\x00")


def end_config() -> Command:
    return Command(CMD_END_CONFIG)


def read_parameters() -> Command:
    return Command(CMD_READ_PARAMETERS)


def read_firmware() -> Command:
    return Command(CMD_READ_FIRMWARE)


def engineering(on: bool) -> Command:
    return Command(CMD_ENGINEERING_ON if on else CMD_ENGINEERING_OFF)


def restart() -> Command:
    return Command(CMD_RESTART)


def factory_reset() -> Command:
    return Command(CMD_FACTORY_RESET)


def set_max_gates(moving: int, still: int, no_one_duration_s: int) -> Command:
    """0x0060: max moving gate, max still gate (2..8) and no-one duration (0..65535 s)."""
    for name, gate in (("max moving gate", moving), ("max still gate", still)):
        if not 2 <= gate <= MAX_GATE:
            raise ValueError(f"{name}: expected 2..{MAX_GATE}, got {gate}")
    if not 0 <= no_one_duration_s <= 0xFFFF:
        raise ValueError(f"no-one duration: expected 0..65535 s, got {no_one_duration_s}")
    return Command(CMD_SET_MAX_GATES, _words((0, moving), (1, still), (2, no_one_duration_s)))


def set_gate_sensitivity(gate: int, moving: int, still: int) -> Command:
    """0x0064: one gate (0..8) or ALL_GATES; moving and still sensitivity 0..100."""
    if gate != ALL_GATES and not 0 <= gate <= MAX_GATE:
        raise ValueError(f"gate: expected 0..{MAX_GATE} or all, got {gate}")
    for name, value in (("moving sensitivity", moving), ("still sensitivity", still)):
        if not 0 <= value <= MAX_ENERGY:
            raise ValueError(f"{name}: expected 0..{MAX_ENERGY}, got {value}")
    return Command(CMD_GATE_SENSITIVITY, _words((0, gate), (1, moving), (2, still)))


# --- stream parser ---------------------------------------------------------------------------


# One search for either header that stops at the first: two `find`s each scanned to the end
# of the buffer when their header was missing, quadratic over a read full of false headers.
_ANY_HEADER = re.compile(b"|".join(re.escape(h) for h in HEADERS))


def _first_header(buf: bytearray, start: int = 0, end: int | None = None) -> int:
    hit = _ANY_HEADER.search(buf, start, len(buf) if end is None else end)
    return hit.start() if hit else -1


@dataclass
class FrameParser:
    """Frames out of a byte stream that may start mid-frame, carry garbage or lose bytes.

    Recipe (reference §3): find a header, read the length, wait for the whole frame, check it;
    on a mismatch drop one byte and search again. A header inside a candidate's span means the
    candidate was truncated (valid frames never contain one: energies are <= 100), so the
    parser skips to it at once instead of waiting for bytes that belong to the next frame.
    """

    discarded: int = 0  # bytes thrown away (garbage, truncated or malformed frames)
    malformed: int = 0  # complete candidates that failed to decode
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        while True:
            start = _first_header(buf)
            if start < 0:
                keep = 3  # the tail may be the start of a header
                self._drop(max(0, len(buf) - keep))
                break
            self._drop(start)
            if len(buf) < 6:
                break
            length = buf[4] | buf[5] << 8
            if length > MAX_LENGTH:
                self._drop(1)
                continue
            total = 10 + length
            inner = _first_header(buf, 1, min(total, len(buf)))
            if inner > 0:
                self.malformed += 1
                self._drop(inner)
                continue
            if len(buf) < total:
                break
            try:
                frames.append(decode_frame(bytes(buf[:total])))
            except FrameError:
                self.malformed += 1
                self._drop(1)
                continue
            del buf[:total]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes waiting for the rest of their frame (always fewer than MAX_FRAME)."""
        return len(self._buf)

    def _drop(self, count: int) -> None:
        if count:
            del self._buf[:count]
            self.discarded += count


def split_frames(stream: bytes) -> list[Frame]:
    return FrameParser().feed(stream)


# --- commands over a serial port -------------------------------------------------------------


class SerialPort(Protocol):
    """What LD2410Link needs of a pyserial `Serial`."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class RadarError(DeviceError):
    """Talking to the radar failed; the message says what and what to check."""


class CommandTimeout(RadarError):
    pass


class CommandFailed(RadarError):
    pass


class NotLD2410(RadarError):
    """The device answers, but not as an LD2410/B/C (e.g. an LD2420 or LD2450)."""


ACK_TIMEOUT_S = 1.0  # a response takes ~10 ms (Tasmota); 1 s covers a busy module
RESTART_SETTLE_S = 1.0  # Tasmota: wait >= 1000 ms after a restart before sending commands


def open_serial(port: str, baudrate: int = 256000, timeout: float = 0.05) -> SerialPort:
    """Open the radar's port 8N1, exclusively (a second reader would steal frames)."""
    import serial

    try:
        return serial.Serial(port, baudrate=baudrate, timeout=timeout, exclusive=True)  # type: ignore[no-any-return]
    except (serial.SerialException, OSError, ValueError) as exc:
        hint = ""
        if "exclusively lock" in str(exc):
            hint = " (another program holds it: stop the seatbox service before using the tools)"
        raise RadarError(f"cannot open {port} at {baudrate} baud: {exc}{hint}") from None


class LD2410Link:
    """Commands with their ACKs and a timeout over one open port; data frames are kept aside.

    Not thread-safe: one thread owns the link (the driver's reader, or a CLI command).
    """

    def __init__(
        self,
        port: SerialPort,
        *,
        name: str = "radar",
        ack_timeout: float = ACK_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.name = name
        self.ack_timeout = ack_timeout
        self.clock = clock
        self.parser = FrameParser()
        self.reports: deque[DataFrame] = deque(maxlen=64)  # data frames seen while waiting
        self.sent: list[bytes] = []

    def read_frames(self) -> list[Frame]:
        """Whatever arrived (waits at most the port's read timeout for the first byte)."""
        data = self.port.read(max(1, self.port.in_waiting))
        return self.parser.feed(data) if data else []

    def read_reports(self) -> list[DataFrame]:
        frames = list(self.reports)
        self.reports.clear()
        frames += [f for f in self.read_frames() if isinstance(f, DataFrame)]
        return frames

    def command(self, cmd: Command, *, retries: int = 1) -> Ack:
        """Send `cmd` and wait for its ACK; retry on silence; CommandFailed on status 1."""
        name = command_name(cmd.command)
        for _attempt in range(retries + 1):
            data = cmd.encode()
            self.port.write(data)
            self.sent.append(data)
            deadline = self.clock() + self.ack_timeout
            while self.clock() < deadline:
                for frame in self.read_frames():
                    if isinstance(frame, DataFrame):
                        self.reports.append(frame)
                    elif isinstance(frame, Ack) and frame.command == cmd.command:
                        if not frame.ok:
                            raise CommandFailed(f"{self.name}: the radar refused {name} (status 1)")
                        return frame
        raise CommandTimeout(
            f"{self.name}: no answer to {name} within {self.ack_timeout:g} s "
            f"(check power, TX/RX crossed, baud rate)"
        )

    def end_configuration(self) -> Ack:
        return self.command(end_config())

    def begin_configuration(self) -> ConfigInfo:
        info = parse_config_info(self.command(enable_config()))
        if info.protocol_version != PROTOCOL_VERSION:
            raise NotLD2410(
                f"{self.name}: enable-config answered protocol version {info.protocol_version}, "
                f"an LD2410/B/C answers {PROTOCOL_VERSION} (is this an LD2420?)"
            )
        return info

    @contextmanager
    def configuration(self) -> Iterator[ConfigInfo]:
        """Enable-config ... end-config around commands; end-config even when one fails."""
        info = self.begin_configuration()
        try:
            yield info
        finally:
            self.end_configuration()

    def read_firmware(self) -> FirmwareVersion:
        return parse_firmware(self.command(read_firmware()))

    def read_parameters(self) -> Parameters:
        return parse_parameters(self.command(read_parameters()))

    def close(self) -> None:
        self.port.close()


Kind = Literal["basic", "engineering", "ack", "command"]


def frame_kind(frame: Frame) -> Kind:
    if isinstance(frame, DataFrame):
        return "engineering" if frame.engineering else "basic"
    return "ack" if isinstance(frame, Ack) else "command"
