"""Norm `hearing`: receive volume must not harm hearing (safety, beyond the seeds).

The level at the ear is the receive channel's digital level plus the headset model's
sensitivity. Peaks above the limit and a daily dose above the limit cap the receive gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from drivers.audio.events import AudioLevels
from dsp.exposure import P0_SQ_PA2
from edge.core.clock import Instant
from edge.core.effects import CapRx, Emit, Request
from edge.core.inputs import RestoreDose
from edge.core.norm_settings import HearingSettings as Settings
from edge.core.norms.base import NO_REQUESTS, Ctx, Norm
from edge.core.state import Facts

# EU 2003/10/EC art. 2: daily exposure is normalised to a nominal 8-hour working day.
EIGHT_HOURS_S = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class State:
    day: str = ""  # the local date (the seat clock's zone) the dose belongs to
    energy: float = 0.0  # sum of 10^(LA/10) * seconds at the ear today
    seconds: float = 0.0  # receive audio measured today
    dose_pct: float = 0.0  # of the profile's dose limit, as of the last input
    peak_cap_db: float | None = None
    dose_reached: bool = False
    restored: bool = False  # today's dose from before a restart was added (once a day)

    @property
    def exposure_pa2s(self) -> float:
        """The day's A-weighted exposure E = sum p_A^2 t in Pa^2 s (`dsp.exposure.NoiseDose`)."""
        return P0_SQ_PA2 * self.energy


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
    if isinstance(ctx.input, RestoreDose):
        return _restore(ctx.input, state, settings, requests)
    if not isinstance(ctx.input, AudioLevels):
        return state, requests or NO_REQUESTS
    rx = ctx.input.rx
    sensitivity = _sensitivity(ctx.after, settings)
    energy = state.energy + 10 ** ((rx.laeq_dbfs + sensitivity) / 10) * rx.period_s
    state = replace(
        state,
        energy=energy,
        seconds=state.seconds + rx.period_s,
        dose_pct=dose_pct(energy, settings.dose_limit_dba),
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
    pct = state.dose_pct
    if pct >= 100.0 and not state.dose_reached:
        state = replace(state, dose_reached=True)
        data = {
            "lex_8h_dba": round(lex_8h(state.energy), 1),
            "dose_pct": round(pct, 1),
            "cap_db": settings.dose_cap_db,
        }
        requests += [Emit("hearing.dose", data), CapRx("hearing_dose", settings.dose_cap_db)]
    return state, requests or NO_REQUESTS


def _restore(
    saved: RestoreDose, state: State, settings: Settings, requests: list[Request]
) -> tuple[State, Sequence[Request]]:
    """Add the dose saved before a restart, if it is today's and none was added yet.

    What this run measured since its start is kept (added to, not replaced). A restored dose at
    or above the limit caps the receive gain again; `hearing.dose` is not emitted a second time
    (the previous run published it).
    """
    if saved.day != state.day or state.restored:
        return state, requests or NO_REQUESTS
    energy = state.energy + saved.exposure_pa2s / P0_SQ_PA2
    pct = dose_pct(energy, settings.dose_limit_dba)
    state = replace(
        state,
        energy=energy,
        seconds=state.seconds + saved.seconds,
        dose_pct=pct,
        restored=True,
    )
    if pct >= 100.0 and not state.dose_reached:
        state = replace(state, dose_reached=True)
        requests.append(CapRx("hearing_dose", settings.dose_cap_db))
    return state, requests or NO_REQUESTS


def deadline(state: State, facts: Facts, settings: Settings, now: Instant) -> float | None:
    return None


def public(state: State, now: Instant) -> dict[str, Any]:
    lex = lex_8h(state.energy)
    return {
        "lex_8h_dba": round(lex, 1) if math.isfinite(lex) else None,
        "dose_pct": round(state.dose_pct, 2),
    }


NORM: Norm[State, Settings] = Norm(
    name="hearing",
    settings=Settings,
    initial=lambda now: State(day=now.wall.date().isoformat()),
    step=step,
    deadline=deadline,
    public=public,
)
