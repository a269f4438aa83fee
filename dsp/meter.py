"""The per-channel streaming meter: blocks of samples in, one `ChannelLevels` per period out.

P.56, VAD, A-weighting and peak state carry across blocks and periods, so results do not
depend on the block size; `summary()` measures everything fed since the last reset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from dsp.p56 import EMPTY_COUNTS, P56Counts, SpeechVoltmeter, p56_result
from dsp.types import SILENCE_DB, ChannelLevels
from dsp.vad import Backend, VoiceActivity
from dsp.weighting import AWeighting

Int16Block = npt.NDArray[np.int16]
FloatBlock = npt.NDArray[np.float64]

INT16_SCALE = 32768.0
# A sample is clipped when it sits at int16 full scale (either rail).
CLIP_LEVEL = 32767.0 / INT16_SCALE
# A VAD period counts as speech when at least half of its 20 ms frames are voiced.
SPEECH_SHARE = 0.5
# Utterances end after this much non-speech: P.56's rationale (ITU-T P.56 §B.1 / STL manual)
# keeps pauses under ~100 ms inside speech and treats pauses over ~350 ms as breaks.
UTTERANCE_GAP_S = 0.35


def _db_power(power: float) -> float:
    return 10.0 * math.log10(power) if power > 1e-10 else SILENCE_DB


def _db_amplitude(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 1e-5 else SILENCE_DB


def to_float(block: Int16Block | FloatBlock) -> FloatBlock:
    """Samples normalised to -1..1 (int16 / 32768, the STL convention for dBov)."""
    if block.dtype == np.int16:
        # One pass; exact, as 1/32768 is a power of two.
        return np.multiply(block, 1.0 / INT16_SCALE, dtype=np.float64)
    return np.asarray(block, dtype=np.float64)


def to_int16(block: Int16Block | FloatBlock) -> Int16Block:
    if block.dtype == np.int16:
        return np.asarray(block, dtype=np.int16)
    scaled = np.clip(np.rint(np.asarray(block, dtype=np.float64) * INT16_SCALE), -32768, 32767)
    return np.asarray(scaled, dtype=np.int16)


def _join(blocks: list[Int16Block | FloatBlock]) -> Int16Block | FloatBlock:
    joined = np.concatenate(blocks)
    if joined.dtype == np.int16:
        return np.asarray(joined, dtype=np.int16)
    return np.asarray(joined, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class LevelSummary:
    """Everything fed since reset (a file, or a call when the meter is reset at answer)."""

    seconds: float
    active_level_dbov: float
    activity_pct: float
    rms_dbov: float
    peak_dbfs: float
    clipping_pct: float
    laeq_dbfs: float
    voiced_pct: float


class ChannelMeter:
    """One channel's meters. `feed(block)` returns the `ChannelLevels` of completed periods.

    Blocks may be int16 or float (-1..1) and of any size; periods are counted in samples,
    so the output rate follows the device clock (or the file) and never the wall clock.
    """

    def __init__(
        self,
        samplerate: int,
        period_s: float = 0.1,
        vad_mode: int = 2,
        vad_backend: Backend = "auto",
    ) -> None:
        self.samplerate = samplerate
        self.period = max(1, int(round(period_s * samplerate)))
        self.period_s = self.period / samplerate
        self.voltmeter = SpeechVoltmeter(samplerate)
        self.vad = VoiceActivity(samplerate, vad_mode, vad_backend)
        self.weighting = AWeighting(samplerate)
        self._frame_s = self.vad.frame / samplerate
        self.reset()

    @property
    def vad_backend(self) -> str:
        return self.vad.backend

    def reset(self) -> None:
        """Start a new measurement (file or call); filter states restart from silence."""
        self.voltmeter.reset()
        self.weighting.reset()
        self._pending: list[Int16Block | FloatBlock] = []
        self._pending_n = 0
        self._period_start = EMPTY_COUNTS
        self._total_peak = 0.0
        self._total_clipped = 0
        self._total_a_sumsq = 0.0
        self._total_voiced = 0
        self._total_frames = 0
        self._utterance_start: P56Counts | None = None
        self._utterance_end = EMPTY_COUNTS
        self._utterance_periods = 0
        self._silent_periods = 0

    def feed(self, block: Int16Block | FloatBlock) -> list[ChannelLevels]:
        out: list[ChannelLevels] = []
        while block.shape[0]:
            take = self.period - self._pending_n
            if block.shape[0] < take:
                self._pending.append(block)
                self._pending_n += block.shape[0]
                break
            self._pending.append(block[:take])
            block = block[take:]
            self._pending_n = self.period
            out.append(self._close_period())
        return out

    def flush(self) -> list[ChannelLevels]:
        """End of a file: measure a trailing partial period and end an open utterance on it
        (a file that ends exactly on a period boundary has no period left to carry it)."""
        if not self._pending_n:
            return []
        last = self._close_period()
        if self._utterance_start is not None:
            result = p56_result(self._utterance_end - self._utterance_start)
            last = replace(
                last,
                utterance_s=self._utterance_periods * self.period_s,
                utterance_level_dbov=result.active_level_dbov,
            )
            self._utterance_start = None
            self._silent_periods = 0
        return [last]

    def _close_period(self) -> ChannelLevels:
        raw = self._pending[0] if len(self._pending) == 1 else _join(self._pending)
        self._pending, self._pending_n = [], 0
        x, xi = to_float(raw), to_int16(raw)
        n = x.shape[0]
        duration = n / self.samplerate
        magnitude = np.abs(x)
        self.voltmeter.feed(x, magnitude)
        counts = self.voltmeter.counts
        period_counts = counts - self._period_start
        start_counts, self._period_start = self._period_start, counts
        p56 = p56_result(period_counts)
        peak = float(magnitude.max())
        clipped = int(np.count_nonzero(magnitude >= CLIP_LEVEL)) if peak >= CLIP_LEVEL else 0
        weighted = self.weighting.filter(x)
        a_sumsq = float(np.dot(weighted, weighted))
        flags = self.vad.feed(xi)
        voiced = sum(flags)
        self._total_peak = max(self._total_peak, peak)
        self._total_clipped += clipped
        self._total_a_sumsq += a_sumsq
        self._total_voiced += voiced
        self._total_frames += len(flags)
        voiced_s = voiced * self._frame_s
        voiced_period = voiced_s >= SPEECH_SHARE * duration
        utterance_s, utterance_db = self._track_utterance(voiced_period, start_counts, counts)
        # Talking: a voiced period, or a pause inside an utterance (shorter than the gap that
        # ends it), so the seat does not see the agent stop and restart at every word.
        speech = voiced_period or self._utterance_start is not None
        return ChannelLevels(
            period_s=duration,
            speech=speech,
            active_s=p56.activity * duration,
            active_level_dbov=p56.active_level_dbov,
            rms_dbov=_db_power(period_counts.sum_sq / n),
            peak_dbfs=_db_amplitude(peak),
            clipping_pct=100.0 * clipped / n,
            laeq_dbfs=_db_power(a_sumsq / n),
            voiced_s=voiced_s,
            utterance_s=utterance_s,
            utterance_level_dbov=utterance_db,
        )

    def _track_utterance(
        self, speech: bool, start: P56Counts, end: P56Counts
    ) -> tuple[float, float]:
        """An utterance runs from its first to its last speech period; it ends after a gap."""
        if speech:
            if self._utterance_start is None:
                self._utterance_start = start
                self._utterance_periods = 0
            self._utterance_end = end
            self._utterance_periods += 1 + self._silent_periods
            self._silent_periods = 0
            return 0.0, SILENCE_DB
        if self._utterance_start is None:
            return 0.0, SILENCE_DB
        self._silent_periods += 1
        if self._silent_periods * self.period_s < UTTERANCE_GAP_S:
            return 0.0, SILENCE_DB
        result = p56_result(self._utterance_end - self._utterance_start)
        seconds = self._utterance_periods * self.period_s
        self._utterance_start = None
        self._silent_periods = 0
        return seconds, result.active_level_dbov

    def summary(self) -> LevelSummary:
        counts = self.voltmeter.counts
        n = counts.samples
        p56 = p56_result(counts)
        return LevelSummary(
            seconds=n / self.samplerate,
            active_level_dbov=p56.active_level_dbov,
            activity_pct=p56.activity_pct,
            rms_dbov=_db_power(counts.sum_sq / n) if n else SILENCE_DB,
            peak_dbfs=_db_amplitude(self._total_peak),
            clipping_pct=100.0 * self._total_clipped / n if n else 0.0,
            laeq_dbfs=_db_power(self._total_a_sumsq / n) if n else SILENCE_DB,
            voiced_pct=100.0 * self._total_voiced / self._total_frames
            if self._total_frames
            else 0.0,
        )


def measure(samples: Int16Block | FloatBlock, samplerate: int) -> LevelSummary:
    """Whole-signal levels: the `seatbox meter` figures."""
    meter = ChannelMeter(samplerate)
    meter.feed(samples)
    meter.flush()
    return meter.summary()


def resample(samples: FloatBlock, from_rate: int, to_rate: int) -> FloatBlock:
    """Polyphase resampling (anti-aliased) between the rates the meters run at."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    return np.asarray(resample_poly(samples, to_rate // g, from_rate // g), dtype=np.float64)


def combine_active_levels(periods: Iterable[ChannelLevels]) -> tuple[float, float]:
    """P.56 active level over many periods (a call): (level dBov, active seconds).

    Each period's active level times its active time is the energy of its active part, so
    the power mean weighted by active time is the level of all active speech. It differs from
    running P.56 over the whole call only in where each period put its threshold.
    """
    energy = 0.0
    active = 0.0
    for levels in periods:
        if levels.active_s > 0 and levels.active_level_dbov > SILENCE_DB:
            energy += levels.active_s * 10.0 ** (levels.active_level_dbov / 10.0)
            active += levels.active_s
    if active <= 0:
        return SILENCE_DB, 0.0
    return _db_power(energy / active), active
