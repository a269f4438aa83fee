"""The one summary of audio that leaves dsp/: per-period levels and flags of one channel.

Only levels, flags and durations: never samples (privacy rule of design.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# ITU-T P.56 reports -100 dBov for digital silence; we use the same floor everywhere.
SILENCE_DB = -100.0


@dataclass(frozen=True, slots=True)
class ChannelLevels:
    """What one channel did during one reporting period (typically 100 ms).

    dBov: 0 dBov is the RMS of a full-scale square wave (ITU-T P.56), so rms_dbov and
    peak_dbfs share one reference and crest factor is peak_dbfs - rms_dbov.
    """

    period_s: float
    # Talking in this period: voice detected, or a pause inside an utterance (the meter
    # bridges pauses shorter than its utterance gap, 0.35 s); `voiced_s` is the voice itself.
    speech: bool = False
    active_s: float = 0.0  # seconds of P.56-active speech in this period
    active_level_dbov: float = SILENCE_DB  # P.56 active level of those active seconds
    rms_dbov: float = SILENCE_DB
    peak_dbfs: float = SILENCE_DB
    clipping_pct: float = 0.0  # share of samples at full scale, percent
    laeq_dbfs: float = SILENCE_DB  # A-weighted equivalent level over the period, dBFS(A)
    voiced_s: float = 0.0  # seconds of VAD frames flagged as voice in this period
    # An utterance (a talk spurt delimited by the VAD) that ended in this period: its length
    # and its P.56 active level measured from its first to its last voiced period.
    utterance_s: float = 0.0
    utterance_level_dbov: float = SILENCE_DB

    @property
    def crest_db(self) -> float:
        return self.peak_dbfs - self.rms_dbov

    @classmethod
    def silence(cls, period_s: float) -> ChannelLevels:
        return cls(period_s=period_s)
