"""An HLK-LD2410 on the other end of a serial line: streams frames and answers commands.

Used by the tests over a pseudo-terminal pair, and by hand: `python -m drivers.radar.ld2410_emulator`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import signal
import struct
import sys
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass, replace

from drivers.radar.ld2410 import (
    ALL_GATES,
    CMD_ENABLE_CONFIG,
    CMD_END_CONFIG,
    CMD_ENGINEERING_OFF,
    CMD_ENGINEERING_ON,
    CMD_FACTORY_RESET,
    CMD_GATE_SENSITIVITY,
    CMD_READ_FIRMWARE,
    CMD_READ_PARAMETERS,
    CMD_RESTART,
    CMD_SET_MAX_GATES,
    DATA_HEAD,
    MAX_ENERGY,
    MAX_GATE,
    Command,
    DataFrame,
    FrameParser,
    encode_ack,
    encode_data,
)

# Factory defaults (Tasmota's read-parameters ACK from a factory unit, frames.md §1.3).
DEFAULT_MOVING_SENSITIVITY = (50, 50, 40, 30, 20, 15, 15, 15, 15)
DEFAULT_STILL_SENSITIVITY = (0, 0, 40, 40, 30, 30, 20, 20, 20)
DEFAULT_NO_ONE_DURATION_S = 5
# Firmware V1.07.22091516, type 0x0100 (Tasmota's capture, frames.md §1.3).
DEFAULT_FIRMWARE = (0x0100, 0x0107, 0x22091516)
TARGETS = {"none": 0, "moving": 1, "still": 2, "both": 3}


@dataclass(frozen=True)
class Settings:
    """The module's persistent parameters (survive restart, reset by factory reset)."""

    max_moving_gate: int = MAX_GATE
    max_still_gate: int = MAX_GATE
    no_one_duration_s: int = DEFAULT_NO_ONE_DURATION_S
    moving_sensitivity: tuple[int, ...] = DEFAULT_MOVING_SENSITIVITY
    still_sensitivity: tuple[int, ...] = DEFAULT_STILL_SENSITIVITY


class LD2410Emulator:
    """The module's side of the protocol on a file descriptor (a pty master or a serial port).

    Streams a data frame every `period` s unless silent or in configuration mode; answers
    commands only inside enable-config ... end-config (a real module drops them otherwise).
    """

    def __init__(
        self,
        fd: int,
        *,
        period: float = 0.1,
        stuck_config: bool = False,
        silent: bool = False,
        garbage: bool = False,
        engineering: bool = False,
        firmware: tuple[int, int, int] = DEFAULT_FIRMWARE,
        restart_s: float = 1.0,
        protocol_version: int = 1,
        seed: int | None = None,
    ) -> None:
        self.fd = fd
        self.period = period
        self.config_mode = stuck_config
        self.silent = silent
        self.garbage = garbage
        self.engineering = engineering
        self.firmware = firmware
        self.restart_s = restart_s
        self.protocol_version = protocol_version  # 2 plays an LD2420 answering enable-config
        self.settings = Settings()
        self.received: list[Command] = []  # every command, in order, for tests to check
        self.frames_sent = 0
        self._report = DataFrame(False, 0, 0, 0, 0, 0, 0)
        self._parser = FrameParser()
        self._random = random.Random(seed)
        self._pending_reset = False
        self._asleep_until = 0.0
        # Reentrant: the signal handlers of `main` set the target on the thread that may be
        # inside `_send_report` holding this lock.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        os.set_blocking(fd, False)

    # --- control -------------------------------------------------------------------------

    def set_target(
        self,
        target: str,
        moving_cm: int = 0,
        moving_energy: int = 0,
        still_cm: int = 0,
        still_energy: int = 0,
        detection_cm: int = 0,
    ) -> None:
        with self._lock:
            self._report = DataFrame(
                False,
                TARGETS[target],
                moving_cm,
                moving_energy,
                still_cm,
                still_energy,
                detection_cm,
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ld2410-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the module ----------------------------------------------------------------------

    def run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, min(next_frame - time.monotonic(), 0.05))
            try:
                readable, _, _ = select.select([self.fd], [], [], timeout)
            except (OSError, ValueError):
                return
            if readable:
                try:
                    data = os.read(self.fd, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    data = b""  # pty without a slave open: EIO until someone opens it
                for frame in self._parser.feed(data):
                    if isinstance(frame, Command):
                        self._answer(frame)
            now = time.monotonic()
            if now >= next_frame:
                next_frame = now + self.period
                if now >= self._asleep_until and not self.silent and not self.config_mode:
                    self._send_report()

    def _send_report(self) -> None:
        with self._lock:
            frame = self._report
        if self.engineering:
            frame = replace(
                frame,
                engineering=True,
                moving_gates=self._gates(frame.moving_energy),
                still_gates=self._gates(frame.still_energy),
                light=96,
                out_pin=1 if frame.target_state else 0,
            )
        data = encode_data(frame)
        if self.garbage:
            noise = bytes(self._random.randrange(256) for _ in range(self._random.randrange(1, 8)))
            cut = self._random.randrange(len(data))
            # Garbage before the frame, and now and then a frame cut short (lost bytes).
            data = noise + (data[:cut] + noise if self._random.random() < 0.2 else data)
        self._write(data)
        self.frames_sent += 1

    def _gates(self, energy: int) -> tuple[int, ...]:
        # A plausible profile: the target's energy near gate 1, falling off with distance.
        return tuple(max(0, energy - 12 * abs(gate - 1)) for gate in range(MAX_GATE + 1))

    def _answer(self, cmd: Command) -> None:
        self.received.append(cmd)
        if self.silent or time.monotonic() < self._asleep_until:
            return
        word = cmd.command
        if word == CMD_ENABLE_CONFIG:
            self.config_mode = True
            self._write(encode_ack(word, 0, struct.pack("<HH", self.protocol_version, 64)))
            return
        if word == CMD_END_CONFIG:
            self.config_mode = False
            self._write(encode_ack(word))
            return
        if not self.config_mode:
            return  # dropped in silence outside configuration mode (ncmreynolds/ld2410#16)
        status, data = self._execute(cmd)
        self._write(encode_ack(word, status, data))
        if word == CMD_RESTART and status == 0:
            self._restart()

    def _execute(self, cmd: Command) -> tuple[int, bytes]:
        s = self.settings
        word, value = cmd.command, cmd.value
        if word == CMD_READ_FIRMWARE:
            return 0, struct.pack("<HHI", *self.firmware)
        if word == CMD_READ_PARAMETERS:
            data = bytes([DATA_HEAD, MAX_GATE, s.max_moving_gate, s.max_still_gate])
            data += bytes(s.moving_sensitivity) + bytes(s.still_sensitivity)
            return 0, data + struct.pack("<H", s.no_one_duration_s)
        if word in (CMD_ENGINEERING_ON, CMD_ENGINEERING_OFF):
            self.engineering = word == CMD_ENGINEERING_ON
            return 0, b""
        if word == CMD_SET_MAX_GATES:
            words = _words(value)
            if words is None or set(words) != {0, 1, 2}:
                return 1, b""
            if not (2 <= words[0] <= MAX_GATE and 2 <= words[1] <= MAX_GATE):
                return 1, b""
            if words[2] > 0xFFFF:
                return 1, b""
            self.settings = replace(
                s, max_moving_gate=words[0], max_still_gate=words[1], no_one_duration_s=words[2]
            )
            return 0, b""
        if word == CMD_GATE_SENSITIVITY:
            words = _words(value)
            if words is None or set(words) != {0, 1, 2}:
                return 1, b""
            gate, moving, still = words[0], words[1], words[2]
            if moving > MAX_ENERGY or still > MAX_ENERGY:
                return 1, b""
            gates = range(MAX_GATE + 1) if gate == ALL_GATES else [gate]
            if gate != ALL_GATES and gate > MAX_GATE:
                return 1, b""
            mov, sti = list(s.moving_sensitivity), list(s.still_sensitivity)
            for g in gates:
                mov[g], sti[g] = moving, still
            self.settings = replace(s, moving_sensitivity=tuple(mov), still_sensitivity=tuple(sti))
            return 0, b""
        if word == CMD_FACTORY_RESET:
            self._pending_reset = True  # takes effect after restart (V1.07 §2.2.11)
            return 0, b""
        if word == CMD_RESTART:
            return 0, b""
        return 1, b""

    def _restart(self) -> None:
        self.config_mode = False
        self.engineering = False  # engineering mode is off after power-on
        if self._pending_reset:
            self.settings = Settings()
            self._pending_reset = False
        self._asleep_until = time.monotonic() + self.restart_s

    def _write(self, data: bytes) -> None:
        # Nobody reading (buffer full) or the line is gone: a module does not care.
        with contextlib.suppress(OSError):
            os.write(self.fd, data)


def _words(value: bytes) -> dict[int, int] | None:
    if len(value) % 6:
        return None
    return {w: v for w, v in (struct.unpack_from("<HI", value, i) for i in range(0, len(value), 6))}


def open_pty(link: str | None = None) -> tuple[int, int, str]:
    """A raw pty pair (master, slave fd, slave path); the slave path optionally linked at `link`.

    Raw before anyone opens the slave, so the line discipline never echoes or translates bytes.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    if link:
        tmp = f"{link}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(path, tmp)
        os.replace(tmp, link)  # atomic: a reader sees the old or the new pty, never nothing
    return master, slave, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drivers.radar.ld2410_emulator",
        description="Emulate an HLK-LD2410 on a serial device or on a new pseudo-terminal.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device to speak on (e.g. a USB-serial adapter)")
    where.add_argument("--pty", metavar="LINK", help="create a pty; link its slave path at LINK")
    parser.add_argument("--baudrate", type=int, default=256000)
    parser.add_argument("--period", type=float, default=0.1, help="seconds between frames")
    parser.add_argument(
        "--target",
        choices=sorted(TARGETS),
        default="still",
        help="target at start (SIGUSR2 toggles between it and none)",
    )
    parser.add_argument("--silent", action="store_true", help="send nothing (SIGUSR1 toggles)")
    parser.add_argument("--stuck-config", action="store_true", help="start in config mode")
    parser.add_argument("--garbage", action="store_true", help="noise and cut frames")
    parser.add_argument("--engineering", action="store_true", help="start in engineering mode")
    args = parser.parse_args(argv)

    keep: object = None
    if args.pty:
        fd, slave, path = open_pty(args.pty)
        keep = slave  # holding the slave keeps the pty raw and the master free of EIO
        where_text = f"{path} (linked at {args.pty})"
    else:
        import serial

        try:
            port = serial.Serial(args.port, baudrate=args.baudrate, timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            print(f"emulator: cannot open {args.port}: {exc}", file=sys.stderr)
            return 2
        keep = port
        fd = port.fileno()
        where_text = args.port
    emulator = LD2410Emulator(
        fd,
        period=args.period,
        stuck_config=args.stuck_config,
        silent=args.silent,
        garbage=args.garbage,
        engineering=args.engineering,
    )
    someone = args.target if args.target != "none" else "still"
    shown = [args.target]

    def show(target: str) -> None:
        distance = {"none": 0, "moving": 80, "still": 60, "both": 70}[target]
        energy = 0 if target == "none" else 60
        emulator.set_target(target, distance, energy, distance, energy)
        shown[0] = target

    def toggle_silent(_signum: int, _frame: object) -> None:
        emulator.silent = not emulator.silent

    def toggle_target(_signum: int, _frame: object) -> None:
        show(someone if shown[0] == "none" else "none")

    show(args.target)
    signal.signal(signal.SIGUSR1, toggle_silent)
    signal.signal(signal.SIGUSR2, toggle_target)
    signal.signal(signal.SIGTERM, lambda _s, _f: emulator._stop.set())
    print(f"emulator: LD2410 on {where_text}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.run()
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
