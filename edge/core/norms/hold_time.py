"""Norm `hold_time`: long holds (003 2.2.3; 000 第十九条(八) "等待1~2分钟").

`hold.long` at the warning, `hold.too_long` (an active violation until resume) at the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.effects import Emit, Flag, Request
from edge.core.norm_settings import HoldTimeSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm, due
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    stage: int = 0  # 0 nothing said, 1 warned, 2 violation raised


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    call = ctx.after.call
    if ctx.before.call.state == "held" and call.state != "held":
        return State(), ((Flag("hold.too_long", False),) if state.stage == 2 else NO_REQUESTS)
    if call.state != "held":
        return state, NO_REQUESTS
    held = ctx.now.mono - call.since.mono
    start = call.since.mono
    requests: list[Request] = []
    if state.stage < 1 and due(start + ctx.settings.warn_after, ctx.now):
        requests.append(Emit("hold.long", {"hold_s": round(held, 3)}))
        state = State(stage=1)
    if state.stage < 2 and due(start + ctx.settings.violation_after, ctx.now):
        requests += [Emit("hold.too_long", {"hold_s": round(held, 3)}), Flag("hold.too_long", True)]
        state = State(stage=2)
    return state, requests


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if facts.call.state != "held" or state.stage >= 2:
        return None
    after = settings.warn_after if state.stage == 0 else settings.violation_after
    return facts.call.since.mono + after


NORM: Norm[State, Settings] = Norm(
    name="hold_time", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
