"""The microphone gate of the bridge: closes (hold, mute) within one audio period, without a click.

A change of state takes effect in the next block processed: the gain follows a raised-cosine
ramp of `ramp_s` (shortened to the block when the block is shorter), so the gate is fully
closed, or fully open, by the end of that block. Between changes it multiplies by 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatBlock = npt.NDArray[np.float64]

# 2 ms: long enough that the step is not heard as a click (a raised cosine of 2 ms has its
# energy below ~500 Hz), short enough to fit in any audio period the relay accepts.
DEFAULT_RAMP_S = 0.002


class MicGate:
    """Gain 1 (open) or 0 (closed); `set_closed` is applied by the next `process`."""

    def __init__(self, samplerate: int, ramp_s: float = DEFAULT_RAMP_S) -> None:
        if samplerate <= 0:
            raise ValueError(f"gate samplerate: expected > 0, got {samplerate}")
        if ramp_s < 0:
            raise ValueError(f"gate ramp_s: expected >= 0, got {ramp_s}")
        self.samplerate = samplerate
        self.ramp = max(1, int(round(ramp_s * samplerate)))
        self.closed = False
        self.gain = 1.0
        # Samples from the start of the last processed block to where the last change finished
        # (None when that block carried no change): the relay turns it into a frame count.
        self.settled_at: int | None = None

    def set_closed(self, closed: bool) -> None:
        self.closed = closed

    def process(self, block: FloatBlock) -> FloatBlock:
        target = 0.0 if self.closed else 1.0
        n = block.shape[0]
        if self.gain == target or n == 0:
            self.settled_at = None
            return block * target if target != 1.0 else block.copy()
        steps = min(self.ramp, n)
        k = np.arange(1, steps + 1, dtype=np.float64)
        shape = 0.5 * (1.0 + np.cos(math.pi * k / steps))  # 1 -> 0, ends exactly at 0
        gains = np.full(n, target)
        gains[:steps] = target + (self.gain - target) * shape
        self.gain = target
        self.settled_at = steps
        return np.asarray(block * gains, dtype=np.float64)
