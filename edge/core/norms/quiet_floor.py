"""Norm `quiet_floor`: no loud talk in the work area, no slammed headsets (000 第四条, 第八条).

Ambient level at the mic outside calls above the limit for a while → `floor.loud` (active until
it drops); an impulsive peak (high peak, high crest factor) → `headset.impact`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.audio.events import AudioLevels
from edge.core.clock import Instant
from edge.core.effects import Emit, Flag, Request
from edge.core.norm_settings import QuietFloorSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm, due
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    loud_since: float | None = None
    raised: bool = False


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    settings = ctx.settings
    requests: list[Request] = []
    idle = ctx.after.call.state == "idle"
    if isinstance(ctx.input, AudioLevels):
        tx = ctx.input.tx
        if (
            idle
            and tx.peak_dbfs >= settings.impact_peak_dbfs
            and tx.crest_db >= settings.impact_crest_db
        ):
            impact = {"peak_dbfs": round(tx.peak_dbfs, 1), "crest_db": round(tx.crest_db, 1)}
            requests.append(Emit("headset.impact", impact))
        loud = idle and tx.rms_dbov > settings.ambient_dbfs
        if not loud:
            if state.raised:
                requests.append(Flag("floor.loud", False))
            return State(), requests
        if state.loud_since is None:
            state = State(loud_since=ctx.now.mono)
    elif not idle and state.loud_since is not None:
        if state.raised:
            requests.append(Flag("floor.loud", False))
        return State(), requests
    loud_since = state.loud_since
    if (
        loud_since is not None
        and not state.raised
        and due(loud_since + settings.ambient_for, ctx.now)
    ):
        level = ctx.after.last_audio.tx.rms_dbov if ctx.after.last_audio else None
        data: dict[str, float | None] = {
            "level_dbfs": round(level, 1) if level is not None else None,
            "loud_s": round(ctx.now.mono - loud_since, 3),
        }
        requests += [Emit("floor.loud", data), Flag("floor.loud", True)]
        state = State(loud_since=loud_since, raised=True)
    return state, requests or NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if state.loud_since is None or state.raised:
        return None
    return state.loud_since + settings.ambient_for


NORM: Norm[State, Settings] = Norm(
    name="quiet_floor", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
