"""The bridge's sample-path dsp: mic gate, peak limiter, receive gain cap, drift buffer (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.audio.events import AudioLevels
from drivers.audio.levels import LevelsPipeline
from drivers.audio.relay import RelayMeters, meter_rate
from dsp.decimate import Decimator
from dsp.drift import DriftBuffer
from dsp.exposure import NoiseDose
from dsp.gate import MicGate
from dsp.limiter import (
    GainCap,
    PeakLimiter,
    db_to_gain,
    dose_gain_limit_db,
    peak_ceiling_dbfs,
    running_min,
)
from dsp.meter import to_int16

RATE = 48000
BLOCK = 240  # 5 ms


def tone(seconds: float, dbfs: float, freq: float = 1000.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return db_to_gain(dbfs) * np.sin(2 * np.pi * freq * t)


def blocks(x: np.ndarray, size: int = BLOCK) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, x.shape[0], size)]


# --- gate --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [240, 64, 960])
def test_the_gate_is_fully_closed_by_the_end_of_the_block_after_it_is_told(block: int) -> None:
    gate = MicGate(RATE)
    x = tone(0.1, -10.0)
    out = [gate.process(b) for b in blocks(x, block)[:3]]
    assert np.array_equal(np.concatenate(out), x[: 3 * block])  # open: untouched
    gate.set_closed(True)
    closing = gate.process(x[3 * block : 4 * block])
    assert closing[-1] == 0.0 and gate.settled_at is not None and gate.settled_at <= block
    assert np.all(closing[gate.settled_at :] == 0.0)
    after = gate.process(x[4 * block : 5 * block])
    assert not after.any()
    # Smooth: no step larger than the signal's own sample-to-sample change plus the ramp's.
    ramp = np.abs(np.diff(np.concatenate([x[3 * block - 1 : 3 * block], closing])))
    assert ramp.max() <= np.abs(np.diff(x)).max() + 1e-9
    gate.set_closed(False)
    opening = gate.process(x[5 * block : 6 * block])
    assert np.allclose(
        opening[gate.settled_at or 0 :], x[5 * block : 6 * block][gate.settled_at or 0 :]
    )


def test_the_gate_ramp_avoids_the_click_of_a_hard_cut() -> None:
    x = tone(0.02, -6.0, freq=200.0)
    gate = MicGate(RATE)
    gate.set_closed(True)
    soft = gate.process(x)
    hard = x * (np.arange(x.shape[0]) < 0)
    hard[:0] = 0
    # A hard cut in the middle of a cycle jumps by up to the full amplitude; the ramp does not.
    assert np.abs(np.diff(np.concatenate([[x[0]], soft]))).max() < 0.5 * db_to_gain(-6.0)


# --- limiter -----------------------------------------------------------------------------------


def test_running_min_equals_the_naive_window_minimum() -> None:
    rng = np.random.default_rng(3)
    values = rng.random(1000)
    for width in (1, 2, 7, 48, 999):
        naive = np.array([values[i : i + width].min() for i in range(1000 - width + 1)])
        assert np.array_equal(running_min(values, width), naive)


def test_a_20_db_burst_is_held_at_the_ceiling_and_the_rest_passes_unchanged() -> None:
    ceiling_db = peak_ceiling_dbfs(102.0, 110.0)  # the default profile: -8 dBFS peaks
    assert ceiling_db == -8.0
    limiter = PeakLimiter(RATE)
    limiter.set_ceiling_dbfs(ceiling_db)
    speech = tone(1.0, -20.0, freq=440.0)
    burst = speech.copy()
    burst[RATE // 2 : RATE // 2 + RATE // 5] *= db_to_gain(20.0)  # +20 dB: peaks at 0 dBFS
    out = np.concatenate([limiter.process(b) for b in blocks(burst)])
    ceiling = db_to_gain(ceiling_db)
    assert np.abs(out).max() <= ceiling
    delayed = out[limiter.delay :]
    during = delayed[RATE // 2 + 480 : RATE // 2 + RATE // 5 - 480]
    assert np.abs(during).max() == pytest.approx(ceiling, rel=0.01)  # held at the cap
    before = delayed[: RATE // 2 - 480]
    assert np.allclose(before, burst[: before.shape[0]])  # below the cap: untouched
    after = delayed[RATE // 2 + RATE // 5 + 960 :]
    assert np.allclose(
        after, burst[RATE // 2 + RATE // 5 + 960 : RATE // 2 + RATE // 5 + 960 + after.shape[0]]
    )
    assert limiter.min_gain == pytest.approx(db_to_gain(-8.0), rel=0.01)


def test_the_limiter_holds_single_sample_spikes_of_random_block_sizes() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(RATE) * 0.05
    x[rng.integers(0, RATE, 40)] = rng.choice([-1.0, 1.0], 40)  # full-scale clicks
    limiter = PeakLimiter(RATE, ceiling=db_to_gain(-12.0))
    out, i = [], 0
    while i < x.shape[0]:
        n = int(rng.integers(1, 700))
        out.append(limiter.process(x[i : i + n]))
        i += n
    y = np.concatenate(out)
    assert y.shape == x.shape and np.abs(y).max() <= db_to_gain(-12.0)


def test_without_a_ceiling_the_limiter_only_delays() -> None:
    limiter = PeakLimiter(RATE)
    x = tone(0.05, 0.0)
    y = np.concatenate([limiter.process(b) for b in blocks(x)])
    assert np.array_equal(y[limiter.delay :], x[: x.shape[0] - limiter.delay])


def test_the_daily_dose_cap_is_a_smooth_gain_limit() -> None:
    dose = NoiseDose(day="2026-12-03")
    dose.add(85.0, 4 * 3600)  # 158 % of the 80 dB(A) criterion
    assert dose_gain_limit_db(dose.dose_pct(80.0), -6.0) == -6.0
    assert dose_gain_limit_db(50.0, -6.0) is None
    cap = GainCap(RATE)
    x = np.full(RATE // 10, 0.5)
    cap.set_cap_db(-6.0)
    y = np.concatenate([cap.process(b) for b in blocks(x)])
    assert y[-1] == pytest.approx(0.5 * db_to_gain(-6.0))
    assert np.all(np.diff(y) <= 0) and np.abs(np.diff(y)).max() < 0.5 / cap.ramp + 1e-12
    cap.set_cap_db(None)
    z = np.concatenate([cap.process(b) for b in blocks(x)])
    assert z[-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="receive gain cap"):
        cap.set_cap_db(float("nan"))


# --- drift buffer ------------------------------------------------------------------------------


def run_clocks(
    ppm: float, seconds: float, target_s: float, adaptive: bool = True
) -> tuple[DriftBuffer, list[float]]:
    """A producer whose clock is `ppm` faster than the consumer's (both 5 ms blocks), simulated
    in 0.1 ms ticks. Returns the buffer and the delay of the output behind the source (seconds,
    by cross-correlation) in each second after the first."""
    buf = DriftBuffer(RATE, target_s, adaptive=adaptive)
    source = speech_band(seconds * 1.01 + 1)
    produce_rate = RATE * (1 + ppm * 1e-6)
    produced = consumed = 0
    out = []
    for tick in range(int(seconds * 10000)):
        t = tick / 10000
        while produced * BLOCK / produce_rate <= t:
            buf.write(source[produced * BLOCK : (produced + 1) * BLOCK], now=t)
            produced += 1
        while consumed * BLOCK / RATE <= t:
            out.append(buf.read(BLOCK, now=t))
            consumed += 1
    y = np.concatenate(out)
    delays = []
    for second in range(1, int(seconds) - 1):
        j0 = second * RATE
        k0 = int(j0 * produce_rate / RATE) - RATE // 20
        lag = fractional_lag(source[k0 : k0 + RATE + RATE // 20], y[j0 : j0 + RATE], RATE // 20)
        delays.append(j0 / RATE - (k0 - lag) / produce_rate)
    return buf, delays


@pytest.mark.parametrize("ppm", [200.0, -200.0])
def test_the_drift_buffer_learns_the_skew_and_its_delay_does_not_grow(ppm: float) -> None:
    buf, delays = run_clocks(ppm, 30.0, 0.011)
    assert buf.underruns == 0 and buf.overruns == 0
    assert max(delays) - min(delays) < 0.0005, delays  # within 0.5 ms over 28 s
    assert 0.008 < np.mean(delays) < 0.014  # the 11 ms target, within a block
    assert buf.ppm == pytest.approx(ppm, abs=40)
    # Without the controller the same skew moves the delay by 200e-6 x 30 s = 6 ms (or runs
    # the buffer dry): the checks above would fail.
    fixed, drifting = run_clocks(ppm, 30.0, 0.011, adaptive=False)
    assert abs(drifting[-1] - drifting[0]) > 0.004 or fixed.underruns + fixed.overruns > 0


def speech_band(seconds: float, seed: int = 1) -> np.ndarray:
    """A known signal in the telephone band: noise low-passed at 3.4 kHz (windowed sinc)."""
    rng = np.random.default_rng(seed)
    k = np.arange(-64, 65)
    taps = 2 * 3400 / RATE * np.sinc(2 * 3400 / RATE * k) * np.hanning(129)
    return np.convolve(rng.standard_normal(int(seconds * RATE)) * 0.3, taps, "same")


def test_the_drift_buffer_passes_the_signal_through_at_its_delay() -> None:
    buf = DriftBuffer(RATE, 0.011)
    source = speech_band(3.0)
    out = []
    for i in range(0, source.shape[0], BLOCK):
        buf.write(source[i : i + BLOCK], now=i / RATE)
        out.append(buf.read(BLOCK, now=(i + 100) / RATE))
    y = np.concatenate(out)
    lag = fractional_lag(source[RATE : 2 * RATE], y[RATE : 2 * RATE])
    assert 0.005 * RATE < lag < 0.016 * RATE  # the target fill (11 ms) within a block
    shifted = fractional_shift(source, lag)[RATE : 2 * RATE]
    residual = y[RATE : 2 * RATE] - shifted
    assert 10 * np.log10(np.mean(residual**2) / np.mean(shifted**2)) < -35


def fractional_lag(x: np.ndarray, y: np.ndarray, max_lag: int | None = None) -> float:
    """Delay of y behind x (samples, with parabolic interpolation of the correlation peak)."""
    n = 1 << int(np.ceil(np.log2(x.shape[0] + y.shape[0])))
    corr = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    if max_lag is not None:  # y sits inside x: y[i] = x[i + m], m in 0..max_lag
        corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)
        m = int(np.argmax(corr[: max_lag + 1]))
        a, b, c = corr[m - 1], corr[m], corr[m + 1]
        return -(m + 0.5 * (a - c) / (a - 2 * b + c))
    k = int(np.argmax(corr[: x.shape[0] // 2]))
    a, b, c = corr[k - 1], corr[k], corr[k + 1]
    return k + 0.5 * (a - c) / (a - 2 * b + c)


def fractional_shift(x: np.ndarray, delay: float) -> np.ndarray:
    n = x.shape[0]
    freqs = np.fft.rfftfreq(n)
    return np.fft.irfft(np.fft.rfft(x) * np.exp(-2j * np.pi * freqs * delay), n)


def test_underrun_and_overrun_are_counted_and_recovered() -> None:
    buf = DriftBuffer(RATE, 0.01, capacity_s=0.05)
    buf.write(np.ones(960))
    assert buf.read(240).any()
    for _ in range(4):
        buf.read(240)  # the producer stopped
    assert buf.underruns == 1 and not buf.primed
    assert not buf.read(240).any()  # re-priming: silence until the target is back
    for _ in range(20):
        buf.write(np.ones(240))  # the consumer stopped
    assert buf.overruns >= 1 and buf.fill <= buf.capacity
    assert buf.read(240).all()


def test_a_start_up_underrun_keeps_the_target_and_a_steady_one_raises_it() -> None:
    """A jitter buffer grows its target when the producer proves burstier than it allowed,
    but not for the first second: the relay's streams start one after the other."""
    buf = DriftBuffer(RATE, 0.01)
    buf.write(np.ones(480))
    buf.read(240)
    buf.read(240)
    buf.read(240)  # the producer's second block is late: the start, not its rhythm
    assert buf.underruns == 1 and buf.target_s == pytest.approx(0.01)
    for _ in range(250):  # a second and more of steady 5 ms blocks
        buf.write(np.ones(240))
        buf.read(240)
    assert buf.underruns == 1
    for _ in range(4):
        buf.read(240)  # now a late producer is its rhythm: one more read's worth
    assert buf.underruns == 2 and buf.target_s == pytest.approx(0.015)
    delays = []
    for _ in range(int(40 / 0.005)):  # calm: after 30 s it steps back, then plays it off
        buf.write(np.ones(240))
        buf.read(240)
        delays.append(buf.fill)
    assert buf.target_s == pytest.approx(0.01) and buf.underruns == 2
    # The fill after each read (samples): the 15 ms target less a read, then (played off by
    # resampling, at most 1000 ppm: 5 s for a read's worth) 10 ms less one.
    assert delays[int(25 / 0.005)] == pytest.approx(720 - 240, abs=5)
    assert delays[-1] == pytest.approx(480 - 240, abs=15)  # within 0.3 ms


def test_bad_drift_buffer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="target_s"):
        DriftBuffer(RATE, 0.5, capacity_s=0.25)
    with pytest.raises(ValueError, match="samplerate"):
        DriftBuffer(0, 0.01)


# --- decimation to the meters' 16 kHz ----------------------------------------------------------


def random_blocks(x: np.ndarray, seed: int, largest: int = 700) -> list[np.ndarray]:
    """`x` cut at random: empty blocks, single samples, sizes that are no multiple of 3."""
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(0, largest, size=x.shape[0]))
    return np.split(x, cuts[cuts < x.shape[0]])


@pytest.mark.parametrize("factor", [2, 3])
def test_decimation_does_not_depend_on_the_block_sizes(factor: int) -> None:
    x = np.random.default_rng(5).standard_normal(RATE * 2)
    whole = Decimator(factor).process(x)
    assert whole.shape[0] == -(-x.shape[0] // factor)  # one sample per `factor`, from x[0]
    for seed in (1, 2):
        decimator = Decimator(factor)
        pieces = [decimator.process(b) for b in random_blocks(x, seed)]
        assert np.array_equal(np.concatenate(pieces), whole)  # exactly, bit for bit
    single = Decimator(factor)
    one_by_one = [single.process(x[i : i + 1]) for i in range(999)]
    assert np.array_equal(np.concatenate(one_by_one), Decimator(factor).process(x[:999]))


def tone_level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2)))


def test_decimation_rejects_aliases_and_passes_the_speech_band() -> None:
    decimator = Decimator(3)
    settle = decimator.taps.shape[0]  # outputs: three times the filter's length in inputs
    # 12 kHz at 48 kHz would fold onto 4 kHz at 16 kHz, in the middle of the speech band.
    alias = Decimator(3).process(tone(1.0, -3.0, freq=12000.0))[settle:]
    assert tone_level_db(alias) - tone_level_db(tone(1.0, -3.0, freq=12000.0)) < -60.0
    for freq in (1000.0, 3000.0, 5000.0):
        source = tone(1.0, -3.0, freq=freq)
        out = Decimator(3).process(source)[settle:]
        assert tone_level_db(out) - tone_level_db(source) == pytest.approx(0.0, abs=0.1)
    # What passes is the same signal at 16 kHz, delayed by the linear-phase filter.
    delay = decimator.delay_s(RATE)
    out = decimator.process(tone(1.0, -3.0, freq=1000.0))
    t = np.arange(out.shape[0]) / 16000 - delay
    assert np.abs(out - db_to_gain(-3.0) * np.sin(2 * np.pi * 1000 * t))[settle:].max() < 1e-3


@pytest.mark.parametrize("factor", [0, -3, 2.5, True, "3"])
def test_a_bad_decimation_factor_is_refused(factor: object) -> None:
    with pytest.raises(ValueError, match="decimation factor: expected an integer >= 1"):
        Decimator(factor)  # type: ignore[arg-type]


SPURT_S, PAUSE_S = 0.8, 0.5


def talk_spurts(seconds: float, seed: int) -> np.ndarray:
    """Speech-band noise at 48 kHz in spurts (0.8 s on, 0.5 s off): P.56 has pauses to leave
    out."""
    x = speech_band(seconds, seed)
    return x * talking(np.arange(x.shape[0]) / RATE)


def talking(t: np.ndarray) -> np.ndarray:
    return np.asarray(t % (SPURT_S + PAUSE_S) < SPURT_S)


def test_the_relay_meters_at_16_khz_what_the_capture_path_meters() -> None:
    """The relay's meters (48 kHz blocks, decimated) against the same signal at 16 kHz fed to
    the capture path's pipeline: P.56 active speech level, RMS and LAeq within 0.5 dB."""
    tx, rx = talk_spurts(6.0, 7), 0.1 * talk_spurts(6.0, 8)
    relay = RelayMeters(RATE, 0.1)
    assert relay.pipeline.samplerate == 16000
    got: list[AudioLevels] = []
    for start in range(0, tx.shape[0], BLOCK):  # the relay's 5 ms blocks at 48 kHz
        got += relay.feed("tx", tx[start : start + BLOCK])
        got += relay.feed("rx", rx[start : start + BLOCK])
    # The same signal at 16 kHz: band-limited to 3.4 kHz, so every third sample is it.
    capture = LevelsPipeline(16000, 0.1)
    want: list[AudioLevels] = []
    tx16, rx16 = to_int16(tx[::3]), to_int16(rx[::3])
    for start in range(0, tx16.shape[0], 320):  # the capture path's 20 ms blocks
        want += capture.feed("tx", tx16[start : start + 320])
        want += capture.feed("rx", rx16[start : start + 320])
    assert len(got) == len(want) == 60  # 10 Hz
    # The whole signal (a call): P.56 over everything fed.
    for channel in ("tx", "rx"):
        ours = getattr(relay.pipeline, channel).summary()
        theirs = getattr(capture, channel).summary()
        assert ours.active_level_dbov == pytest.approx(theirs.active_level_dbov, abs=0.5)
        assert ours.activity_pct == pytest.approx(theirs.activity_pct, abs=2.0)
        assert ours.laeq_dbfs == pytest.approx(theirs.laeq_dbfs, abs=0.5)
    # Each period inside a spurt (the decimator delays the signal by 0.6 ms: a period at a
    # spurt's end holds a tail that the undelayed reference has not).
    steady = 0
    for k, (ours_k, theirs_k) in enumerate(zip(got, want, strict=True)):
        span = np.linspace(0.1 * k - 0.002, 0.1 * (k + 1) + 0.002, 200)
        if not talking(span).all():
            continue
        steady += 1
        for channel in ("tx", "rx"):
            a, b = getattr(ours_k, channel), getattr(theirs_k, channel)
            assert a.period_s == b.period_s == pytest.approx(0.1)
            assert a.active_level_dbov == pytest.approx(b.active_level_dbov, abs=0.5)
            assert a.rms_dbov == pytest.approx(b.rms_dbov, abs=0.5)
            assert a.laeq_dbfs == pytest.approx(b.laeq_dbfs, abs=0.5)
            assert a.speech == b.speech
    assert steady >= 30  # most of the 6 s were compared period by period


def test_the_relay_meters_give_the_levels_of_metering_every_block() -> None:
    """RelayMeters decimates once per meter period: the same levels, out with the same block,
    as decimating and metering each block as it comes."""
    tx, rx = talk_spurts(2.0, 3), 0.2 * talk_spurts(2.0, 4)
    relay = RelayMeters(RATE, 0.1)
    per_block = LevelsPipeline(16000, 0.1)
    down = {"tx": Decimator(3), "rx": Decimator(3)}
    emitted = 0
    # The same random cuts for both channels (they depend on the length only).
    cuts = zip(random_blocks(tx, 9, 500), random_blocks(rx, 9, 500), strict=True)
    for k, (tx_block, rx_block) in enumerate(cuts):
        for channel, block in (("tx", tx_block), ("rx", rx_block)):
            expected = per_block.feed(channel, to_int16(down[channel].process(block)))
            assert relay.feed(channel, block) == expected, (k, channel)
            emitted += len(expected)
    assert emitted == 20


def test_the_relay_meters_at_a_rate_that_is_no_multiple_of_16_khz() -> None:
    assert meter_rate(48000) == meter_rate(32000) == meter_rate(16000) == 16000
    assert meter_rate(44100) == 44100
    relay = RelayMeters(44100, 0.1)
    assert relay.factor == 1 and relay.pipeline.samplerate == 44100
    x = talk_spurts(1.0, 1)[:44100]
    undecimated = LevelsPipeline(44100, 0.1)
    got, want = [], []
    for i in range(0, x.shape[0], 441):
        for channel, block in (("tx", x[i : i + 441]), ("rx", 0.1 * x[i : i + 441])):
            got += relay.feed(channel, block)
            want += undecimated.feed(channel, to_int16(block))
    assert got == want and len(got) == 10
