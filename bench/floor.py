"""The floor service at 1,000-10,000 seats on one local Mosquitto (issue 15's benchmark).

N seats are simulated by ONE light publisher process (raw sockets: one MQTT connection per
seat with its will, as real seats connect, but no paho and no seatbox process per seat) that
speaks the topic tree of `edge.api.topics` with `state`, `info`, `event` and `levels` payloads
valid against docs/schemas/ at the rates stated under ASSUMPTIONS. The floor service runs in a
process of its own exactly as `seatbox floor serve` runs it (`floor.web.serve`: ingest, live
floor, batched store writer, FastAPI on uvicorn), with a probe listener added after the live
floor and the store's batch writes timed; browsers are SSE clients of
`GET /api/v1/floor/stream` with a manager token.

Measured per seat count, in one run:
- staleness from publish (the payload's `ts`, the seat's wall clock at publish, ms) to the
  floor model (wall time when the model has applied it) and to the store, p50/p99;
- to an SSE client: wall time the client reads a seat change in a
  `diff` minus the `since` of that change (the publisher sets each part's `since` to its
  publish time), p50/p99;
- CPU (% of one core) and RSS of Mosquitto, the service and the publisher (/proc);
- time to a full floor after a service restart (new process, same persistent session): exec
  until all N seats' retained `state` are in the model (and in the store);
- broker CPU and message rate with 0 and 50 browsers: SSE clients of the service (the broker
  sees one subscription) and, for comparison, 50 clients subscribed to the broker directly
  (as a page talking MQTT over WebSockets would be).

Targets (issue 15, this 2-core machine): 10,000 seats with p99 staleness < 1 s; a full floor
within 10 s of a restart; broker load independent of the number of browsers.

Run: .venv/bin/python bench/floor.py [--seats 1000,5000,10000] [--window 20] [--browsers 50]
[--direct 50] [--max-queued 20000] [--profile DIR] (`--strict`: exit 1 when a target fails).
About 1.5-3 min per seat count.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from machine import cpu_s, describe, rss_mb  # noqa: E402  (bench/machine.py)

SITE = "bench"
STALENESS_P99_S = 1.0
RESTART_S = 10.0
BROKER_SAME_PCT = 20.0  # broker CPU and message rate with 50 browsers vs none: within this
BROKER_SAME_ABS_PCT = 3.0  # ... or within this many points of a core (noise on a quiet broker)

# --- the seats' behaviour -----------------------------------------------------------------
# A seat cycles idle -> ringing -> active [-> held -> active] -> idle, sometimes away while
# idle. Means chosen from shared/norms.md and reference/floor.md ("~0.05 state changes/s per
# seat"; the brief: "a state change every ~30-60 s per seat"): one cycle is ~130 s.
IDLE_MEAN_S = 25.0  # between calls, wrap-up included (exponential, at least 3 s)
RING_S = (2.0, 8.0)  # uniform; over 3 rings (~9 s) is late: ~10 % answer.late
TALK_MEAN_S = 80.0  # exponential, + 10 s
HOLD_SHARE = 0.3  # calls with a hold
HOLD_S = (20.0, 60.0)  # uniform
AWAY_SHARE = 0.04  # idle periods that end in a break
AWAY_MEAN_S = 240.0
SPEECH_SHARE = 0.2  # calls ending with a speech.* event
LEVELS_PERIOD_S = 1.0  # levels once a second during a call (QoS 0)
KEEPALIVE_S = 60
# Mean time in each phase over a cycle (the weights of a seat's phase at birth).
PHASES = {
    "idle": IDLE_MEAN_S,
    "away": AWAY_SHARE * AWAY_MEAN_S,
    "ringing": sum(RING_S) / 2,
    "active": 10 + TALK_MEAN_S,
    "held": HOLD_SHARE * sum(HOLD_S) / 2,
}
ASSUMPTIONS = (
    f"per seat: idle exp({IDLE_MEAN_S:.0f} s) -> ringing {RING_S[0]:.0f}-{RING_S[1]:.0f} s -> "
    f"talk 10 s + exp({TALK_MEAN_S:.0f} s), {HOLD_SHARE:.0%} of calls held "
    f"{HOLD_S[0]:.0f}-{HOLD_S[1]:.0f} s (mute by hold_policy), {AWAY_SHARE:.0%} of idle periods "
    f"end in a break of exp({AWAY_MEAN_S:.0f} s); expected per seat: a state every ~37 s, an "
    "event every ~29 s (~4.5 a call), levels 1/s during calls (~77 % of the time); QoS 1 "
    "retained state/info/availability, QoS 1 events, QoS 0 levels; one MQTT connection per "
    f"seat, keepalive {KEEPALIVE_S} s, will `offline`"
)


def wall(t: float) -> str:
    """Seat wall clock as the schemas want it (UTC, milliseconds, 'Z')."""
    seconds = int(t)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int((t - seconds) * 1000):03d}Z"
    )


# --- MQTT 3.1.1 packets by hand (the publisher and the direct "browsers") -----------------


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, will_topic: str | None, keepalive: int) -> bytes:
    flags = 0x02  # clean session (a seat publishes; it does not need a session)
    payload = _str(client_id)
    if will_topic:
        flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retained
        payload += _str(will_topic) + _str(b"offline")
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, retain: bool, pid: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", pid)
    body += payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + _length(len(body)) + body


def subscribe_packet(pid: int, filters: Sequence[str], qos: int) -> bytes:
    body = struct.pack("!H", pid) + b"".join(_str(f) + bytes([qos]) for f in filters)
    return b"\x82" + _length(len(body)) + body


# --- the publisher (role "publisher") -----------------------------------------------------


class SimSeat:
    __slots__ = ("idx", "id", "sock", "pid", "seq", "call", "phase", "state", "base", "held_s")

    def __init__(self, idx: int, sock: socket.socket) -> None:
        self.idx = idx
        self.id = f"S{idx:05d}"
        self.sock = sock
        self.pid = 0
        self.seq = 0
        self.call = 0
        self.phase = "idle"
        self.base = f"seatbox/v1/{SITE}/{self.id}/"
        self.held_s = 0.0
        self.state: dict[str, Any] = {}


class Publisher:
    def __init__(self, port: int, seats: int, seed: int) -> None:
        self.port = port
        self.rng = random.Random(seed)
        self.n = seats
        self.seats: list[SimSeat] = []
        self.sel = selectors.DefaultSelector()
        self.heap: list[tuple[float, int]] = []
        self.sent = {"state": 0, "event": 0, "levels": 0, "availability": 0, "info": 0}
        self.lags: list[float] = []
        self.running = True
        self.boot = f"1-{self.rng.getrandbits(32):08x}"

    # packets
    def _send(self, seat: SimSeat, leaf: str, payload: bytes, qos: int, retain: bool) -> None:
        seat.pid = seat.pid % 65535 + 1
        seat.sock.sendall(
            publish_packet((seat.base + leaf).encode(), payload, qos, retain, seat.pid)
        )
        self.sent[leaf] += 1

    def _state(self, seat: SimSeat, now_wall: float) -> None:
        seat.state["ts"] = wall(now_wall)
        self._send(seat, "state", json.dumps(seat.state, separators=(",", ":")).encode(), 1, True)

    def _event(self, seat: SimSeat, kind: str, data: dict[str, Any], now_wall: float) -> None:
        body = {
            "boot_id": self.boot,
            "seq": seat.seq,
            "ts": wall(now_wall),
            "type": kind,
            "data": data,
        }
        seat.seq += 1
        self._send(seat, "event", json.dumps(body, separators=(",", ":")).encode(), 1, False)

    def birth(self, seat: SimSeat, now_wall: float) -> None:
        """A seat starting in a phase drawn by the share of time seats spend in it (no
        warm-up: the traffic is steady from the first second)."""
        since = wall(now_wall - self.rng.uniform(0, 60))
        seat.phase = self.rng.choices(list(PHASES), weights=list(PHASES.values()))[0]
        seat.call = 1 if seat.phase in ("ringing", "active", "held") else 0
        call_state = {"idle": "idle", "away": "idle", "ringing": "ringing"}.get(
            seat.phase, seat.phase
        )
        if seat.phase == "held":
            seat.held_s = -self.rng.uniform(*HOLD_S)
        seat.state = {
            "site": SITE,
            "seat": seat.id,
            "ts": "",
            "call": {
                "state": call_state,
                "since": since,
                "source": None if call_state == "idle" else "headset",
                "direction": None if call_state == "idle" else "inbound",
                "number": seat.call,
            },
            "hook": {"off_hook": seat.phase in ("active", "held"), "since": since},
            "mute": {
                "muted": seat.phase == "held",
                "by": "hold_policy" if seat.phase == "held" else None,
                "since": since,
            },
            "presence": {
                "state": "away" if seat.phase == "away" else "present",
                "since": since,
                "last_seen": since,
            },
            "headset": {"connected": True, "since": since, "product": "Jabra Evolve2 40"},
            "radar": {"ok": True, "target": "still", "since": since},
            "audio": {"ok": True, "since": since},
            "shift": {"phase": "on", "since": since},
            "rx_cap_db": None,
            "violations": [],
            "today": {
                "answer": {"answered": 0, "late": 0, "mean_answer_s": None},
                "attendance": {
                    "arrived": since,
                    "late_min": 0.0,
                    "absent": False,
                    "early_leave_min": 0.0,
                },
                "away": {"away_count": 0, "away_min": 0.0},
                "hearing": {"lex_8h_dba": 62.5, "dose_pct": 3.1},
            },
            "storage": {"outbox": "ok", "held": 0, "since": since},
        }
        info = {
            "version": "0.9.0",
            "boot_id": self.boot,
            "site": SITE,
            "seat": seat.id,
            "profile": "default",
            "profile_digest": "cc444f490f3d",
            "config_digest": "0123456789ab",
            "headset": {
                "manufacturer": "GN Audio",
                "product": "Jabra Evolve2 40",
                "serial": f"SN{seat.idx:08d}",
                "firmware": "1.19.0",
                "vendor_id": "0b0e",
                "product_id": "24b8",
                "usb_path": "1-1.2:1.3",
                "telephony": True,
            },
            "devices": {"radar": "LD2410", "audio": "ALSA", "host": None},
        }
        self._send(seat, "availability", b"online", 1, True)
        self._send(seat, "info", json.dumps(info, separators=(",", ":")).encode(), 1, True)
        self._state(seat, now_wall)

    def connect_all(self) -> float:
        start = time.monotonic()
        batch = 250
        for first in range(0, self.n, batch):
            group: list[SimSeat] = []
            for idx in range(first, min(first + batch, self.n)):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                seat = SimSeat(idx, sock)
                sock.sendall(connect_packet(seat.id, seat.base + "availability", KEEPALIVE_S))
                group.append(seat)
            for seat in group:
                ack = b""
                while len(ack) < 4:
                    chunk = seat.sock.recv(4 - len(ack))
                    if not chunk:
                        raise RuntimeError(f"broker closed the connection of {seat.id}")
                    ack += chunk
                if ack != b"\x20\x02\x00\x00":
                    raise RuntimeError(f"CONNACK for {seat.id}: {ack!r}")
                seat.sock.settimeout(None)
                self.birth(seat, time.time())
                self.sel.register(seat.sock, selectors.EVENT_READ, seat)
                self.seats.append(seat)
            self.drain()
        now = time.monotonic()
        for seat in self.seats:  # each seat's first move: within its phase's mean duration
            heapq.heappush(self.heap, (now + self.rng.uniform(0, PHASES[seat.phase]), seat.idx))
        return time.monotonic() - start

    def drain(self) -> None:
        for key, _ in self.sel.select(0):
            try:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                raise RuntimeError(f"broker closed the connection of {key.data.id}")

    def transition(self, seat: SimSeat, now: float) -> float:
        """The seat's next move; returns how long until the one after."""
        rng, t, st = self.rng, time.time(), seat.state
        since = wall(t)
        if seat.phase == "idle":
            if rng.random() < AWAY_SHARE:
                seat.phase = "away"
                st["presence"] = {"state": "away", "since": since, "last_seen": since}
                st["today"]["away"]["away_count"] += 1
                self._state(seat, t)
                self._event(seat, "presence.away", {"last_seen": since}, t)
                return rng.expovariate(1 / AWAY_MEAN_S)
            seat.phase = "ringing"
            seat.call += 1
            st["call"] = {
                "state": "ringing",
                "since": since,
                "source": "host",
                "direction": "inbound",
                "number": seat.call,
            }
            self._state(seat, t)
            self._event(seat, "call.ringing", {"source": "host", "call": seat.call}, t)
            return rng.uniform(*RING_S)
        if seat.phase == "away":
            seat.phase = "idle"
            away_s = round(rng.uniform(60, 600), 1)
            st["presence"] = {"state": "present", "since": since, "last_seen": since}
            st["today"]["away"]["away_min"] = round(
                st["today"]["away"]["away_min"] + away_s / 60, 2
            )
            self._state(seat, t)
            self._event(seat, "presence.present", {"away_s": away_s}, t)
            return max(3.0, rng.expovariate(1 / IDLE_MEAN_S))
        if seat.phase == "ringing":
            seat.phase = "active"
            answer_s = round(rng.uniform(*RING_S), 1)
            st["call"] = dict(st["call"], state="active", since=since, source="headset")
            st["hook"] = {"off_hook": True, "since": since}
            st["today"]["answer"]["answered"] += 1
            st["today"]["answer"]["mean_answer_s"] = answer_s
            self._state(seat, t)
            self._event(
                seat,
                "call.answered",
                {"source": "headset", "call": seat.call, "answer_s": answer_s},
                t,
            )
            if answer_s > 7.0:
                self._event(seat, "answer.late", {"rings": 4, "limit": 3, "answer_s": answer_s}, t)
            seat.held_s = rng.uniform(*HOLD_S) if rng.random() < HOLD_SHARE else 0.0
            talk = 10 + rng.expovariate(1 / TALK_MEAN_S)
            return talk / 2 if seat.held_s else talk
        if seat.phase == "active" and seat.held_s > 0:
            seat.phase = "held"
            st["call"] = dict(st["call"], state="held", since=since)
            st["mute"] = {"muted": True, "by": "hold_policy", "since": since}
            self._state(seat, t)
            self._event(seat, "call.hold", {"source": "headset", "call": seat.call}, t)
            self._event(seat, "mute.on", {"by": "hold_policy"}, t)
            held, seat.held_s = seat.held_s, -seat.held_s
            return held
        if seat.phase == "held":
            seat.phase = "active"
            st["call"] = dict(st["call"], state="active", since=since)
            st["mute"] = {"muted": False, "by": None, "since": since}
            self._state(seat, t)
            hold_s = round(-seat.held_s, 1)
            self._event(
                seat, "call.resumed", {"source": "headset", "call": seat.call, "hold_s": hold_s}, t
            )
            self._event(seat, "mute.off", {"by": "hold_policy"}, t)
            return 10 + rng.expovariate(1 / TALK_MEAN_S) / 2
        # active -> idle: the call ends
        seat.phase = "idle"
        hold_s = round(max(0.0, -seat.held_s), 1)
        seat.held_s = 0.0
        st["call"] = dict(st["call"], state="idle", since=since, source=None, direction=None)
        st["hook"] = {"off_hook": False, "since": since}
        self._state(seat, t)
        data = {
            "source": "headset",
            "call": seat.call,
            "reason": "hangup",
            "direction": "inbound",
            "duration_s": 95.0,
            "hold_s": hold_s,
            "talk_s": 48.5,
            "listen_s": 31.0,
            "overtalk_s": 1.5,
        }
        self._event(seat, "call.ended", data, t)
        if rng.random() < SPEECH_SHARE:
            self._event(
                seat,
                "speech.too_quiet",
                {"level_dbov": -38.5, "utterance_s": 2.4, "min_dbov": -35.0},
                t,
            )
        return max(3.0, rng.expovariate(1 / IDLE_MEAN_S))

    def levels(self, seat: SimSeat, t: float) -> None:
        payload = (
            f'{{"ts":"{wall(t)}","call":{seat.call},'
            '"tx":{"active_level_dbov":-24.5,"activity_pct":55.0,"peak_dbfs":-9.0},'
            '"rx":{"active_level_dbov":-27.0,"activity_pct":40.0,"peak_dbfs":-12.0}}'
        ).encode()
        self._send(seat, "levels", payload, 0, False)

    def run(self) -> None:
        slots = 100  # levels and keepalives: each seat has a slot in every second
        slot_s = LEVELS_PERIOD_S / slots
        by_slot = [self.seats[i::slots] for i in range(slots)]
        slot_ping = [time.monotonic()] * slots
        pings = 0
        next_slot = time.monotonic()
        slot = 0
        next_report = time.monotonic() + 5
        while self.running:
            now = time.monotonic()
            while self.heap and self.heap[0][0] <= now:
                due, idx = heapq.heappop(self.heap)
                self.lags.append(now - due)
                seat = self.seats[idx]
                heapq.heappush(self.heap, (now + self.transition(seat, now), idx))
            while next_slot <= now:
                t = time.time()
                ping = now - slot_ping[slot] >= KEEPALIVE_S / 2
                if ping:
                    slot_ping[slot] = now
                for seat in by_slot[slot]:
                    if seat.phase in ("active", "held"):
                        self.levels(seat, t)
                    if ping:
                        seat.sock.sendall(b"\xc0\x00")
                        pings += 1
                slot = (slot + 1) % slots
                next_slot += slot_s
            self.drain()
            if now >= next_report:
                lags = sorted(self.lags) or [0.0]
                self.lags = []
                print(
                    json.dumps(
                        {
                            "sent": self.sent,
                            "pings": pings,
                            "lag_p99_s": lags[int(0.99 * (len(lags) - 1))],
                            "in_call": sum(s.phase in ("active", "held") for s in self.seats),
                        }
                    ),
                    flush=True,
                )
                next_report = now + 5
            time.sleep(
                max(
                    0.0,
                    min(next_slot, self.heap[0][0] if self.heap else next_slot) - time.monotonic(),
                )
            )


def publisher_main(args: argparse.Namespace) -> None:
    pub = Publisher(args.port, args.seats, args.seed)
    signal.signal(signal.SIGTERM, lambda *_: setattr(pub, "running", False))
    took = pub.connect_all()
    print(json.dumps({"ready": took, "sent": pub.sent}), flush=True)
    pub.run()


# --- the floor service (role "service") ----------------------------------------------------

_TS = re.compile(rb'"ts":"([^"]+)"')


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def service_main(args: argparse.Namespace) -> None:
    """The floor service as `seatbox floor serve --config floor.toml` runs it (ingest, live
    floor, batched store writer, FastAPI on uvicorn), with a probe listener after the live
    floor and the store's batch writes timed per event. Commands on stdin: `reset` (start a
    measuring window), `report` (one JSON line), `quit` (SIGTERM, as systemd stops it)."""
    import logging

    import floor.ingest as ingest_mod
    import floor.web.service as service_mod
    from floor.web.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    samples: dict[str, list[float]] = {
        "model.state": [],
        "model.event": [],
        "store.state": [],
        "store.event": [],
    }
    stored_seats: set[str] = set()
    model_seats: set[str] = set()
    marks: dict[str, float] = {}
    models: list[Any] = []
    n = args.seats

    original_write = service_mod.TimedStore.write_batch

    def write_batch(self: Any, site: str, batch: Any) -> Any:
        written = original_write(self, site, batch)
        now = time.time()
        for _seat, event, _arrived in batch.events:
            samples["store.event"].append(now - _epoch(event.ts))
        for (column, seat), (value, _) in batch.seats.items():
            if column == "state" and isinstance(value, str):
                match = _TS.search(value.encode())
                if match:
                    samples["store.state"].append(now - _epoch(match.group(1).decode()))
                stored_seats.add(seat)
        if len(stored_seats) >= n and "store_full" not in marks:
            marks["store_full"] = now
        return written

    service_mod.TimedStore.write_batch = write_batch  # type: ignore[method-assign]

    def probe(topic: str, payload: bytes, mono: float, *parsed: Any) -> None:
        leaf = topic.rsplit("/", 1)[1]
        if leaf not in ("state", "event"):
            return
        match = _TS.search(payload)
        if match:
            samples[f"model.{leaf}"].append(time.time() - _epoch(match.group(1).decode()))
        if leaf == "state":
            seat = topic.split("/")[3]
            view = models[0].seats.get(seat)
            if view is not None and view.state is not None:
                model_seats.add(seat)
                if len(model_seats) >= n and "model_full" not in marks:
                    marks["model_full"] = time.time()

    original_init = ingest_mod.Ingest.__init__

    def init(self: Any, *a: Any, listeners: Sequence[Any] = (), **kw: Any) -> None:
        models.append(listeners[0].__self__.model)  # the LiveFloor's FloorModel
        original_init(self, *a, listeners=[*listeners, probe], **kw)
        on_connect = self.client.on_connect

        def connected(*c: Any) -> None:
            marks.setdefault("connected", time.time())
            on_connect(*c)

        self.client.on_connect = connected

    ingest_mod.Ingest.__init__ = init  # type: ignore[method-assign]

    import floor.web.live as live_mod

    original_seed = getattr(live_mod.LiveFloor, "seed", None)
    if original_seed is not None:  # since issue 15: the live floor seeded from the store

        def seed(self: Any, records: Any, mono: float) -> int:
            seeded: int = original_seed(self, records, mono)
            marks["seeded"] = time.time()
            marks["seeded_seats"] = seeded
            return seeded

        live_mod.LiveFloor.seed = seed  # type: ignore[method-assign]

    def control() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                for values in samples.values():
                    values.clear()
            elif command == "report":
                report: dict[str, Any] = {
                    "marks": marks,
                    "model_seats": len(model_seats),
                    "stored_seats": len(stored_seats),
                }
                for name, values in list(samples.items()):
                    got = list(values)
                    report[name] = {
                        "n": len(got),
                        "p50": pct(got, 50),
                        "p99": pct(got, 99),
                        "max": max(got, default=float("nan")),
                    }
                print(json.dumps(report), flush=True)
            elif command == "quit":
                break
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=control, daemon=True).start()
    print(json.dumps({"exec": float(args.t0)}), flush=True)
    serve(Path(args.workdir) / "floor.toml")


# --- the bench (main) --------------------------------------------------------------------


class Proc:
    """A child process of this bench (publisher or service) talking JSON lines."""

    def __init__(
        self, role: str, extra: Sequence[str], workdir: Path, token: str | None = None
    ) -> None:
        self.t0 = time.time()
        self.lines: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.log = (workdir / f"{role}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--t0", repr(self.t0), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "BENCH_TOKEN": token or ""},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"{what}: not within {timeout:.0f} s (see {self.log.name})")
                self.cond.wait(left)

    def ask(self, command: str, key: str, timeout: float = 30) -> dict[str, Any]:
        with self.cond:
            self.lines.clear()
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.wait_for(lambda line: key in line, timeout, command)

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self, quit_command: str | None = None) -> None:
        if self.proc.poll() is None:
            if quit_command:
                try:
                    self.tell(quit_command)
                    self.proc.wait(20)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class SysWatch:
    """Mosquitto's $SYS counters (sys_interval 1): messages received and sent."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.values: dict[str, tuple[float, float]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sys")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("$SYS/broker/messages/#", 0)
        self.client.subscribe("$SYS/broker/publish/messages/#", 0)
        self.client.subscribe("$SYS/broker/clients/connected", 0)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            value = float(msg.payload)
        except ValueError:
            return
        self.values[msg.topic.removeprefix("$SYS/broker/")] = (time.monotonic(), value)

    def snapshot(self) -> dict[str, tuple[float, float]]:
        return dict(self.values)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rate(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], key: str
) -> float:
    if key not in before or key not in after or after[key][0] <= before[key][0]:
        return float("nan")
    return (after[key][1] - before[key][1]) / (after[key][0] - before[key][0])


class Window:
    """CPU and RSS of some processes, and the broker's message rates, over a time window."""

    def __init__(self, pids: dict[str, int], sys_watch: SysWatch) -> None:
        self.pids = pids
        self.watch = sys_watch
        self.start = time.monotonic()
        self.cpu = {name: cpu_s(pid) for name, pid in pids.items()}
        self.sys = sys_watch.snapshot()

    def close(self) -> dict[str, float]:
        took = time.monotonic() - self.start
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            out[f"{name}.cpu_pct"] = 100 * (cpu_s(pid) - self.cpu[name]) / took
            out[f"{name}.rss_mb"] = rss_mb(pid)
        after = self.watch.snapshot()
        out["broker.in_per_s"] = rate(self.sys, after, "messages/received")
        out["broker.out_per_s"] = rate(self.sys, after, "messages/sent")
        out["broker.pub_out_per_s"] = rate(self.sys, after, "publish/messages/sent")
        out["broker.dropped"] = after.get("publish/messages/dropped", (0, 0.0))[1]
        return out


class DirectBrowsers:
    """`count` clients subscribed to the broker directly (QoS 0, the service's four leaves),
    reading and discarding: what a page talking MQTT over WebSockets would cost the broker."""

    def __init__(self, port: int, count: int) -> None:
        self.socks: list[socket.socket] = []
        self.bytes = 0
        self.running = True
        filters = [
            f"seatbox/v1/{SITE}/+/{leaf}" for leaf in ("availability", "state", "info", "event")
        ]
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(connect_packet(f"bench-browser-{i}", None, 0))
            sock.sendall(subscribe_packet(1, filters, 0))
            sock.setblocking(False)
            self.socks.append(sock)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        sel = selectors.DefaultSelector()
        for sock in self.socks:
            sel.register(sock, selectors.EVENT_READ)
        while self.running:
            for key, _ in sel.select(0.2):
                try:
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                self.bytes += len(data)
        sel.close()

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


class SseBrowsers:
    """`count` browsers on `GET /api/v1/floor/stream` (httpx, one asyncio thread). The first
    one measures: for each seat row in a `diff` whose newest `call_since`/`presence_since` is
    newer than what it had, the wall time now minus that `since` (the publisher set it to the
    publish time); the others read and discard."""

    def __init__(self, url: str, token: str, count: int, measure: bool = True) -> None:
        import asyncio

        self.url, self.token, self.count = url, token, count
        self.samples: list[float] = []
        self.snapshots = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks = [
            asyncio.run_coroutine_threadsafe(self._browser(measure and i == 0), self.loop)
            for i in range(count)
        ]

    async def _browser(self, measure: bool) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        seen: dict[str, float] = {}
        try:
            async with (
                httpx.AsyncClient(timeout=None) as client,
                client.stream("GET", self.url, headers=headers) as response,
            ):
                if response.status_code != 200:
                    self.errors.append(f"HTTP {response.status_code}")
                    return
                if not measure:
                    async for chunk in response.aiter_raw():
                        self.bytes += len(chunk)
                    return
                kind = ""
                async for line in response.aiter_lines():
                    now = time.time()
                    self.bytes += len(line) + 1
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        rows = (
                            data["seats"]
                            if kind == "diff"
                            else {r["seat"]: r for r in data["seats"]}
                        )
                        if kind == "floor":
                            self.snapshots += 1
                        for seat, row in rows.items():
                            if row is None:
                                continue
                            newest = (
                                max(
                                    _epoch(t)
                                    for t in (row["call_since"], row["presence_since"])
                                    if t
                                )
                                if (row["call_since"] or row["presence_since"])
                                else 0.0
                            )
                            if kind == "diff" and newest > seen.get(seat, float("inf")):
                                self.samples.append(now - newest)
                            seen[seat] = newest
        except Exception as exc:  # noqa: BLE001  (a browser's failure is reported, not fatal)
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


results: list[tuple[str, str, str, bool | None]] = []


def record(name: str, figure: str, target: str = "", ok: bool | None = None) -> None:
    results.append((name, figure, target, ok))
    verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    print(f"  {name:<52} {figure:<44} {target:<14} {verdict}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds == seconds else "-"


def profile(args: argparse.Namespace, pid: int, name: str, seconds: float) -> None:
    """py-spy (`--profile DIR`, pip install py-spy) on the service for `seconds`, in the
    background: collapsed stacks in DIR/name.txt, all threads, native frames off."""
    if not args.profile:
        return
    out = Path(args.profile) / f"{name}.txt"
    spy = Path(sys.executable).parent / "py-spy"
    subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_service(port: int, seats: int, workdir: Path) -> Proc:
    extra = ["--port", str(port), "--seats", str(seats), "--workdir", str(workdir)]
    return Proc("service", extra, workdir)


def floor_config(workdir: Path, port: int, http_port: int) -> str:
    """floor.toml for the service and a manager token for the browsers."""
    (workdir / "store").mkdir(exist_ok=True)
    config = workdir / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "mqtt://127.0.0.1:{port}"\nclient_id = "seatbox-floor-bench"\n'
        f'[site]\nid = "{SITE}"\ntimezone = "UTC"\n'
        f'[http]\nlisten = "127.0.0.1:{http_port}"\n'
        f'[store]\ndir = "{workdir / "store"}"\n'
    )
    seatbox = Path(sys.executable).parent / "seatbox"
    out = subprocess.run(
        [
            str(seatbox),
            "floor",
            "token",
            "add",
            "bench",
            "--role",
            "manager",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def measure(
    pids: dict[str, int], watch: SysWatch, service: Proc, seconds: float
) -> tuple[dict[str, float], dict[str, Any]]:
    service.tell("reset")
    window = Window(pids, watch)
    time.sleep(seconds)
    load = window.close()
    return load, service.ask("report", "marks")


def one_size(seats: int, args: argparse.Namespace, workdir: Path) -> None:
    from support import Mosquitto, free_port, wait_until

    port, http_port = free_port(), free_port()
    # The shipped site broker's queue limits (config/mosquitto/seatbox-site.conf) unless
    # --max-queued; no TLS, no persistence; connections unlimited (the fd limit is the machine's).
    conf = (
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages {args.max_queued}\nmax_queued_bytes 67108864\n"
        "max_inflight_messages 32\nmax_packet_size 32768\nmax_connections -1\nsys_interval 1\n"
    )
    broker = Mosquitto(workdir, conf, port)
    broker.start()
    assert broker.proc is not None
    watch = SysWatch(port)
    token = floor_config(workdir, port, http_port)
    service = start_service(port, seats, workdir)
    publisher = None
    browsers: SseBrowsers | None = None
    readers: Proc | None = None
    loadavg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{seats} seats (load average {loadavg})", flush=True)
    try:
        service.wait_for(lambda line: "exec" in line, 60, "service start")
        wait_until(
            lambda: service.ask("report", "marks")["marks"].get("connected"), 60, "service up"
        )
        publisher = Proc("publisher", ["--port", str(port), "--seats", str(seats)], workdir)
        ready = publisher.wait_for(lambda line: "ready" in line, 300, "seats connected")
        record("seats connected and born (availability, info, state)", f"{ready['ready']:.1f} s")
        wait_until(lambda: service.ask("report", "marks")["model_seats"] >= seats, 120, "floor")
        time.sleep(args.window / 4)  # the backlog of the births
        pids = {"broker": broker.proc.pid, "service": service.proc.pid}
        pids["publisher"] = publisher.proc.pid
        profile(args, service.proc.pid, f"steady-{seats}", args.window)
        zero, report = measure(pids, watch, service, args.window)
        pub = publisher.lines[-1] if publisher.lines else {}
        record(
            "broker messages in / out per s",
            f"{zero['broker.in_per_s']:.0f} / {zero['broker.out_per_s']:.0f}",
        )
        for kind in ("state", "event"):
            m, st = report[f"model.{kind}"], report[f"store.{kind}"]
            gate = seats >= 10_000
            record(
                f"staleness {kind} -> live floor p50 / p99 / max (n)",
                f"{ms(m['p50'])} / {ms(m['p99'])} / {ms(m['max'])} ms ({m['n']})",
                "p99 < 1 s" if gate else "",
                m["p99"] < STALENESS_P99_S if gate else None,
            )
            record(
                f"staleness {kind} -> store p50 / p99 / max",
                f"{ms(st['p50'])} / {ms(st['p99'])} / {ms(st['max'])} ms",
            )
        for name in ("broker", "service", "publisher"):
            record(
                f"{name} CPU (% of a core) / RSS",
                f"{zero[name + '.cpu_pct']:.1f} % / {zero[name + '.rss_mb']:.0f} MB",
            )
        record(
            "publisher schedule lag p99 (last 5 s)", f"{ms(pub.get('lag_p99_s', float('nan')))} ms"
        )

        # 50 browsers on the service's SSE stream; the first one measures
        url = f"http://127.0.0.1:{http_port}/api/v1/floor/stream"
        # The measuring browser here, the others in a process of their own (one Python thread
        # reading 49 streams of diffs would otherwise delay the measuring one's reads).
        if args.browsers > 1:
            readers = Proc(
                "browsers", ["--url", url, "--count", str(args.browsers - 1)], workdir, token
            )
        browsers = SseBrowsers(url, token, 1)
        wait_until(lambda: browsers.snapshots >= 1 or browsers.errors, 60, "SSE snapshot")
        # 50 pages opening at once (as after a service restart: EventSource reconnects) each
        # get a full snapshot; wait until the live floor is current again, then measure.
        connected_at = time.monotonic()
        caught_up = float("nan")
        while time.monotonic() - connected_at < args.restart_wait:
            service.tell("reset")
            time.sleep(2)
            if service.ask("report", "marks")["model.state"]["p99"] < STALENESS_P99_S:
                caught_up = time.monotonic() - connected_at
                break
        record(
            f"{args.browsers} browsers connect at once: live floor current again after",
            f"{caught_up:.1f} s" if caught_up == caught_up else f"not in {args.restart_wait:.0f} s",
        )
        profile(args, service.proc.pid, f"browsers-{seats}", args.window)
        many, report = measure(pids, watch, service, args.window)
        sse = browsers.samples[:]
        snapshots = browsers.snapshots
        browsers.stop()
        if readers is not None:
            readers.stop()
        record(
            "SSE: full snapshots the measuring browser got", f"{snapshots} (1 = never fell behind)"
        )
        if browsers.errors:
            record("SSE errors", "; ".join(sorted(set(browsers.errors)))[:200])
        gate = seats >= 10_000
        record(
            f"staleness -> SSE client p50 / p99 / max (n), {args.browsers} browsers",
            f"{ms(pct(sse, 50))} / {ms(pct(sse, 99))} / {ms(max(sse, default=float('nan')))} ms"
            f" ({len(sse)})",
            "p99 < 1 s" if gate else "",
            pct(sse, 99) < STALENESS_P99_S if gate and sse else (False if gate else None),
        )
        m = report["model.state"]
        record(
            f"staleness state -> live floor p50 / p99, {args.browsers} browsers",
            f"{ms(m['p50'])} / {ms(m['p99'])} ms",
        )
        record(
            f"service CPU / RSS, 0 / {args.browsers} browsers",
            f"{zero['service.cpu_pct']:.1f} / {many['service.cpu_pct']:.1f} % ; "
            f"{zero['service.rss_mb']:.0f} / {many['service.rss_mb']:.0f} MB",
        )
        cpu0, cpu50 = zero["broker.cpu_pct"], many["broker.cpu_pct"]
        # Messages out per message in: the seats' traffic varies from window to window, the
        # broker's fan-out per message is what browsers would add to.
        out0 = zero["broker.out_per_s"] / zero["broker.in_per_s"]
        out50 = many["broker.out_per_s"] / many["broker.in_per_s"]
        same_cpu = abs(cpu50 - cpu0) <= max(BROKER_SAME_ABS_PCT, cpu0 * BROKER_SAME_PCT / 100)
        same_out = abs(out50 - out0) <= out0 * BROKER_SAME_PCT / 100
        record(
            f"broker CPU, 0 / {args.browsers} SSE browsers",
            f"{cpu0:.1f} / {cpu50:.1f} %",
            "same (±20 %)",
            same_cpu,
        )
        record(
            f"broker msgs in / out per s, {args.browsers} SSE browsers",
            f"{many['broker.in_per_s']:.0f} / {many['broker.out_per_s']:.0f}",
        )
        record(
            f"broker msgs out per msg in, 0 / {args.browsers} SSE browsers",
            f"{out0:.3f} / {out50:.3f}",
            "same (±20 %)",
            same_out,
        )

        if args.direct:  # the same number subscribed to the broker itself, for comparison
            direct = DirectBrowsers(port, args.direct)
            last = -1
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and direct.bytes - last > 1_000_000:
                last = direct.bytes  # the retained snapshot each one gets at subscribe
                time.sleep(1)
            raw, _ = measure(pids, watch, service, args.window / 2)
            direct.stop()
            record(
                f"broker CPU / msgs out per s (per msg in), {args.direct} direct MQTT subscribers",
                f"{raw['broker.cpu_pct']:.1f} % / {raw['broker.out_per_s']:.0f} "
                f"({raw['broker.out_per_s'] / raw['broker.in_per_s']:.3f})",
            )

        # restart: SIGTERM, a new process on the same persistent session
        service.stop("quit")
        dropped_before = watch.snapshot().get("publish/messages/dropped", (0, 0.0))[1]
        service = start_service(port, seats, workdir)
        t0 = service.t0
        profile(args, service.proc.pid, f"restart-{seats}", 15)
        service.wait_for(lambda line: "exec" in line, 60, "service restart")
        deadline = time.monotonic() + args.restart_wait
        report = {}
        while time.monotonic() < deadline:
            report = service.ask("report", "marks")
            if "model_full" in report["marks"] and "store_full" in report["marks"]:
                break
            time.sleep(0.2)
        marks = report.get("marks", {})
        full = marks.get("model_full", float("nan")) - t0
        record("restart: exec -> connected", f"{marks.get('connected', float('nan')) - t0:.2f} s")
        record(
            "restart: exec -> full floor (N states in the live floor)",
            f"{full:.2f} s"
            if full == full
            else f"not in {args.restart_wait:.0f} s: "
            f"{report.get('model_seats', 0)} of {seats} seats",
            "< 10 s",
            full < RESTART_S,
        )
        if "seeded" in marks:
            record(
                "restart: exec -> live floor seeded from the store (N seats)",
                f"{marks['seeded'] - t0:.2f} s ({marks.get('seeded_seats', 0)})",
                "< 10 s",
                marks["seeded"] - t0 < RESTART_S and marks.get("seeded_seats", 0) >= seats,
            )
        record(
            "restart: exec -> N states in the store",
            f"{marks.get('store_full', float('nan')) - t0:.2f} s",
        )
        time.sleep(2)  # one $SYS interval
        dropped = watch.snapshot().get("publish/messages/dropped", (0, 0.0))[1] - dropped_before
        record("restart: messages the broker dropped (queue full)", f"{dropped:.0f}")
        # what a restart would take from the store's copy of each seat's last state instead
        service.stop("quit")
        took, loaded = from_store(workdir / "store" / "floor.sqlite")
        record(
            "restart from the store (proposal): read + apply N states", f"{took:.2f} s ({loaded})"
        )
    finally:
        if browsers is not None:
            browsers.stop()
        if readers is not None:
            readers.stop()
        if publisher is not None:
            publisher.stop()
        service.stop("quit")
        watch.stop()
        broker.stop()


def from_store(path: Path) -> tuple[float, int]:
    """Seconds to read every seat's latest `state` from the SQLite store and apply it to a
    fresh FloorModel (as a restarted service could before the broker's retained copies)."""
    import sqlite3

    from floor.model import FloorModel

    start = time.perf_counter()
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seat, state FROM seats WHERE site = ? AND state IS NOT NULL", (SITE,))
    model = FloorModel(site=SITE)
    for seat, state in rows.fetchall():
        model.apply(f"seatbox/v1/{SITE}/{seat}/state", state.encode(), 0.0)
    db.close()
    loaded = sum(view.state is not None for view in model.seats.values())
    return time.perf_counter() - start, loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", default="1000,5000,10000", help="comma-separated seat counts")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per figure")
    parser.add_argument("--browsers", type=int, default=50, help="SSE clients of the service")
    parser.add_argument("--direct", type=int, default=50, help="direct MQTT 'browsers' (0: none)")
    parser.add_argument(
        "--max-queued", type=int, default=20000, help="Mosquitto max_queued_messages (shipped)"
    )
    parser.add_argument("--restart-wait", type=float, default=60.0, help="seconds")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--profile", default="", help="py-spy the service into this folder")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--t0", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "publisher":
        args.seats = int(args.seats)
        publisher_main(args)
        return 0
    if args.role == "service":
        args.seats = int(args.seats)
        service_main(args)
        return 0
    if args.role == "browsers":  # SSE readers that only read (the bench measures one more)
        readers = SseBrowsers(args.url, os.environ["BENCH_TOKEN"], args.count, measure=False)
        for _ in sys.stdin:  # until the bench closes stdin or stops us
            pass
        readers.stop()
        return 0
    print(f"machine: {describe()}")
    print(f"assumptions: {ASSUMPTIONS}")
    for seats in (int(s) for s in args.seats.split(",")):
        with tempfile.TemporaryDirectory(prefix="seatbox-floorbench-") as tmp:
            one_size(seats, args, Path(tmp))
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = [name for name, _, _, ok in results if ok is False]
    print(f"targets: {sum(ok is True for *_, ok in results)} PASS, {len(failed)} FAIL")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
