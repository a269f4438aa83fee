"""Hearing exposure of the receive channel: A-weighted level at the ear per second, peak limit,
and the daily noise dose L_EX,8h (ISO 1999 / EU 2003/10/EC) with a state that survives restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dsp.types import SILENCE_DB, ChannelLevels

# ISO 1999 §3.6: L_EX,8h normalises exposure to a nominal 8 h working day.
NOMINAL_DAY_S = 8 * 3600.0
# Reference sound pressure 20 uPa (ISO 1683): p^2 in Pa^2 of a level L dB is P0_SQ * 10^(L/10).
P0_SQ_PA2 = (20e-6) ** 2
# IEC 62368-1 Table 39, as used by AOSP sound dose: without a calibration, -30 dBFS = 80 dB SPL.
DEFAULT_SENSITIVITY_DB_SPL = 110.0


def at_ear_db(level_dbfs: float, sensitivity_db_spl: float) -> float:
    """Level at the ear (dB SPL) of a digital level; sensitivity = dB SPL for 0 dBov RMS."""
    return level_dbfs + sensitivity_db_spl if level_dbfs > SILENCE_DB else SILENCE_DB


@dataclass(frozen=True, slots=True)
class EarSecond:
    """One second of the receive channel at the ear."""

    laeq_dba: float  # A-weighted equivalent level, dB(A) SPL
    peak_db_spl: float  # highest sample peak, dB SPL (unweighted)
    peak_exceeded: bool  # peak at or above the limit during this second


class EarLevelMeter:
    """Turns receive-channel `ChannelLevels` periods into one `EarSecond` per second of audio."""

    def __init__(self, sensitivity_db_spl: float, peak_limit_db_spl: float) -> None:
        self.sensitivity_db_spl = sensitivity_db_spl
        self.peak_limit_db_spl = peak_limit_db_spl
        self._energy = 0.0  # sum of 10^(L/10) * seconds, L in dBFS(A)
        self._seconds = 0.0
        self._peak_dbfs = SILENCE_DB

    def peak_exceeded(self, rx: ChannelLevels) -> bool:
        """A peak limit breach within one period, for an immediate reaction (acoustic shock)."""
        return at_ear_db(rx.peak_dbfs, self.sensitivity_db_spl) >= self.peak_limit_db_spl

    def update(self, rx: ChannelLevels) -> EarSecond | None:
        if rx.laeq_dbfs > SILENCE_DB:
            self._energy += 10.0 ** (rx.laeq_dbfs / 10.0) * rx.period_s
        self._seconds += rx.period_s
        self._peak_dbfs = max(self._peak_dbfs, rx.peak_dbfs)
        if self._seconds < 1.0 - 1e-9:
            return None
        mean = self._energy / self._seconds
        laeq = 10.0 * math.log10(mean) if mean > 1e-10 else SILENCE_DB
        peak = at_ear_db(self._peak_dbfs, self.sensitivity_db_spl)
        self._energy, self._seconds, self._peak_dbfs = 0.0, 0.0, SILENCE_DB
        return EarSecond(
            laeq_dba=at_ear_db(laeq, self.sensitivity_db_spl),
            peak_db_spl=peak,
            peak_exceeded=peak >= self.peak_limit_db_spl,
        )


class NoiseDose:
    """Daily A-weighted exposure: energy E = sum p_A^2 * t (Pa^2 s), L_EX,8h and dose percent.

    The caller owns the day: `to_dict()` is persisted, `from_dict()` restores it after a restart
    on the same day, and a new day starts with a new accumulator.
    """

    def __init__(self, day: str = "", exposure_pa2s: float = 0.0, seconds: float = 0.0) -> None:
        self.day = day
        self.exposure_pa2s = exposure_pa2s
        self.seconds = seconds

    def add(self, laeq_dba: float, seconds: float) -> None:
        """Add `seconds` of exposure at `laeq_dba` (dB(A) SPL at the ear)."""
        if seconds <= 0:
            return
        if laeq_dba > SILENCE_DB:
            self.exposure_pa2s += P0_SQ_PA2 * 10.0 ** (laeq_dba / 10.0) * seconds
        self.seconds += seconds

    @property
    def lex_8h_dba(self) -> float:
        """ISO 1999: L_EX,8h = 10 log10( sum t_i 10^(L_i/10) / 8 h )."""
        if self.exposure_pa2s <= 0:
            return SILENCE_DB
        return 10.0 * math.log10(self.exposure_pa2s / (P0_SQ_PA2 * NOMINAL_DAY_S))

    def dose_pct(self, criterion_dba: float) -> float:
        """Dose against a criterion level for 8 h: 100 * 10^((L_EX,8h - L_c)/10)."""
        return float(
            100.0
            * self.exposure_pa2s
            / (P0_SQ_PA2 * 10.0 ** (criterion_dba / 10.0) * NOMINAL_DAY_S)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "exposure_pa2s": self.exposure_pa2s, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseDose:
        """Restore a persisted state; a clear error names the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError(
                "noise dose state: expected an object with day, exposure_pa2s, seconds"
            )
        day = data.get("day", "")
        if not isinstance(day, str):
            raise ValueError(f"noise dose state: 'day' must be a string, got {day!r}")
        values: list[float] = []
        for key in ("exposure_pa2s", "seconds"):
            value = data.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"noise dose state: '{key}' must be a number >= 0, got {value!r}")
            values.append(float(value))
        return cls(day=day, exposure_pa2s=values[0], seconds=values[1])
