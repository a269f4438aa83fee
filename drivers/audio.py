"""Audio in the headset path: per-period levels of the mic (tx) and receive (rx) channels.

`AudioLevels` is the typed input; audio samples never leave dsp/, only these summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from drivers.base import Sink
from dsp.types import ChannelLevels


@dataclass(frozen=True, slots=True)
class AudioLevels:
    """Both channels over one reporting period (10 Hz by default)."""

    tx: ChannelLevels  # microphone: the agent
    rx: ChannelLevels  # receive: the customer


@dataclass(frozen=True, slots=True)
class AudioStatus:
    """The audio path: `ok=False` when a capture device was lost (`headset.audio_lost`)."""

    ok: bool
    detail: str = ""


class Audio(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...

    def set_mic_mute(self, muted: bool) -> None: ...

    def set_rx_cap(self, max_gain_db: float | None) -> None: ...


# The virtual twin reports unchanged silence once a second instead of at the levels rate.
STEADY_SUMMARY_S = 1.0


@dataclass(frozen=True, slots=True)
class VirtualChannel:
    """What a virtual channel is playing: speech at an active level, or silence with noise."""

    speech: bool = False
    level_dbov: float = -26.0  # active speech level while speaking
    noise_dbfs: float = -70.0  # ambient / line noise while not speaking
    clipping_pct: float = 0.0

    def levels(self, period_s: float, gain_db: float = 0.0) -> ChannelLevels:
        if self.speech:
            level = self.level_dbov + gain_db
            # Typical running speech: ~90 % activity (P.56 reference vectors), crest ~15 dB.
            return ChannelLevels(
                period_s=period_s,
                speech=True,
                active_s=0.9 * period_s,
                active_level_dbov=level,
                rms_dbov=level - 0.46,
                peak_dbfs=min(0.0, level + 15.0),
                clipping_pct=self.clipping_pct,
                laeq_dbfs=level - 1.0,
            )
        noise = self.noise_dbfs + gain_db
        return ChannelLevels(
            period_s=period_s,
            rms_dbov=noise,
            peak_dbfs=min(0.0, noise + 10.0),
            laeq_dbfs=noise - 1.0,
        )


class VirtualAudio:
    """Virtual twin of the audio path: scenario steps set what each channel plays.

    `tick()` is called once per period by the runtime's scheduler (real or simulated time)
    and hands one `AudioLevels` to the sink, as the real capture worker does at 10 Hz.
    """

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self.tx = VirtualChannel()
        self.rx = VirtualChannel()
        self.mic_muted = False
        self.rx_cap_db: float | None = None
        self._impact_pending = False
        self._sink: Sink | None = None
        self._last: AudioLevels | None = None
        self._pending_s = 0.0

    def start(self, sink: Sink) -> None:
        self._sink = sink
        sink(AudioStatus(ok=True, detail="virtual"))

    def stop(self) -> None:
        self._sink = None

    def set_mic_mute(self, muted: bool) -> None:
        self.mic_muted = muted

    def set_rx_cap(self, max_gain_db: float | None) -> None:
        self.rx_cap_db = max_gain_db

    def impact(self) -> None:
        """A headset slammed on the desk: one period with a full-scale, peaky click."""
        self._impact_pending = True

    def tick(self) -> None:
        if self._sink is None:
            return
        # The box measures the mic before its own gate, so hold-mute does not hide speech.
        tx = self.tx.levels(self.period_s)
        if self._impact_pending:
            self._impact_pending = False
            tx = ChannelLevels(
                period_s=self.period_s,
                rms_dbov=-28.0,
                peak_dbfs=-0.2,
                clipping_pct=0.05,
                laeq_dbfs=-30.0,
            )
        rx_gain = min(0.0, self.rx_cap_db) if self.rx_cap_db is not None else 0.0
        levels = AudioLevels(tx=tx, rx=self.rx.levels(self.period_s, rx_gain))
        steady = not (tx.speech or levels.rx.speech) and levels == self._last
        self._last = levels
        if steady and self._pending_s + self.period_s < STEADY_SUMMARY_S - 1e-9:
            # Unchanged non-speech periods are summed into one report a second, as a
            # long-period block would be: the seat learns the same, at a tenth of the inputs.
            self._pending_s += self.period_s
            return
        if steady:
            period = self._pending_s + self.period_s
            levels = AudioLevels(
                tx=replace(tx, period_s=period), rx=replace(levels.rx, period_s=period)
            )
        self._pending_s = 0.0
        self._sink(levels)
