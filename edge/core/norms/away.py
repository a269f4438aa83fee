"""Norm `away`: a seat must not be left for long (000 呼叫服务中心行为规范 1, 8; 坐席管理 第十八条).

Away during working time (not lunch): `away.long` (and a screen lock where enabled), then
`away.too_long` for the supervisor, active until the agent is back; per-day count and minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from edge.core.clock import Instant
from edge.core.effects import Emit, Flag, Request, ScreenLock
from edge.core.norm_settings import AwaySettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, DayTally, Norm, due
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    day: str = ""
    since: float | None = None  # mono when counting started
    stage: int = 0
    count: int = 0  # away episodes today in working time
    away_s: float = 0.0  # completed away seconds today in working time
    seen_today: bool = False  # before the first arrival it is attendance's business, not away's
    restored: bool = False  # the counts from before a restart were added (once a day)


def counting(facts: Facts) -> bool:
    return facts.presence.state == "away" and facts.shift.phase == "on"


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    settings = ctx.settings
    day = ctx.now.wall.date().isoformat()
    if day != state.day:
        state = State(day=day, since=state.since, stage=state.stage)
    if ctx.after.presence.state == "present" and not state.seen_today:
        state = replace(state, seen_today=True)
    requests: list[Request] = []
    if not (state.seen_today and counting(ctx.after)):
        if state.since is None:
            return state, NO_REQUESTS
        if state.stage >= 1:
            requests.append(Flag("away.long", False))
        if state.stage >= 2:
            requests.append(Flag("away.too_long", False))
        spent = ctx.now.mono - state.since
        return replace(state, since=None, stage=0, away_s=state.away_s + spent), requests
    if state.since is None:
        # Count from when the agent was last seen, or from when working time began.
        start = max(ctx.after.presence.since.mono, ctx.after.shift.since.mono)
        state = replace(state, since=start, stage=0, count=state.count + 1)
    since = state.since
    assert since is not None
    away = round(ctx.now.mono - since, 3)
    if state.stage < 1 and due(since + settings.long_after, ctx.now):
        requests += [Emit("away.long", {"away_s": away}), Flag("away.long", True)]
        if settings.screen_lock:
            requests.append(ScreenLock(reason="away.long"))
        state = replace(state, stage=1)
    if state.stage < 2 and due(since + settings.too_long_after, ctx.now):
        requests += [Emit("away.too_long", {"away_s": away}), Flag("away.too_long", True)]
        state = replace(state, stage=2)
    return state, requests


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    if state.since is None or state.stage >= 2:
        return None
    return state.since + (settings.long_after if state.stage == 0 else settings.too_long_after)


def public(state: State, now: Instant) -> dict[str, Any]:
    running = now.mono - state.since if state.since is not None else 0.0
    return {"away_count": state.count, "away_min": round((state.away_s + running) / 60, 1)}


NORM: Norm[State, Settings] = Norm(
    name="away",
    settings=Settings,
    initial=lambda now: State(day=now.wall.date().isoformat()),
    step=step,
    deadline=deadline,
    public=public,
    # Completed episodes survive a restart (edge/shell/day_store.py); one running at the restart is
    # counted anew from the start.
    day=DayTally.adding({"count": int, "away_s": float, "seen_today": bool}),
)
