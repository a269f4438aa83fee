"""Virtual twin of the audio path, for simulation and tests.

Generated levels need only the stdlib; a channel playing a WAV file loads `drivers.audio.wav`
(numpy, the dsp meters) on the first `play`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.audio.events import AudioLevels, AudioStatus
from drivers.base import Sink
from dsp.types import ChannelLevels

if TYPE_CHECKING:
    from drivers.audio.wav import WavChannel
    from dsp.meter import ChannelMeter

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

    A channel plays generated levels (`VirtualChannel`: speech at a level, or noise) or a WAV
    file (`play`), whose samples go through that channel's `ChannelMeter` (P.56, VAD, peak,
    A-weighting), the meter the capture driver uses. `tick()` is called once per period by
    the runtime's scheduler (real or simulated time) and hands one `AudioLevels` to the sink,
    as the real capture worker does at 10 Hz.
    """

    def __init__(self, period_s: float = 0.1, samplerate: int = 16000, vad_mode: int = 2) -> None:
        self.period_s = period_s
        self.samplerate = samplerate
        self.vad_mode = vad_mode
        self.tx: VirtualChannel | WavChannel = VirtualChannel()
        self.rx: VirtualChannel | WavChannel = VirtualChannel()
        self.mic_muted = False
        self.rx_cap_db: float | None = None
        self._meters: dict[str, ChannelMeter] = {}
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

    def play(
        self, channel: str, path: str | Path, gain_db: float = 0.0, loop: bool = False
    ) -> None:
        """Play a WAV file (any PCM width or float, resampled) on "tx" or "rx" from the next
        period, `gain_db` applied to its samples. A file after a file continues the meter."""
        from drivers.audio.wav import WavChannel

        playing = WavChannel.load(path, self.samplerate, gain_db, loop)
        if isinstance(self._channel(channel), VirtualChannel):
            self._meter(channel).reset()  # samples again after generated levels: a fresh meter
        setattr(self, channel, playing)

    def silence(self, channel: str) -> None:
        """Stop what the channel plays: generated silence at the default noise floor."""
        setattr(self, channel, VirtualChannel())

    def playing(self, channel: str) -> bool:
        """Whether a file is still playing on the channel (a looping one always is)."""
        current = self._channel(channel)
        return not isinstance(current, VirtualChannel) and not current.ended

    def _channel(self, channel: str) -> VirtualChannel | WavChannel:
        if channel == "tx":
            return self.tx
        if channel == "rx":
            return self.rx
        raise ValueError(f"audio channel must be 'tx' or 'rx', got {channel!r}")

    def _meter(self, channel: str) -> ChannelMeter:
        if channel not in self._meters:
            from drivers.audio.wav import new_meter

            self._meters[channel] = new_meter(self.samplerate, self.period_s, self.vad_mode)
        return self._meters[channel]

    def _measure(self, channel: str, wav: WavChannel, gain_db: float, click: bool) -> ChannelLevels:
        from drivers.audio.wav import measure

        return measure(self._meter(channel), wav, gain_db, click)

    def tick(self) -> None:
        if self._sink is None:
            return
        # The box measures the mic before its own gate, so hold-mute does not hide speech.
        click, self._impact_pending = self._impact_pending, False
        if not isinstance(self.tx, VirtualChannel):
            tx = self._measure("tx", self.tx, 0.0, click)
        elif click:
            tx = ChannelLevels(
                period_s=self.period_s,
                rms_dbov=-28.0,
                peak_dbfs=-0.2,
                clipping_pct=0.05,
                laeq_dbfs=-30.0,
            )
        else:
            tx = self.tx.levels(self.period_s)
        rx_gain = min(0.0, self.rx_cap_db) if self.rx_cap_db is not None else 0.0
        if not isinstance(self.rx, VirtualChannel):
            rx = self._measure("rx", self.rx, rx_gain, False)
        else:
            rx = self.rx.levels(self.period_s, rx_gain)
        levels = AudioLevels(tx=tx, rx=rx)
        steady = not (tx.speech or rx.speech) and levels == self._last
        self._last = levels
        if steady and self._pending_s + self.period_s < STEADY_SUMMARY_S - 1e-9:
            # Unchanged non-speech periods are summed into one report a second, as a
            # long-period block would be: the seat learns the same, at a tenth of the inputs.
            self._pending_s += self.period_s
            return
        if steady:
            period = self._pending_s + self.period_s
            levels = AudioLevels(tx=replace(tx, period_s=period), rx=replace(rx, period_s=period))
        self._pending_s = 0.0
        self._sink(levels)
