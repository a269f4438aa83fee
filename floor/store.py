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
- `agent_rollups`: the same numbers per agent and site-local day, where the roster (given to
  the store) says who sat at the event's seat that day; none without a roster row.
Never kept: `levels` (no method takes them; the ingest does not subscribe to them).

The day of an event is the date of its own `ts` at the seat's UTC offset (the seat's local
day), not the time it arrived. Retention is enforced by `purge(now)`, which the service calls:
raw events by their `ts`, rollups by their day, each with its own limit.

Every id is checked (`edge.base.schema.valid_id`, as `edge.api.topics` does) before it reaches
SQL, and every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from edge.api.models import StreamEvent
from edge.base.errors import ConfigError
from floor.roster import Roster
from floor.store_common import (
    ISLANDS_SQL,
    PURGE_MARGIN_S,
    ROLLUPS,
    SEED_WINDOW_S,
    AgentDays,
    Batch,
    Purged,
    SeatColumn,
    SeatRecord,
    StoreUnavailable,
    StreamSpan,
    Written,
    _ids,
    _moment,
    check_batch,
    first_runs_past_zero,
    rollup_rows,
    spans,
)

if TYPE_CHECKING:
    from floor.config import FloorConfig, FloorPaths

__all__ = [
    "ROLLUPS",
    "Batch",
    "Purged",
    "SeatColumn",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "StreamSpan",
    "Written",
    "day_of",
    "open_store",
    "rollup_rows",
    "spans",
]


class Store(Protocol):
    """What the ingest needs of a store (and reports will read)."""

    def write_batch(self, site: str, batch: Batch) -> Written:
        """All of `batch` in one transaction (event rollups with their events);
        StoreUnavailable (and nothing written) when the store cannot be reached."""

    def streams(self, site: str, now: float, window_s: float = SEED_WINDOW_S) -> list[StreamSpan]:
        """Per seat and boot with events of the last `window_s` (by ts), the last seq stored
        and the gaps below it."""

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

    # reading (reports, the web app, tests)
    where: str  # the store for messages: a file, or the PostgreSQL url without its password

    def events(self, site: str, seat: str | None = None) -> list[dict[str, Any]]: ...

    def rollups(self, site: str, seat: str, day: str) -> dict[str, float]: ...

    def agent_rollups(self, site: str, agent: str, day: str) -> dict[str, float]:
        """The rollups of an agent's site-local day (the roster's seats that day)."""

    def seat(self, site: str, seat: str) -> dict[str, Any] | None: ...

    def seat_records(self, site: str) -> list[SeatRecord]: ...

    def tables(self) -> list[str]: ...

    def events_between(
        self, site: str, start: float, end: float, seat: str | None = None
    ) -> list[dict[str, Any]]: ...

    def seats_between(self, site: str, start: float, end: float) -> list[str]: ...


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
CREATE TABLE IF NOT EXISTS agent_rollups (
    site TEXT NOT NULL, agent TEXT NOT NULL, day TEXT NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (site, agent, day, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteStore:
    """The store in one SQLite file (WAL). Safe to call from several threads (one lock)."""

    def __init__(
        self,
        path: str | Path,
        *,
        raw_s: float = 7 * 86400.0,
        rollups_s: float = 90 * 86400.0,
        roster: Roster | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self.path = str(path)
        self.where = self.path
        self.raw_s, self.rollups_s = raw_s, rollups_s
        self.agent_of = AgentDays(roster, tz)  # the key of agent_rollups (site-local day)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"[store] dir: cannot open {self.path} ({exc})") from None
        self._lock = threading.Lock()

    def add_event(self, site: str, seat: str, event: StreamEvent, now: float) -> bool:
        """One event: a batch of one (as PostgresStore does), so both paths write alike."""
        return self.write_batch(site, Batch([(seat, event, now)], {}, {})).stored == 1

    def _add_agent_rollups(self, site: str, totals: dict[tuple[str, str, str], float]) -> None:
        """Add `(agent, day, name) -> amount` to agent_rollups (inside the caller's transaction)."""
        self._db.executemany(
            "INSERT INTO agent_rollups VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (site, agent, day, name) DO UPDATE SET value = value + excluded.value",
            [(site, *key, amount) for key, amount in totals.items()],
        )

    def write_batch(self, site: str, batch: Batch) -> Written:
        check_batch(site, batch)
        stored = duplicates = 0
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                totals: dict[tuple[str, str, str], float] = {}
                agents: dict[tuple[str, str, str], float] = {}
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
                    sitting = self.agent_of(seat, moment)
                    for name, amount in rollup_rows(event):
                        key = (seat, day, name)
                        totals[key] = totals.get(key, 0.0) + amount
                        if sitting is not None:
                            key = (*sitting, name)
                            agents[key] = agents.get(key, 0.0) + amount
                self._db.executemany(
                    "INSERT INTO rollups VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (site, seat, day, name) "
                    "DO UPDATE SET value = value + excluded.value",
                    [(site, *key, amount) for key, amount in totals.items()],
                )
                self._add_agent_rollups(site, agents)
                for (column, seat), (value, now) in batch.seats.items():
                    self._upsert_seat(site, seat, column, value, now)
                counts = dict(batch.counts)
                if duplicates:
                    counts["duplicates"] = counts.get("duplicates", 0) + duplicates
                for name, by in counts.items():
                    self._count(name, by)
        except sqlite3.Error as exc:  # a full or failing disk, a locked file
            with self._lock, contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:  # a failed COMMIT leaves it open
                    self._db.rollback()
            raise StoreUnavailable(f"SQLite {self.path}: {exc}") from None
        return Written(stored, duplicates)

    def streams(self, site: str, now: float, window_s: float = SEED_WINDOW_S) -> list[StreamSpan]:
        with self._lock:
            rows = self._db.execute(ISLANDS_SQL.format(p="?"), (site, now - window_s)).fetchall()
            lowest = {
                (seat, boot): self._db.execute(
                    "SELECT MIN(seq) FROM events WHERE site = ? AND seat = ? AND boot_id = ?",
                    (site, seat, boot),
                ).fetchone()[0]
                for seat, boot in first_runs_past_zero(rows)
            }
        return spans(rows, now - self.raw_s + PURGE_MARGIN_S, lowest)

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
        than `raw_s`, rollups and agent rollups of days before the day `rollups_s` ago (UTC),
        and the latest
        state/info of seats not heard of for `raw_s`."""
        raw_s, rollups_s = self.raw_s, self.rollups_s
        first_day = (datetime.fromtimestamp(now - rollups_s, UTC)).date().isoformat()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            events = self._db.execute(
                "DELETE FROM events WHERE ts_epoch < ?", (now - raw_s,)
            ).rowcount
            rollups = self._db.execute("DELETE FROM rollups WHERE day < ?", (first_day,)).rowcount
            agents = self._db.execute(
                "DELETE FROM agent_rollups WHERE day < ?", (first_day,)
            ).rowcount
            seats = self._db.execute("DELETE FROM seats WHERE updated < ?", (now - raw_s,)).rowcount
        return Purged(events, rollups, seats, agents)

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

    def agent_rollups(self, site: str, agent: str, day: str) -> dict[str, float]:
        _ids(site, agent, "agent")
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM agent_rollups WHERE site = ? AND agent = ? AND day = ?",
                (site, agent, day),
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

    def seat_records(self, site: str) -> list[SeatRecord]:
        """Every seat's last stored state, info (JSON texts as received) and availability:
        what seeds the live floor at start (issue 15)."""
        _ids(site, site)
        with self._lock:
            rows = self._db.execute(
                "SELECT seat, state, info, online FROM seats WHERE site = ? ORDER BY seat",
                (site,),
            ).fetchall()
        return [
            SeatRecord(seat, state, info, None if on is None else bool(on))
            for seat, state, info, on in rows
        ]

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

    def seats_between(self, site: str, start: float, end: float) -> list[str]:
        """The seats of `site` with an event whose own `ts` is in [start, end), sorted."""
        _ids(site, site)
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT seat FROM events WHERE site = ? AND ts_epoch >= ? "
                "AND ts_epoch < ? ORDER BY seat",
                (site, float(start), float(end)),
            )
            return [seat for (seat,) in rows.fetchall()]


def open_store(config: FloorConfig, paths: FloorPaths, roster: Roster | None = None) -> Store:
    """The store a floor config names: SQLite in `paths.sqlite` when `[store] url` is "",
    else PostgreSQL at that url. ConfigError (naming the url without its password) when it
    cannot be opened. `roster` (the site's, `[roster] file`): events of a seat it assigns on
    their site-local day (`[site] timezone`) also add to that agent's `agent_rollups`."""
    raw_s, rollups_s = config.privacy.raw_events, config.privacy.rollups
    kw: dict[str, Any] = {"roster": roster, "tz": ZoneInfo(config.site.timezone)}
    if config.store.url:
        from floor.store_pg import PostgresStore

        return PostgresStore(config.store.url, raw_s=raw_s, rollups_s=rollups_s, **kw)
    try:
        paths.sqlite.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"[store] dir: cannot create {paths.sqlite.parent} ({exc})") from None
    return SqliteStore(paths.sqlite, raw_s=raw_s, rollups_s=rollups_s, **kw)


def day_of(ts: str) -> str:
    """The day an event with this `ts` counts for (the seat's local date)."""
    return _moment(ts).date().isoformat()
