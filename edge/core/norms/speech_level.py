"""Norm `speech_level`: moderate, steady volume, mic not too close (001 (3); 002 三(四)2; 004).

Per utterance the ITU-T P.56 active level against the band, clipping for "too close";
per call the spread of utterance levels for "unsteady". Each kind at most once per call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from drivers.audio.events import AudioLevels
from edge.core.clock import Instant
from edge.core.effects import Emit, Request
from edge.core.norm_settings import SpeechLevelSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm
from edge.core.state import Facts


@dataclass(frozen=True, slots=True)
class State:
    energy: float = 0.0  # sum of 10^(L/10) * active seconds in the current utterance
    active_s: float = 0.0
    samples_s: float = 0.0  # seconds of audio in the current utterance (for clipping share)
    clipped: float = 0.0  # clipping_pct * seconds
    utterances: tuple[float, ...] = ()  # levels of this call's judged utterances
    said: frozenset[str] = frozenset()  # event types already emitted this call


def _level(state: State) -> float:
    return 10 * math.log10(state.energy / state.active_s)


def _close_utterance(
    state: State, settings: Settings, measured_dbov: float | None = None
) -> tuple[State, list[Request]]:
    """Judge the utterance: at the meter's P.56 level of the whole utterance when the period
    that ends it carries one (captured or file audio), else at the power mean of its periods."""
    requests: list[Request] = []
    if state.active_s >= settings.min_utterance and state.energy > 0:
        level = _level(state) if measured_dbov is None else measured_dbov
        clipping = state.clipped / state.samples_s if state.samples_s else 0.0
        data = {"level_dbov": round(level, 1), "utterance_s": round(state.active_s, 2)}
        checks = (
            ("speech.too_quiet", level < settings.min_dbov, {"min_dbov": settings.min_dbov}),
            ("speech.too_loud", level > settings.max_dbov, {"max_dbov": settings.max_dbov}),
            (
                "speech.too_close",
                clipping > settings.clipping_pct,
                {"clipping_pct": round(clipping, 3), "limit_pct": settings.clipping_pct},
            ),
        )
        said = set(state.said)
        for kind, breached, extra in checks:
            if breached and kind not in said:
                requests.append(Emit(kind, {**data, **extra}))
                said.add(kind)
        state = replace(state, utterances=(*state.utterances, level), said=frozenset(said))
    return replace(state, energy=0.0, active_s=0.0, samples_s=0.0, clipped=0.0), requests


def _spread(levels: tuple[float, ...]) -> float:
    mean = sum(levels) / len(levels)
    return math.sqrt(sum((x - mean) ** 2 for x in levels) / len(levels))


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    settings = ctx.settings
    call_before, call_after = ctx.before.call, ctx.after.call
    requests: list[Request] = []
    if call_after.in_call and isinstance(ctx.input, AudioLevels):
        tx = ctx.input.tx
        if tx.speech and tx.active_s > 0:
            state = replace(
                state,
                energy=state.energy + 10 ** (tx.active_level_dbov / 10) * tx.active_s,
                active_s=state.active_s + tx.active_s,
                samples_s=state.samples_s + tx.period_s,
                clipped=state.clipped + tx.clipping_pct * tx.period_s,
            )
        elif not tx.speech and state.active_s > 0:
            measured = tx.utterance_level_dbov if tx.utterance_s > 0 else None
            state, requests = _close_utterance(state, settings, measured)
    if call_before.in_call and not call_after.in_call:
        state, requests = _close_utterance(state, settings)
        if len(state.utterances) >= 3 and "speech.unsteady" not in state.said:
            spread = _spread(state.utterances)
            if spread > settings.unsteady_spread_db:
                requests.append(
                    Emit(
                        "speech.unsteady",
                        {
                            "spread_db": round(spread, 1),
                            "limit_db": settings.unsteady_spread_db,
                            "utterances": len(state.utterances),
                        },
                    )
                )
        state = State()
    return state, requests or NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


NORM: Norm[State, Settings] = Norm(
    name="speech_level",
    settings=Settings,
    initial=lambda now: State(),
    step=step,
    deadline=deadline,
)
