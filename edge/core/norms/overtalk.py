"""Norm `overtalk`: do not interrupt the customer (000 第二十四条 "轻易打断客户、插话").

Agent speech starting while the customer speaks and overlapping for the limit → `talk.interrupt`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.effects import Emit, Request
from edge.core.norm_settings import OvertalkSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm, due
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    started: float | None = None  # mono when the agent cut in over the customer
    reported: bool = False


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    after, before = ctx.after, ctx.before
    both = after.tx.speaking and after.rx.speaking and after.call.state == "active"
    if not both:
        return (State(), NO_REQUESTS) if state.started is not None else (state, NO_REQUESTS)
    started = state.started
    if started is None:
        cut_in = not before.tx.speaking and before.rx.speaking
        if not cut_in:
            return state, NO_REQUESTS
        started = ctx.now.mono
        state = State(started=started)
    if not state.reported and due(started + ctx.settings.min_overlap, ctx.now):
        overlap = ctx.now.mono - started
        data = {"by": "agent", "overlap_s": round(overlap, 3), "limit_s": ctx.settings.min_overlap}
        return State(started=started, reported=True), (Emit("talk.interrupt", data),)
    return state, NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if state.started is None or state.reported:
        return None
    return state.started + settings.min_overlap


NORM: Norm[State, Settings] = Norm(
    name="overtalk", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
