"""The floor's store in PostgreSQL (`[store] url = "postgresql://user@host:5432/db"`).

The same tables, keys and semantics as `floor.store.SqliteStore` (see there): every event once
by `(site, seat, boot_id, seq)` (`ON CONFLICT DO NOTHING`; a copy is counted as `duplicates`),
its rollups (per seat-day, and per agent-day where the roster says who sat there) added in
the same transaction, the latest state/info/availability per seat,
service counters, retention by `purge(now)`. The schema is created when absent
(`CREATE TABLE IF NOT EXISTS`). Ids are checked before they reach SQL; every value is a bound
parameter (psycopg 3 server-side binding).

Two connections, each under its own lock: one for writes, one for reads (a report never waits
for the ingest's batch). A lost connection (the server stopped or restarted, the network) makes
the call raise `StoreUnavailable` and nothing of it is kept (its transaction rolls back); the
next call connects again (a call on a connection the server dropped since is tried once more at
once). Messages name the url without its password.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import psycopg

from edge.api.models import StreamEvent
from edge.base.errors import ConfigError
from floor.roster import Roster
from floor.store_common import (
    ISLANDS_SQL,
    PURGE_MARGIN_S,
    SEED_WINDOW_S,
    AgentDays,
    Batch,
    Purged,
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

# libpq options (the url may set its own): a server that vanished without closing the
# connection (a network cut, a frozen host) is noticed within about half a minute, not hours.
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data sent and not acknowledged
}

# Text columns sort as bytes (COLLATE "C"), as in SQLite, whatever the database's locale:
# both stores list seats and events in the same order.
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        site TEXT COLLATE "C" NOT NULL, seat TEXT COLLATE "C" NOT NULL,
        boot_id TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
        ts TEXT COLLATE "C" NOT NULL, ts_epoch DOUBLE PRECISION NOT NULL,
        day TEXT COLLATE "C" NOT NULL, type TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL,
        stored_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, seat, boot_id, seq))""",
    "CREATE INDEX IF NOT EXISTS events_ts ON events (ts_epoch)",
    "CREATE INDEX IF NOT EXISTS events_day ON events (site, day, seat)",
    """CREATE TABLE IF NOT EXISTS seats (
        site TEXT COLLATE "C" NOT NULL, seat TEXT COLLATE "C" NOT NULL,
        state TEXT, info TEXT, online BOOLEAN, updated DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, seat))""",
    """CREATE TABLE IF NOT EXISTS rollups (
        site TEXT COLLATE "C" NOT NULL, seat TEXT COLLATE "C" NOT NULL,
        day TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, seat, day, name))""",
    """CREATE TABLE IF NOT EXISTS agent_rollups (
        site TEXT COLLATE "C" NOT NULL, agent TEXT COLLATE "C" NOT NULL,
        day TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, agent, day, name))""",
    """CREATE TABLE IF NOT EXISTS counters (
        name TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL)""",
]

_EVENT_COLUMNS = "site, seat, boot_id, seq, ts, ts_epoch, day, type, data, stored_at"


def redacted(url: str) -> str:
    """The url without its password (for messages and logs): postgresql://user@host:port/db."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "postgresql://(unparsable url)"
    user = f"{parts.username}@" if parts.username else ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def secrets_of(url: str) -> list[str]:
    """The password of a url as written and decoded (also a `password=` query parameter)."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        raw = parts.netloc.rpartition("@")[0].partition(":")[2] if "@" in parts.netloc else ""
        found += [raw, unquote(raw)]
        for value in parse_qs(parts.query).get("password", []):
            found += [value, quote(value)]
    except ValueError:
        pass
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def _why(exc: BaseException, secrets: list[str]) -> str:
    """A psycopg error in one line, without the password: libpq names host, port and user,
    but echoes a url token it cannot parse (a bad %-escape in the password)."""
    text = " ".join(str(exc).split())
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:300] or type(exc).__name__


@dataclass
class _Link:
    """One connection and the lock it is used under."""

    conn: psycopg.Connection[Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class PostgresStore:
    """The store in PostgreSQL. Safe to call from several threads (one lock)."""

    def __init__(
        self,
        url: str,
        *,
        raw_s: float = 7 * 86400.0,
        rollups_s: float = 90 * 86400.0,
        roster: Roster | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self._secrets = secrets_of(url)
        self.raw_s, self.rollups_s = raw_s, rollups_s
        self.agent_of = AgentDays(roster, tz)  # the key of agent_rollups (site-local day)
        # Two connections, each used under its own lock: writes (the ingest's batches, purge)
        # and reads (reports, the web app, seeding), so a report never waits for a batch.
        self._links: dict[str, _Link] = {"write": _Link(), "read": _Link()}
        try:
            link = self._links["write"]
            with link.lock:
                self._connected(link, schema=True)
        except StoreUnavailable as exc:
            raise ConfigError(f"[store] url: {exc}") from None

    # --- the connections --------------------------------------------------------------------

    def _connected(self, link: _Link, schema: bool) -> psycopg.Connection[Any]:
        conn = link.conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        link.conn = None
        try:
            conn = psycopg.connect(self.url, **CONNECT_OPTIONS)
            if schema:
                with conn.transaction():
                    for statement in SCHEMA:
                        conn.execute(statement)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"PostgreSQL {self.where}: {_why(exc, self._secrets)}") from None
        link.conn = conn
        return conn

    def _run(self, work: Any, role: str = "write") -> Any:
        """`work(conn)` in one transaction on the `role` connection ("write" or "read");
        StoreUnavailable when the server cannot be reached (or fails as a server: shut down,
        out of disk); RuntimeError when it refuses a statement. Either way the transaction is
        rolled back."""
        link = self._links[role]
        with link.lock:
            for attempt in (1, 2):
                reused = link.conn is not None and not link.conn.closed
                conn = self._connected(link, schema=role == "write")
                try:
                    with conn.transaction():
                        return work(conn)
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    # The server went away, refused, ran out of disk: worth retrying later.
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                    link.conn = None
                    if reused and attempt == 1:
                        continue  # a connection the server has dropped (restarted): once more
                    raise StoreUnavailable(
                        f"PostgreSQL {self.where}: {_why(exc, self._secrets)}"
                    ) from None
                except psycopg.Error as exc:  # a statement the server refused: no retry
                    if conn.broken or conn.closed:
                        link.conn = None
                    raise RuntimeError(
                        f"PostgreSQL {self.where}: {_why(exc, self._secrets)}"
                    ) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, work: Any) -> Any:
        return self._run(work, role="read")

    # --- writing ----------------------------------------------------------------------------

    def write_batch(self, site: str, batch: Batch) -> Written:
        check_batch(site, batch)
        rows: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        events: dict[tuple[str, str, int], tuple[str, StreamEvent, tuple[str, str] | None]] = {}
        for seat, event, now in batch.events:
            key = (seat, event.boot_id, event.seq)
            if key in rows:
                continue  # the same event twice in one batch: one row
            moment = _moment(event.ts)
            day = moment.date().isoformat()
            rows[key] = (
                seat,
                event.boot_id,
                event.seq,
                event.ts,
                moment.timestamp(),
                day,
                event.type,
                json.dumps(event.data, separators=(",", ":")),
                now,
            )
            events[key] = (day, event, self.agent_of(seat, moment))

        def work(conn: psycopg.Connection[Any]) -> Written:
            inserted: list[tuple[str, str, int]] = []
            if rows:
                columns = list(zip(*rows.values(), strict=True))
                cursor = conn.execute(
                    # %b: the arrays go in the binary format (dumped in C, several times
                    # faster than text arrays, which psycopg escapes element by element).
                    f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT %s::text, * FROM unnest("
                    "%b::text[], %b::text[], %b::bigint[], %b::text[], %b::float8[], "
                    "%b::text[], %b::text[], %b::text[], %b::float8[]) "
                    "ON CONFLICT DO NOTHING RETURNING seat, boot_id, seq",
                    (site, *[list(column) for column in columns]),
                )
                inserted = [(s, b, int(q)) for s, b, q in cursor.fetchall()]
            totals: dict[tuple[str, str, str], float] = {}
            agents: dict[tuple[str, str, str], float] = {}
            for key in inserted:
                day, event, sitting = events[key]
                for name, amount in rollup_rows(event):
                    total_key = (key[0], day, name)
                    totals[total_key] = totals.get(total_key, 0.0) + amount
                    if sitting is not None:
                        total_key = (*sitting, name)
                        agents[total_key] = agents.get(total_key, 0.0) + amount
            for table, who, added in (
                ("rollups", "seat", totals),
                ("agent_rollups", "agent", agents),
            ):
                if not added:
                    continue
                keys, days, names = (list(c) for c in zip(*added, strict=True))
                conn.execute(  # table and who: names of ours, never from input
                    f"INSERT INTO {table} (site, {who}, day, name, value) SELECT %s::text, * "
                    "FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[]) "
                    f"ON CONFLICT (site, {who}, day, name) "
                    f"DO UPDATE SET value = {table}.value + excluded.value",
                    (site, keys, days, names, list(added.values())),
                )
            for (column, seat), (value, now) in batch.seats.items():
                self._upsert_seat(conn, site, seat, column, value, now)
            duplicates = len(batch.events) - len(inserted)
            counts = dict(batch.counts)
            if duplicates:
                counts["duplicates"] = counts.get("duplicates", 0) + duplicates
            for name, by in counts.items():
                self._count(conn, name, by)
            return Written(len(inserted), duplicates)

        result: Written = self._run(work)
        return result

    def add_event(self, site: str, seat: str, event: StreamEvent, now: float) -> bool:
        return self.write_batch(site, Batch([(seat, event, now)], {}, {})).stored == 1

    @staticmethod
    def _upsert_seat(
        conn: psycopg.Connection[Any], site: str, seat: str, column: str, value: Any, now: float
    ) -> None:
        assert column in ("state", "info", "online")  # a name of ours, never from input
        if column == "online":
            value = bool(value)
        conn.execute(
            f"INSERT INTO seats (site, seat, {column}, updated) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (site, seat) DO UPDATE SET {column} = excluded.{column}, "
            "updated = excluded.updated",
            (site, seat, value, now),
        )

    def _put(self, site: str, seat: str, column: str, value: Any, now: float) -> None:
        _ids(site, seat)
        self._run(lambda conn: self._upsert_seat(conn, site, seat, column, value, now))

    def put_state(self, site: str, seat: str, payload: bytes, now: float) -> None:
        self._put(site, seat, "state", payload.decode("utf-8"), now)

    def put_info(self, site: str, seat: str, payload: bytes, now: float) -> None:
        self._put(site, seat, "info", payload.decode("utf-8"), now)

    def put_availability(self, site: str, seat: str, online: bool, now: float) -> None:
        self._put(site, seat, "online", online, now)

    @staticmethod
    def _count(conn: psycopg.Connection[Any], name: str, by: int) -> None:
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET value = counters.value + excluded.value",
            (name, by),
        )

    def count(self, name: str, by: int = 1) -> None:
        self._run(lambda conn: self._count(conn, name, by))

    def counters(self) -> dict[str, int]:
        rows = self._read(lambda conn: conn.execute("SELECT name, value FROM counters").fetchall())
        return {name: int(value) for name, value in rows}

    def purge(self, now: float) -> Purged:
        """As `SqliteStore.purge`: events older than `raw_s` by their `ts`, (agent) rollups of days
        before the day `rollups_s` ago (UTC), seats not heard of for `raw_s`."""
        first_day = (datetime.fromtimestamp(now - self.rollups_s, UTC)).date().isoformat()

        def work(conn: psycopg.Connection[Any]) -> Purged:
            events = conn.execute(
                "DELETE FROM events WHERE ts_epoch < %s", (now - self.raw_s,)
            ).rowcount
            rollups = conn.execute("DELETE FROM rollups WHERE day < %s", (first_day,)).rowcount
            agents = conn.execute("DELETE FROM agent_rollups WHERE day < %s", (first_day,)).rowcount
            seats = conn.execute(
                "DELETE FROM seats WHERE updated < %s", (now - self.raw_s,)
            ).rowcount
            return Purged(events, rollups, seats, agents)

        result: Purged = self._run(work)
        return result

    def streams(self, site: str, now: float, window_s: float = SEED_WINDOW_S) -> list[StreamSpan]:
        def work(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
            rows = conn.execute(ISLANDS_SQL.format(p="%s"), (site, now - window_s)).fetchall()
            islands = [(s, b, int(a), int(z), float(t)) for s, b, a, z, t in rows]
            boots = first_runs_past_zero(islands)
            lowest: list[Any] = []
            if boots:
                seats, boot_ids = (list(c) for c in zip(*boots, strict=True))
                lowest = conn.execute(
                    "SELECT b.seat, b.boot_id, (SELECT MIN(seq) FROM events e WHERE "
                    "e.site = %s AND e.seat = b.seat AND e.boot_id = b.boot_id) "
                    "FROM unnest(%s::text[], %s::text[]) AS b(seat, boot_id)",
                    (site, seats, boot_ids),
                ).fetchall()
            return islands, lowest

        islands, lowest = self._read(work)
        known = {(seat, boot): int(seq) for seat, boot, seq in lowest}
        return spans(islands, now - self.raw_s + PURGE_MARGIN_S, known)

    # --- reading (reports and tests) -------------------------------------------------------

    def events(self, site: str, seat: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT seat, boot_id, seq, ts, day, type, data FROM events WHERE site = %s"
        params: tuple[str, ...] = (site,)
        if seat is not None:
            query += " AND seat = %s"
            params += (seat,)
        query += " ORDER BY seat, boot_id, seq"
        rows = self._read(lambda conn: conn.execute(query, params).fetchall())
        keys = ("seat", "boot_id", "seq", "ts", "day", "type")
        return [dict(zip(keys, row[:6], strict=True), data=json.loads(row[6])) for row in rows]

    def rollups(self, site: str, seat: str, day: str) -> dict[str, float]:
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT name, value FROM rollups WHERE site = %s AND seat = %s AND day = %s",
                (site, seat, day),
            ).fetchall()
        )
        return {name: float(value) for name, value in rows}

    def agent_rollups(self, site: str, agent: str, day: str) -> dict[str, float]:
        _ids(site, agent, "agent")
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT name, value FROM agent_rollups WHERE site = %s AND agent = %s AND day = %s",
                (site, agent, day),
            ).fetchall()
        )
        return {name: float(value) for name, value in rows}

    def seat(self, site: str, seat: str) -> dict[str, Any] | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT state, info, online FROM seats WHERE site = %s AND seat = %s",
                (site, seat),
            ).fetchone()
        )
        if row is None:
            return None
        state, info, online = row
        return {
            "state": json.loads(state) if state else None,
            "info": json.loads(info) if info else None,
            "online": None if online is None else bool(online),
        }

    def seat_records(self, site: str) -> list[SeatRecord]:
        """Every seat's last stored state, info and availability (floor.store.Store)."""
        _ids(site, site)
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT seat, state, info, online FROM seats WHERE site = %s ORDER BY seat",
                (site,),
            ).fetchall()
        )
        return [
            SeatRecord(seat, state, info, None if on is None else bool(on))
            for seat, state, info, on in rows
        ]

    def tables(self) -> list[str]:
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchall()
        )
        return sorted(name for (name,) in rows)

    # --- reading for reports (as SqliteStore's section of the same name) --------------------

    def events_between(
        self, site: str, start: float, end: float, seat: str | None = None
    ) -> list[dict[str, Any]]:
        """Events of `site` (one seat, or all) whose own `ts` is in [start, end) (epoch
        seconds), in time order: {"seat","boot_id","seq","ts","ts_epoch","day","type","data"}."""
        _ids(site, site if seat is None else seat)
        query = (
            "SELECT seat, boot_id, seq, ts, ts_epoch, day, type, data FROM events "
            "WHERE site = %s AND ts_epoch >= %s AND ts_epoch < %s"
        )
        params: tuple[Any, ...] = (site, float(start), float(end))
        if seat is not None:
            query += " AND seat = %s"
            params += (seat,)
        query += " ORDER BY ts_epoch, seat, boot_id, seq"
        found = self._read(lambda conn: conn.execute(query, params).fetchall())
        keys = ("seat", "boot_id", "seq", "ts", "ts_epoch", "day", "type")
        return [dict(zip(keys, row[:7], strict=True), data=json.loads(row[7])) for row in found]

    def seats_between(self, site: str, start: float, end: float) -> list[str]:
        """The seats of `site` with an event whose own `ts` is in [start, end), sorted."""
        _ids(site, site)
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT DISTINCT seat FROM events WHERE site = %s AND ts_epoch >= %s "
                "AND ts_epoch < %s ORDER BY seat",
                (site, float(start), float(end)),
            ).fetchall()
        )
        return [seat for (seat,) in rows]

    def close(self) -> None:
        for link in self._links.values():
            with link.lock:
                if link.conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        link.conn.close()
                    link.conn = None
