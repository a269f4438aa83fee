"""Norm `attendance`: log in on time, leave not before the end (000 坐席管理 第七–十条; 002; 004).

Against the profile's shift: `shift.not_ready` at the readiness time, `shift.late` on a late
first arrival, `shift.absent` when nobody came by the absence limit, `shift.early_leave`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from edge.core.clock import Instant, iso
from edge.core.effects import Emit, Flag, Request
from edge.core.inputs import Tick
from edge.core.norm_settings import AttendanceSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, DayTally, Norm, earliest
from edge.core.state import Facts

# A box that boots this long after the readiness time does not judge readiness that day.
READY_CHECK_GRACE_S = 60.0


@dataclass(frozen=True, slots=True)
class State:
    day: str = ""
    arrived: str = ""  # wall clock of the first presence today
    late_min: float = 0.0
    ready_checked: bool = False
    absent: bool = False
    ended: bool = False
    early_leave_min: float = 0.0
    # False when the seat started after the shift start and its first look already found the
    # agent there: when they came is not known, so lateness is not judged.
    arrival_seen: bool = True


def _wall(now: Instant, hhmm: Any, offset_s: float = 0.0) -> datetime:
    return datetime.combine(now.wall.date(), hhmm, tzinfo=now.wall.tzinfo) + timedelta(
        seconds=offset_s
    )


def _ready(facts: Facts) -> list[str]:
    missing = []
    if facts.presence.state != "present":
        missing.append("presence")
    if not facts.headset.connected:
        missing.append("headset")
    return missing


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    settings, now, facts = ctx.settings, ctx.now, ctx.after
    day = now.wall.date().isoformat()
    if day != state.day:
        state = State(day=day)
    if facts.shift.phase == "off_day":
        return state, NO_REQUESTS
    start = _wall(now, settings.start)
    end = _wall(now, settings.end)
    check = start - timedelta(seconds=settings.ready_before)
    requests: list[Request] = []

    # At exactly the readiness time the other inputs of that instant come first, then the tick.
    if not state.ready_checked and (
        check < now.wall or (check == now.wall and isinstance(ctx.input, Tick))
    ):
        state = replace(state, ready_checked=True)
        missing = _ready(facts)
        # Judge readiness only at the readiness time, not when the box booted later.
        on_time = (now.wall - check).total_seconds() <= READY_CHECK_GRACE_S
        if missing and on_time and now.wall < start:
            requests.append(
                Emit(
                    "shift.not_ready",
                    {"missing": missing, "start": settings.start.isoformat("minutes")},
                )
            )

    if not state.arrived and facts.presence.state == "present" and now.wall < end:
        late_s = (now.wall - start).total_seconds()
        # Presence is unknown only until the seat's first look after it starts. A box that
        # started after the shift start and finds the agent there at that look cannot tell when
        # they came (the service restarted with no saved tally, the box was installed mid-shift).
        looked = ctx.before.presence
        seen = looked.state != "unknown" or late_s <= 0 or looked.since.wall <= start
        state = replace(
            state,
            arrived=iso(now.wall),
            late_min=max(0.0, late_s / 60) if seen else 0.0,
            arrival_seen=seen,
        )
        if state.absent:
            requests.append(Flag("shift.absent", False))
        if late_s > 0 and seen:
            data = {
                "late_min": round(late_s / 60, 1),
                "arrived": iso(now.wall),
                "counts_as_absence": late_s > settings.absent_after,
            }
            requests.append(Emit("shift.late", data))

    absent_at = start + timedelta(seconds=settings.absent_after)
    # Absence is judged only once presence is known (a box booting late first has to look).
    known = facts.presence.state != "unknown"
    if not state.arrived and not state.absent and known and absent_at <= now.wall < end:
        state = replace(state, absent=True)
        requests += [
            Emit(
                "shift.absent",
                {
                    "start": settings.start.isoformat("minutes"),
                    "limit_min": round(settings.absent_after / 60, 1),
                },
            ),
            Flag("shift.absent", True),
        ]

    if not state.ended and end <= now.wall:
        state = replace(state, ended=True)
        left = facts.presence.since.wall
        if state.arrived and facts.presence.state == "away" and left < end:
            early_s = (end - left).total_seconds()
            state = replace(state, early_leave_min=early_s / 60)
            data = {
                "left_at": iso(left),
                "early_min": round(early_s / 60, 1),
                "counts_as_absence": early_s > settings.absent_after,
            }
            requests.append(Emit("shift.early_leave", data))
        if state.absent:
            requests.append(Flag("shift.absent", False))
    return state, requests or NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if facts.shift.phase == "off_day":
        return None
    start = _wall(now, settings.start)
    marks: list[datetime | None] = [
        start - timedelta(seconds=settings.ready_before) if not state.ready_checked else None,
        start + timedelta(seconds=settings.absent_after)
        if not state.arrived and not state.absent
        else None,
        _wall(now, settings.end) if not state.ended else None,
    ]
    return earliest(*(now.mono_at(mark) for mark in marks if mark is not None and mark > now.wall))


def public(state: State, now: Instant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "arrived": state.arrived or None,
        "late_min": round(state.late_min, 1),
        "absent": state.absent and not state.arrived,
        "early_leave_min": round(state.early_leave_min, 1),
    }
    if state.arrived and not state.arrival_seen:
        out["arrival_seen"] = False
    return out


_TALLY_FIELDS: dict[str, type] = {
    "arrived": str,
    "late_min": float,
    "arrival_seen": bool,
    "ready_checked": bool,
    "absent": bool,
    "ended": bool,
    "early_leave_min": float,
}


def _save(state: State) -> dict[str, Any]:
    return {name: getattr(state, name) for name in _TALLY_FIELDS}


def _wall_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _restore(state: State, saved: Mapping[str, Any]) -> tuple[State, Sequence[Request]]:
    """What the day held before a restart: the arrival and its lateness, the checks already
    made. An agent judged absent and still not seen is flagged absent again."""
    if saved["arrived"] and _wall_time(saved["arrived"]) and not state.arrived:
        state = replace(
            state,
            arrived=saved["arrived"],
            late_min=saved["late_min"],
            arrival_seen=saved["arrival_seen"],
        )
    state = replace(
        state,
        ready_checked=state.ready_checked or saved["ready_checked"],
        absent=state.absent or saved["absent"],
        ended=state.ended or saved["ended"],
        early_leave_min=max(state.early_leave_min, saved["early_leave_min"]),
    )
    if state.absent and not state.arrived and not state.ended:
        return state, (Flag("shift.absent", True),)
    return state, NO_REQUESTS


NORM: Norm[State, Settings] = Norm(
    name="attendance",
    settings=Settings,
    initial=lambda now: State(day=now.wall.date().isoformat()),
    step=step,
    deadline=deadline,
    public=public,
    day=DayTally(
        fields=_TALLY_FIELDS,
        save=_save,
        restore=_restore,
    ),
)
