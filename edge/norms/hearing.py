"""Norm `hearing`: receive volume must not harm hearing (safety, beyond the seeds).

The level at the ear is the receive channel's digital level plus the headset model's
sensitivity. Peaks above the limit and a daily dose above the limit cap the receive gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from drivers.audio import AudioLevels
from edge.clock import Instant
from edge.config import Section
from edge.effects import CapRx, Emit, Request
from edge.norms.base import NO_REQUESTS, Ctx, Norm
from edge.state import Facts

# EU 2003/10/EC art. 2: daily exposure is normalised to a nominal 8-hour working day.
EIGHT_HOURS_S = 8 * 3600.0


class Settings(Section):
    peak_limit_db_spl: float  # acoustic-shock practice: no peak above this at the ear
    dose_limit_dba: float  # L_EX,8h limit (lower action value)
    dose_cap_db: float  # receive gain cap once the day's dose reaches 100 %
    sensitivity_db_spl: dict[str, float]  # headset model -> dB SPL at the ear for 0 dBFS
    default_sensitivity_db_spl: float  # for models not in the table


@dataclass(frozen=True, slots=True)
class State:
    day: str = ""
    energy: float = 0.0  # sum of 10^(LA/10) * seconds at the ear today
    peak_cap_db: float | None = None
    dose_reached: bool = False


def lex_8h(energy: float) -> float:
    """Daily exposure level L_EX,8h in dB(A) from the day's A-weighted energy sum."""
    return 10 * math.log10(energy / EIGHT_HOURS_S) if energy > 0 else -math.inf


def dose_pct(energy: float, limit_dba: float) -> float:
    return 100.0 * energy / (EIGHT_HOURS_S * 10 ** (limit_dba / 10))


def _sensitivity(facts: Facts, settings: Settings) -> float:
    info = facts.headset.info
    model = info.model if info else ""
    return settings.sensitivity_db_spl.get(model, settings.default_sensitivity_db_spl)


def step(ctx: Ctx[Settings], state: State) -> tuple[State, Sequence[Request]]:
    settings = ctx.settings
    day = ctx.now.wall.date().isoformat()
    requests: list[Request] = []
    if day != state.day:
        if state.dose_reached:
            requests.append(CapRx("hearing_dose", None))
        state = State(day=day, peak_cap_db=state.peak_cap_db)
    if not isinstance(ctx.input, AudioLevels):
        return state, requests or NO_REQUESTS
    rx = ctx.input.rx
    sensitivity = _sensitivity(ctx.after, settings)
    state = replace(
        state, energy=state.energy + 10 ** ((rx.laeq_dbfs + sensitivity) / 10) * rx.period_s
    )
    peak = rx.peak_dbfs + sensitivity
    if peak > settings.peak_limit_db_spl:
        excess = peak - settings.peak_limit_db_spl
        cap = (state.peak_cap_db or 0.0) - excess
        state = replace(state, peak_cap_db=cap)
        requests += [
            Emit(
                "hearing.peak",
                {
                    "peak_db_spl": round(peak, 1),
                    "limit_db_spl": settings.peak_limit_db_spl,
                    "cap_db": round(cap, 1),
                },
            ),
            CapRx("hearing_peak", cap),
        ]
    pct = dose_pct(state.energy, settings.dose_limit_dba)
    if pct >= 100.0 and not state.dose_reached:
        state = replace(state, dose_reached=True)
        data = {
            "lex_8h_dba": round(lex_8h(state.energy), 1),
            "dose_pct": round(pct, 1),
            "cap_db": settings.dose_cap_db,
        }
        requests += [Emit("hearing.dose", data), CapRx("hearing_dose", settings.dose_cap_db)]
    return state, requests or NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


def public(state: State, now: Instant) -> dict[str, Any]:
    lex = lex_8h(state.energy)
    return {"lex_8h_dba": round(lex, 1) if math.isfinite(lex) else None}


NORM: Norm[State, Settings] = Norm(
    name="hearing",
    settings=Settings,
    initial=lambda now: State(day=now.wall.date().isoformat()),
    step=step,
    deadline=deadline,
    public=public,
)
