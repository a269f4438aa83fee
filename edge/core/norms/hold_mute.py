"""Norm `hold_mute`: on hold the customer must not hear the seat (000 第二十五条; 001 (6)).

Enforced: the box mutes the mic while on hold and the agent's own mute returns on resume;
when not enforced, agent speech heard on hold while unmuted is `hold.unmuted_speech`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.effects import Emit, ForceMute, Request
from edge.core.norm_settings import HoldMuteSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm
from edge.core.state import Facts

POLICY = "hold_policy"


@dataclass(frozen=True, slots=True)
class State:
    reported: bool = False  # unmuted speech already reported for this hold


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    held_before = ctx.before.call.state == "held"
    held_after = ctx.after.call.state == "held"
    if held_after and not held_before:
        return State(), ((ForceMute(POLICY, True),) if ctx.settings.enforce else NO_REQUESTS)
    if held_before and not held_after:
        return State(), (ForceMute(POLICY, False),)
    if (
        held_after
        and not ctx.settings.enforce
        and not state.reported
        and ctx.after.tx.speaking
        and not ctx.after.mute.muted
    ):
        return State(reported=True), (Emit("hold.unmuted_speech", {}),)
    return state, NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


NORM: Norm[State, Settings] = Norm(
    name="hold_mute", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
