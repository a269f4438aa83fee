"""Norm `answer`: answer within the ring limit (000 第十六条(二), 002, 004).

Rings are counted from ring start to hook-off at the profile's ring period; late → `answer.late`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from edge.core.clock import Instant
from edge.core.effects import Emit, Request
from edge.core.norm_settings import AnswerSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, DayTally, Norm
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    day: str = ""
    answered: int = 0
    late: int = 0
    answer_s_total: float = 0.0
    restored: bool = False  # the counts from before a restart were added (once a day)


def rings_heard(seconds: float, period: float) -> int:
    """Rings started by `seconds` after ring start: ring k starts at (k-1) * period."""
    return math.floor(seconds / period + 1e-9) + 1


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    day = ctx.now.wall.date().isoformat()
    if day != state.day:
        state = State(day=day)
    before, after = ctx.before.call, ctx.after.call
    if not (before.state == "ringing" and after.state == "active" and before.ring_start):
        return state, NO_REQUESTS
    answer_s = ctx.now.mono - before.ring_start.mono
    rings = rings_heard(answer_s, ctx.settings.ring_period)
    late = rings > ctx.settings.ring_limit
    state = replace(
        state,
        answered=state.answered + 1,
        late=state.late + int(late),
        answer_s_total=state.answer_s_total + answer_s,
    )
    if not late:
        return state, NO_REQUESTS
    data = {"rings": rings, "limit": ctx.settings.ring_limit, "answer_s": round(answer_s, 3)}
    return state, (Emit("answer.late", data),)


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


def public(state: State, now: Instant) -> dict[str, Any]:
    mean = state.answer_s_total / state.answered if state.answered else None
    return {
        "answered": state.answered,
        "late": state.late,
        "mean_answer_s": round(mean, 1) if mean is not None else None,
    }


NORM: Norm[State, Settings] = Norm(
    name="answer",
    settings=Settings,
    initial=lambda now: State(day=now.wall.date().isoformat()),
    step=step,
    deadline=deadline,
    public=public,
    # The day's counts survive a restart of the service (edge/shell/day_store.py).
    day=DayTally.adding({"answered": int, "late": int, "answer_s_total": float}),
)
