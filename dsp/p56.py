"""ITU-T P.56 method B active speech level, streaming, as the ITU-T G.191 STL `sv-p56.c` v2.3.

Envelope, hangover and threshold counts are vectorised per block; results are exact per block
boundary, so any slice of the stream (period, utterance, call, file) is measured from counts.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

try:
    # lfilter's C kernel without the array-API dispatch around it, which costs more than the
    # filtering of a 100 ms block; same arguments and results (checked in the tests).
    from scipy.signal._sigtools import _linear_filter
except ImportError:  # pragma: no cover - a future SciPy may move it; lfilter then
    _linear_filter = None

from dsp.types import SILENCE_DB

Samples = npt.NDArray[np.float64]

# ITU-T P.56 §B.1 / sv-p56.c: envelope time constant 0.03 s, hangover 0.2 s, margin 15.9 dB.
TIME_CONSTANT_S = 0.03
HANGOVER_S = 0.2
MARGIN_DB = 15.9
# sv-p56.c init_speech_voltmeter(): 15 thresholds c[j] = 2^(j-15), from 1 LSB of 16 bit to 0.5.
THRESHOLD_COUNT = 15
THRESHOLDS = np.array([2.0 ** (j - THRESHOLD_COUNT) for j in range(THRESHOLD_COUNT)])
_THRESHOLD_LIST = THRESHOLDS.tolist()
_all = np.logical_and.reduce  # np.all without its Python wrapper (half the cost on 100 ms)
THRESHOLDS_DB = [20.0 * math.log10(c + 1e-20) for c in THRESHOLDS]
# sv-p56.c speech_voltmeter(): bin_interp(..., 0.5); the tolerance P.56 leaves open.
INTERP_TOLERANCE_DB = 0.5
_SMALL = 1e-20  # sv-p56.c adds this before every log10


@dataclass(frozen=True, slots=True)
class P56Counts:
    """Sums a P.56 result is computed from; subtracting two snapshots measures the slice between."""

    samples: int
    sum_sq: float
    active: tuple[int, ...]  # per threshold c[j]: samples counted as active

    def __sub__(self, other: P56Counts) -> P56Counts:
        return P56Counts(
            samples=self.samples - other.samples,
            sum_sq=self.sum_sq - other.sum_sq,
            active=tuple(map(int.__sub__, self.active, other.active)),
        )

    def __add__(self, other: P56Counts) -> P56Counts:
        return P56Counts(
            samples=self.samples + other.samples,
            sum_sq=self.sum_sq + other.sum_sq,
            active=tuple(map(int.__add__, self.active, other.active)),
        )


EMPTY_COUNTS = P56Counts(0, 0.0, (0,) * THRESHOLD_COUNT)


@dataclass(frozen=True, slots=True)
class P56Result:
    """Active speech level (dBov), activity factor (0..1) and long-term RMS level (dBov)."""

    active_level_dbov: float
    activity: float
    rms_dbov: float
    samples: int

    @property
    def activity_pct(self) -> float:
        return 100.0 * self.activity


def _bin_interp(
    upper: float, lower: float, upper_c: float, lower_c: float, margin: float, tol: float
) -> float:
    """sv-p56.c v2.3 bin_interp(): the bounds move to the new midpoint (kept to match STL)."""
    if abs(upper - upper_c - margin) < tol:
        return upper
    if abs(lower - lower_c - margin) < tol:
        return lower
    mid = (upper + lower) / 2.0
    mid_c = (upper_c + lower_c) / 2.0
    iterations = 1
    diff = mid - mid_c - margin
    while abs(diff) > tol:
        iterations += 1
        if iterations > 20:
            tol *= 1.1
        if diff > tol:
            mid = (upper + mid) / 2.0
            mid_c = (upper_c + mid_c) / 2.0
            lower, lower_c = mid, mid_c
        elif diff < -tol:
            mid = (mid + lower) / 2.0
            mid_c = (mid_c + lower_c) / 2.0
            upper, upper_c = mid, mid_c
        diff = mid - mid_c - margin
    return mid


def p56_result(counts: P56Counts, margin_db: float = MARGIN_DB) -> P56Result:
    """sv-p56.c speech_voltmeter() result stage: threshold search and interpolation."""
    n = counts.samples
    if n <= 0:
        return P56Result(SILENCE_DB, 0.0, SILENCE_DB, 0)
    rms_db = 10.0 * math.log10(counts.sum_sq / n + _SMALL)
    a = counts.active
    if a[0] == 0:
        return P56Result(SILENCE_DB, 0.0, rms_db, n)
    sum_sq = counts.sum_sq

    def level(j: int) -> float:  # only the levels the search reaches are computed
        return 10.0 * math.log10(sum_sq / a[j] + _SMALL) if a[j] > 0 else 100.0

    below = level(0)
    if below - THRESHOLDS_DB[0] < margin_db:
        return P56Result(SILENCE_DB, 0.0, rms_db, n)
    active_db = SILENCE_DB
    for j in range(1, THRESHOLD_COUNT):
        if a[j] == 0:
            continue
        here = level(j)
        if here - THRESHOLDS_DB[j] <= margin_db:
            active_db = _bin_interp(
                here,
                level(j - 1),
                THRESHOLDS_DB[j],
                THRESHOLDS_DB[j - 1],
                margin_db,
                INTERP_TOLERANCE_DB,
            )
            break
    if active_db <= SILENCE_DB:
        return P56Result(SILENCE_DB, 0.0, rms_db, n)
    activity = 10.0 ** ((rms_db - active_db) / 10.0)
    return P56Result(active_db, activity, rms_db, n)


class SpeechVoltmeter:
    """ITU-T P.56 method B state fed blocks of float samples (-1..1) at the true sample rate.

    `counts` is a snapshot of the running sums; `result()` measures everything fed so far.
    """

    def __init__(self, samplerate: int) -> None:
        if samplerate < 600:  # ITU-T P.56 §B.1: sampling rate at least 600 Hz
            raise ValueError(f"samplerate must be at least 600 Hz, got {samplerate}")
        self.samplerate = samplerate
        g = math.exp(-1.0 / (samplerate * TIME_CONSTANT_S))
        # Two cascaded one-pole smoothers (1-g)/(1-g z^-1) of |x|: one second-order section.
        self._b = np.array([(1.0 - g) ** 2])
        self._a = np.array([1.0, -2.0 * g, g * g])
        self.hangover = int(math.floor(HANGOVER_S * samplerate + 0.5))  # sv-p56.c: I
        self.reset()

    def reset(self) -> None:
        self._zi = np.zeros(2)
        self._samples = 0
        self._sum_sq = 0.0
        self._active = [0] * THRESHOLD_COUNT
        # Per threshold c[j]: how many samples from the next one on are still inside the
        # hangover of the last sample that reached c[j]. sv-p56.c's hang[j] starts at I,
        # i.e. nothing reached any threshold before the start: 0.
        self._covered = [0] * THRESHOLD_COUNT

    @property
    def counts(self) -> P56Counts:
        return P56Counts(self._samples, self._sum_sq, tuple(self._active))

    def result(self) -> P56Result:
        return p56_result(self.counts)

    def feed(self, x: Samples, magnitude: Samples | None = None) -> None:
        """Add one block; `magnitude` is |x| when the caller already has it."""
        n = x.shape[0]
        if n == 0:
            return
        ax = np.abs(x) if magnitude is None else magnitude
        q, self._zi = iir_filter(self._b, self._a, ax, self._zi)
        self._count_active(q)
        self._samples += n
        self._sum_sq += float(np.dot(x, x))

    def _count_active(self, q: Samples) -> None:
        """sv-p56.c's per-sample hangover rule, counted per threshold from two positions.

        With `hang[j] = 0` at every sample reaching c[j] and counting while `hang[j] < I`, a
        sample is active for threshold j exactly when some sample of the last I + 1 (itself
        included) reaches c[j]. In a chunk of n <= I samples, sample i is then active when
        the hangover from before the chunk still covers it (i < L) or some sample of the
        chunk up to i reaches c[j] (i >= P, the first one that does): n - max(P - L, 0)
        samples. P is a binary search of the envelope's running maximum; the last sample
        that reaches c[j], which sets the next chunk's L, one of the running maximum read
        backwards: two NumPy scans per chunk for all 15 thresholds; the rest is 15 integers.
        A monotonic chunk (a rise, or the envelope's decay in a pause: half of all chunks in
        a call) is its own running maximum one way and a constant the other: no scan.
        """
        hangover = self.hangover
        active, covered = self._active, self._covered
        for start in range(0, q.shape[0], hangover):
            chunk = q[start : start + hangover]
            n = chunk.shape[0]
            head, tail = float(chunk[0]), float(chunk[-1])
            if tail <= head and _all(np.less_equal(chunk[1:], chunk[:-1])):
                reached = bisect_right(_THRESHOLD_LIST, head)  # c[j] <= head: from sample 0
                first = [0] * reached + [n] * (THRESHOLD_COUNT - reached)
                after = np.searchsorted(chunk[::-1], THRESHOLDS).tolist()
            elif tail >= head and _all(np.greater_equal(chunk[1:], chunk[:-1])):
                first = np.searchsorted(chunk, THRESHOLDS).tolist()
                reached = bisect_right(_THRESHOLD_LIST, tail)  # c[j] <= tail: to the end
                after = [0] * reached + [n] * (THRESHOLD_COUNT - reached)
            else:
                first = np.searchsorted(np.maximum.accumulate(chunk), THRESHOLDS).tolist()
                # Samples after the last one reaching c[j] (n: none does).
                after = np.searchsorted(np.maximum.accumulate(chunk[::-1]), THRESHOLDS).tolist()
            for j in range(THRESHOLD_COUNT):
                cover = covered[j]
                active[j] += n - first[j] + cover if first[j] > cover else n
                # The last reaching sample's hangover covers I samples after it.
                covered[j] = hangover - after[j] if after[j] < n else max(cover - n, 0)


def iir_filter(b: Samples, a: Samples, x: Samples, zi: Samples) -> tuple[Samples, Samples]:
    """`scipy.signal.lfilter(b, a, x, zi=zi)` for 1-D float64 input with a[0] == 1."""
    if _linear_filter is not None:
        y, zf = _linear_filter(b, a, x, -1, zi)
    else:
        y, zf = lfilter(b, a, x, zi=zi)
    return y, zf


def active_speech_level(x: Samples, samplerate: int) -> P56Result:
    """P.56 over one whole signal (float samples -1..1)."""
    meter = SpeechVoltmeter(samplerate)
    meter.feed(np.asarray(x, dtype=np.float64))
    return meter.result()
