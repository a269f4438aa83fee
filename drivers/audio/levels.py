"""The capture backend's meters: both channels' blocks in, `AudioLevels` out.

numpy and the dsp filters (scipy) load with this module; the capture worker imports it in its
own thread, so a seat starts (READY) before they are loaded.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from drivers.audio.events import AudioLevels
from dsp.meter import ChannelMeter
from dsp.types import ChannelLevels


class LevelsPipeline:
    """Both channels' dsp meters; blocks in, `AudioLevels` out once both have a period.

    The capture backend's pairing of the two channels' `ChannelMeter`s (the virtual twin
    meters each file-playing channel with the same `ChannelMeter`, so both measure alike).
    """

    def __init__(self, samplerate: int, period_s: float, vad_mode: int = 2) -> None:
        self.samplerate = samplerate
        self.tx = ChannelMeter(samplerate, period_s, vad_mode)
        self.rx = ChannelMeter(samplerate, period_s, vad_mode)
        self._tx_ready: deque[ChannelLevels] = deque()
        self._rx_ready: deque[ChannelLevels] = deque()

    @property
    def period_s(self) -> float:
        return self.tx.period_s

    def feed(self, channel: str, block: npt.NDArray[np.int16]) -> list[AudioLevels]:
        if channel == "tx":
            self._tx_ready.extend(self.tx.feed(block))
        else:
            self._rx_ready.extend(self.rx.feed(block))
        out = []
        while self._tx_ready and self._rx_ready:
            out.append(AudioLevels(tx=self._tx_ready.popleft(), rx=self._rx_ready.popleft()))
        return out
