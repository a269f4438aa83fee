"""Norm `dead_air`: a silent line (000 第二十三条(三); 004 #3; 003 2.3.3).

No speech on either channel during an active call: a notice, then a violation, both
`call.dead_air` with their severity; the violation stays active until someone speaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.effects import Emit, Flag, Request
from edge.core.norm_settings import DeadAirSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm, due
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    silent_since: float | None = None
    stage: int = 0


def _silent(facts: Facts) -> bool:
    return facts.call.state == "active" and not facts.tx.speaking and not facts.rx.speaking


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    if not _silent(ctx.after):
        cleared = (Flag("call.dead_air", False),) if state.stage == 2 else NO_REQUESTS
        return State(), cleared
    if state.silent_since is None:
        state = State(silent_since=ctx.now.mono)
    start = state.silent_since
    assert start is not None
    requests: list[Request] = []
    for stage, after, severity in (
        (1, ctx.settings.notice_after, "notice"),
        (2, ctx.settings.violation_after, "violation"),
    ):
        if state.stage < stage and due(start + after, ctx.now):
            silent = round(ctx.now.mono - start, 3)
            requests.append(Emit("call.dead_air", {"severity": severity, "silent_s": silent}))
            if stage == 2:
                requests.append(Flag("call.dead_air", True))
            state = State(silent_since=start, stage=stage)
    return state, requests


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if state.silent_since is None or state.stage >= 2:
        return None
    after = settings.notice_after if state.stage == 0 else settings.violation_after
    return state.silent_since + after


NORM: Norm[State, Settings] = Norm(
    name="dead_air", settings=Settings, initial=lambda now: State(), step=step, deadline=deadline
)
