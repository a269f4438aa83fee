"""Norm `greet`: greet within the limit after connecting (001 "接通后两秒钟之内…问候").

From answer to the agent's first speech (mic voice activity); late → `greeting.late`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.effects import Emit, Request
from edge.core.norm_settings import GreetSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    answered_at: float | None = None  # mono of the answer; None when not waiting


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    before, after = ctx.before.call, ctx.after.call
    if before.state == "ringing" and after.state == "active":
        state = State(answered_at=ctx.now.mono)
        if not ctx.after.tx.speaking:
            return state, NO_REQUESTS
    if state.answered_at is None:
        return state, NO_REQUESTS
    limit = ctx.settings.limit
    if ctx.after.tx.speaking:
        greet_s = ctx.now.mono - state.answered_at
        if greet_s > limit + 1e-9:
            data = {"greet_s": round(greet_s, 3), "limit_s": limit}
            return State(), (Emit("greeting.late", data),)
        return State(), NO_REQUESTS
    if not after.in_call or after.state == "held":
        # The call ended (or went on hold) before the agent said anything.
        return State(), (Emit("greeting.late", {"greet_s": None, "limit_s": limit}),)
    return state, NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


NORM: Norm[State, Settings] = Norm(
    name="greet", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
