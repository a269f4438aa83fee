"""The durable outbox: every seat event is on disk (SQLite, WAL, synchronous=FULL) before it
is published, numbered `(boot_id, seq)`, bounded by a disk budget with a documented drop order.

`Outbox` is the store; `OutboxPump` drains it through one paho client at QoS 1 in order.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
# Rough per-row cost of SQLite's record header, rowid and index entries; the budget counts
# this plus the stored text so that many tiny events cannot exceed it unnoticed.
ROW_OVERHEAD_BYTES = 96
LOSS_TYPE = "outbox.loss"
# A loss event lists exact dropped seq ranges up to this many per boot, then one span.
MAX_LOSS_RANGES = 50


class Priority(IntEnum):
    """Drop class: the lowest goes first when the budget is full, oldest first within one."""

    INFO = 1  # transitions: call.*, mute.*, presence.*, headset.* ...
    CONDUCT = 2  # conduct and attendance records
    LOSS = 3  # the outbox's own loss reports


# Conduct and attendance event types (shared/norms.md): the records a centre is judged by.
CONDUCT_PREFIXES = (
    "answer.",
    "greeting.",
    "hold.",
    "speech.",
    "talk.",
    "floor.",
    "hearing.",
    "away.",
    "shift.",
)
CONDUCT_TYPES = frozenset({"call.dead_air", "headset.impact"})


def loss_reserve(budget_bytes: int) -> int:
    """Budget bytes only loss reports may use, so reporting a loss never evicts an event."""
    # 8 KiB holds a report with MAX_LOSS_RANGES ranges and a few dozen types.
    return min(64 * 1024, max(8192, budget_bytes // 64))


def priority_of(event_type: str) -> Priority:
    if event_type == LOSS_TYPE:
        return Priority.LOSS
    if event_type in CONDUCT_TYPES or event_type.startswith(CONDUCT_PREFIXES):
        return Priority.CONDUCT
    return Priority.INFO


def new_boot_id(counter: int = 0) -> str:
    """`<counter>-<8 hex>`: the outbox's boot counter (0 for a seat without an outbox) and a
    random part, so a wiped database never reuses an id a consumer has already seen."""
    return f"{counter}-{secrets.token_hex(4)}"


def iso_utc(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-23T08:45:00.000Z."""
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def event_payload(
    boot_id: str, seq: int, ts: str, event_type: str, data: Mapping[str, Any]
) -> bytes:
    body = {"boot_id": boot_id, "seq": seq, "ts": ts, "type": event_type, "data": dict(data)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class EventDataError(ValueError):
    """An event that cannot be stored as UTF-8 JSON; refused before it takes a seq."""


def encode_data(event_type: str, data: Mapping[str, Any], ts: float | str | None) -> str:
    """The event's data as JSON text, checked to encode as UTF-8 (a lone surrogate does not),
    before a seq is taken: an event refused after numbering would leave a silent gap."""
    if event_type == "levels":
        raise EventDataError("outbox: `levels` are periodic QoS 0 and never stored")
    try:
        text = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False)
        for part in (text, event_type, ts if isinstance(ts, str) else ""):
            part.encode()
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise EventDataError(
            f"event {event_type!r}: data cannot be stored as JSON ({exc})"
        ) from None
    return text


def _payload_with(boot_id: str, seq: int, ts: str, event_type: str, data_text: str) -> bytes:
    """`event_payload` byte for byte, from data already encoded by `encode_data`."""
    head = json.dumps(
        {"boot_id": boot_id, "seq": seq, "ts": ts, "type": event_type},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return (head[:-1] + ',"data":' + data_text + "}").encode()


@dataclass(frozen=True)
class OutboxEntry:
    id: int  # row id: the publish order
    boot_id: str
    seq: int
    type: str
    priority: Priority
    topic: str
    payload: bytes
    qos: int
    created: float  # wall clock (epoch s) when stored
    stored: bool = True  # False: the budget had no room even after dropping; counted as loss


@dataclass(frozen=True)
class SeqRange:
    boot_id: str
    from_seq: int
    to_seq: int


@dataclass(frozen=True)
class LossReport:
    """Events dropped from the outbox since the last report, as sent in `outbox.loss`."""

    dropped: Mapping[str, int]  # event type -> count
    ranges: tuple[SeqRange, ...]
    exact: bool  # False when ranges were merged into spans (see MAX_LOSS_RANGES)

    def as_data(self, budget_bytes: int) -> dict[str, Any]:
        return {
            "reason": "disk_budget",
            "budget_bytes": budget_bytes,
            "total": sum(self.dropped.values()),
            "dropped": dict(sorted(self.dropped.items())),
            "ranges": [
                {"boot_id": r.boot_id, "from_seq": r.from_seq, "to_seq": r.to_seq}
                for r in self.ranges
            ],
            "ranges_exact": self.exact,
        }


@dataclass(frozen=True)
class OutboxStats:
    pending: int  # stored, not yet acknowledged by the broker
    kept: int  # acknowledged, kept for resend requests
    bytes: int  # budgeted bytes in use
    budget_bytes: int
    oldest_pending: float | None  # wall clock of the oldest unacknowledged event
    loss_pending: bool


class OutboxError(Exception):
    """The outbox database cannot be opened or written (disk full, permissions, corruption)."""


@dataclass
class _Loss:
    dropped: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, list[list[int]]] = field(default_factory=dict)  # boot_id -> [[a, b]]
    exact: bool = True

    def add(self, boot_id: str, seq: int, event_type: str) -> None:
        self.dropped[event_type] = self.dropped.get(event_type, 0) + 1
        spans = self.ranges.setdefault(boot_id, [])
        for span in spans:
            if span[0] - 1 <= seq <= span[1] + 1:
                span[0], span[1] = min(span[0], seq), max(span[1], seq)
                break
        else:
            spans.append([seq, seq])
        spans.sort()
        merged: list[list[int]] = []
        for span in spans:
            if merged and span[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], span[1])
            else:
                merged.append(span)
        if len(merged) > MAX_LOSS_RANGES:
            merged = [[merged[0][0], merged[-1][1]]]
            self.exact = False
        self.ranges[boot_id] = merged

    def empty(self) -> bool:
        return not self.dropped

    def to_json(self) -> str:
        return json.dumps({"dropped": self.dropped, "ranges": self.ranges, "exact": self.exact})

    @classmethod
    def from_json(cls, text: str) -> _Loss:
        raw = json.loads(text)
        return cls(
            dict(raw["dropped"]), {k: list(v) for k, v in raw["ranges"].items()}, raw["exact"]
        )

    def report(self) -> LossReport:
        ranges = tuple(
            SeqRange(boot, a, b) for boot, spans in sorted(self.ranges.items()) for a, b in spans
        )
        return LossReport(dict(self.dropped), ranges, self.exact)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    acked REAL,
    UNIQUE (boot_id, seq)
);
CREATE INDEX IF NOT EXISTS entry_victims ON entry (acked, priority, id);
-- The pump's query: unsent rows in id order, without sorting the whole backlog each time.
CREATE INDEX IF NOT EXISTS entry_unsent ON entry (id) WHERE acked IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = "id, boot_id, seq, type, priority, topic, payload, qos, created"


def _entry(row: Sequence[Any]) -> OutboxEntry:
    return OutboxEntry(
        id=row[0],
        boot_id=row[1],
        seq=row[2],
        type=row[3],
        priority=Priority(row[4]),
        topic=row[5],
        payload=bytes(row[6]),
        qos=row[7],
        created=row[8],
    )


class Outbox:
    """Durable, bounded, ordered store of events waiting for (or kept after) the broker's PUBACK.

    Opening it starts a new boot: `boot_id` is new and `seq` restarts at 0; rows of earlier
    boots keep their numbers and are published first. Thread-safe: the seat adds, the pump
    reads and acknowledges.
    """

    def __init__(
        self,
        path: str | Path,
        topic: str,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        keep_acked_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if budget_bytes < 16384:
            raise ValueError(f"outbox budget_bytes: expected >= 16384, got {budget_bytes}")
        self.path = Path(path)
        self.topic = topic
        self.budget_bytes = budget_bytes
        self.keep_acked_s = keep_acked_s
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        # Rows up to this id were read for publishing: they are in (or on their way into) the
        # MQTT client's memory, which sends them again after a reconnect. Dropping them would
        # free nothing and report as lost events that still arrive.
        self._claimed = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on stable storage before add_event returns (NORMAL may roll
            # back committed rows on power loss in WAL mode).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA journal_size_limit=4194304")
            self._db.executescript(_SCHEMA)
            with self._txn():
                counter = int(self._meta("boot_counter", "0")) + 1
                self._set_meta("boot_counter", str(counter))
        except sqlite3.Error as err:
            raise OutboxError(f"outbox {self.path}: cannot open ({err})") from err
        # Counter for humans and ordering; random part so a wiped database never reuses an id
        # a consumer has already seen (it would de-duplicate new events away).
        self.boot_id = new_boot_id(counter)
        self._next_seq = 0
        self._bytes = int(
            self._db.execute("SELECT COALESCE(SUM(size), 0) FROM entry").fetchone()[0]
        )
        loss_text = self._meta("loss", "")
        self._loss = _Loss.from_json(loss_text) if loss_text else _Loss()

    # --- writing --------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called (outside the lock) after events are stored, e.g. to wake a pump."""
        self._listeners.append(callback)

    def add_event(
        self, event_type: str, data: Mapping[str, Any], ts: float | str | None = None
    ) -> OutboxEntry:
        """Number the event, store it durably, return it; `ts` is wall-clock epoch seconds or
        the seat's ISO 8601 stamp as is (None: now)."""
        return self.add_events([(event_type, data, ts)])[0]

    def add_events(
        self, events: Iterable[tuple[str, Mapping[str, Any], float | str | None]]
    ) -> list[OutboxEntry]:
        """Store several events in one transaction (one fsync). An event whose data cannot be
        stored raises `EventDataError` before any of them is numbered."""
        prepared = [(kind, encode_data(kind, data, ts), ts) for kind, data, ts in events]
        stored: list[OutboxEntry] = []
        with self._lock:
            try:
                with self._txn():
                    for event_type, data_text, ts in prepared:
                        stored.append(self._insert(event_type, data_text, ts))
                    if not self._loss.empty():
                        self._set_meta("loss", self._loss.to_json())
            except sqlite3.Error as err:
                self._reload_bytes()
                raise OutboxError(f"outbox {self.path}: cannot store event ({err})") from err
        for callback in self._listeners:
            callback()
        return stored

    def _insert(self, event_type: str, data_text: str, ts: float | str | None) -> OutboxEntry:
        """Number and store one event; `data_text` from `encode_data` (checked already)."""
        seq = self._next_seq
        self._next_seq += 1
        created = self._clock()
        stamp = ts if isinstance(ts, str) else iso_utc(created if ts is None else ts)
        payload = _payload_with(self.boot_id, seq, stamp, event_type, data_text)
        priority = priority_of(event_type)
        size = (
            len(payload)
            + len(self.topic)
            + len(event_type)
            + len(self.boot_id)
            + ROW_OVERHEAD_BYTES
        )
        entry = OutboxEntry(
            0, self.boot_id, seq, event_type, priority, self.topic, payload, 1, created
        )
        if not self._make_room(size, priority):
            self._loss.add(self.boot_id, seq, event_type)
            log.warning(
                "outbox full: dropped new %s seq %d (budget %d bytes)",
                event_type,
                seq,
                self.budget_bytes,
            )
            return OutboxEntry(**{**entry.__dict__, "stored": False})
        cursor = self._db.execute(
            "INSERT INTO entry (boot_id, seq, type, priority, topic, payload, qos, created, size)"
            " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (self.boot_id, seq, event_type, int(priority), self.topic, payload, created, size),
        )
        self._bytes += size
        return OutboxEntry(**{**entry.__dict__, "id": int(cursor.lastrowid or 0)})

    def _make_room(self, size: int, priority: Priority) -> bool:
        """Drop rows until `size` fits: acknowledged copies first, then unacknowledged events of
        the lowest class (never a class above the new event's), oldest first. Events use the
        budget minus the loss reserve; loss reports may use the reserve too."""
        limit = self.budget_bytes
        if priority < Priority.LOSS:
            limit -= loss_reserve(self.budget_bytes)
        if size > limit:
            return False
        while self._bytes + size > limit:
            row = self._db.execute(
                "SELECT id, size FROM entry WHERE acked IS NOT NULL ORDER BY id LIMIT 1"
            ).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM entry WHERE id = ?", (row[0],))
                self._bytes -= row[1]
                continue
            row = self._db.execute(
                "SELECT id, size, boot_id, seq, type FROM entry WHERE acked IS NULL"
                " AND priority <= ? AND id > ? ORDER BY priority, id LIMIT 1",
                (int(priority), self._claimed),
            ).fetchone()
            if row is None:
                return False
            self._db.execute("DELETE FROM entry WHERE id = ?", (row[0],))
            self._bytes -= row[1]
            self._loss.add(row[2], row[3], row[4])
        return True

    def flush_loss(self) -> OutboxEntry | None:
        """Turn the loss recorded since the last call into one `outbox.loss` event (stored in
        order like any event); None when nothing was lost."""
        with self._lock:
            if self._loss.empty():
                return None
            report = self._loss.report()
            self._loss = _Loss()
            try:
                with self._txn():
                    data_text = encode_data(LOSS_TYPE, report.as_data(self.budget_bytes), None)
                    entry = self._insert(LOSS_TYPE, data_text, None)
                    self._set_meta("loss", self._loss.to_json())
            except sqlite3.Error as err:
                self._reload_bytes()
                raise OutboxError(f"outbox {self.path}: cannot store loss event ({err})") from err
        log.warning(
            "outbox dropped %d events to stay within %d bytes",
            sum(report.dropped.values()),
            self.budget_bytes,
        )
        for callback in self._listeners:
            callback()
        return entry

    # --- reading and acknowledging ---------------------------------------------------------

    def pending(
        self, limit: int = 100, after_id: int = 0, claim: bool = False
    ) -> list[OutboxEntry]:
        """Unacknowledged events in publish order (oldest boot first, then seq). `claim`: they
        are about to be published, so the budget may no longer drop them (see `unclaim`)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM entry INDEXED BY entry_unsent"
                " WHERE acked IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            if claim and rows:
                self._claimed = max(self._claimed, int(rows[-1][0]))
        return [_entry(row) for row in rows]

    def unclaim(self) -> None:
        """The publisher lost what it held (a new client): every unacknowledged row may go."""
        with self._lock:
            self._claimed = 0

    def ack(self, entry_ids: Iterable[int]) -> None:
        """The broker acknowledged these rows: keep them for resends until purged or needed."""
        ids = [(self._clock(), entry_id) for entry_id in entry_ids]
        if not ids:
            return
        with self._lock:
            # A PUBACK forgotten on power loss only means the event is sent again and the
            # consumer drops the copy, so acks skip the fsync that events must have.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._txn():
                    self._db.executemany("UPDATE entry SET acked = ? WHERE id = ?", ids)
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot record PUBACK ({err})") from err
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def get_range(
        self, boot_id: str, first_seq: int, last_seq: int, limit: int = 1000
    ) -> list[OutboxEntry]:
        """Events of one boot still held (acknowledged or not), for a consumer's resend."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM entry WHERE boot_id = ? AND seq BETWEEN ? AND ?"
                " ORDER BY seq LIMIT ?",
                (boot_id, first_seq, last_seq, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def held_seqs(self, boot_id: str, first_seq: int, last_seq: int) -> list[int]:
        """The seqs of one boot still held in a range (the (boot_id, seq) index alone: a
        resend lookup of 1,000 seqs reads no payload)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq FROM entry WHERE boot_id = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                (boot_id, first_seq, last_seq),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def purge(self) -> int:
        """Delete acknowledged rows older than `keep_acked_s`; returns how many."""
        horizon = self._clock() - self.keep_acked_s
        with self._lock, self._txn():
            removed = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entry"
                " WHERE acked IS NOT NULL AND acked < ?",
                (horizon,),
            ).fetchone()
            self._db.execute("DELETE FROM entry WHERE acked IS NOT NULL AND acked < ?", (horizon,))
            self._bytes -= int(removed[1])
        return int(removed[0])

    @property
    def loss_pending(self) -> bool:
        return not self._loss.empty()

    def stats(self) -> OutboxStats:
        with self._lock:
            pending, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created) FROM entry WHERE acked IS NULL"
            ).fetchone()
            kept = self._db.execute(
                "SELECT COUNT(*) FROM entry WHERE acked IS NOT NULL"
            ).fetchone()[0]
            return OutboxStats(
                int(pending),
                int(kept),
                self._bytes,
                self.budget_bytes,
                oldest,
                not self._loss.empty(),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- internals --------------------------------------------------------------------------

    def _txn(self) -> _Transaction:
        return _Transaction(self._db)

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    def _reload_bytes(self) -> None:
        self._bytes = int(
            self._db.execute("SELECT COALESCE(SUM(size), 0) FROM entry").fetchone()[0]
        )
        loss_text = self._meta("loss", "")
        self._loss = _Loss.from_json(loss_text) if loss_text else _Loss()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


# --- the pump -------------------------------------------------------------------------------


# cmd/resend limits (docs/reliability.md "Command limits and resend caps"). Resends are queued
# as seq ranges, never as copies: the rows are read again in small batches when published.
RESEND_MAX_SPAN = 1000  # seqs one request looks at; the rest of its range is answered missing
RESEND_MAX_QUEUED = 10_000  # seqs waiting to be published again, all requests together
RESEND_MAX_RANGES = 1000  # separate ranges in that queue (a fragmented queue costs lookups)
RESEND_MAX_REQUESTS = 1000  # requests waiting for their lookup on the pump thread
RESEND_BATCH = 32  # rows read per query while publishing copies
RESEND_LOOKUPS_PER_CYCLE = 20  # lookups between two looks at the live events


@dataclass(frozen=True)
class ResendResult:
    queued: int  # events found in the outbox and queued for publishing again
    missing: tuple[SeqRange, ...]  # asked for but no longer held (or never existed)
    refused: str = ""  # not empty: nothing was queued, and why (ask again later)


@dataclass(frozen=True)
class _ResendRequest:
    boot_id: str
    from_seq: int
    to_seq: int
    answer: Callable[[ResendResult], None]


class TokenBucket:
    """Paces publishing: `rate` per second with bursts up to `burst`; time is an argument."""

    def __init__(self, rate: float | None, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._at = now

    def take(self, now: float) -> float:
        """0.0 and one token taken, or the seconds to wait before the next token."""
        if self.rate is None:
            return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (ValueError, RuntimeError):  # rc was NO_CONN: acknowledged via its mid instead
        return False


class OutboxPump:
    """Publishes the outbox in order at QoS 1 through one paho client, from its own thread.

    Holds at most `max_inflight` unacknowledged publishes; marks a row acknowledged when its
    PUBACK arrives (paho's `MQTTMessageInfo`); paces at `rate_per_s` (None: unpaced) so a
    backlog replay after an outage does not flood broker and subscribers. Call `attach()` (it
    chains any callbacks already set) or forward paho's callbacks to `handle_connect`,
    `handle_disconnect` and `handle_publish` yourself.
    """

    def __init__(
        self,
        client: mqtt.Client,
        outbox: Outbox,
        *,
        rate_per_s: float | None = 200.0,
        burst: int = 50,
        max_inflight: int = 32,
        purge_every_s: float = 60.0,
        loss_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.max_inflight = max_inflight
        self._clock = clock
        self._bucket = TokenBucket(rate_per_s, burst, clock())
        self._purge_every_s = purge_every_s
        self._next_purge = clock() + purge_every_s
        self._loss_every_s = loss_every_s
        self._next_loss = clock()
        self._cond = threading.Condition()
        self._woken = True
        self._stopping = False
        self._connected = False
        self._lock = threading.Lock()  # guards the maps below; never held while calling paho
        self._inflight: dict[int, mqtt.MQTTMessageInfo] = {}  # entry id -> info, in order
        self._by_mid: dict[int, int] = {}  # mid -> entry id
        self._acked_ids: set[int] = set()
        self._to_ack: list[int] = []  # acknowledged, not yet written to the outbox
        self._cursor = 0  # highest entry id handed to paho
        # Resends (guarded by _lock): requests waiting for their lookup, the queued ranges of
        # held seqs ([boot_id, first, last], disjoint, in arrival order), the rows read from
        # the head range, and the copies paho holds (at most a wire window of them).
        self._resend_requests: deque[_ResendRequest] = deque()
        self._resend_ranges: deque[list[Any]] = deque()
        self._resend_queued = 0
        self._resend_rows: deque[OutboxEntry] = deque()
        self._resend_infos: deque[mqtt.MQTTMessageInfo] = deque()
        self._live_caught_up = False
        self.resent = 0
        self._thread: threading.Thread | None = None
        self.published = 0
        self.acknowledged = 0
        # On the wire at most `max_inflight` (paho enforces it); handed to paho up to four
        # windows, so paho refills the wire window from its own thread at each PUBACK instead
        # of waiting for this thread to wake.
        self._handoff = 4 * max_inflight
        client.max_inflight_messages_set(max_inflight)
        outbox.add_listener(self.wake)

    # --- wiring ---------------------------------------------------------------------------

    def attach(self) -> None:
        """Install paho callbacks that feed the pump, calling any set before."""
        # Any: paho types these as a union of its v1 and v2 signatures; make_client uses v2.
        prev_connect: Any = self.client.on_connect
        prev_disconnect: Any = self.client.on_disconnect
        prev_publish: Any = self.client.on_publish

        def on_connect(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
        ) -> None:
            if prev_connect:
                prev_connect(client, userdata, flags, reason, props)
            if not reason.is_failure:
                self.handle_connect()

        def on_disconnect(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
        ) -> None:
            if prev_disconnect:
                prev_disconnect(client, userdata, flags, reason, props)
            self.handle_disconnect()

        def on_publish(
            client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
        ) -> None:
            if prev_publish:
                prev_publish(client, userdata, mid, reason, props)
            self.handle_publish(mid)

        self.client.on_connect = on_connect
        self.client.on_disconnect = on_disconnect
        self.client.on_publish = on_publish

    def handle_connect(self) -> None:
        self._connected = True
        self.wake()

    def handle_disconnect(self) -> None:
        # In-flight publishes stay with paho, which sends them again after reconnecting.
        self._connected = False

    def handle_publish(self, mid: int) -> None:
        with self._lock:
            entry_id = self._by_mid.pop(mid, None)
            if entry_id is not None:
                self._acked_ids.add(entry_id)
            # Wake the pump once a wire window is acknowledged or everything is: it refills
            # in batches, so waking it at every PUBACK would only cost thread switches.
            due = (
                entry_id is None
                or len(self._acked_ids) >= self.max_inflight
                or len(self._acked_ids) >= len(self._inflight)
            )
        if due:
            self.wake()

    def reset(self) -> None:
        """The client was replaced or its session lost: publish everything unacked again."""
        with self._lock:
            self._inflight.clear()
            self._by_mid.clear()
            self._acked_ids.clear()
            self._cursor = 0
        self.outbox.unclaim()
        self.wake()

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout)
        self._collect_acks(flush=True)

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def resend(self, boot_id: str, from_seq: int, to_seq: int) -> ResendResult:
        """Queue held events of one boot for publishing again (a consumer saw a gap), on the
        calling thread; `request_resend` does the same on the pump thread."""
        result = self._queue_resend(boot_id, from_seq, to_seq)
        self.wake()
        return result

    def request_resend(
        self, boot_id: str, from_seq: int, to_seq: int, answer: Callable[[ResendResult], None]
    ) -> bool:
        """Hand a resend to the pump thread, which looks it up and calls `answer` with the
        result; False (nothing done) when `RESEND_MAX_REQUESTS` are already waiting. Cheap:
        paho's network thread calls it for every `cmd/resend`."""
        with self._lock:
            if len(self._resend_requests) >= RESEND_MAX_REQUESTS:
                return False
            self._resend_requests.append(_ResendRequest(boot_id, from_seq, to_seq, answer))
        self.wake()
        return True

    @property
    def resend_queued(self) -> int:
        """Seqs waiting to be published again (held rows, rows already read included)."""
        with self._lock:
            return self._resend_queued + len(self._resend_rows)

    def _queue_resend(self, boot_id: str, from_seq: int, to_seq: int) -> ResendResult:
        """Look a range up (at most RESEND_MAX_SPAN seqs, by range in SQL) and queue its held
        runs that are not queued already; everything else of the range is `missing`."""
        last = min(to_seq, from_seq + RESEND_MAX_SPAN - 1)
        held = self.outbox.held_seqs(boot_id, from_seq, last)
        runs: list[list[int]] = []  # consecutive held seqs
        for seq in held:
            if runs and runs[-1][1] == seq - 1:
                runs[-1][1] = seq
            else:
                runs.append([seq, seq])
        missing: list[SeqRange] = []
        expected = from_seq
        for first, end in runs:
            if first > expected:
                missing.append(SeqRange(boot_id, expected, first - 1))
            expected = end + 1
        if expected <= to_seq:
            missing.append(SeqRange(boot_id, expected, to_seq))
        if len(missing) > MAX_LOSS_RANGES:
            tail = SeqRange(boot_id, missing[MAX_LOSS_RANGES - 1].from_seq, to_seq)
            missing = [*missing[: MAX_LOSS_RANGES - 1], tail]
        with self._lock:
            new = self._unqueued(boot_id, runs)
            count = sum(b - a + 1 for a, b in new)
            if (
                self._resend_queued + count > RESEND_MAX_QUEUED
                or len(self._resend_ranges) + len(new) > RESEND_MAX_RANGES
            ):
                return ResendResult(
                    0,
                    (),
                    f"{self._resend_queued} events already wait to be resent (at most "
                    f"{RESEND_MAX_QUEUED}); ask again later",
                )
            self._resend_ranges.extend([boot_id, a, b] for a, b in new)
            self._resend_queued += count
        return ResendResult(len(held), tuple(missing))

    def _unqueued(self, boot_id: str, runs: list[list[int]]) -> list[tuple[int, int]]:
        """The parts of `runs` no queued range covers (the same gap asked for by several
        consumers, or again before it was resent, is published once). Under _lock."""
        pieces = [(a, b) for a, b in runs]
        queued = [(r[1], r[2]) for r in self._resend_ranges if r[0] == boot_id]
        queued += [(e.seq, e.seq) for e in self._resend_rows if e.boot_id == boot_id]
        for qa, qb in queued:
            rest: list[tuple[int, int]] = []
            for a, b in pieces:
                if b < qa or a > qb:
                    rest.append((a, b))
                    continue
                if a < qa:
                    rest.append((a, qa - 1))
                if b > qb:
                    rest.append((qb + 1, b))
            pieces = rest
            if not pieces:
                break
        return pieces

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        timeout: float | None = None
        while True:
            with self._cond:
                if not self._woken and not self._stopping:
                    self._cond.wait(timeout)
                self._woken = False
                if self._stopping:
                    return
            try:
                timeout = self._cycle()
            except Exception:  # the pump must outlive a bad cycle (disk full, closed client)
                log.exception("outbox pump cycle failed; retrying")
                timeout = 1.0

    def _cycle(self) -> float | None:
        """One pass; returns how long to sleep unless woken (None: until woken)."""
        self._collect_acks()
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every_s
            self.outbox.purge()
        self._answer_resend_requests()
        if not (self._connected and self.client.is_connected()):
            return 1.0
        # At most one loss report per interval: a steady overflow gives a few summaries.
        if self.outbox.loss_pending and now >= self._next_loss:
            self._next_loss = now + self._loss_every_s
            self.outbox.flush_loss()
        # Live events (and an outage's backlog) first: resent copies only once caught up.
        wait = self._publish_pending()
        if wait is None and self._live_caught_up:
            wait = self._publish_resends()
        if wait is not None:
            return wait
        if self._resend_requests:
            return 0.0  # more lookups waiting
        # Paho marks a message published just after calling on_publish; a short re-check
        # catches an acknowledgement that raced with our bookkeeping.
        return 0.02 if self.inflight or self._resend_infos else None

    def _answer_resend_requests(self) -> None:
        """Look up a few waiting resends (SQL by range, on this thread, never paho's)."""
        for _ in range(RESEND_LOOKUPS_PER_CYCLE):
            with self._lock:
                if not self._resend_requests:
                    return
                request = self._resend_requests.popleft()
            try:
                result = self._queue_resend(request.boot_id, request.from_seq, request.to_seq)
            except Exception as exc:  # the outbox cannot be read: say so, keep pumping
                log.exception("resend lookup failed")
                result = ResendResult(
                    0, (), f"the outbox cannot be read now ({exc}); ask again later"
                )
            try:
                request.answer(result)
            except Exception:  # a failing reply must not stop the pump
                log.exception("answering a resend request failed")

    def _publish_resends(self) -> float | None:
        """Publish queued copies, at most a wire window of them in paho at a time, so a live
        event stored meanwhile waits behind no more than that."""
        while True:
            with self._lock:
                while self._resend_infos and _published(self._resend_infos[0]):
                    self._resend_infos.popleft()
                if len(self._resend_infos) >= self.max_inflight:
                    return 0.02  # a PUBACK wakes us sooner
            entry = self._next_resend()
            if entry is None:
                return None
            wait = self._bucket.take(self._clock())
            if wait > 0:
                return wait
            info = self.client.publish(entry.topic, entry.payload, qos=entry.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                return 0.1  # paho's queue is full: try again on the next pass
            with self._lock:
                self._resend_rows.popleft()
                self._resend_infos.append(info)
            self.resent += 1

    def _next_resend(self) -> OutboxEntry | None:
        """The next copy to publish, reading the head range a batch at a time."""
        while True:
            with self._lock:
                if self._resend_rows:
                    return self._resend_rows[0]
                if not self._resend_ranges:
                    return None
                boot_id, first, last = self._resend_ranges[0]
            rows = self.outbox.get_range(boot_id, first, last, limit=RESEND_BATCH)
            with self._lock:
                head = self._resend_ranges[0]
                done_to = rows[-1].seq if len(rows) == RESEND_BATCH else last
                self._resend_queued -= done_to - first + 1
                if done_to >= last:
                    self._resend_ranges.popleft()
                else:
                    head[1] = done_to + 1
                self._resend_rows.extend(rows)

    def _publish_pending(self) -> float | None:
        self._live_caught_up = False
        room = self._handoff - self.inflight
        # Refill in batches: one query per wire window, not per PUBACK.
        if room <= 0 or (room < 2 * self.max_inflight and room < self._handoff):
            return None
        entries = self.outbox.pending(room, after_id=self._cursor, claim=True)
        for entry in entries:
            wait = self._bucket.take(self._clock())
            if wait > 0:
                return wait
            info = self.client.publish(entry.topic, entry.payload, qos=entry.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # Not queued by paho (queue full): try again on the next pass.
                log.warning(
                    "outbox publish of seq %d refused: %s", entry.seq, mqtt.error_string(info.rc)
                )
                return 0.1
            with self._lock:
                self._inflight[entry.id] = info
                self._by_mid[info.mid] = entry.id
                self._cursor = entry.id
            self.published += 1
        self._live_caught_up = len(entries) < room
        return None

    def _collect_acks(self, flush: bool = False) -> None:
        with self._lock:
            if self._acked_ids:
                done = [entry_id for entry_id in self._acked_ids if entry_id in self._inflight]
            else:
                # Nothing known acknowledged by mid: look for a PUBACK that raced with our
                # bookkeeping (or a publish queued while disconnected).
                done = [eid for eid, info in self._inflight.items() if _published(info)]
            for entry_id in done:
                info = self._inflight.pop(entry_id)
                if self._by_mid.get(info.mid) == entry_id:
                    del self._by_mid[info.mid]
            self._acked_ids.clear()  # all handled, or stale after reset()
            idle = not self._inflight
        self._to_ack.extend(done)
        self.acknowledged += len(done)
        # Acks are written in batches (a lost ack only causes a duplicate), and at once when
        # the window is idle so `stats().pending` is exact whenever nothing is in flight.
        if self._to_ack and (flush or idle or len(self._to_ack) >= 4 * self._handoff):
            self.outbox.ack(self._to_ack)
            self._to_ack = []
