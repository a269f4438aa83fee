"""What both floor stores share (`floor.store.SqliteStore`, `floor.store_pg.PostgresStore`):
the rollups, the batch the ingest writes, the id checks, the seeding of a stream tracker. Kept
apart from `floor.store` so that `floor.store.open_store` can import the PostgreSQL store
without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal, NamedTuple

from edge.api.models import StreamEvent
from edge.base.errors import ParseError, SeatboxError
from edge.base.schema import valid_id
from floor.roster import Roster

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


class SeatRecord(NamedTuple):
    """A seat's last stored retained messages: `state` and `info` as the JSON text received,
    `online` from its availability (None: never heard)."""

    seat: str
    state: str | None
    info: str | None
    online: bool | None


@dataclass(frozen=True)
class Purged:
    events: int
    rollups: int
    seats: int
    agent_rollups: int = 0


class StoreUnavailable(SeatboxError):
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


def check_batch(site: str, batch: Batch) -> None:
    """Every id of a batch valid (ParseError otherwise), before any of it reaches SQL."""
    for seat, _event, _now in batch.events:
        _ids(site, seat)
    for column, seat in batch.seats:
        _ids(site, seat)
        assert column in ("state", "info", "online")  # a name of ours, never from input


def spans(
    islands: list[tuple[str, str, int, int, float]],
    oldest_kept: float,
    lowest: dict[tuple[str, str], int],
) -> list[StreamSpan]:
    """StreamSpans from the runs of consecutive seqs stored, `(seat, boot_id, first, last,
    ts_epoch of first)`, ordered by seat, boot and first (the runs of the seeding window).
    `lowest`: per boot whose first run starts past 0, the lowest seq stored at all. Seqs before
    a boot's first stored one are missing when that is the first run's start (nothing older
    stored) and its event is younger than `oldest_kept` (else retention may have removed them:
    not asked for again)."""
    out: list[StreamSpan] = []
    current: StreamSpan | None = None
    for seat, boot, first, last, first_ts in islands:
        if current is None or (current.seat, current.boot_id) != (seat, boot):
            current = StreamSpan(seat, boot, last, [])
            out.append(current)
            older = lowest.get((seat, boot), first) < first
            if first > 0 and not older and first_ts >= oldest_kept:
                current.missing.append((0, first - 1))
        else:
            if first > current.last + 1:
                current.missing.append((current.last + 1, first - 1))
            current = StreamSpan(seat, boot, last, current.missing)
            out[-1] = current
    return out


def first_runs_past_zero(islands: list[tuple[str, str, int, int, float]]) -> list[tuple[str, str]]:
    """The boots whose first stored run (in the window) does not start at seq 0."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for seat, boot, first, _last, _ts in islands:
        if (seat, boot) not in seen:
            seen.add((seat, boot))
            if first > 0:
                out.append((seat, boot))
    return out


# Margin on the retention when deciding whether a boot's early seqs were purged or never came.
PURGE_MARGIN_S = 86400.0
# A restarted service seeds its tracker from the events of the last hours only (by their ts):
# seats keep acknowledged events an hour for resends, so older holes cannot be filled anyway,
# and a week of a 10,000-seat site would take minutes to read.
SEED_WINDOW_S = 6 * 3600.0

ISLANDS_SQL = """
SELECT seat, boot_id, MIN(seq), MAX(seq), MIN(ts_epoch) FROM (
    SELECT seat, boot_id, seq, ts_epoch,
           seq - ROW_NUMBER() OVER (PARTITION BY seat, boot_id ORDER BY seq) AS run
    FROM events WHERE site = {p} AND ts_epoch >= {p}
) AS numbered GROUP BY seat, boot_id, run ORDER BY seat, boot_id, MIN(seq)
"""


def _ids(site: str, seat: str, kind: str = "seat") -> None:
    for what, value in (("site", site), (kind, seat)):
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


class AgentDays:
    """Who sat at a seat on the site-local day of an event, as the roster says: the key of the
    per-agent-day rollups (`agent_rollups`). `tz` is the site's zone (`[site] timezone`);
    None takes the event's own offset (the seat's local day, as `rollups`)."""

    def __init__(self, roster: Roster | None = None, tz: tzinfo | None = None) -> None:
        self.roster = roster or Roster()
        self.tz = tz

    def __call__(self, seat: str, moment: datetime) -> tuple[str, str] | None:
        """(agent, site-local day) of the event at `moment` (aware) at `seat`, or None."""
        if not self.roster.entries:
            return None
        day = (moment.astimezone(self.tz) if self.tz else moment).date().isoformat()
        entry = self.roster.on(day, seat)
        return None if entry is None else (entry.agent, day)
