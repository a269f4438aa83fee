"""A buffer between two audio clocks that absorbs their drift by resampling.

The producer writes blocks at its device clock, the consumer reads blocks at another. Both
run at the same nominal rate, but two USB clocks differ by up to a few hundred ppm: a plain
FIFO would slowly fill (delay grows) or empty (underruns). `DriftBuffer` keeps its fill at a
target instead: a PI controller on the (smoothed) fill level sets the resampling step (input
samples consumed per output sample), and each read interpolates the output with a 4-point
cubic (Catmull-Rom) at fractional positions. The integral term converges to the clock ratio,
so the fill, and the delay it adds, stays at the target whatever the skew (up to `max_ppm`).

Underrun (the consumer caught up): the missing samples are silence, counted, and the buffer
re-primes before it plays again, to a target one read larger (up to half the capacity): the
deliveries were burstier than the target allowed, as a jitter buffer adapts; but not in the first
`adapt_after_s` of audio, where the streams' start-up order, not their steady rhythm, made the
underrun (the relay's four streams start one after the other). After `relax_after_s` of audio
with no underrun the target steps back down one read at a time, to the configured one: a busy
minute on the machine does not cost delay for the rest of the call. Overrun (more than `capacity_s`, or a smoothed fill more than `resync_s` above the target, as
after a consumer's stall): the oldest samples are dropped down to the target, counted. No threads or locks here: the relay guards
it with its own lock.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatBlock = npt.NDArray[np.float64]

# PI gains on the fill error in seconds: natural frequency sqrt(KI) = 0.3 rad/s, damping
# KP / (2 sqrt(KI)) = 1. A 200 ppm step moves the fill by ~200e-6 / 0.3 s^-1 / e = 0.25 ms at
# most, and the loop has learnt it within ~15 s; slower loops learnt too little in a 16 s
# real-time run, faster ones swung to the limit after every device xrun of a busy machine.
DEFAULT_KP = 0.6
DEFAULT_KI = 0.09
# The fill is averaged over time (weighted by how long each level was held) with this time
# constant: it removes the block sawtooth and the bursts of an audio server that wakes its
# clients tens of ms at a time (PulseAudio), and lags the 0.3 rad/s loop by ~12 degrees.
DEFAULT_SMOOTH_S = 0.7
# Two USB devices within +-500 ppm each differ by at most 1000 ppm.
DEFAULT_MAX_PPM = 1000.0


class DriftBuffer:
    def __init__(
        self,
        samplerate: int,
        target_s: float,
        capacity_s: float = 0.25,
        kp: float = DEFAULT_KP,
        ki: float = DEFAULT_KI,
        smooth_s: float = DEFAULT_SMOOTH_S,
        max_ppm: float = DEFAULT_MAX_PPM,
        adaptive: bool = True,
        adapt_target: bool = True,
        resync_s: float | None = None,
        adapt_after_s: float = 1.0,
        relax_after_s: float = 30.0,
    ) -> None:
        if samplerate <= 0:
            raise ValueError(f"drift buffer samplerate: expected > 0, got {samplerate}")
        if not 0 < target_s < capacity_s:
            raise ValueError(
                f"drift buffer target_s: expected > 0 and below capacity_s ({capacity_s}), "
                f"got {target_s}"
            )
        self.samplerate = samplerate
        self.target = target_s * samplerate
        self.capacity = int(capacity_s * samplerate)
        self.kp, self.ki = kp, ki
        self.smooth_s = smooth_s
        self.max_correction = max_ppm * 1e-6
        self.adaptive = adaptive
        self.adapt_target = adapt_target
        self.max_target = capacity_s * samplerate / 2
        self.adapt_after = adapt_after_s * samplerate
        self.configured_target = self.target
        self.relax_after = relax_after_s * samplerate
        self._calm = 0.0  # samples read since the last underrun or step of the target
        # A consumer that stalled (its device starved) leaves that much more in the buffer,
        # which the controller would take seconds to play off at its +-max_ppm: beyond
        # `resync_s` above the target (on the smoothed fill) the excess is dropped at once.
        self.resync = (resync_s if resync_s is not None else max(target_s, 0.02)) * samplerate
        self.resyncs = 0
        # Room for the capacity plus a write, and one sample of history before the read head.
        self._buf = np.zeros(2 * self.capacity + 16)
        self._start = 0  # buf[_start] is one sample before the read head's integer part
        self._pos = 1.0  # read head, relative to _start (>= 1: one sample of history)
        self._end = 1  # a zero of history
        self._integral = 0.0
        self._setpoint = self.target
        self._area = self._area_s = 0.0
        self._ramp_cache = np.zeros(0)
        self._settle = 0.0
        self._last_write: tuple[float, int] | None = None
        self._fill_avg: float | None = None
        self._time_avg: float | None = None
        self._t_last: float | None = None
        self.primed = False
        self.step = 1.0  # input samples consumed per output sample
        self.underruns = 0
        self.overruns = 0
        self.written = 0
        self.read_count = 0

    @property
    def target_s(self) -> float:
        """The fill the controller holds (the configured one, raised by underruns)."""
        return self.target / self.samplerate

    @property
    def fill(self) -> float:
        """Input samples waiting to be read (the buffer's share of the delay, in samples)."""
        return (self._end - self._start) - self._pos

    @property
    def ppm(self) -> float:
        """The clock difference the controller has learnt (its integral term), in ppm:
        positive when the consumer's clock is slower than the producer's."""
        return self.ki * self._integral * 1e6 if self.adaptive else 0.0

    def write(self, block: FloatBlock, now: float | None = None) -> None:
        """Add the producer's block; `now` (seconds, any monotonic clock shared with `read`)
        lets the controller see the fill as if the producer's samples came one by one."""
        n = block.shape[0]
        self._track(now)
        self.written += n
        self._last_write = (now, n) if now is not None else None
        if n >= self.capacity:
            block = block[n - int(self.target) :]
            n = block.shape[0]
        if self.fill + n > self.capacity:
            self.overruns += 1
            excess = self.fill + n - self.target
            from_old = min(excess, self.fill)
            self._pos += from_old
            block = block[int(round(excess - from_old)) :]
            n = block.shape[0]
            self._start_from_head()
            self._compact()
        if self._end + n > self._buf.shape[0]:
            self._compact()
        self._buf[self._end : self._end + n] = block
        self._end += n

    def _compact(self) -> None:
        keep_from = min(self._start + int(self._pos) - 1, self._end)
        length = self._end - keep_from
        self._buf[:length] = self._buf[keep_from : self._end]
        self._pos -= keep_from - self._start
        self._start, self._end = 0, length

    def read(self, n: int, now: float | None = None) -> FloatBlock:
        self._track(now)
        out = np.zeros(n)
        self.read_count += n
        if not self.primed:
            if self._continuous_fill(now) < self.target:
                return out
            # Start exactly at the target: what a block arrived beyond it is skipped, so the
            # controller starts with no error to work off (the delay is right from the start).
            self._pos += self._continuous_fill(now) - self.target
            self.primed = True
            self._fill_avg = None
            self._settle = 2.0 * self.smooth_s
            self._area = self._area_s = 0.0
        self._control(n, self._continuous_fill(now))
        if self._fill_avg is not None and self._fill_avg > self.target + self.resync:
            self.resyncs += 1
            self.overruns += 1
            self._pos += max(0.0, self._continuous_fill(now) - self.target)
            self._fill_avg = None
        positions = self._pos + self.step * self._ramp(n)
        available = self._end - self._start
        # Catmull-Rom needs the samples at floor(p) - 1 .. floor(p) + 2.
        if int(positions[-1]) + 2 < available:
            usable = n
        else:
            usable = int(np.searchsorted(np.floor(positions) + 2, available, side="left"))
        self._calm += n
        if usable < n:
            self._calm = 0.0
            self.underruns += 1
            self.primed = False
            steady = self.written >= self.adapt_after
            if self.adapt_target and steady and self.target + n <= self.max_target:
                # The producer's deliveries are burstier than the target allows: keep one
                # more read's worth from now on (a jitter buffer's adaptation; `target_s`
                # reports the delay this costs).
                self.target += n
        elif self._calm >= self.relax_after and self.target > self.configured_target:
            # Calm long enough: one read's worth less; the controller plays it off.
            self.target = max(self.configured_target, self.target - n)
            self._setpoint -= n
            self._calm = 0.0
        if usable:
            out[:usable] = self._interpolate(positions[:usable])
            self._pos = float(positions[usable - 1]) + self.step
        if usable < n:
            # Everything left is consumed; the rest of this block is silence.
            self._pos = float(max(self._pos, available - 2))
        self._start_from_head()
        return out

    def _ramp(self, n: int) -> FloatBlock:
        if self._ramp_cache.shape[0] != n:
            self._ramp_cache = np.arange(n, dtype=np.float64)
        return self._ramp_cache

    def _start_from_head(self) -> None:
        shift = int(self._pos) - 1
        if shift > 0:
            self._start += shift
            self._pos -= shift

    def _interpolate(self, positions: FloatBlock) -> FloatBlock:
        base = positions.astype(np.intp)  # positions are >= 1: truncation is floor
        t = positions - base
        idx = self._start + base
        y0, y1 = self._buf[idx - 1], self._buf[idx]
        y2, y3 = self._buf[idx + 1], self._buf[idx + 2]
        a = -0.5 * y0 + 1.5 * y1 - 1.5 * y2 + 0.5 * y3
        b = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
        c = -0.5 * y0 + 0.5 * y2
        return np.asarray(((a * t + b) * t + c) * t + y1, dtype=np.float64)

    def _continuous_fill(self, now: float | None) -> float:
        """The fill without the producer's block sawtooth: a block written `elapsed` ago
        counts only for the part a continuous producer would have delivered by now. Without
        it the fill seen at a read jumps by whole blocks as the two clocks' phases turn, and
        the controller would chase those jumps."""
        last = self._last_write
        if now is None or last is None:
            return self.fill
        written_at, size = last
        produced = min(float(size), max(0.0, (now - written_at) * self.samplerate))
        return self.fill - size + produced

    def _track(self, now: float | None) -> None:
        """Time-weighted average of the fill (the level held since the last event, weighted
        by how long it was held): by Little's law the mean delay the buffer adds, whatever the
        phase or burstiness of the two sides' callbacks."""
        if now is None:
            self._t_last = None
            return
        if self._t_last is not None and now > self._t_last:
            held = now - self._t_last
            self._area += held * self.fill  # the exact time average over the settle window
            self._area_s += held
            if self._time_avg is not None:
                weight = 1.0 - math.exp(-held / self.smooth_s) if self.smooth_s > 0 else 1.0
                self._time_avg += weight * (self.fill - self._time_avg)
        self._t_last = now

    def _control(self, n: int, fill: float) -> None:
        dt = n / self.samplerate
        if self._fill_avg is None:
            self._fill_avg = fill
            self._time_avg = fill if self._t_last is not None else None
        elif self._time_avg is not None and self._t_last is not None:
            self._fill_avg = self._time_avg
        else:
            alpha = min(1.0, dt / self.smooth_s) if self.smooth_s > 0 else 1.0
            self._fill_avg += alpha * (fill - self._fill_avg)
        if not self.adaptive:
            self.step = 1.0
            return
        limit = self.max_correction
        if self._settle > 0:
            # The average is still settling after (re)priming: hold the learnt clock
            # difference only. Then the average reached becomes the setpoint: priming put
            # the producer-continuous fill at the target, and the time average sits above it
            # by the shape of the deliveries (half a block, the server's bursts), which is
            # not an error to correct.
            self._settle -= dt
            if self._area_s > 0:
                # The exact time average since priming, not the low-pass seeded by one
                # (possibly bursty) sample.
                self._setpoint = self._area / self._area_s
                if self._time_avg is not None:
                    self._time_avg = self._setpoint
            else:
                self._setpoint = self._fill_avg
            self.step = 1.0 + min(limit, max(-limit, self.ki * self._integral))
            return
        error_s = (self._fill_avg - self._setpoint) / self.samplerate
        correction = self.kp * error_s + self.ki * self._integral
        # Anti-windup: no integration while the correction is at its limit and the error
        # pushes it further (a large error, as when the target steps down, is played off at
        # the limit without the integral overshooting afterwards); and the integral alone
        # never asks for more than the limit.
        saturated = abs(correction) >= limit and error_s * correction > 0
        if self.ki > 0 and not saturated:
            self._integral += error_s * dt
            bound = limit / self.ki
            self._integral = min(bound, max(-bound, self._integral))
            correction = self.kp * error_s + self.ki * self._integral
        self.step = 1.0 + min(limit, max(-limit, correction))
