"""The floor's store: what the floor service keeps of what seats publish, and for how long.

`Store` is the interface the ingest writes to; `SqliteStore` (stdlib sqlite3, WAL; nothing to
set up) and `floor.store_pg.PostgresStore` (`[store] url = "postgresql://..."`) implement it with
the same tables and the same semantics; `open_store(config, paths)` picks one. The ingest writes
in batches (`write_batch`: many events in one transaction); a store that cannot be reached raises
`StoreUnavailable`, which the ingest answers by keeping the batch and retrying.

Kept:
- `events`: every event once, keyed `(site, seat, boot_id, seq)`; a second copy (QoS 1
  redelivery, a resend, a restarted service) is ignored and counted (`duplicates`).
- `seats`: the latest retained `state` and `info` and the availability of each seat.
- `rollups`: per seat and day, numbers computed from the events when first stored (ROLLUPS).
Never kept: `levels` (no method takes them; the ingest does not subscribe to them).

The day of an event is the date of its own `ts` at the seat's UTC offset (the seat's local
day), not the time it arrived. Retention is enforced by `purge(now)`, which the service calls:
raw events by their `ts`, rollups by their day, each with its own limit.

Every id is checked (`edge.base.schema.valid_id`, as `edge.api.topics` does) before it reaches
SQL, and every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from edge.api.models import StreamEvent
from edge.base.errors import ConfigError, ParseError
from edge.base.schema import valid_id

if TYPE_CHECKING:
    from floor.config import FloorConfig, FloorPaths

# name -> (event type, data key or None to count, how): what each rollup is and where it
# comes from. "count" adds 1 per event; "sum" adds data[key] (seconds) when it is a number.
ROLLUPS: dict[str, tuple[str, str | None, str]] = {
    "calls": ("call.ringing", None, "count"),  # calls offered: rang at the seat
    "answered": ("call.answered", None, "count"),
    "answer_s": ("call.answered", "answer_s", "sum"),  # ring to answer, summed
    "answered_late": ("answer.late", None, "count"),  # past the profile's ring limit
    "holds": ("call.hold", None, "count"),
    "hold_s": ("call.ended", "hold_s", "sum"),  # each call's total hold, at hang-up
    "holds_too_long": ("hold.too_long", None, "count"),
    "talk_s": ("call.ended", "talk_s", "sum"),
    "away_count": ("presence.away", None, "count"),
    "away_s": ("presence.present", "away_s", "sum"),  # each absence, when the agent is back
}
# Besides ROLLUPS, every event type is counted as `events.<type>` (conduct events by type).


@dataclass(frozen=True)
class Purged:
    events: int
    rollups: int
    seats: int


class StoreUnavailable(RuntimeError):
    """The store cannot be read or written now (PostgreSQL stopped, a disk error): nothing of
    the failed call was kept; the caller may retry the same call later."""


SeatColumn = Literal["state", "info", "online"]


@dataclass
class Batch:
    """What the ingest writes in one transaction: new events, the latest `state`/`info`/
    availability per seat (only the newest of each counts), counters to add."""

    events: list[tuple[str, StreamEvent, float]]  # (seat, event, arrival wall time)
    seats: dict[tuple[SeatColumn, str], tuple[str | bool, float]]  # (column, seat) -> value, now
    counts: dict[str, int]

    def __len__(self) -> int:
        return len(self.events) + len(self.seats) + len(self.counts)


@dataclass(frozen=True)
class Written:
    stored: int  # new events
    duplicates: int  # events the store already had


@dataclass(frozen=True)
class StreamSpan:
    """What the store holds of one seat's boot: the last seq and the seqs missing below it
    (to seed a restarted service's stream tracker, so it does not ask for all of it again)."""

    seat: str
    boot_id: str
    last: int
    missing: list[tuple[int, int]]


class Store(Protocol):
    """What the ingest needs of a store (and reports will read)."""

    def write_batch(self, site: str, batch: Batch) -> Written:
        """All of `batch` in one transaction (event rollups with their events);
        StoreUnavailable (and nothing written) when the store cannot be reached."""

    def streams(self, site: str, now: float) -> list[StreamSpan]:
        """Per seat and boot, the last seq stored and the gaps below it."""

    def add_event(self, site: str, seat: str, event: StreamEvent, now: float) -> bool:
        """Store one event; False (and counted) if `(site, seat, boot_id, seq)` is known."""

    def put_state(self, site: str, seat: str, payload: bytes, now: float) -> None: ...

    def put_info(self, site: str, seat: str, payload: bytes, now: float) -> None: ...

    def put_availability(self, site: str, seat: str, online: bool, now: float) -> None: ...

    def count(self, name: str, by: int = 1) -> None:
        """Add to a service counter (`invalid`, `resend_requests`, ...)."""

    def counters(self) -> dict[str, int]: ...

    def purge(self, now: float) -> Purged: ...

    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL, seat TEXT NOT NULL, boot_id TEXT NOT NULL, seq INTEGER NOT NULL,
    ts TEXT NOT NULL, ts_epoch REAL NOT NULL, day TEXT NOT NULL, type TEXT NOT NULL,
    data TEXT NOT NULL, stored_at REAL NOT NULL,
    PRIMARY KEY (site, seat, boot_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_epoch);
CREATE INDEX IF NOT EXISTS events_day ON events (site, day, seat);
CREATE TABLE IF NOT EXISTS seats (
    site TEXT NOT NULL, seat TEXT NOT NULL,
    state TEXT, info TEXT, online INTEGER, updated REAL NOT NULL,
    PRIMARY KEY (site, seat)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups (
    site TEXT NOT NULL, seat TEXT NOT NULL, day TEXT NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (site, seat, day, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def check_batch(site: str, batch: Batch) -> None:
    """Every id of a batch valid (ParseError otherwise), before any of it reaches SQL."""
    for seat, _event, _now in batch.events:
        _ids(site, seat)
    for column, seat in batch.seats:
        _ids(site, seat)
        assert column in ("state", "info", "online")  # a name of ours, never from input


def spans(islands: list[tuple[str, str, int, int, float]], oldest_kept: float) -> list[StreamSpan]:
    """StreamSpans from the runs of consecutive seqs stored, `(seat, boot_id, first, last,
    ts_epoch of first)`, ordered by seat, boot and first. Seqs before a boot's first stored one
    are missing unless that boot's first stored event is older than `oldest_kept` (then
    retention may have removed them: not asked for again)."""
    out: list[StreamSpan] = []
    current: StreamSpan | None = None
    for seat, boot, first, last, first_ts in islands:
        if current is None or (current.seat, current.boot_id) != (seat, boot):
            current = StreamSpan(seat, boot, last, [])
            out.append(current)
            if first > 0 and first_ts >= oldest_kept:
                current.missing.append((0, first - 1))
        else:
            if first > current.last + 1:
                current.missing.append((current.last + 1, first - 1))
            current = StreamSpan(seat, boot, last, current.missing)
            out[-1] = current
    return out


# Margin on the retention when deciding whether a boot's early seqs were purged or never came.
PURGE_MARGIN_S = 86400.0

ISLANDS_SQL = """
SELECT seat, boot_id, MIN(seq), MAX(seq), MIN(ts_epoch) FROM (
    SELECT seat, boot_id, seq, ts_epoch,
           seq - ROW_NUMBER() OVER (PARTITION BY seat, boot_id ORDER BY seq) AS run
    FROM events WHERE site = {p}
) AS numbered GROUP BY seat, boot_id, run ORDER BY seat, boot_id, MIN(seq)
"""


def _ids(site: str, seat: str) -> None:
    for what, value in (("site", site), ("seat", seat)):
        if not (isinstance(value, str) and valid_id(value)):
            raise ParseError(f"{what} id {str(value)[:70]!r}: expected 1-64 of A-Z a-z 0-9 _ -")


def _moment(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))  # models checked the format


def rollup_rows(event: StreamEvent) -> list[tuple[str, float]]:
    """The (name, amount) an event adds to its seat-day."""
    rows: list[tuple[str, float]] = [(f"events.{event.type}", 1.0)]
    for name, (kind, key, how) in ROLLUPS.items():
        if event.type != kind:
            continue
        if how == "count":
            rows.append((name, 1.0))
            continue
        value = event.data.get(key) if key else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            rows.append((name, float(value)))
    return rows


class SqliteStore:
    """The store in one SQLite file (WAL). Safe to call from several threads (one lock)."""

    def __init__(
        self, path: str | Path, *, raw_s: float = 7 * 86400.0, rollups_s: float = 90 * 86400.0
    ) -> None:
        self.path = str(path)
        self.raw_s, self.rollups_s = raw_s, rollups_s
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"[store] dir: cannot open {self.path} ({exc})") from None
        self._lock = threading.Lock()

    def add_event(self, site: str, seat: str, event: StreamEvent, now: float) -> bool:
        _ids(site, seat)
        moment = _moment(event.ts)
        day = moment.date().isoformat()  # the seat's local day (its ts carries its offset)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    site,
                    seat,
                    event.boot_id,
                    event.seq,
                    event.ts,
                    moment.timestamp(),
                    day,
                    event.type,
                    json.dumps(event.data, separators=(",", ":")),
                    now,
                ),
            )
            if cursor.rowcount == 0:
                self._count("duplicates", 1)
                return False
            self._db.executemany(
                "INSERT INTO rollups VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, seat, day, name) "
                "DO UPDATE SET value = value + excluded.value",
                [(site, seat, day, name, amount) for name, amount in rollup_rows(event)],
            )
            return True

    def write_batch(self, site: str, batch: Batch) -> Written:
        check_batch(site, batch)
        stored = duplicates = 0
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                totals: dict[tuple[str, str, str], float] = {}
                for seat, event, now in batch.events:
                    moment = _moment(event.ts)
                    day = moment.date().isoformat()
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            site,
                            seat,
                            event.boot_id,
                            event.seq,
                            event.ts,
                            moment.timestamp(),
                            day,
                            event.type,
                            json.dumps(event.data, separators=(",", ":")),
                            now,
                        ),
                    )
                    if cursor.rowcount == 0:
                        duplicates += 1
                        continue
                    stored += 1
                    for name, amount in rollup_rows(event):
                        key = (seat, day, name)
                        totals[key] = totals.get(key, 0.0) + amount
                self._db.executemany(
                    "INSERT INTO rollups VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (site, seat, day, name) "
                    "DO UPDATE SET value = value + excluded.value",
                    [(site, *key, amount) for key, amount in totals.items()],
                )
                for (column, seat), (value, now) in batch.seats.items():
                    self._upsert_seat(site, seat, column, value, now)
                counts = dict(batch.counts)
                if duplicates:
                    counts["duplicates"] = counts.get("duplicates", 0) + duplicates
                for name, by in counts.items():
                    self._count(name, by)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from None
        return Written(stored, duplicates)

    def streams(self, site: str, now: float) -> list[StreamSpan]:
        with self._lock:
            rows = self._db.execute(ISLANDS_SQL.format(p="?"), (site,)).fetchall()
        return spans(rows, now - self.raw_s + PURGE_MARGIN_S)

    def _upsert_seat(self, site: str, seat: str, column: str, value: Any, now: float) -> None:
        assert column in ("state", "info", "online")  # a name of ours, never from input
        if column == "online":
            value = int(bool(value))
        self._db.execute(
            f"INSERT INTO seats (site, seat, {column}, updated) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (site, seat) DO UPDATE SET {column} = excluded.{column}, "
            "updated = excluded.updated",
            (site, seat, value, now),
        )

    def _put(self, site: str, seat: str, column: str, value: Any, now: float) -> None:
        _ids(site, seat)
        assert column in ("state", "info", "online")  # a name of ours, never from input
        with self._lock, self._db:
            self._upsert_seat(site, seat, column, value, now)

    def put_state(self, site: str, seat: str, payload: bytes, now: float) -> None:
        self._put(site, seat, "state", payload.decode("utf-8"), now)

    def put_info(self, site: str, seat: str, payload: bytes, now: float) -> None:
        self._put(site, seat, "info", payload.decode("utf-8"), now)

    def put_availability(self, site: str, seat: str, online: bool, now: float) -> None:
        self._put(site, seat, "online", int(online), now)

    def _count(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) "
            "DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def count(self, name: str, by: int = 1) -> None:
        with self._lock, self._db:
            self._count(name, by)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def purge(self, now: float) -> Purged:
        """Delete what is past retention at `now` (epoch seconds): events whose `ts` is older
        than `raw_s`, rollups of days before the day `rollups_s` ago (UTC), and the latest
        state/info of seats not heard of for `raw_s`."""
        raw_s, rollups_s = self.raw_s, self.rollups_s
        first_day = (datetime.fromtimestamp(now - rollups_s, UTC)).date().isoformat()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            events = self._db.execute(
                "DELETE FROM events WHERE ts_epoch < ?", (now - raw_s,)
            ).rowcount
            rollups = self._db.execute("DELETE FROM rollups WHERE day < ?", (first_day,)).rowcount
            seats = self._db.execute("DELETE FROM seats WHERE updated < ?", (now - raw_s,)).rowcount
        return Purged(events, rollups, seats)

    # --- reading (reports and tests) -------------------------------------------------------

    def events(self, site: str, seat: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT seat, boot_id, seq, ts, day, type, data FROM events WHERE site = ?"
        params: tuple[str, ...] = (site,)
        if seat is not None:
            query += " AND seat = ?"
            params += (seat,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seat, boot_id, seq", params).fetchall()
        keys = ("seat", "boot_id", "seq", "ts", "day", "type")
        return [dict(zip(keys, row[:6], strict=True), data=json.loads(row[6])) for row in rows]

    def rollups(self, site: str, seat: str, day: str) -> dict[str, float]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM rollups WHERE site = ? AND seat = ? AND day = ?",
                (site, seat, day),
            ).fetchall()
        return dict(rows)

    def seat(self, site: str, seat: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, info, online FROM seats WHERE site = ? AND seat = ?", (site, seat)
            ).fetchone()
        if row is None:
            return None
        state, info, online = row
        return {
            "state": json.loads(state) if state else None,
            "info": json.loads(info) if info else None,
            "online": None if online is None else bool(online),
        }

    def tables(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return sorted(name for (name,) in rows.fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- reading for reports (floor/reports.py; the STORE helper ports these to PostgreSQL) --

    def events_between(
        self, site: str, start: float, end: float, seat: str | None = None
    ) -> list[dict[str, Any]]:
        """Events of `site` (one seat, or all) whose own `ts` is in [start, end) (epoch
        seconds), in time order: {"seat","boot_id","seq","ts","ts_epoch","day","type","data"}."""
        _ids(site, site if seat is None else seat)
        query = (
            "SELECT seat, boot_id, seq, ts, ts_epoch, day, type, data FROM events "
            "WHERE site = ? AND ts_epoch >= ? AND ts_epoch < ?"
        )
        params: tuple[Any, ...] = (site, float(start), float(end))
        if seat is not None:
            query += " AND seat = ?"
            params += (seat,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY ts_epoch, seat, boot_id, seq", params)
            found = rows.fetchall()
        keys = ("seat", "boot_id", "seq", "ts", "ts_epoch", "day", "type")
        return [dict(zip(keys, row[:7], strict=True), data=json.loads(row[7])) for row in found]

    def seat_ids(self, site: str) -> list[str]:
        """Every seat of `site` whose retained state, info or availability is kept."""
        _ids(site, site)
        with self._lock:
            rows = self._db.execute("SELECT seat FROM seats WHERE site = ? ORDER BY seat", (site,))
            return [seat for (seat,) in rows.fetchall()]


def open_store(config: FloorConfig, paths: FloorPaths) -> Store:
    """The store a floor config names: SQLite in `paths.sqlite` when `[store] url` is "",
    else PostgreSQL at that url. ConfigError (naming the url without its password) when it
    cannot be opened."""
    raw_s, rollups_s = config.privacy.raw_events, config.privacy.rollups
    if config.store.url:
        from floor.store_pg import PostgresStore

        return PostgresStore(config.store.url, raw_s=raw_s, rollups_s=rollups_s)
    try:
        paths.sqlite.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"[store] dir: cannot create {paths.sqlite.parent} ({exc})") from None
    return SqliteStore(paths.sqlite, raw_s=raw_s, rollups_s=rollups_s)


def day_of(ts: str) -> str:
    """The day an event with this `ts` counts for (the seat's local date)."""
    return _moment(ts).date().isoformat()
