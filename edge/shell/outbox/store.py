"""The durable outbox: every seat event is on disk (SQLite, WAL, synchronous=FULL) before it
is published, numbered `(boot_id, seq)`, bounded by a disk budget with a documented drop order.

`Outbox` is the store (the seat's only writer of the file); `edge.shell.outbox.pump.OutboxPump`
drains it through one paho client, and `edge.shell.outbox.inspect` reads it for doctor without
writing. A disk that cannot take a write (full, failing) makes the outbox hold new events in
memory (bounded) until it can; a damaged database file is set aside and a fresh one started.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from edge.api.payloads import event_bytes
from edge.base.errors import ParseError, SeatboxError

log = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
# Events held in memory while the disk cannot take them (counted like the disk budget): about
# 30,000 typical events, hours of a busy seat; the oldest informational ones go first beyond.
DEFAULT_MEMORY_BYTES = 8 * 1024 * 1024
# Rough per-row cost of SQLite's record header, rowid and index entries; the budget counts
# this plus the stored text so that many tiny events cannot exceed it unnoticed.
ROW_OVERHEAD_BYTES = 96
LOSS_TYPE = "outbox.loss"
RESET_TYPE = "outbox.reset"
# A loss event lists exact dropped seq ranges up to this many per boot, then one span.
MAX_LOSS_RANGES = 50
# While the disk cannot take a write, try again at most this often (each try is one failed
# transaction: cheap, but not at every event of a burst).
RETRY_S = 1.0
# quick_check at open reads every page (~0.1 s for a full 64 MB outbox on a Pi 4); a disk so
# slow that it takes longer is left unchecked rather than holding up the seat's start.
OPEN_CHECK_S = 5.0
# A full disk counts as back once this much is free again: a few freed blocks would only let
# one event in and the next fail (the WAL alone grows by up to 4 MiB between checkpoints).
RECOVER_FREE_BYTES = 1024 * 1024
# The outbox's file in a seat's state folder, and the mark of a damaged one set aside
# (`outbox.sqlite.corrupt-20261203T113500Z`, see corrupt_copy_name).
OUTBOX_FILE = "outbox.sqlite"
CORRUPT_MARK = ".corrupt-"

# Loss reasons (`outbox.loss` data.reason).
BUDGET = "disk_budget"  # the configured [storage] outbox_budget_mb was full
DISK_FULL = "disk_full"  # the disk could not take the events; memory for them ran out

# Storage states (`state.storage.outbox`, the STATUS line, `Outbox.health()`).
OK = "ok"
HOLDING = {"full": "disk_full", "error": "disk_error"}

# SQLite primary result codes (sqlite3.h).
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
_SQLITE_IOERR = 10
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14


class Priority(IntEnum):
    """Drop class: the lowest goes first when the budget is full, oldest first within one."""

    INFO = 1  # transitions: call.*, mute.*, presence.*, headset.* ...
    CONDUCT = 2  # conduct and attendance records
    LOSS = 3  # the outbox's own reports (loss, reset)


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
    if event_type in (LOSS_TYPE, RESET_TYPE):
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


class EventDataError(ParseError):
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
    stored: bool = True  # False: no room even after dropping (budget or memory); a loss
    held: bool = False  # in memory only: the disk could not take it (yet)


@dataclass(frozen=True)
class SeqRange:
    boot_id: str
    from_seq: int
    to_seq: int


@dataclass(frozen=True)
class ResendResult:
    """The answer to a `cmd/resend` (the pump looks the range up, the seat replies)."""

    queued: int  # events found in the outbox and queued for publishing again
    missing: tuple[SeqRange, ...]  # asked for but no longer held (or never existed)
    refused: str = ""  # not empty: nothing was queued, and why (ask again later)


@dataclass(frozen=True)
class LossReport:
    """Events dropped from the outbox since the last report, as sent in `outbox.loss`."""

    dropped: Mapping[str, int]  # event type -> count
    ranges: tuple[SeqRange, ...]
    exact: bool  # False when ranges were merged into spans (see MAX_LOSS_RANGES)

    def as_data(self, budget_bytes: int, reason: str = "disk_budget") -> dict[str, Any]:
        return {
            "reason": reason,
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
    held: int = 0  # of `pending`, held in memory only (the disk cannot take them now)


class OutboxError(SeatboxError):
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


@dataclass(frozen=True)
class OutboxHealth:
    """Can the outbox write? `state` is `ok`, `disk_full` or `disk_error` (events are then
    held in memory, `held` of them, until the disk takes them again)."""

    state: str
    since: float  # wall clock (epoch s) this state began
    held: int  # events held in memory only: lost if the seat stops before the disk is back
    detail: str  # the error that started it ("" when ok)


def _code(err: BaseException) -> int:
    return int(getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF


class _Damaged(sqlite3.DatabaseError):
    """The file opened, but its pages fail the integrity check."""


def _is_corrupt(err: BaseException) -> bool:
    """A damaged file: no retry helps; set it aside (not a full or failing disk)."""
    if isinstance(err, _Damaged) or _code(err) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    # The loss record or counter in `meta` unreadable (garbage that SQLite could still read).
    return isinstance(err, ValueError | KeyError | TypeError)


def _disk_trouble(err: BaseException) -> str | None:
    """`full` or `error` when the disk cannot take a write now (it may later), else None."""
    code = _code(err)
    if code == _SQLITE_FULL:
        return "full"
    if code in (_SQLITE_IOERR, _SQLITE_READONLY, _SQLITE_CANTOPEN):
        return "error"
    return None


def corrupt_copy_name(path: Path, now: float) -> Path:
    """Where a damaged outbox is kept: `outbox.sqlite.corrupt-20261203T113500Z`."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return path.with_name(f"{path.name}{CORRUPT_MARK}{stamp}")


class Outbox:
    """Durable, bounded, ordered store of events waiting for (or kept after) the broker's PUBACK.

    Opening it starts a new boot: `boot_id` is new and `seq` restarts at 0; rows of earlier
    boots keep their numbers and are published first. Thread-safe: the seat adds, the pump
    reads and acknowledges.

    When the disk cannot take a write (full, I/O error, read-only) new events are numbered as
    usual and held in memory, up to `memory_bytes`, published from there when connected and
    written once the disk takes them again (tried at most every RETRY_S); events that memory
    cannot hold are dropped in the budget's order and reported in `outbox.loss`. A damaged
    file (at open or later) is renamed `<name>.corrupt-<UTC time>` with its -wal and -shm, a
    fresh outbox takes its place and an `outbox.reset` event says so.
    """

    def __init__(
        self,
        path: str | Path,
        topic: str,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        keep_acked_s: float = 3600.0,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if budget_bytes < 16384:
            raise ValueError(f"outbox budget_bytes: expected >= 16384, got {budget_bytes}")
        if memory_bytes < 16384:
            raise ValueError(f"outbox memory_bytes: expected >= 16384, got {memory_bytes}")
        self.path = Path(path)
        self.topic = topic
        self.budget_bytes = budget_bytes
        self.keep_acked_s = keep_acked_s
        self.memory_bytes = memory_bytes
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._health_listeners: list[Callable[[OutboxHealth], None]] = []
        # Rows up to this id were read for publishing: they are in (or on their way into) the
        # MQTT client's memory, which sends them again after a reconnect. Dropping them would
        # free nothing and report as lost events that still arrive.
        self._claimed = 0
        # Held in memory while the disk cannot take them: id -> entry (in id order), and the
        # ids by priority (ascending) to find the oldest of the lowest class quickly.
        self._held: dict[int, OutboxEntry] = {}
        self._held_ids: dict[Priority, list[int]] = {p: [] for p in Priority}
        self._held_bytes = 0
        self._acks_waiting: dict[int, float] = {}  # PUBACKs the disk could not record yet
        self._trouble: str | None = None  # "full" / "error" while the disk cannot take writes
        self._trouble_detail = ""
        self._trouble_dropped = 0
        self._since = clock()
        self._next_try = 0.0
        self._reset_notes: list[dict[str, Any]] = []
        self._counter_unwritten = False
        self._loss_saved: dict[str, str] = {}  # the loss records as last committed
        self._losses: dict[str, _Loss] = {BUDGET: _Loss(), DISK_FULL: _Loss()}
        self._db: sqlite3.Connection | None = None
        counter = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            counter = self._open_db()
        except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
            if not _is_corrupt(err):
                self._close_quietly()
                raise OutboxError(f"outbox {self.path}: cannot open ({err})") from err
            counter = self._replace_damaged(err, "start")
        except OSError as err:
            raise OutboxError(f"outbox {self.path}: cannot open ({err})") from err
        # Counter for humans and ordering; random part so a wiped database never reuses an id
        # a consumer has already seen (it would de-duplicate new events away).
        self._counter = counter
        self.boot_id = new_boot_id(counter)
        self._next_seq = 0
        with self._lock:
            self._write_notes()

    # --- opening, and replacing a damaged file ------------------------------------------------

    def _open_db(self) -> int:
        """Open (or create) the file, check it, start a boot; returns the boot counter."""
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on stable storage before add_event returns (NORMAL may roll
        # back committed rows on power loss in WAL mode).
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA journal_size_limit=4194304")
        db.executescript(_SCHEMA)
        self._quick_check(db)
        counter = int(self._meta("boot_counter", "0")) + 1
        try:
            with self._txn():
                self._set_meta("boot_counter", str(counter))
        except sqlite3.Error as err:
            # A full disk at start: the backlog is still there to publish, new events wait in
            # memory (the counter is written with them).
            kind = _disk_trouble(err)
            if kind is None:
                raise
            self._start_trouble(kind, err)
            self._counter_unwritten = True
        self._bytes = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM entry").fetchone()[0])
        self._last_id = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM entry").fetchone()[0])
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entry'").fetchone()
        self._last_id = max(self._last_id, int(row[0]) if row else 0)
        self._loss_saved = {}
        for reason in self._losses:
            text = self._meta(loss_key(reason), "")
            if text:
                self._losses[reason] = _Loss.from_json(text)
                self._loss_saved[reason] = text
        return counter

    @staticmethod
    def _quick_check(db: sqlite3.Connection) -> None:
        """Garbage in data pages shows here at open, not in the middle of a later query."""
        started = time.monotonic()
        db.set_progress_handler(lambda: int(time.monotonic() - started > OPEN_CHECK_S), 10_000)
        try:
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError as err:
            if "interrupt" not in str(err):
                raise
            log.warning("outbox: integrity not checked at open (over %g s)", OPEN_CHECK_S)
            problems = ["ok"]
        finally:
            db.set_progress_handler(None, 0)
        if problems != ["ok"]:
            raise _Damaged(f"integrity check failed: {'; '.join(problems)}")

    def _close_quietly(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _replace_damaged(self, err: BaseException, during: str) -> int:
        """Keep the damaged file (and its -wal, -shm) as `<name>.corrupt-<UTC time>`, open a
        fresh one, note an `outbox.reset` event; returns the boot counter to use."""
        old_counter = self._salvage_counter()
        self._close_quietly()
        kept = corrupt_copy_name(self.path, self._clock())
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{kept}{suffix}"))
        log.error(
            "outbox %s is damaged (%s): kept as %s for inspection; starting a new outbox. "
            "Events not yet published from it are not sent (sqlite3 %s .recover can salvage them)",
            self.path,
            err,
            kept,
            kept.name,
        )
        try:
            counter = self._open_db()
            if old_counter and counter <= old_counter:
                with self._txn():
                    self._set_meta("boot_counter", str(old_counter + 1))
                counter = old_counter + 1
        except (sqlite3.Error, ValueError) as again:
            self._close_quietly()
            raise OutboxError(f"outbox {self.path}: cannot start a new one ({again})") from again
        self._reset_notes.append(
            {"reason": "corrupt", "error": str(err), "kept_as": str(kept), "during": during}
        )
        return counter

    def _salvage_counter(self) -> int:
        """The damaged file's boot counter if it can still be read (so boots keep sorting)."""
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'boot_counter'").fetchone()
            finally:
                db.close()
            return int(row[0]) if row else 0
        except (sqlite3.Error, ValueError, TypeError):
            return 0

    def _reset_live(self, err: BaseException) -> None:
        """Damage found while running: a fresh file; this boot and its numbering go on (ids
        too: the pump's cursor stays valid)."""
        last_id = self._last_id
        self._replace_damaged(err, "run")
        self._last_id = max(self._last_id, last_id)
        with self._txn():
            self._set_meta("boot_counter", str(self._counter))
        self._bytes = 0
        for reason, loss in self._losses.items():  # unreported loss was in the old file
            if not loss.empty():
                with self._txn():
                    self._set_meta(loss_key(reason), loss.to_json())
                self._loss_saved[reason] = loss.to_json()

    def _write_notes(self) -> None:
        """Store the `outbox.reset` events owed (after a damaged file was replaced)."""
        while self._reset_notes:
            note = self._reset_notes.pop(0)
            self._store([self._build(RESET_TYPE, encode_data(RESET_TYPE, note, None), None)])

    # --- writing --------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called (outside the lock) after events are stored, e.g. to wake a pump."""
        self._listeners.append(callback)

    def add_health_listener(self, callback: Callable[[OutboxHealth], None]) -> None:
        """Called (outside the lock, from the thread that noticed) when `health()` changes."""
        self._health_listeners.append(callback)

    def add_event(
        self, event_type: str, data: Mapping[str, Any], ts: float | str | None = None
    ) -> OutboxEntry:
        """Number the event, store it durably, return it; `ts` is wall-clock epoch seconds or
        the seat's ISO 8601 stamp as is (None: now). While the disk cannot take it, the event
        is held in memory (`held`); `stored` is False only when it was dropped."""
        return self.add_events([(event_type, data, ts)])[0]

    def add_events(
        self, events: Iterable[tuple[str, Mapping[str, Any], float | str | None]]
    ) -> list[OutboxEntry]:
        """Store several events in one transaction (one fsync)."""
        with self._lock:
            before = self._health_key()
            # Every event's data is encoded before any number is taken, so a refused event
            # (EventDataError) leaves no gap in the seqs, whatever its place in the batch.
            prepared = [(kind, encode_data(kind, data, ts), ts) for kind, data, ts in events]
            built = [self._build(kind, text, ts) for kind, text, ts in prepared]
            stored = self._store(built)
            self._write_notes()
            changed = self._health_key() != before
        self._notify(changed)
        return stored

    def _build(self, event_type: str, data_text: str, ts: float | str | None) -> OutboxEntry:
        """Number one event; `data_text` from `encode_data` (checked already)."""
        created = self._clock()
        stamp = ts if isinstance(ts, str) else iso_utc(created if ts is None else ts)
        payload = event_bytes(self.boot_id, self._next_seq, stamp, event_type, data_text)
        entry = OutboxEntry(
            self._last_id + 1,
            self.boot_id,
            self._next_seq,
            event_type,
            priority_of(event_type),
            self.topic,
            payload,
            1,
            created,
        )
        self._next_seq += 1
        self._last_id += 1
        return entry

    def _size(self, entry: OutboxEntry) -> int:
        return (
            len(entry.payload)
            + len(entry.topic)
            + len(entry.type)
            + len(entry.boot_id)
            + ROW_OVERHEAD_BYTES
        )

    def _store(self, entries: list[OutboxEntry]) -> list[OutboxEntry]:
        """Write the held events, waiting acks and `entries` in one transaction (in id order);
        hold them in memory when the disk cannot take them. Lock held."""
        for attempt in range(2):
            if not self._may_try():
                break
            saved = (
                self._bytes,
                {r: loss.to_json() for r, loss in self._losses.items() if not loss.empty()},
            )
            try:
                with self._txn():
                    written, loss_texts = self._write_all(entries)
            except sqlite3.Error as err:
                # Rolled back: the budget's count and the loss records as they were.
                self._bytes = saved[0]
                self._losses = {
                    r: _Loss.from_json(saved[1][r]) if r in saved[1] else _Loss()
                    for r in self._losses
                }
                if _is_corrupt(err) and attempt == 0:
                    self._reset_live(err)
                    continue
                kind = _disk_trouble(err)
                if kind is None:
                    raise OutboxError(f"outbox {self.path}: cannot store event ({err})") from err
                self._start_trouble(kind, err)
                break
            self._loss_saved = loss_texts
            self._end_trouble()
            return written
        return [self._hold(entry) for entry in entries]

    def _may_try(self) -> bool:
        """Try the disk? Always when it works; in trouble at most every RETRY_S, and a full
        one only once RECOVER_FREE_BYTES are free again."""
        if self._trouble is None:
            return True
        now = self._monotonic()
        if now < self._next_try:
            return False
        if self._trouble == "full":
            try:
                fs = os.statvfs(self.path.parent)
                free = fs.f_bavail * fs.f_frsize
            except OSError:
                free = 0
            if free < RECOVER_FREE_BYTES:
                self._next_try = now + RETRY_S
                return False
        return True

    def _write_all(self, entries: list[OutboxEntry]) -> tuple[list[OutboxEntry], dict[str, str]]:
        held = list(self._held.values())
        if self._counter_unwritten:  # the disk was full at start
            self._set_meta("boot_counter", str(self._counter))
        written = [self._write(entry) for entry in held + entries]
        if self._acks_waiting:
            self._db_().executemany(
                "UPDATE entry SET acked = ? WHERE id = ?",
                [(at, entry_id) for entry_id, at in self._acks_waiting.items()],
            )
        texts: dict[str, str] = {}
        for reason, loss in self._losses.items():
            texts[reason] = "" if loss.empty() else loss.to_json()
            if texts[reason] != self._loss_saved.get(reason, ""):
                self._set_meta(loss_key(reason), texts[reason])
        # Committed by the caller; memory is let go only then (see _end_trouble).
        return written[len(held) :], texts

    def _write(self, entry: OutboxEntry) -> OutboxEntry:
        size = self._size(entry)
        if not self._make_room(size, entry.priority):
            self._losses[BUDGET].add(entry.boot_id, entry.seq, entry.type)
            log.warning(
                "outbox full: dropped new %s seq %d (budget %d bytes)",
                entry.type,
                entry.seq,
                self.budget_bytes,
            )
            return replace(entry, stored=False, held=False)
        self._db_().execute(
            "INSERT INTO entry (id, boot_id, seq, type, priority, topic, payload, qos, created,"
            " size) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (
                entry.id,
                entry.boot_id,
                entry.seq,
                entry.type,
                int(entry.priority),
                entry.topic,
                entry.payload,
                entry.created,
                size,
            ),
        )
        self._bytes += size
        return entry  # built with held=False; a held one's return value is not used

    def _make_room(self, size: int, priority: Priority) -> bool:
        """Drop rows until `size` fits: acknowledged copies first, then unacknowledged events of
        the lowest class (never a class above the new event's), oldest first. Events use the
        budget minus the loss reserve; loss reports may use the reserve too."""
        db = self._db_()
        limit = self.budget_bytes
        if priority < Priority.LOSS:
            limit -= loss_reserve(self.budget_bytes)
        if size > limit:
            return False
        while self._bytes + size > limit:
            row = db.execute(
                "SELECT id, size FROM entry WHERE acked IS NOT NULL ORDER BY id LIMIT 1"
            ).fetchone()
            if row is not None:
                db.execute("DELETE FROM entry WHERE id = ?", (row[0],))
                self._bytes -= row[1]
                continue
            row = db.execute(
                "SELECT id, size, boot_id, seq, type FROM entry WHERE acked IS NULL"
                " AND priority <= ? AND id > ? ORDER BY priority, id LIMIT 1",
                (int(priority), self._claimed),
            ).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM entry WHERE id = ?", (row[0],))
            self._bytes -= row[1]
            self._losses[BUDGET].add(row[2], row[3], row[4])
        return True

    # --- holding in memory while the disk cannot take events ----------------------------------

    def _hold(self, entry: OutboxEntry) -> OutboxEntry:
        """Keep `entry` in memory, dropping held ones in the budget's order for room."""
        size = self._size(entry)
        limit = self.memory_bytes
        if entry.priority < Priority.LOSS:
            limit -= loss_reserve(self.memory_bytes)
        while self._held_bytes + size > limit:
            victim = self._held_victim(entry.priority) if size <= limit else None
            if victim is None:
                self._held_loss(entry)
                return replace(entry, stored=False, held=False)
            self._unhold(victim)
            self._held_loss(victim)
        self._held[entry.id] = entry
        self._held_ids[entry.priority].append(entry.id)
        self._held_bytes += size
        return replace(entry, held=True)

    def _held_victim(self, priority: Priority) -> OutboxEntry | None:
        """The oldest held event of the lowest class up to `priority` not yet handed out."""
        for level in Priority:
            if level > priority:
                return None
            ids = self._held_ids[level]
            at = bisect.bisect_right(ids, self._claimed)
            if at < len(ids):
                return self._held[ids[at]]
        return None

    def _unhold(self, entry: OutboxEntry) -> None:
        del self._held[entry.id]
        ids = self._held_ids[entry.priority]
        del ids[bisect.bisect_left(ids, entry.id)]
        self._held_bytes -= self._size(entry)

    def _held_loss(self, entry: OutboxEntry) -> None:
        if not self._trouble_dropped:
            log.error(
                "outbox: memory for held events is full (%d bytes): dropping the oldest "
                "informational events first; the loss is reported in outbox.loss",
                self.memory_bytes,
            )
        self._trouble_dropped += 1
        self._losses[DISK_FULL].add(entry.boot_id, entry.seq, entry.type)

    def _start_trouble(self, kind: str, err: BaseException) -> None:
        self._next_try = self._monotonic() + RETRY_S
        if self._trouble is not None:
            return
        self._trouble, self._trouble_detail = kind, str(err)
        self._trouble_dropped = 0
        self._since = self._clock()
        log.error(
            "outbox %s: the disk cannot take events (%s): holding new events in memory (at "
            "most %d bytes) until it can; they are lost if the seat stops before then",
            self.path,
            err,
            self.memory_bytes,
        )

    def _end_trouble(self) -> None:
        if self._trouble is None:
            return
        written = len(self._held)
        held_s = self._clock() - self._since
        for ids in self._held_ids.values():
            ids.clear()
        self._held.clear()
        self._held_bytes = 0
        self._acks_waiting.clear()
        self._counter_unwritten = False
        self._trouble, self._trouble_detail = None, ""
        self._since = self._clock()
        log.warning(
            "outbox %s: the disk takes events again: wrote %d held in memory over %.0f s, "
            "%d dropped (reported in outbox.loss)",
            self.path,
            written,
            held_s,
            self._trouble_dropped,
        )

    def retry(self) -> bool:
        """Write what is held if the disk takes it now (the pump calls this while `degraded`);
        True when nothing is held any more."""
        with self._lock:
            if self._trouble is None:
                return True
            if self._trouble != "full" and not (
                self._held or self._acks_waiting or self._counter_unwritten
            ):
                return False  # an empty write proves nothing: the next event will tell
            before = self._health_key()
            self._store([])
            self._write_notes()
            changed = self._health_key() != before
        self._notify(changed)
        return self._trouble is None

    @property
    def degraded(self) -> bool:
        """The disk does not take writes: events are held in memory."""
        return self._trouble is not None

    def health(self) -> OutboxHealth:
        with self._lock:
            state = OK if self._trouble is None else HOLDING[self._trouble]
            return OutboxHealth(state, self._since, len(self._held), self._trouble_detail)

    def _health_key(self) -> tuple[str | None, float]:
        return (self._trouble, self._since)

    def _notify(self, health_changed: bool) -> None:
        for callback in self._listeners:
            callback()
        if health_changed:
            health = self.health()
            for on_health in self._health_listeners:
                on_health(health)

    def flush_loss(self) -> OutboxEntry | None:
        """Turn the loss recorded since the last call into `outbox.loss` events (stored in
        order like any event, one per reason); the last of them, None when nothing was lost."""
        entry: OutboxEntry | None = None
        with self._lock:
            before = self._health_key()
            for reason in (BUDGET, DISK_FULL):
                loss = self._losses[reason]
                if loss.empty():
                    continue
                report = loss.report()
                self._losses[reason] = _Loss()
                data = report.as_data(self.budget_bytes, reason)
                if reason == DISK_FULL:
                    data["memory_bytes"] = self.memory_bytes
                entry = self._store(
                    [self._build(LOSS_TYPE, encode_data(LOSS_TYPE, data, None), None)]
                )[0]
                log.warning(
                    "outbox: reported %d dropped events (%s)", sum(report.dropped.values()), reason
                )
            self._write_notes()
            changed = self._health_key() != before
        if entry is not None or changed:
            self._notify(changed)
        return entry

    # --- reading and acknowledging ---------------------------------------------------------

    def _read(self, query: Callable[[sqlite3.Connection], Any], empty: Any) -> Any:
        """Run a read; damage found here replaces the file (its rows are gone), a failing
        disk gives `empty` (what is held in memory is still there). Lock held."""
        for attempt in range(2):
            try:
                return query(self._db_())
            except sqlite3.Error as err:
                if _is_corrupt(err) and attempt == 0:
                    self._reset_live(err)
                    self._write_notes()
                    continue
                if _disk_trouble(err) is None:
                    raise OutboxError(f"outbox {self.path}: cannot read ({err})") from err
                self._start_trouble(_disk_trouble(err) or "error", err)
                return empty
        return empty

    def pending(
        self, limit: int = 100, after_id: int = 0, claim: bool = False
    ) -> list[OutboxEntry]:
        """Unacknowledged events in publish order (oldest boot first, then seq), then those
        held in memory. `claim`: they are about to be published, so neither the budget nor the
        memory bound may drop them any more (see `unclaim`)."""
        with self._lock:
            rows = self._read(
                lambda db: db.execute(
                    f"SELECT {_COLUMNS} FROM entry INDEXED BY entry_unsent"
                    " WHERE acked IS NULL AND id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall(),
                [],
            )
            entries = [_entry(row) for row in rows]
            if len(entries) < limit and self._held:
                start = max([after_id] + [e.id for e in entries])
                held = [e for e in self._held.values() if e.id > start]
                entries += held[: limit - len(entries)]
            if claim and entries:
                self._claimed = max(self._claimed, entries[-1].id)
        return entries

    def unclaim(self) -> None:
        """The publisher lost what it held (a new client): every unacknowledged row may go."""
        with self._lock:
            self._claimed = 0

    def ack(self, entry_ids: Iterable[int]) -> None:
        """The broker acknowledged these rows: keep them for resends until purged or needed.
        Acknowledged events held in memory are let go (not written: nothing to resend)."""
        now = self._clock()
        with self._lock:
            ids: list[tuple[float, int]] = []
            for entry_id in entry_ids:
                held = self._held.get(entry_id)
                if held is not None:
                    self._unhold(held)
                elif self._trouble is not None:
                    self._acks_waiting[entry_id] = now
                else:
                    ids.append((now, entry_id))
            if not ids:
                return
            db = self._db_()
            # A PUBACK forgotten on power loss only means the event is sent again and the
            # consumer drops the copy, so acks skip the fsync that events must have.
            try:
                db.execute("PRAGMA synchronous=NORMAL")
                with self._txn():
                    db.executemany("UPDATE entry SET acked = ? WHERE id = ?", ids)
            except sqlite3.Error as err:
                if _is_corrupt(err):
                    self._reset_live(err)  # the rows are gone with the old file
                    self._write_notes()
                elif (kind := _disk_trouble(err)) is not None:
                    self._start_trouble(kind, err)
                    self._acks_waiting.update({entry_id: at for at, entry_id in ids})
                else:
                    raise OutboxError(f"outbox {self.path}: cannot record PUBACK ({err})") from err
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._db_().execute("PRAGMA synchronous=FULL")

    def get_range(
        self, boot_id: str, first_seq: int, last_seq: int, limit: int = 1000
    ) -> list[OutboxEntry]:
        """Events of one boot still held (acknowledged or not), for a consumer's resend."""
        with self._lock:
            rows = self._read(
                lambda db: db.execute(
                    f"SELECT {_COLUMNS} FROM entry WHERE boot_id = ? AND seq BETWEEN ? AND ?"
                    " ORDER BY seq LIMIT ?",
                    (boot_id, first_seq, last_seq, limit),
                ).fetchall(),
                [],
            )
            entries = [_entry(row) for row in rows]
            entries += [
                e
                for e in self._held.values()
                if e.boot_id == boot_id and first_seq <= e.seq <= last_seq
            ]
        return entries[:limit]

    def held_seqs(self, boot_id: str, first_seq: int, last_seq: int) -> list[int]:
        """The seqs of one boot still held in a range (the (boot_id, seq) index alone: a
        resend lookup of 1,000 seqs reads no payload)."""
        with self._lock:
            rows = self._read(
                lambda db: db.execute(
                    "SELECT seq FROM entry WHERE boot_id = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                    (boot_id, first_seq, last_seq),
                ).fetchall(),
                [],
            )
            seqs = {int(row[0]) for row in rows}
            # Events held in memory while the disk is full are still the seat's to send.
            seqs.update(
                e.seq
                for e in self._held.values()
                if e.boot_id == boot_id and first_seq <= e.seq <= last_seq
            )
        return sorted(seqs)

    def purge(self) -> int:
        """Delete acknowledged rows older than `keep_acked_s`; returns how many."""
        horizon = self._clock() - self.keep_acked_s
        with self._lock:
            if self._trouble is not None:
                return 0  # a delete needs room in the journal too; after the disk is back
            try:
                with self._txn():
                    db = self._db_()
                    removed = db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entry"
                        " WHERE acked IS NOT NULL AND acked < ?",
                        (horizon,),
                    ).fetchone()
                    db.execute(
                        "DELETE FROM entry WHERE acked IS NOT NULL AND acked < ?", (horizon,)
                    )
            except sqlite3.Error as err:
                if _is_corrupt(err):
                    self._reset_live(err)
                    self._write_notes()
                elif (kind := _disk_trouble(err)) is not None:
                    self._start_trouble(kind, err)
                else:
                    raise OutboxError(f"outbox {self.path}: cannot purge ({err})") from err
                return 0
            self._bytes -= int(removed[1])
        return int(removed[0])

    @property
    def loss_pending(self) -> bool:
        return any(not loss.empty() for loss in self._losses.values())

    def stats(self) -> OutboxStats:
        with self._lock:
            pending, oldest, kept = self._read(
                lambda db: (
                    *db.execute(
                        "SELECT COUNT(*), MIN(created) FROM entry WHERE acked IS NULL"
                    ).fetchone(),
                    db.execute("SELECT COUNT(*) FROM entry WHERE acked IS NOT NULL").fetchone()[0],
                ),
                (0, None, 0),
            )
            held = list(self._held.values())
            if held and oldest is None:
                oldest = held[0].created
            return OutboxStats(
                int(pending) - len(self._acks_waiting) + len(held),
                int(kept),
                self._bytes,
                self.budget_bytes,
                oldest,
                self.loss_pending,
                len(held),
            )

    def close(self) -> None:
        with self._lock:
            if self._held:
                log.error(
                    "outbox: stopping with %d events held in memory that the disk never took: "
                    "they are lost",
                    len(self._held),
                )
            self._close_quietly()

    # --- internals --------------------------------------------------------------------------

    def _db_(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("outbox database is closed")
        return self._db

    def _txn(self) -> _Transaction:
        return _Transaction(self._db_())

    def _meta(self, key: str, default: str) -> str:
        row = self._db_().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db_().execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )


def loss_key(reason: str) -> str:
    """`meta` key of the unreported loss of one reason (`loss`: the budget's, as always)."""
    return "loss" if reason == BUDGET else f"loss.{reason}"


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        if kind is None:
            self._db.execute("COMMIT")
        # SQLITE_FULL and I/O errors may have rolled the transaction back already.
        elif self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the statement's error is the one to tell
                self._db.execute("ROLLBACK")
