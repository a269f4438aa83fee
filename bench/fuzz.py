"""Coverage-guided fuzzing of every parser that takes outside input (issue 12, "Fuzzing that stays").

Each parser runs in a subprocess of its own and reports: inputs run, crashes (exception types other
than the parser's declared errors), property violations, hangs (an input taking over 1 s), peak
memory, and the machine. The engine is atheris (libFuzzer, coverage-guided) where it is installed,
else hypothesis at the same budget (random and mutated seeds, not coverage-guided: the output
says so). Each crash comes with a minimal reproducer (delta debugging on the input bytes).
Record the figures in docs/benchmarks.md (Fuzzing).

    .venv/bin/python bench/fuzz.py                                  # 10^6 inputs per parser
    .venv/bin/python bench/fuzz.py --inputs 20000 --targets hid-descriptor,ld2410-stream
    .venv/bin/python bench/fuzz.py --max-seconds 1200 --json fuzz.json
    make bench FUZZ_ARGS="--inputs 20000"                           # a short run in `make bench`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import cpu_model  # noqa: E402  (bench/machine.py)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HANG_S = 1.0  # an input slower than this is a hang (issue 12)
ABORT_S = 10.0  # an input still running after this is interrupted and recorded as a hang
MEMORY_JUMP_MB = 64  # one input that raises the peak RSS by this much is recorded
DEFAULT_INPUTS = 1_000_000
MINIMIZE_RUNS = 3000  # delta-debugging runs per finding
DATA_LIMIT_BYTES = 4 << 30  # RLIMIT_DATA per child: a runaway input cannot take the machine


class Violation(Exception):
    """A parser returned, but broke a property it promises (raised by the targets below)."""


Run = Callable[[bytes], None]


@dataclass
class Harness:
    """What fuzzing one parser needs: the one-input function, the error types it declares, seed
    inputs, and tokens of its format (a libFuzzer dictionary: mutations insert them whole)."""

    run: Run
    declared: tuple[type[BaseException], ...]
    seeds: list[bytes]
    tokens: list[bytes] = field(default_factory=list)
    show: Callable[[bytes], str] = repr  # an input as the parser receives it, for reports


@dataclass
class Target:
    """A parser under fuzzing: `build()` imports it (instrumented) and returns its Harness."""

    name: str
    what: str
    max_len: int
    build: Callable[[], Harness]


# --- the targets -------------------------------------------------------------------------------
# Imports happen inside build(), so atheris instruments the parsers as they are imported.

# Tokens of the text formats. Byte-level mutation alone rarely spells a JSON escape, a deep
# nesting or a 64-bit bound (10^6 command payloads without them found none of fault 1's triggers).
JSON_TOKENS = [
    *(
        t.encode()
        for t in [
            "{",
            "}",
            "[",
            "]",
            '"',
            ":",
            ",",
            "null",
            "true",
            "false",
            "-1",
            "0.5",
            "1e999",
            "-0",
        ]
    ),
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551616",
    b'"\\ud800"',
    b'"\\udfff"',
    b'"\\u0000"',
    b"\\",
    b"[" * 64,
    b'{"a":' * 32,
    *(
        f'"{key}":'.encode()
        for key in [
            "id",
            "action",
            "call_id",
            "boot_id",
            "from_seq",
            "to_seq",
            "seq",
            "ts",
            "type",
            "data",
            "state",
            "call",
            "since",
            "presence",
            "mute",
            "muted",
            "by",
            "violations",
            "profile",
            "profile_digest",
            "total",
            "ranges",
        ]
    ),
    *(
        f'"{value}"'.encode()
        for value in [
            "ring",
            "answer",
            "hold",
            "resume",
            "end",
            "idle",
            "ringing",
            "active",
            "held",
            "away",
            "present",
            "online",
            "outbox.loss",
            "call.ringing",
            "3-1a2b3c4d",
            "2026-12-03T11:59:00.000Z",
            "2026-12-03T11:59:00",
        ]
    ),
]


class _Cursor:
    """Reads choices from fuzz bytes (zeros once they run out), like atheris' data provider."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else 0

    def number(self, size: int) -> int:
        return int.from_bytes(bytes(self.byte() for _ in range(size)), "little")


_SPECIAL_NUMBERS = ["0", "-1", "9223372036854775807", "9223372036854775808", "1e999", "-0",
                    "1" * 400, "0.5", "NaN", "Infinity", "-Infinity", "1.7976931348623157e308"]  # fmt: skip
_KEYS = ["id", "action", "call_id", "boot_id", "from_seq", "to_seq", "seq", "ts", "type", "data",
         "call", "state", "since", "presence", "mute", "muted", "by", "violations", "profile",
         "profile_digest", "total", "ranges", "x"]  # fmt: skip


def _json_string(cur: _Cursor) -> str:
    """A JSON string literal: known words, or code points from the bytes (lone surrogates,
    controls and astral ones included), escaped as \\uXXXX."""
    choice = cur.byte()
    if choice < 128:  # a quarter of these "id", the field every command and reply carries
        return json.dumps("id" if choice >= 96 else _KEYS[choice % len(_KEYS)])
    chars = []
    for _ in range(cur.byte() % 24):
        kind = cur.byte() % 5
        point = cur.number(3)
        if kind == 0:
            chars.append(chr(32 + point % 95).replace("\\", "/").replace('"', "'"))
            continue
        point = (point % 128, 0xD800 + point % 0x800, point % 32, point % 0x10000)[kind - 1]
        if kind == 4 and cur.byte() & 1:
            point = 0x10000 + point % 0x100000  # astral: a surrogate pair in JSON
        chars.append(json.dumps(chr(point))[1:-1] if point > 0xFFFF else f"\\u{point:04x}")
    return '"' + "".join(chars) + '"'


def _json_value(cur: _Cursor, depth: int = 0) -> str:
    kind = cur.byte() % (9 if depth < 8 else 5)
    if kind == 0:
        return _SPECIAL_NUMBERS[cur.byte() % len(_SPECIAL_NUMBERS)]
    if kind == 1:
        return str(cur.number(8) - (1 << 63))
    if kind == 2:
        return _json_string(cur)
    if kind == 3:
        return ("true", "false", "null")[cur.byte() % 3]
    if kind == 4:  # nesting, now and then as deep as 4000 levels (the decoder recurses in C)
        levels = cur.number(2) % 4000 if cur.byte() >= 240 else cur.byte() % 16
        return "[" * levels + _json_value(cur, 8) + "]" * levels
    if kind in (5, 6):
        items = [_json_value(cur, depth + 1) for _ in range(cur.byte() % 5)]
        return "[" + ",".join(items) + "]"
    return _json_object(cur, depth + 1)


def _json_object(cur: _Cursor, depth: int = 0) -> str:
    fields = [f"{_json_string(cur)}:{_json_value(cur, depth)}" for _ in range(cur.byte() % 7)]
    return "{" + ",".join(fields) + "}"


def json_payload(data: bytes) -> bytes:
    """Half the inputs as raw bytes, half as a JSON object built from the bytes (structure-
    aware: byte mutations alone rarely spell an escape, a deep nesting or a 64-bit bound)."""
    if not data or data[0] < 128:
        return data[1:]
    return _json_object(_Cursor(data[1:])).encode("utf-8", "surrogatepass")


TOML_TOKENS = [
    *(
        t.encode()
        for t in [
            "=",
            '"',
            "'",
            "[[",
            "]]",
            ",",
            "true",
            "false",
            "inf",
            "-inf",
            "nan",
            "1e999",
            "0",
            "-1",
        ]
    ),
    b"'" * 3,
    b'"' * 3,
    b"\n",
    b"\xef\xbb\xbf",  # UTF-8 BOM
    b"\xff\xfe",  # UTF-16 BOM
    b'"mqtts://u:secret@broker:8883"',
    b'"http://broker:99999"',
    b'"Mars/Olympus"',
    b'"30s"',
]


def _hid_files() -> list[bytes]:
    folder = REPO / "tests" / "data" / "hid"
    return [bytes.fromhex(p.read_text().strip()) for p in sorted(folder.glob("*.hex"))]


def build_hid_descriptor() -> Harness:
    from drivers.hid.descriptor import MAX_DESCRIPTOR_SIZE, DescriptorError, parse_descriptor
    from drivers.hid.events import LedState
    from drivers.hid.layout import telephony_layout
    from drivers.hid.protocol import TelephonyProtocol

    states = [LedState(off_hook=True, mute=True, ring=True, hold=True), LedState()]

    def run(data: bytes) -> None:
        desc = parse_descriptor(data)
        if len(data) > MAX_DESCRIPTOR_SIZE:
            raise Violation(f"a descriptor of {len(data)} bytes was accepted")
        layout = telephony_layout(desc)
        protocol = TelephonyProtocol(layout)
        for i, leds in enumerate(states):
            for report in protocol.led_reports(leds, now=float(i)):
                out = layout.output_reports.get(report[0])
                if out is None or len(report) != out.length:
                    raise Violation(f"LED report {report.hex()} does not match its declaration")

    return Harness(run, (DescriptorError,), _hid_files())


def build_hid_report() -> Harness:
    from drivers.hid.events import LedState
    from drivers.hid.layout import layout_from_bytes
    from drivers.hid.protocol import ReportError, TelephonyProtocol

    layouts = [layout_from_bytes(d) for d in _hid_files()]
    layouts = [lay for lay in layouts if lay.inputs]

    def run(data: bytes) -> None:
        # Byte 0 picks a real descriptor; then reports, each a length byte and its bytes.
        if not data:
            return
        protocol = TelephonyProtocol(layouts[data[0] % len(layouts)])
        pos, now = 1, 0.0
        while pos < len(data):
            length = data[pos] % 64
            report = data[pos + 1 : pos + 1 + length]
            pos += 1 + length
            now += 0.02 * (1 + length % 8)  # 20-160 ms apart: debounce and echo windows
            with contextlib.suppress(ReportError):
                protocol.on_input_report(report, now)
            protocol.led_reports(LedState(off_hook=bool(pos & 1), mute=bool(pos & 2)), now)

    seeds = []
    for i, lay in enumerate(layouts):
        for rid, length in lay.input_lengths.items():
            head = [rid] if lay.uses_report_ids else []
            for fill in (0x00, 0x01, 0xFF):
                report = (bytes(head) + bytes([fill]) * (length - 1))[:63]
                seeds.append(bytes([i, len(report)]) + report)
    return Harness(run, (ReportError,), seeds)


def build_ld2410_stream() -> Harness:
    from drivers.radar.ld2410 import (
        CMD_FOOTER,
        CMD_HEADER,
        DATA_FOOTER,
        DATA_HEADER,
        MAX_FRAME,
        Ack,
        DataFrame,
        FrameError,
        FrameParser,
        decode_frame,
        parse_config_info,
        parse_firmware,
        parse_parameters,
    )

    def wire_length(frame: object) -> int:
        if isinstance(frame, DataFrame):
            return 10 + (0x23 if frame.engineering else 0x0D)
        if isinstance(frame, Ack):
            return 14 + len(frame.data)
        return 12 + len(frame.value)  # type: ignore[attr-defined]

    def run(data: bytes) -> None:
        # The stream in chunks of 1..64 bytes (byte 0), as reads of `in_waiting` deliver it.
        parser = FrameParser()
        chunk = (data[0] % 64) + 1 if data else 1
        frames = []
        for pos in range(1, len(data), chunk):
            frames += parser.feed(data[pos : pos + chunk])
            if parser.buffered >= MAX_FRAME:
                raise Violation(f"{parser.buffered} bytes buffered after a feed")
        consumed = sum(map(wire_length, frames)) + parser.discarded + parser.buffered
        if consumed != max(0, len(data) - 1):
            raise Violation(f"{len(data) - 1} bytes fed, {consumed} accounted for")
        for frame in frames:
            if isinstance(frame, Ack):
                for reader in (parse_parameters, parse_firmware, parse_config_info):
                    with contextlib.suppress(FrameError):
                        reader(frame)
        decode_frame(data[1:])  # the whole input as one frame (`seatbox radar decode`)

    frames = json.loads((REPO / "tests/data/ld2410/frames.json").read_text())
    published = [bytes.fromhex(c["hex"]) for c in frames["data"] + frames["acks"]]
    seeds = [bytes([63]) + f for f in published] + [bytes([5]) + b"".join(published)]
    headers = [DATA_HEADER, DATA_FOOTER, CMD_HEADER, CMD_FOOTER]
    return Harness(run, (FrameError,), seeds, headers)


def build_mqtt_commands() -> Harness:
    from edge.shell.mqtt.commands import COMMANDS, CommandError, parse

    names = [*COMMANDS, "unknown"]

    def run(data: bytes) -> None:
        # Byte 0 picks the command name (the topic's last level); the rest is the payload.
        if not data:
            return
        command = parse(names[data[0] % len(names)], json_payload(data[1:]))
        # What the link does next with a valid command: echo the id in a UTF-8 reply, take
        # call ids into events, store seqs in SQLite (faults 1 and 4).
        for text in (command.request_id, getattr(command.input, "call_id", "")):
            text.encode("utf-8")
        for value in (command.args or {}).values():
            if isinstance(value, int) and not 0 <= value < 2**63:
                raise Violation(f"seq {value} does not fit SQLite's integer")

    payloads = [
        b'{"id":"r1","action":"ring","call_id":"c-1"}',
        b'{"id":"r2","action":"answer"}',
        b'{"id":"r3"}',
        b"{}",
        b'{"id":"r4","boot_id":"3-1a2b3c4d","from_seq":0,"to_seq":10}',
    ]
    # Byte 1 < 128: the payload as is; >= 128: a JSON object built from the bytes after it.
    seeds = [bytes([i, 0]) + p for i in range(len(names)) for p in payloads]
    seeds += [bytes([i, 128]) + bytes(range(i * 7, i * 7 + 64)) for i in range(len(names))]

    def show(data: bytes) -> str:
        return f"cmd/{names[data[0] % len(names)]} {json_payload(data[1:])!r}" if data else "b''"

    return Harness(run, (CommandError,), seeds, JSON_TOKENS, show)


def build_seat_config() -> Harness:
    from edge.base.errors import ConfigError
    from edge.shell.config import SeatConfig
    from edge.shell.config_check import load_seat

    folder = Path(tempfile.mkdtemp(prefix="config-", dir=Path.cwd()))
    path = folder / "seatbox.toml"

    def run(data: bytes) -> None:
        # What `seatbox run` and `seatbox config check` both call (faults 8 and 9).
        path.write_bytes(data)
        load_seat(path)

    example = (REPO / "config" / "seatbox.example.toml").read_bytes()
    seeds = [
        example,
        b'[seat]\nsite = "lab"\nid = "s1"\n',
        b'[seat]\nsite = "lab"\nid = "s1"\n[broker]\nurl = "mqtts://broker:8883"\nkeepalive = "30s"\n',
        b'[seat]\nsite = "lab"\nid = "s1"\n[storage]\noutbox_budget_mb = 64\n[radar]\nbackend = "ld2410"\n',
    ]
    # Section and key names from the schema itself, so the dictionary follows the config.
    tokens = [*TOML_TOKENS]
    for section, info in SeatConfig.model_fields.items():
        tokens.append(f"[{section}]\n".encode())
        for key in getattr(info.annotation, "model_fields", {}):
            tokens.append(f"{key} = ".encode())
    return Harness(run, (ConfigError,), seeds, tokens)


def build_floor_consumer() -> Harness:
    # What `seatbox floor` does with a message: FloorModel.apply(topic, payload, now) (which
    # marks a seat whose payload fails the schemas), then render(); the parse functions raise
    # only StreamError.
    from datetime import UTC, datetime

    from edge.api.models import StreamError, parse_event
    from floor.model import FloorModel
    from floor.view import render

    leaves = ["event", "state", "info", "availability"]
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def run(data: bytes) -> None:
        # Byte 0: the topic's last level and the seat; the rest is the payload.
        if not data:
            return
        leaf = leaves[data[0] % len(leaves)]
        payload = json_payload(data[1:])
        if leaf == "event":
            with contextlib.suppress(StreamError):
                parse_event(payload)
        model = FloorModel(site="lab")
        model.apply(f"seatbox/v1/lab/s{data[0] // 8 % 4}/{leaf}", payload, now=1.0)
        model.resends(now=30.0)
        render(model, now=now)

    event = b'{"boot_id":"3-1a2b3c4d","seq":4,"ts":"2026-12-03T11:59:00.000Z","type":"call.ringing","data":{"call_id":"c1"}}'
    loss = b'{"boot_id":"3-1a2b3c4d","seq":9,"ts":"2026-12-03T11:59:00.000Z","type":"outbox.loss","data":{"total":3,"ranges":[{"boot_id":"3-1a2b3c4d","from_seq":5,"to_seq":7}]}}'
    state = (
        b'{"call":{"state":"held","since":"2026-12-03T11:50:00.000Z"},'
        b'"presence":{"state":"away","since":"2026-12-03T11:40:00.000Z"},'
        b'"mute":{"muted":true,"by":"hold_policy"},'
        b'"violations":[{"type":"hold.long","since":"2026-12-03T11:55:00.000Z"}]}'
    )
    info = b'{"profile":"default","profile_digest":"0123456789ab"}'
    seeds = [
        bytes([0, 0]) + event,
        bytes([0, 0]) + loss,
        bytes([1, 0]) + state,
        bytes([2, 0]) + info,
        bytes([3, 0]) + b"online",
    ]
    seeds += [bytes([i, 128]) + bytes(range(i * 7, i * 7 + 64)) for i in range(len(leaves))]

    def show(data: bytes) -> str:
        return f"{leaves[data[0] % len(leaves)]} {json_payload(data[1:])!r}" if data else "b''"

    return Harness(run, (StreamError,), seeds, JSON_TOKENS, show)


TARGETS = {
    t.name: t
    for t in (
        Target(
            "hid-descriptor",
            "drivers.hid: parse_descriptor + telephony_layout + LED reports",
            4200,
            build_hid_descriptor,
        ),
        Target(
            "hid-report",
            "drivers.hid: input reports on the 18 real descriptors",
            1024,
            build_hid_report,
        ),
        Target(
            "ld2410-stream",
            "drivers.radar.ld2410: FrameParser.feed in chunks, decode_frame",
            4096,
            build_ld2410_stream,
        ),
        Target(
            "mqtt-commands",
            "edge.shell.mqtt.commands.parse(name, payload)",
            4096,
            build_mqtt_commands,
        ),
        Target(
            "seat-config",
            "edge.shell.config_check.load_seat on a file (check and run)",
            8192,
            build_seat_config,
        ),
        Target(
            "floor-consumer",
            "floor.model.FloorModel.apply + render, edge.api.models parsers",
            4096,
            build_floor_consumer,
        ),
    )
}


# --- the child: one target, one engine ---------------------------------------------------------


@dataclass
class Finding:
    kind: str  # crash, violation, hang, memory
    type: str
    where: str
    message: str
    count: int = 0
    input_hex: str = ""  # the smallest input seen (crash/violation: minimized at the end)
    input_len: int = 0
    shown: str = ""  # the input as the parser received it (command name and payload...)
    first_at: int = 0  # input number of the first occurrence
    seconds: float = 0.0  # hangs: the slowest time


@dataclass
class Result:
    target: str
    engine: str
    inputs: int = 0
    seconds: float = 0.0
    rss_setup_mb: float = 0.0
    rss_peak_mb: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    stalls: int = 0  # inputs over HANG_S once but not when timed again (machine, not parser)
    done: bool = False
    note: str = ""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _where(tb: types.TracebackType | None) -> str:
    """The innermost frame in the project (not this bench), else the innermost frame."""
    frames = traceback.extract_tb(tb)
    here = str(Path(__file__).resolve())
    ours = [f for f in frames if f.filename.startswith(str(REPO)) and f.filename != here]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    try:
        name = str(Path(frame.filename).relative_to(REPO))
    except ValueError:
        name = frame.filename
    return f"{name}:{frame.lineno} in {frame.name}"


class Recorder:
    def __init__(self, target: Target, engine: str, limit: int, max_seconds: float, out: Path):
        self.target = target
        self.limit = limit
        self.out = out
        harness = target.build()
        self.run, self.declared = harness.run, harness.declared
        self.seeds, self.tokens, self.show = harness.seeds, harness.tokens, harness.show
        self.current: float | None = None  # start of the input being run
        self.aborted = False
        threading.Thread(target=self._watchdog, daemon=True).start()
        # Warm up, not counted: first calls import lazily and build caches (pydantic's
        # validators took 4.9 s on the first config), which is not the parser's cost per input.
        for seed in self.seeds:
            self.current = time.perf_counter()
            self.classify(seed)
            self.current = None
        self.result = Result(target.name, engine)
        self.findings: dict[tuple[str, str, str], Finding] = {}
        self.hung: dict[bytes, tuple[str, str, str]] = {}
        self.max_seconds = max_seconds
        self.started = self.deadline = self.last_save = 0.0  # set at the first input

    def _watchdog(self) -> None:
        import _thread

        while True:
            time.sleep(0.25)
            start = self.current
            if start is not None and time.perf_counter() - start > ABORT_S and not self.aborted:
                self.aborted = True
                _thread.interrupt_main()

    def classify(self, data: bytes) -> tuple[str, str, str, str] | None:
        """(kind, type, where, message) of what `data` does, None when it is fine."""
        try:
            self.run(data)
        except self.declared:
            return None
        except Violation as exc:
            return ("violation", "Violation", _where(exc.__traceback__), str(exc))
        except KeyboardInterrupt:
            if not self.aborted:
                raise
            self.aborted = False
            return ("hang", "interrupted", "", f"still running after {ABORT_S:g} s")
        except BaseException as exc:  # anything undeclared is what we look for
            return ("crash", type(exc).__name__, _where(exc.__traceback__), str(exc)[:300])
        return None

    def one(self, data: bytes) -> None:
        if not self.result.inputs:  # the engine is set up now (libFuzzer's tables too)
            self.started = self.last_save = time.perf_counter()
            self.deadline = self.started + self.max_seconds
            self.result.rss_setup_mb = _rss_mb()
        self.result.inputs += 1
        if data in self.hung:  # seeds come back often: do not wait for a known hang again
            self.findings[self.hung[data]].count += 1
            return
        rss_before = _rss_mb()
        start = self.current = time.perf_counter()
        outcome = self.classify(data)
        self.current = None
        elapsed = time.perf_counter() - start
        if outcome is not None:
            self._add(outcome, data, elapsed)
        if elapsed > HANG_S and (outcome is None or outcome[0] != "hang"):
            # On a shared machine a stall of the process can make any input slow once: a hang
            # is an input slow again when timed twice more (the stalls are counted apart).
            again = min(self._timed(data), self._timed(data))
            if again > HANG_S:
                self._add(("hang", "slow", "", f"took {again:.2f} s"), data, again)
            else:
                self.result.stalls += 1
        if _rss_mb() - rss_before > MEMORY_JUMP_MB:
            jump = _rss_mb() - rss_before
            self._add(("memory", "rss", "", f"peak RSS +{jump:.0f} MB"), data, elapsed)
        now = time.perf_counter()
        if self.result.inputs >= self.limit or now > self.deadline:
            self.finish(now)
        if now - self.last_save > 5:
            self.last_save = now
            self.save(now)

    def _timed(self, data: bytes) -> float:
        start = self.current = time.perf_counter()
        self.classify(data)
        self.current = None
        return time.perf_counter() - start

    def _add(self, outcome: tuple[str, str, str, str], data: bytes, elapsed: float) -> None:
        kind, type_, where, message = outcome
        key = (kind, type_, where)
        finding = self.findings.get(key)
        if finding is None:
            finding = self.findings[key] = Finding(
                kind, type_, where, message, first_at=self.result.inputs, input_len=len(data)
            )
            finding.input_hex = data.hex()
            print(f"[{self.target.name}] new {kind}: {type_} at {where}: {message}", flush=True)
        finding.count += 1
        finding.seconds = max(finding.seconds, elapsed)
        if kind == "hang" and len(self.hung) < 1000:
            self.hung[data] = key
        if len(data) < finding.input_len:
            finding.input_hex, finding.input_len = data.hex(), len(data)
            finding.message = message

    def minimize(self, finding: Finding) -> None:
        """Delta debugging (ddmin): drop chunks while the same failure still happens."""
        key = (finding.kind, finding.type, finding.where)
        data = bytes.fromhex(finding.input_hex)
        runs = 0

        def same(candidate: bytes) -> bool:
            nonlocal runs
            runs += 1
            outcome = self.classify(candidate)
            return outcome is not None and outcome[:3] == key

        parts = 2
        while len(data) >= 2 and runs < MINIMIZE_RUNS:
            size = -(-len(data) // parts)
            for start in range(0, len(data), size):
                candidate = data[:start] + data[start + size :]
                if same(candidate):
                    data, parts = candidate, max(parts - 1, 2)
                    break
            else:
                if parts >= len(data):
                    break
                parts = min(len(data), parts * 2)
        finding.input_hex, finding.input_len = data.hex(), len(data)

    def save(self, now: float, done: bool = False) -> None:
        for finding in self.findings.values():
            try:
                finding.shown = self.show(bytes.fromhex(finding.input_hex))[:600]
            except Exception as exc:  # the view is a convenience; never lose the result to it
                finding.shown = f"(cannot show: {exc!r})"
        self.result.seconds = now - self.started
        self.result.rss_peak_mb = _rss_mb()
        self.result.findings = sorted(self.findings.values(), key=lambda f: f.first_at)
        self.result.done = done
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.result)))
        tmp.replace(self.out)

    def finish(self, now: float) -> None:
        self.save(now)  # the figures of the run itself, before minimizing
        for finding in self.findings.values():
            if finding.kind in ("crash", "violation"):
                self.minimize(finding)
        self.save(now, done=True)
        sys.stdout.flush()
        os._exit(0)  # libFuzzer would otherwise keep going; nothing else to clean up


def _dict_escape(token: bytes) -> str:
    """A libFuzzer dictionary entry: printable ASCII as is, the rest as \\xNN."""
    return "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02x}" for b in token)


def run_atheris(target: Target, limit: int, max_seconds: float, out: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["drivers", "edge", "tomllib"]):
        recorder = Recorder(target, "atheris", limit, max_seconds, out)
    corpus = Path(tempfile.mkdtemp(prefix=f"corpus-{target.name}-", dir=Path.cwd()))
    for i, seed in enumerate(recorder.seeds):
        (corpus / f"seed{i:03d}").write_bytes(seed)
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_len={target.max_len}",
        "-rss_limit_mb=4096",
        "-timeout=60",  # the watchdog interrupts at ABORT_S first
        "-print_final_stats=1",
    ]
    if recorder.tokens:
        dictionary = corpus.with_suffix(".dict")
        dictionary.write_text("".join(f'"{_dict_escape(t)}"\n' for t in recorder.tokens))
        # Text formats: long inputs (deep nesting) from the start, not after a plateau.
        argv += [f"-dict={dictionary}", "-len_control=0"]
    atheris.Setup(argv, recorder.one)
    atheris.Fuzz()


def run_hypothesis(target: Target, limit: int, max_seconds: float, out: Path) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    recorder = Recorder(target, "hypothesis (atheris not installed)", limit, max_seconds, out)
    seeds = recorder.seeds

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["set", "insert", "delete", "cut", "splice", "token"]))
            if op == "set" and pos < len(data):
                data[pos] = draw(st.integers(0, 255))
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete":
                del data[pos : pos + draw(st.integers(1, 16))]
            elif op == "token" and recorder.tokens:
                data[pos:pos] = draw(st.sampled_from(recorder.tokens)) * draw(st.integers(1, 20))
            elif op == "cut":
                del data[pos:]
            elif op == "splice":
                other = draw(st.sampled_from(seeds))
                data[pos:] = other[draw(st.integers(0, len(other))) :]
        return bytes(data[: target.max_len])

    @settings(
        max_examples=limit + 1,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(mutated(), st.binary(max_size=target.max_len)))
    def fuzz(data: bytes) -> None:
        recorder.one(data)

    fuzz()
    recorder.finish(time.perf_counter())


def child(name: str, engine: str, limit: int, max_seconds: float, out: Path) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT_BYTES, DATA_LIMIT_BYTES))
    # The parsers log what they drop (mute-lock warnings...): at 10^6 inputs the logging, not
    # the parsing, would be measured.
    logging.disable(logging.CRITICAL)
    target = TARGETS[name]
    if engine == "atheris":
        run_atheris(target, limit, max_seconds, out)
    else:
        run_hypothesis(target, limit, max_seconds, out)


# --- the parent: one subprocess per target, the table ----------------------------------------


def engine_available() -> str:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "hypothesis"
    return "atheris"


def version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(package)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "system": f"{uname.system} {uname.release} {uname.machine}",
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "atheris": version("atheris"),
        "hypothesis": version("hypothesis"),
    }


def run_target(name: str, engine: str, limit: int, max_seconds: float, work: Path) -> Result:
    out = work / f"{name}.json"
    log = work / f"{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    command += ["--engine", engine, "--inputs", str(limit), "--max-seconds", str(max_seconds)]
    command += ["--result", str(out)]
    with log.open("wb") as log_file:
        proc = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=work, check=False,
        )  # fmt: skip
    if not out.exists():
        tail = log.read_text(errors="replace")[-2000:]
        return Result(
            name, engine, note=f"child exited {proc.returncode} before any result: {tail}"
        )
    raw = json.loads(out.read_text())
    raw["findings"] = [Finding(**f) for f in raw["findings"]]
    result = Result(**raw)
    if not result.done:
        tail = log.read_text(errors="replace")[-600:].strip().replace("\n", " | ")
        result.note = f"child exited {proc.returncode} mid-run; figures up to its last save. {tail}"
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(f"[{name}] new "):
            print("   ", line)
    return result


def reproducer(finding: Finding, limit: int = 240) -> str:
    data = bytes.fromhex(finding.input_hex)
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + f"... ({len(data)} bytes)"


def report(results: list[Result], info: dict[str, Any]) -> None:
    print()
    print(f"machine: {info['system']}; CPU: {info['cpu']} ({info['cpus']} cores), load at start "
          f"{info['load_at_start'][0]:.1f}; python {info['python']}")  # fmt: skip
    print(f"atheris {info['atheris']}, hypothesis {info['hypothesis']}")
    head = f"{'parser':<16} {'engine':<10} {'inputs':>9} {'inputs/s':>9} {'crashes':>7} "
    print(head + f"{'violations':>10} {'hangs':>5} {'stalls':>6} {'peak MB':>8} {'+MB':>6}")
    for r in results:
        kinds = [f.kind for f in r.findings]
        rate = r.inputs / r.seconds if r.seconds else 0.0
        print(
            f"{r.target:<16} {r.engine.split()[0]:<10} {r.inputs:>9,} {rate:>9,.0f} "
            f"{kinds.count('crash'):>7} {kinds.count('violation'):>10} {kinds.count('hang'):>5} "
            f"{r.stalls:>6} {r.rss_peak_mb:>8.0f} {r.rss_peak_mb - r.rss_setup_mb:>6.0f}"
        )
    if any(not r.engine.startswith("atheris") for r in results):
        print("note: hypothesis engine: random and mutated seeds, NOT coverage-guided")
    print("(stalls: inputs over 1 s once, fast when timed twice more: the machine, not the parser)")
    print("(crashes/violations/hangs count distinct failures: type and innermost project frame;"
          " peak MB = the child's peak RSS, +MB = its growth after the first input)")  # fmt: skip
    for r in results:
        if r.note:
            print(f"\n{r.target}: {r.note}")
        for f in r.findings:
            print(f"\n{r.target}: {f.kind} {f.type} at {f.where or '-'} ({f.count}x, first at "
                  f"input {f.first_at:,}): {f.message}")  # fmt: skip
            print(f"    reproducer ({f.input_len} bytes): {reproducer(f)}")
            if f.shown and f.shown != repr(bytes.fromhex(f.input_hex)):
                print(f"    as the parser got it: {f.shown[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="per parser (10^6)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"of {', '.join(TARGETS)}")
    parser.add_argument("--max-seconds", type=float, default=float("inf"),
                        help="stop a parser after this long (inputs run so far are reported)")  # fmt: skip
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--json", type=Path, help="write the results and the machine here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    engine = engine_available() if args.engine == "auto" else args.engine
    if args.child:
        child(args.child, engine, args.inputs, args.max_seconds, args.result)
        return
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}: expected some of {list(TARGETS)}")
    info = machine()
    print(f"fuzzing {len(names)} parsers, {args.inputs:,} inputs each, engine {engine}"
          + ("" if engine == "atheris" else " (atheris not installed: NOT coverage-guided)"))  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="seatbox-fuzz-") as work:
        for name in names:
            print(f"== {name}: {TARGETS[name].what}", flush=True)
            results.append(run_target(name, engine, args.inputs, args.max_seconds, Path(work)))
    report(results, info)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=1)
        )


if __name__ == "__main__":
    main()
