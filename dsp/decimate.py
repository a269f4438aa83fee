"""Integer-factor decimation, streaming: blocks of any size in, the same samples as one call out.

The bridge's relay runs at 48 kHz and the seat's meters (P.56, VAD, A-weighting) at 16 kHz,
as the capture path does: `Decimator(3)` low-passes and keeps every third sample. The filter's
history and the output phase carry across blocks, so a block size that is not a multiple of
the factor changes nothing: the output is exactly (bit for bit) that of one long call.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dsp.p56 import iir_filter

Samples = npt.NDArray[np.float64]

# The anti-alias filter, in units of the output's Nyquist frequency (8 kHz for 48 -> 16 kHz):
# - pass band up to PASS_EDGE (6 kHz): flat within the Kaiser window's ripple (+-0.009 dB at
#   60 dB), the band that carries a headset's speech energy;
# - stop band from STOP_EDGE (9 kHz) up, at least STOP_DB (60 dB) down: everything from 9 kHz
#   folds back onto 7 kHz and below at -60 dB or less, so the wideband speech band
#   (50 Hz - 7 kHz) is alias-free; only 8 - 9 kHz folds, partly attenuated, onto 7 - 8 kHz.
#   60 dB: a hiss or tone above 9 kHz as loud as the speech folds back 60 dB under it, where
#   it moves a level by under 0.01 dB (even in phase with the speech);
# - cut-off (firwin's -6 dB point) half way, 7.5 kHz: below the new Nyquist.
# kaiserord gives the shortest Kaiser-window FIR for that attenuation and transition: 60 taps
# at a factor of 3 (20 per phase). The taps are the decimator's whole CPU cost, which has to
# stay well under what metering at 48 kHz costs: a stop band from 8 kHz (transition 6 - 8 kHz)
# would need 89 taps, a pass band to 7 kHz with it 176.
PASS_EDGE = 0.75
STOP_EDGE = 1.125
STOP_DB = 60.0


def design_taps(factor: int) -> Samples:
    """The anti-alias low-pass for decimation by `factor` (scipy's Kaiser-window design)."""
    from scipy.signal import firwin, kaiserord

    nyquist_out = 1.0 / factor  # the output's Nyquist, in units of the input's
    numtaps, beta = kaiserord(STOP_DB, (STOP_EDGE - PASS_EDGE) * nyquist_out)
    cutoff = (PASS_EDGE + STOP_EDGE) / 2.0 * nyquist_out
    taps = firwin(numtaps, cutoff, window=("kaiser", beta))
    return np.asarray(taps, dtype=np.float64)


class Decimator:
    """Low-pass and keep every `factor`-th sample: y[m] = sum_i taps[i] * x[m*factor - i].

    The first output is the first input sample's (m = 0), so the output of n input samples has
    ceil(n / factor) samples, whatever the blocks. The linear-phase filter delays the signal by
    `delay_s(samplerate)`. `factor` 1 passes the samples through unchanged.

    Polyphase: phase p's taps taps[p::factor] filter the input samples x[m*factor - p] at the
    output rate, so only the kept samples are computed (a third of the work of filtering every
    input sample and keeping every third, at a factor of 3). Each phase is lfilter's
    transposed direct form with its state (`zi`) carried across blocks, and the phases are
    summed in one order: the same arithmetic in the same order as one long call, so block
    sizes change no bit of the output. (Dot products of windows, np.dot over a strided view,
    are faster but not exact: the BLAS kernel's summation order depends on the call's shape.)
    Each call costs a few microseconds whatever its size: feed it long blocks where latency
    allows (the relay decimates once per meter period).
    """

    def __init__(self, factor: int) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
            raise ValueError(f"decimation factor: expected an integer >= 1, got {factor!r}")
        self.factor = int(factor)
        self.taps: Samples = (
            design_taps(self.factor) if self.factor > 1 else np.ones(1, dtype=np.float64)
        )
        per_phase = -(-self.taps.shape[0] // self.factor)
        padded = np.zeros(per_phase * self.factor, dtype=np.float64)
        padded[: self.taps.shape[0]] = self.taps
        self._phase_taps = [
            np.ascontiguousarray(padded[p :: self.factor]) for p in range(self.factor)
        ]
        self._a = np.ones(1, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the filter's history is silence and the next input is y[0]'s."""
        order = self._phase_taps[0].shape[0] - 1
        self._state = [np.zeros(order, dtype=np.float64) for _ in range(self.factor)]
        # Output m takes one sample of each phase, x[m*factor - factor + 1 .. m*factor]; the
        # ones of the next output already given wait here (fewer than `factor`). At the start,
        # factor - 1 zeros (the silence before the stream), so that y[0] is x[0]'s output.
        self._pending: Samples = np.zeros(self.factor - 1, dtype=np.float64)

    def delay_s(self, samplerate: int) -> float:
        """The filter's group delay, in seconds at the input rate `samplerate`."""
        return (len(self.taps) - 1) / 2.0 / samplerate

    def process(self, block: npt.ArrayLike) -> Samples:
        """The decimated samples of `block` (1-D, float64 out) that are complete with it."""
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"decimator: expected a 1-D block of samples, got shape {x.shape}")
        m = self.factor
        buf = np.concatenate((self._pending, x)) if self._pending.shape[0] else x
        count = buf.shape[0] // m
        self._pending = buf[count * m :].copy()
        if count == 0:
            return np.empty(0, dtype=np.float64)
        frames = buf[: count * m].reshape(count, m)  # row j: output j's newest m samples
        out: Samples | None = None
        for p in range(m):  # phase p: x[j*m - p], column m-1-p
            y, self._state[p] = iir_filter(
                self._phase_taps[p], self._a, frames[:, m - 1 - p], self._state[p]
            )
            out = y if out is None else out + y
        assert out is not None
        return out
