"""Hearing safety on the receive samples: a per-sample peak limiter and a smooth gain cap.

`PeakLimiter` (acoustic-shock protection): a look-ahead limiter whose gain is the moving
average (over the look-ahead L) of a running minimum (over L + hold) of the gain each sample
needs, min(1, ceiling/|x|). Every sample inside the averaging window has its own need in the
running minimum, so the gain applied to a sample is never above what it needs: no output
sample exceeds the ceiling (a final clip only removes float rounding). The signal is delayed
by L - 1 samples (1 ms by default); the gain recovers `hold_s` after the last loud sample.
All vectorised (van Herk running minimum, cumulative-sum average): no per-sample Python loop.

`GainCap`: the receive gain limit (the seat's `SetRxCap`: the daily dose cap, a peak cap),
reached by a linear ramp so a cap never clicks.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatBlock = npt.NDArray[np.float64]

DEFAULT_LOOKAHEAD_S = 0.001
DEFAULT_HOLD_S = 0.01
DEFAULT_CAP_RAMP_S = 0.02


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def peak_ceiling_dbfs(peak_limit_db_spl: float, sensitivity_db_spl: float) -> float:
    """The sample peak (dBFS, 20 log10 |x|, full scale 1.0) that reaches the ear at the limit.

    `sensitivity_db_spl` is the headset's dB SPL for a 0 dBov receive signal (the profile's
    `[hearing] sensitivity_db_spl`), the convention of `dsp.exposure.at_ear_db`.
    """
    return peak_limit_db_spl - sensitivity_db_spl


def dose_gain_limit_db(dose_pct: float, cap_db: float) -> float | None:
    """The receive gain limit of the daily dose (`dsp.exposure.NoiseDose.dose_pct`): the
    profile's `dose_cap_db` once the dose reaches 100 %, else no limit (None)."""
    return cap_db if dose_pct >= 100.0 else None


def running_min(values: FloatBlock, width: int) -> FloatBlock:
    """out[i] = min(values[i : i + width]) for every full window (van Herk / Gil-Werman)."""
    count = values.shape[0] - width + 1
    if count <= 0:
        return np.empty(0, dtype=np.float64)
    pad = (-values.shape[0]) % width
    blocks = np.concatenate([values, np.full(pad, np.inf)]).reshape(-1, width)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.asarray(
        np.minimum(suffix[:count], prefix[width - 1 : width - 1 + count]), dtype=np.float64
    )


class PeakLimiter:
    """No sample above `ceiling` (linear, full scale 1.0); None: gain 1 (same delay)."""

    def __init__(
        self,
        samplerate: int,
        ceiling: float | None = None,
        lookahead_s: float = DEFAULT_LOOKAHEAD_S,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        if samplerate <= 0:
            raise ValueError(f"limiter samplerate: expected > 0, got {samplerate}")
        if lookahead_s < 0 or hold_s < 0:
            raise ValueError("limiter lookahead_s and hold_s: expected >= 0")
        self.samplerate = samplerate
        self.lookahead = max(1, int(round(lookahead_s * samplerate)))
        self.window = self.lookahead + int(round(hold_s * samplerate))
        self.ceiling = ceiling
        self._x_hist = np.zeros(self.lookahead - 1)
        self._need_hist = np.ones(self.window - 1)
        self._min_hist = np.ones(self.lookahead - 1)
        self._idle = True  # no gain below 1 anywhere in the histories
        self.min_gain = 1.0  # lowest gain applied since the last `reset_stats`

    @property
    def delay(self) -> int:
        """Samples by which the output lags the input."""
        return self.lookahead - 1

    def set_ceiling_dbfs(self, dbfs: float | None) -> None:
        if dbfs is not None and not math.isfinite(dbfs):
            raise ValueError(f"limiter ceiling: expected a finite dBFS, got {dbfs}")
        self.ceiling = None if dbfs is None else db_to_gain(dbfs)

    def reset_stats(self) -> None:
        self.min_gain = 1.0

    def process(self, block: FloatBlock) -> FloatBlock:
        n = block.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        ceiling = self.ceiling
        magnitude = np.abs(block)
        if self._idle and (ceiling is None or float(magnitude.max()) <= ceiling):
            # Nothing to limit now or within the window (the common case): only the delay.
            delayed = np.concatenate([self._x_hist, block])
            self._x_hist = delayed[n:]
            return np.asarray(delayed[:n], dtype=np.float64)
        if ceiling is None:
            need = np.ones(n)
        else:
            need = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
        needs = np.concatenate([self._need_hist, need])
        minima = np.concatenate([self._min_hist, running_min(needs, self.window)])
        sums = np.concatenate([[0.0], np.cumsum(minima)])
        gain = (sums[self.lookahead :] - sums[: -self.lookahead]) / self.lookahead
        delayed = np.concatenate([self._x_hist, block])
        out = delayed[:n] * gain
        if ceiling is not None:
            out = np.clip(out, -ceiling, ceiling)  # float rounding of the average only
        self._x_hist = delayed[n:]
        self._need_hist = needs[needs.shape[0] - (self.window - 1) :]
        self._min_hist = minima[minima.shape[0] - (self.lookahead - 1) :]
        self.min_gain = min(self.min_gain, float(gain.min()))
        # Idle again once every gain the window can still use is 1.
        self._idle = bool(self._need_hist.min() >= 1.0 and self._min_hist.min() >= 1.0)
        return np.asarray(out, dtype=np.float64)


class GainCap:
    """The receive gain: 0 dB, or `cap_db` when capped; changes ramp over `ramp_s`."""

    def __init__(self, samplerate: int, ramp_s: float = DEFAULT_CAP_RAMP_S) -> None:
        self.ramp = max(1, int(round(ramp_s * samplerate)))
        self.cap_db: float | None = None
        self.gain = 1.0

    def set_cap_db(self, cap_db: float | None) -> None:
        if cap_db is not None and not math.isfinite(cap_db):
            raise ValueError(f"receive gain cap: expected a finite dB value, got {cap_db}")
        self.cap_db = cap_db

    def process(self, block: FloatBlock) -> FloatBlock:
        target = 1.0 if self.cap_db is None else min(1.0, db_to_gain(self.cap_db))
        n = block.shape[0]
        if self.gain == target or n == 0:
            return block * target if target != 1.0 else block.copy()
        # Linear in gain at 1/`ramp` per sample (0 dB to silence in `ramp_s`); a change longer
        # than the block continues in the next one.
        step = (1.0 if target > self.gain else -1.0) / self.ramp
        k = np.arange(1, n + 1, dtype=np.float64)
        gains = self.gain + step * k
        gains = np.minimum(gains, target) if step > 0 else np.maximum(gains, target)
        self.gain = float(gains[-1])
        return np.asarray(block * gains, dtype=np.float64)
