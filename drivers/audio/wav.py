"""A channel of the virtual twin playing a WAV file through the dsp meter, as captured audio.

numpy and the dsp meters (scipy) load with this module: the twin imports it only when a
scenario plays a file, so a seat with generated levels never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.audio.wavfile import read_audio
from dsp.meter import ChannelMeter, resample, to_int16
from dsp.types import ChannelLevels

# A slammed headset on a channel playing a file: this many full-scale samples in one period.
IMPACT_SAMPLES = 8


@lru_cache(maxsize=16)
def _load_samples(path: str, samplerate: int) -> npt.NDArray[np.float64]:
    """A WAV's first channel at `samplerate`, -1..1 (cached: looping scenarios replay files)."""
    audio = read_audio(path, raw_rate=samplerate)
    samples = audio.samples
    if audio.samplerate != samplerate:
        samples = resample(samples, audio.samplerate, samplerate)
    samples.setflags(write=False)
    return samples


@dataclass(eq=False)
class WavChannel:
    """A channel playing a WAV file: each period of its samples goes through the channel's
    dsp meter, as captured audio would. After the end (unless looping) it plays digital
    silence, still through the meter, so an utterance ends as it would on a real line."""

    path: str
    samples: npt.NDArray[np.int16]
    loop: bool = False
    pos: int = 0

    @classmethod
    def load(
        cls, path: str | Path, samplerate: int, gain_db: float = 0.0, loop: bool = False
    ) -> WavChannel:
        samples = _load_samples(str(path), samplerate)
        if gain_db:
            samples = samples * 10.0 ** (gain_db / 20.0)  # to_int16 clips, as a mic would
        return cls(str(path), to_int16(samples), loop)

    @property
    def ended(self) -> bool:
        return not self.loop and self.pos >= self.samples.shape[0]

    def next_block(self, n: int) -> npt.NDArray[np.int16]:
        block = np.zeros(n, dtype=np.int16)
        total = self.samples.shape[0]
        filled = 0
        while filled < n and total and (self.loop or self.pos < total):
            chunk = self.samples[self.pos : self.pos + n - filled]
            block[filled : filled + chunk.shape[0]] = chunk
            filled += chunk.shape[0]
            self.pos += chunk.shape[0]
            if self.loop and self.pos >= total:
                self.pos = 0
        return block


def new_meter(samplerate: int, period_s: float, vad_mode: int) -> ChannelMeter:
    return ChannelMeter(samplerate, period_s, vad_mode)


def measure(meter: ChannelMeter, wav: WavChannel, gain_db: float, click: bool) -> ChannelLevels:
    """One period of the file through the channel's meter, `gain_db` (<= 0) applied."""
    block = wav.next_block(meter.period)
    if gain_db < 0:
        block = to_int16(block.astype(np.float64) / 32768.0 * 10.0 ** (gain_db / 20.0))
    if click:
        block[:IMPACT_SAMPLES] = 32767  # the mic's capsule driven to the rail
    (levels,) = meter.feed(block)  # one block is exactly one period
    return levels
