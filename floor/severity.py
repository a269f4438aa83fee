"""How bad a seat looks right now: a colour level, the reasons and since when. Pure.

`severity(view, thresholds, now)` reads only what the seat publishes (its retained `state`,
its availability, its last event) and the numbers of its own profile (`info.thresholds`,
`Thresholds.from_info`); the wall time is an argument, so a hold turns from warn to violation
as `now` moves on, without the seat saying anything.

Levels, from least to most urgent: ok < warn < fault < violation < offline (`RANK`).
- offline: the seat's availability is `offline` (its retained state is stale), or nothing
  valid is known of it.
- violation: a norm broken now: ringing past the answer limit, hold past the violation
  limit, away past the supervisor limit (15 min), dead air, speech while on hold unmuted,
  any active violation the seat flags (`hold.too_long`, `away.too_long`, `shift.absent`, ...).
- fault: the box cannot see what it should: headset, radar or audio lost, or a bad state.
- warn: hold past the warning, away past the agent limit (5 min), a loud floor.
`reasons` lists every key that applies, most urgent first; `since` is the ISO time (UTC) the
most urgent one began (the start of the state the colour is about).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.api.models import InfoThresholds, SeatInfo, SeatState
from floor.model import SeatView

RANK: dict[str, int] = {"ok": 0, "warn": 1, "fault": 2, "violation": 3, "offline": 4}

# Reason key -> level.
REASONS: dict[str, str] = {
    "offline": "offline",
    "state.unknown": "offline",
    "ring.late": "violation",
    "hold.violation": "violation",
    "away.15min": "violation",
    "call.dead_air": "violation",
    "speech_on_hold": "violation",
    "shift.absent": "violation",
    "headset.lost": "fault",
    "radar.lost": "fault",
    "audio.lost": "fault",
    "state.bad": "fault",
    "hold.warn": "warn",
    "away.5min": "warn",
    "floor.loud": "warn",
}

# An active violation the seat flags (state.violations[].type) -> our reason key.
FLAGGED: dict[str, str] = {
    "hold.too_long": "hold.violation",
    "away.long": "away.5min",
    "away.too_long": "away.15min",
    "call.dead_air": "call.dead_air",
    "floor.loud": "floor.loud",
    "shift.absent": "shift.absent",
}


@dataclass(frozen=True)
class Shift:
    start: str = "08:45"
    end: str = "17:30"
    lunch_start: str = "12:00"
    lunch_end: str = "13:30"
    ready_before_s: float = 300.0
    absent_after_s: float = 3600.0
    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Thresholds:
    """The numbers a seat is judged by. The defaults are those of docs/norms.md (the default
    profile), used for seats that do not publish `info.thresholds` (older than issue 15);
    `published` says which it is."""

    ring_limit: int = 3
    ring_period_s: float = 5.0
    hold_warn_s: float = 120.0
    hold_violation_s: float = 180.0
    away_warn_s: float = 300.0  # away.long_after
    away_violation_s: float = 900.0  # away.too_long_after
    dead_air_notice_s: float = 5.0
    dead_air_violation_s: float = 15.0
    shift: Shift = field(default_factory=Shift)
    published: bool = False

    @property
    def answer_limit_s(self) -> float:
        """A call answered at or after this many seconds of ringing is late (`answer.late`)."""
        return self.ring_limit * self.ring_period_s

    @classmethod
    def from_info(cls, info: SeatInfo | InfoThresholds | Mapping[str, Any] | None) -> Thresholds:
        """From a seat's `info` (parsed, or as a dict, e.g. the store's copy) or its
        `thresholds` part; the documented defaults when it has none or it does not parse."""
        if info is None:
            return cls()
        if isinstance(info, SeatInfo):
            part = info.thresholds
        elif isinstance(info, InfoThresholds):
            part = info
        else:
            raw = info.get("thresholds") if "thresholds" in info else info
            if not isinstance(raw, Mapping):
                return cls()
            try:
                part = InfoThresholds.model_validate(raw, strict=False)
            except ValueError:
                return cls()
        if part is None:
            return cls()
        att = part.attendance
        return cls(
            ring_limit=part.answer.ring_limit,
            ring_period_s=part.answer.ring_period_s,
            hold_warn_s=part.hold_time.warn_after_s,
            hold_violation_s=part.hold_time.violation_after_s,
            away_warn_s=part.away.long_after_s,
            away_violation_s=part.away.too_long_after_s,
            dead_air_notice_s=part.dead_air.notice_after_s,
            dead_air_violation_s=part.dead_air.violation_after_s,
            shift=Shift(
                start=att.start,
                end=att.end,
                lunch_start=att.lunch_start,
                lunch_end=att.lunch_end,
                ready_before_s=att.ready_before_s,
                absent_after_s=att.absent_after_s,
                workdays=tuple(att.workdays),
            ),
            published=True,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer_limit_s": self.answer_limit_s,
            "hold_warn_s": self.hold_warn_s,
            "hold_violation_s": self.hold_violation_s,
            "away_warn_s": self.away_warn_s,
            "away_violation_s": self.away_violation_s,
            "published": self.published,
        }


DEFAULTS = Thresholds()


@dataclass(frozen=True)
class Severity:
    level: str  # ok | warn | fault | violation | offline
    reasons: list[str]
    since: str | None  # ISO UTC: when the most urgent reason began

    @property
    def rank(self) -> int:
        return RANK[self.level]


def _at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def severity(
    view: SeatView,
    thresholds: Thresholds | SeatInfo | InfoThresholds | Mapping[str, Any] | None,
    now: datetime | float | None = None,
) -> Severity:
    """The seat's level now. `now` is the wall time (an aware datetime, or epoch seconds;
    None: the clock). `thresholds`: `Thresholds.from_info(view.info)` (worth keeping per
    seat on a large floor), or what it takes; None: the documented defaults."""
    if isinstance(thresholds, Thresholds):
        limits = thresholds
    else:
        limits = Thresholds.from_info(thresholds) if thresholds is not None else DEFAULTS
    if now is None:
        wall = datetime.now(UTC)
    elif isinstance(now, int | float):
        wall = datetime.fromtimestamp(now, UTC)
    else:
        wall = now if now.tzinfo else now.replace(tzinfo=UTC)
    state = view.state
    if view.online is False:
        return Severity("offline", ["offline"], None)
    if state is None:
        if "state" in view.problems and view.online:
            return Severity("fault", ["state.bad"], None)
        return Severity("offline", ["state.unknown"], None)
    found: dict[str, datetime | None] = {}

    def add(reason: str, since: datetime | None) -> None:
        known = found.get(reason)
        if reason not in found or (since and (known is None or known > since)):
            found[reason] = since

    _call(state, limits, wall, view, add)
    _presence(state, limits, wall, add)
    for violation in state.violations:
        reason = FLAGGED.get(violation.type)
        if reason:
            add(reason, _at(violation.since))
    if not state.headset.connected:
        add("headset.lost", _at(state.headset.since))
    if state.radar.ok is False:
        add("radar.lost", _at(state.radar.since))
    if state.audio.ok is False:
        add("audio.lost", _at(state.audio.since))
    if "state" in view.problems:
        add("state.bad", None)
    if not found:
        return Severity("ok", [], None)
    far = datetime.max.replace(tzinfo=UTC)
    order = sorted(found, key=lambda r: (-RANK[REASONS[r]], found[r] or far, r))
    top = order[0]
    since = found[top]
    return Severity(REASONS[top], order, _iso(since) if since else None)


def _call(state: SeatState, limits: Thresholds, wall: datetime, view: SeatView, add: Any) -> None:
    call = state.call
    since = _at(call.since)
    if since is None:
        return
    elapsed = (wall - since).total_seconds()
    if call.state == "ringing" and elapsed >= limits.answer_limit_s:
        add("ring.late", since)
    if call.state == "held":
        if elapsed >= limits.hold_violation_s:
            add("hold.violation", since)
        elif elapsed >= limits.hold_warn_s:
            add("hold.warn", since)
        heard = _at(view.last_event_ts)
        if view.last_event == "hold.unmuted_speech" and heard and heard >= since:
            add("speech_on_hold", heard)


def _presence(state: SeatState, limits: Thresholds, wall: datetime, add: Any) -> None:
    if state.presence.state != "away" or state.shift.phase != "on":
        return  # away outside working time (lunch, before, after) is nobody's business
    left = _at(state.presence.since)
    phase = _at(state.shift.since)
    if left is None or phase is None:
        return
    since = max(left, phase)  # counted from when working time began, as the seat does
    elapsed = (wall - since).total_seconds()
    if elapsed >= limits.away_violation_s:
        add("away.15min", since)
    elif elapsed >= limits.away_warn_s:
        add("away.5min", since)
