"""Daily reports and a seat's timeline, from the events the store keeps (docs/floor.md,
"Reports", says what each column means and which events it comes from).

Days are the SITE's local days (`[site] timezone`): an event belongs to the day its own `ts`
(the seat's wall clock, not the time it arrived) falls on in the site's time zone. The store's
`day` column is the seat's local day; reports select by `ts` instead (`events_between`).

Numbers come from raw events, per seat and day, mapped to an agent and team by the roster
(hot-desking) or the layout. Shift times, grace and limits are the seat's own (`info.thresholds`,
`floor.severity.Thresholds`), the documented defaults for seats that do not publish them.
Privacy: events of types the site's `[privacy] norms` do not show are left out everywhere;
columns computed from them are null. Team figures over fewer people than `min_group_size`
are suppressed; with `individual_views = false` there are no per-seat rows at all.
"""

from __future__ import annotations

import csv
import io
import json
import time as clock
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from edge.base.errors import ParseError
from edge.base.schema import valid_id
from floor.layout import Layout
from floor.privacy import Privacy
from floor.roster import Roster
from floor.severity import Thresholds


class ReportStore(Protocol):
    """What reports read of a store (SqliteStore; the PostgreSQL store offers the same)."""

    def events_between(
        self, site: str, start: float, end: float, seat: str | None = None
    ) -> list[dict[str, Any]]: ...

    def seats_between(self, site: str, start: float, end: float) -> list[str]: ...

    def seat(self, site: str, seat: str) -> dict[str, Any] | None: ...


# The row's columns, in CSV order; `events.<type>` columns follow, sorted by type.
COLUMNS: tuple[str, ...] = (
    "seat",
    "team",
    "agent",
    "label",
    "in_layout",
    "arrival",
    "late",
    "early_leave",
    "absent",
    "away_count",
    "away_minutes",
    "calls",
    "answered",
    "answered_late",
    "holds",
    "holds_too_long",
    "scheduled_minutes",
    "adherence_pct",
    "thresholds",
)

# Column -> the event types it is computed from: null when the site's norms hide any of them.
SOURCES: dict[str, tuple[str, ...]] = {
    "arrival": ("presence.present",),
    "late": ("shift.late",),
    "early_leave": ("shift.early_leave",),
    "absent": ("shift.absent",),
    "away_count": ("presence.away", "presence.present"),
    "away_minutes": ("presence.away", "presence.present"),
    "calls": ("call.ringing",),
    "answered": ("call.answered",),
    "answered_late": ("answer.late",),
    "holds": ("call.hold",),
    "holds_too_long": ("hold.too_long",),
    "adherence_pct": (
        "presence.away",
        "presence.present",
        "shift.late",
        "shift.early_leave",
        "shift.absent",
    ),
}

TEAM_COLUMNS: tuple[str, ...] = (
    "team",
    "seats",
    "people",
    "suppressed",
    "calls",
    "answered",
    "answered_late",
    "holds",
    "holds_too_long",
    "away_count",
    "away_minutes",
    "late_count",
    "late_minutes",
    "early_leave_count",
    "early_leave_minutes",
    "absent_count",
    "scheduled_minutes",
    "adherence_pct",
)
_SUMMED = (
    "calls",
    "answered",
    "answered_late",
    "holds",
    "holds_too_long",
    "away_count",
    "away_minutes",
    "scheduled_minutes",
)

# Bucket edges in seconds: [0,5) [5,10) ... [60, inf).
ANSWER_EDGES_S: tuple[float, ...] = (5, 10, 15, 20, 30, 60)
HOLD_EDGES_S: tuple[float, ...] = (30, 60, 120, 180, 300, 600)


# --- days, times, intervals --------------------------------------------------------------


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise ParseError(f"timezone {tz[:60]!r}: expected an IANA name ({exc})") from None


def _day(day: str | date) -> date:
    if isinstance(day, date):
        return day
    try:
        if len(day) != 10:
            raise ValueError
        return date.fromisoformat(day)
    except ValueError:
        raise ParseError(f"date {str(day)[:40]!r}: expected YYYY-MM-DD") from None


def day_window(day: str | date, tz: str | tzinfo) -> tuple[float, float]:
    """[start, end) of the local `day` in `tz`, as epoch seconds (23 or 25 h on DST days)."""
    zone, first = _zone(tz), _day(day)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(first + timedelta(days=1), time(0), tzinfo=zone)
    return start.timestamp(), end.timestamp()


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _hhmm(text: str) -> time:
    parts = [int(p) for p in text.split(":")]
    return time(parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


Interval = tuple[float, float]


def _clip(items: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    return [(max(a, lo), min(b, hi)) for a, b in items if min(b, hi) > max(a, lo)]


def _within(items: Iterable[Interval], windows: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in windows:
        out += _clip(items, lo, hi)
    return out


def _union_length(items: Iterable[Interval]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(items):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


@dataclass(frozen=True)
class _Shift:
    day: date
    start: float
    end: float
    windows: tuple[Interval, ...]  # working time: start..lunch, lunch..end


def _shifts(limits: Thresholds, zone: tzinfo, lo: float, hi: float) -> list[_Shift]:
    """The seat's shifts (in its own time zone) that overlap [lo, hi)."""
    shift = limits.shift
    first = datetime.fromtimestamp(lo, zone).date()
    last = datetime.fromtimestamp(max(lo, hi - 1e-3), zone).date()
    out: list[_Shift] = []
    day = first - timedelta(days=1)
    while day <= last:
        if day.isoweekday() in shift.workdays:

            def at(hhmm: str, day: date = day) -> float:
                return datetime.combine(day, _hhmm(hhmm), tzinfo=zone).timestamp()

            start, end = at(shift.start), at(shift.end)
            lunch = (at(shift.lunch_start), at(shift.lunch_end))
            if start < lunch[0] < lunch[1] < end:
                windows: list[Interval] = [(start, lunch[0]), (lunch[1], end)]
            else:
                windows = [(start, end)]
            out.append(_Shift(day, start, end, tuple(windows)))
        day += timedelta(days=1)
    return out


# --- one seat's day ----------------------------------------------------------------------


@dataclass
class _SeatDay:
    values: dict[str, Any]
    events: dict[str, int]
    answers: list[float]  # ring to answer, seconds, per answered call
    holds: list[float]  # seconds, per hold
    answer_limit_s: float
    exception_s: float | None
    scheduled_s: float


def _seat_day(
    events: Sequence[Mapping[str, Any]],
    limits: Thresholds,
    lo: float,
    hi: float,
    now: float,
    fallback_zone: tzinfo,
    privacy: Privacy,
) -> _SeatDay:
    """A seat's numbers for [lo, hi) from its events (shown ones only) in time order."""
    # The seat's shift is in its own UTC offset: the one of its last event that day (after
    # a DST switch at night, which comes before any shift).
    zone: tzinfo = fallback_zone
    if events:
        zone = datetime.fromisoformat(str(events[-1]["ts"])).tzinfo or fallback_zone
    until = min(hi, now)
    counts: dict[str, int] = {}
    for event in events:
        counts[event["type"]] = counts.get(event["type"], 0) + 1

    def data(event: Mapping[str, Any], key: str) -> float | None:
        value = event["data"].get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        return None

    def of(kind: str) -> list[Mapping[str, Any]]:
        return [e for e in events if e["type"] == kind]

    # Attendance: the seat's own judgements (shift.*), at its own shift times.
    late = of("shift.late")
    early = of("shift.early_leave")
    arrival_ts: str | None = None
    if late and isinstance(late[0]["data"].get("arrived"), str):
        arrival_ts = late[0]["data"]["arrived"]
    elif present := of("presence.present"):
        arrival_ts = present[0]["ts"]
    arrival = _epoch(arrival_ts) if arrival_ts else None
    absences = of("shift.absent")
    absent = bool(absences) and (arrival is None or arrival < _epoch(absences[-1]["ts"]))
    absent = absent or any(e["data"].get("counts_as_absence") is True for e in late + early)
    late_min = sum(data(e, "late_min") or 0.0 for e in late)
    early_min = sum(data(e, "early_min") or 0.0 for e in early)

    shifts = _shifts(limits, zone, lo, hi)
    windows = _clip([w for s in shifts for w in s.windows], lo, until)
    scheduled = sum(b - a for a, b in windows)
    exceptions: list[Interval] = []
    if arrival is None and absences:
        exceptions += windows  # nobody came: the whole schedule is out of adherence
    for shift in shifts:
        for event in late:
            if datetime.fromtimestamp(_epoch(event["ts"]), zone).date() == shift.day:
                exceptions.append((shift.start, shift.start + (data(event, "late_min") or 0) * 60))
        for event in early:
            if datetime.fromtimestamp(_epoch(event["ts"]), zone).date() == shift.day:
                exceptions.append((shift.end - (data(event, "early_min") or 0) * 60, shift.end))

    # Away: episodes from presence.away (since last seen) to presence.present, in working
    # time after the arrival, as the seat's away norm counts them.
    episodes: list[Interval] = []
    opened: float | None = None
    for event in events:
        if event["type"] == "presence.away":
            seen = event["data"].get("last_seen")
            opened = _epoch(seen) if isinstance(seen, str) else _epoch(event["ts"])
        elif event["type"] == "presence.present":
            at = _epoch(event["ts"])
            away_s = data(event, "away_s")
            if opened is not None:
                episodes.append((opened, at))
            elif away_s:
                episodes.append((at - away_s, at))
            opened = None
    if opened is not None:
        episodes.append((opened, until))
    # Before the first arrival it is attendance's business (late, absent), not away's.
    episodes = _clip(episodes, arrival, float("inf")) if arrival is not None else []
    pieces = _within(episodes, windows)
    grace = limits.away_warn_s
    exceptions += [(a + grace, b) for a, b in pieces if b - a > grace]
    exception_s = _union_length(_within(exceptions, windows))

    # Calls: answer times per answered call, hold times per hold.
    answers = [s for e in of("call.answered") if (s := data(e, "answer_s")) is not None]
    holds: list[float] = []
    resumed: dict[tuple[str, Any], float] = {}
    for event in events:
        call = (event["boot_id"], event["data"].get("call"))
        if event["type"] == "call.resumed" and (held := data(event, "hold_s")) is not None:
            holds.append(held)
            resumed[call] = resumed.get(call, 0.0) + held
        elif event["type"] == "call.ended" and (total := data(event, "hold_s")) is not None:
            rest = total - resumed.pop(call, 0.0)
            if rest > 0.001:  # ended while on hold: the last hold
                holds.append(rest)

    adherence = None
    if scheduled > 0:
        adherence = round(max(0.0, 1.0 - exception_s / scheduled) * 100.0, 1)
    values: dict[str, Any] = {
        "arrival": arrival_ts,
        "late": round(late_min, 1),
        "early_leave": round(early_min, 1),
        "absent": absent,
        "away_count": len(pieces),
        "away_minutes": round(sum(b - a for a, b in pieces) / 60.0, 1),
        "calls": counts.get("call.ringing", 0),
        "answered": counts.get("call.answered", 0),
        "answered_late": counts.get("answer.late", 0),
        "holds": counts.get("call.hold", 0),
        "holds_too_long": counts.get("hold.too_long", 0),
        "scheduled_minutes": round(scheduled / 60.0, 1),
        "adherence_pct": adherence,
    }
    for column, sources in SOURCES.items():
        if not all(privacy.shows(kind) for kind in sources):
            values[column] = None
    return _SeatDay(
        values=values,
        events=dict(sorted(counts.items())),
        answers=answers if privacy.shows("call.answered") else [],
        holds=holds,
        answer_limit_s=limits.answer_limit_s,
        exception_s=exception_s if values["adherence_pct"] is not None else None,
        scheduled_s=scheduled,
    )


# --- distributions -----------------------------------------------------------------------


def _buckets(samples: Sequence[float], edges: Sequence[float]) -> list[dict[str, Any]]:
    bounds: list[float | None] = [0.0, *(float(e) for e in edges), None]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        assert lo is not None
        n = sum(1 for s in samples if s >= lo and (hi is None or s < hi))
        out.append({"from_s": lo, "to_s": hi, "count": n})
    return out


def _distributions(days: Sequence[_SeatDay], limits: Sequence[Thresholds]) -> dict[str, Any]:
    answers = [s for d in days for s in d.answers]
    within = sum(1 for d in days for s in d.answers if s < d.answer_limit_s)
    holds = [s for d in days for s in d.holds]
    warn = sum(
        1 for d, lim in zip(days, limits, strict=True) for s in d.holds if s >= lim.hold_warn_s
    )
    over = sum(
        1 for d, lim in zip(days, limits, strict=True) for s in d.holds if s >= lim.hold_violation_s
    )
    return {
        "answer": {
            "count": len(answers),
            "buckets": _buckets(answers, ANSWER_EDGES_S),
            "within_limit": within,
            "within_limit_pct": round(100.0 * within / len(answers), 1) if answers else None,
            "mean_s": round(sum(answers) / len(answers), 1) if answers else None,
        },
        "hold": {
            "count": len(holds),
            "buckets": _buckets(holds, HOLD_EDGES_S),
            "over_warn": warn,
            "over_violation": over,
            "longest_s": round(max(holds), 1) if holds else None,
        },
    }


# --- the report ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else repr(value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text  # a spreadsheet must not read a formula out of a seat's data
    return text


def _csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


@dataclass
class Report:
    site: str
    date: str
    timezone: str
    rows: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    totals: dict[str, Any]
    distributions: dict[str, Any]
    event_types: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The CSV header of `rows`: COLUMNS, then one `events.<type>` per type seen."""
        return [*COLUMNS, *(f"events.{kind}" for kind in self.event_types)]

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "date": self.date,
            "timezone": self.timezone,
            "columns": self.columns,
            "rows": self.rows,
            "teams": self.teams,
            "totals": self.totals,
            "distributions": self.distributions,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    def to_csv(self, table: str = "rows") -> str:
        """One table as CSV (RFC 4180, CRLF): `rows` (the JSON rows; `events` as one column
        per type, `events.<type>`, 0 where none), or `teams`. Empty cell = null."""
        if table == "teams":
            return _csv([*TEAM_COLUMNS, *self._team_event_columns()], self.teams_flat())
        if table != "rows":
            raise ValueError(f"table {table!r}: expected rows or teams")
        flat = []
        for row in self.rows:
            cells = {k: v for k, v in row.items() if k != "events"}
            for kind in self.event_types:
                cells[f"events.{kind}"] = row["events"].get(kind, 0)
            flat.append(cells)
        return _csv(self.columns, flat)

    def _team_event_columns(self) -> list[str]:
        return [f"events.{kind}" for kind in self.event_types]

    def teams_flat(self) -> list[dict[str, Any]]:
        flat = []
        for team in self.teams:
            cells = {k: v for k, v in team.items() if k != "events"}
            events = team.get("events")
            for kind in self.event_types:
                cells[f"events.{kind}"] = None if events is None else events.get(kind, 0)
            flat.append(cells)
        return flat


def _aggregate(
    team: str | None, rows: Sequence[dict[str, Any]], days: Sequence[_SeatDay], min_group: int
) -> dict[str, Any]:
    with_data = [(row, day) for row, day in zip(rows, days, strict=True) if day.events]
    people = len({row["agent"] or f"seat:{row['seat']}" for row, _ in with_data})
    out: dict[str, Any] = {"team": team, "seats": len(rows), "people": people}
    if people < min_group:
        out["suppressed"] = True
        for column in TEAM_COLUMNS[4:]:
            out[column] = None
        out["events"] = None
        return out
    out["suppressed"] = False

    def total(column: str) -> float | int | None:
        values = [row[column] for row, _ in with_data]
        if any(v is None for v in values):
            return None
        result = sum(values)
        return round(result, 1) if isinstance(result, float) else result

    for column in _SUMMED:
        out[column] = total(column)
    late = [row["late"] for row, _ in with_data]
    early = [row["early_leave"] for row, _ in with_data]
    absent = [row["absent"] for row, _ in with_data]
    out["late_count"] = None if None in late else sum(1 for v in late if v and v > 0)
    out["late_minutes"] = None if None in late else round(sum(late), 1)
    out["early_leave_count"] = None if None in early else sum(1 for v in early if v and v > 0)
    out["early_leave_minutes"] = None if None in early else round(sum(early), 1)
    out["absent_count"] = None if None in absent else sum(1 for v in absent if v)
    scheduled = sum(day.scheduled_s for _, day in with_data if day.exception_s is not None)
    exceptions = [day.exception_s for _, day in with_data if day.scheduled_s > 0]
    if scheduled > 0 and None not in exceptions:
        spent = sum(e for e in exceptions if e is not None)
        out["adherence_pct"] = round(max(0.0, 1.0 - spent / scheduled) * 100.0, 1)
    else:
        out["adherence_pct"] = None
    events: dict[str, int] = {}
    for _, day in with_data:
        for kind, n in day.events.items():
            events[kind] = events.get(kind, 0) + n
    out["events"] = dict(sorted(events.items()))
    return out


def daily_report(
    store: ReportStore,
    site: str,
    day: str | date,
    tz: str | tzinfo,
    layout: Layout | None = None,
    roster: Roster | None = None,
    privacy: Privacy | None = None,
    *,
    now: float | None = None,
    teams: Collection[str | None] | None = None,
    self_view: str | None = None,
) -> Report:
    """The site's report for its local `day`: one row per seat (layout seats, and every seat
    with events that day), with the agent and team the roster gives for that day (else the
    layout's team); team aggregates; hold and answer time distributions. `now` (epoch
    seconds, default the clock) ends a day still in progress. `teams`: only seats of these
    teams (that day) are read, and totals cover them (a supervisor's teams; None: the
    site). `self_view` (a seat id): an agent's own view: only that seat's row, also in
    team-only mode (docs/privacy.md)."""
    if not valid_id(site):
        raise ParseError(f"site id {site[:70]!r}: expected 1-64 of A-Z a-z 0-9 _ -")
    layout, roster, privacy = layout or Layout(), roster or Roster(), privacy or Privacy()
    the_day, zone = _day(day), _zone(tz)
    lo, hi = day_window(the_day, zone)
    now = clock.time() if now is None else now
    rows: list[dict[str, Any]] = []
    days: list[_SeatDay] = []
    limits: list[Thresholds] = []
    # One seat at a time: a site's day is millions of events, a seat's a few hundred.
    for seat in sorted(set(layout.seats) | set(store.seats_between(site, lo, hi))):
        place = layout.seat(seat)
        agent, team = roster.assignment(the_day, seat, place.team)
        if (teams is not None and team not in teams) or (self_view not in (None, seat)):
            continue  # not asked for: not read
        events = [
            event
            for event in store.events_between(site, lo, hi, seat=seat)
            if privacy.shows(event["type"])
        ]
        kept = store.seat(site, seat)
        seat_limits = Thresholds.from_info(kept.get("info") if kept else None)
        seat_day = _seat_day(events, seat_limits, lo, hi, now, zone, privacy)
        if not events:  # nothing heard from this seat that day: no numbers, not zeros
            seat_day.values = {key: None for key in seat_day.values}
        row: dict[str, Any] = {
            "seat": seat,
            "team": team,
            "agent": agent,
            "label": place.label,
            "in_layout": place.in_layout,
            **seat_day.values,
            "thresholds": "seat" if seat_limits.published else "defaults",
            "events": seat_day.events,
        }
        rows.append(row)
        days.append(seat_day)
        limits.append(seat_limits)

    min_group = privacy.min_group_size
    aggregates: list[dict[str, Any]] = []
    team_dists: dict[str, Any] = {}
    names = sorted({row["team"] for row in rows if row["team"]})
    for name in [*names, None] if any(r["team"] is None for r in rows) else names:
        picked = [i for i, row in enumerate(rows) if row["team"] == name]
        aggregate = _aggregate(
            name, [rows[i] for i in picked], [days[i] for i in picked], min_group
        )
        aggregates.append(aggregate)
        if name is not None and not aggregate["suppressed"]:
            team_dists[name] = _distributions(
                [days[i] for i in picked], [limits[i] for i in picked]
            )
    totals = _aggregate(None, rows, days, min_group)
    totals.pop("team")
    distributions: dict[str, Any] = {} if totals["suppressed"] else _distributions(days, limits)
    distributions["suppressed"] = totals["suppressed"]
    distributions["teams"] = team_dists
    types = sorted({kind for row in rows for kind in row["events"]})
    if self_view is None and not privacy.individual_views:
        rows = []  # team-only mode: no per-seat or per-agent rows (but an agent's own)
    return Report(
        site=site,
        date=the_day.isoformat(),
        timezone=str(getattr(zone, "key", zone)),
        rows=rows,
        teams=aggregates,
        totals=totals,
        distributions=distributions,
        event_types=types,
    )


def timeline(
    store: ReportStore,
    site: str,
    seat: str,
    day: str | date,
    tz: str | tzinfo,
    privacy: Privacy | None = None,
) -> list[dict[str, Any]]:
    """A seat's events of the site-local `day`, in time order: {"ts","type","data"}; event
    types the site's norms do not show are left out."""
    for what, value in (("site", site), ("seat", seat)):
        if not valid_id(value):
            raise ParseError(f"{what} id {value[:70]!r}: expected 1-64 of A-Z a-z 0-9 _ -")
    privacy = privacy or Privacy()
    lo, hi = day_window(day, tz)
    return [
        {"ts": event["ts"], "type": event["type"], "data": event["data"]}
        for event in store.events_between(site, lo, hi, seat=seat)
        if privacy.shows(event["type"])
    ]
