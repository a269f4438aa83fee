"""ITU-T P.56 method B against the STL reference vectors, on real speech, streamed and whole."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from drivers.audio.wavfile import read_audio
from dsp.meter import ChannelMeter, combine_active_levels, measure
from dsp.p56 import HANGOVER_S, THRESHOLDS, SpeechVoltmeter, active_speech_level

DATA = Path(__file__).parent / "data" / "audio"


def _raw(name: str) -> np.ndarray:
    return np.fromfile(DATA / name, dtype="<i2").astype(np.float64) / 32768.0


def _speech(name: str) -> np.ndarray:
    return read_audio(DATA / name).samples


@pytest.mark.parametrize(
    ("name", "level", "activity", "rms"),
    [("voice.src", -25.022, 90.044, -25.478), ("voice.nrm", -29.691, 89.937, -30.151)],
)
def test_reference_vectors_read_as_stl_actlev(
    name: str, level: float, activity: float, rms: float
) -> None:
    result = active_speech_level(_raw(name), 8000)
    assert result.active_level_dbov == pytest.approx(level, abs=0.0015)
    assert result.activity_pct == pytest.approx(activity, abs=0.0015)
    assert result.rms_dbov == pytest.approx(rms, abs=0.0015)


def test_wrong_sample_rate_gives_the_stl_wrong_rate_figures() -> None:
    # STL `actlev -q voice.src` (16 kHz default): -25.329 dBov, 96.625 %.
    result = active_speech_level(_raw("voice.src"), 16000)
    assert result.active_level_dbov == pytest.approx(-25.329, abs=0.0015)
    assert result.activity_pct == pytest.approx(96.625, abs=0.0015)


def _per_sample_reference(x: np.ndarray, fs: int) -> tuple[int, ...]:
    """sv-p56.c's per-sample loop, transcribed literally (slow; short signals only)."""
    g = math.exp(-1.0 / (fs * 0.03))
    big_i = math.floor(HANGOVER_S * fs + 0.5)
    p = q = 0.0
    a = [0] * 15
    hang = [big_i] * 15
    for sample in x:
        p = g * p + (1 - g) * abs(sample)
        q = g * q + (1 - g) * p
        for j in range(15):
            if q >= THRESHOLDS[j]:
                a[j] += 1
                hang[j] = 0
            elif hang[j] < big_i:
                a[j] += 1
                hang[j] += 1
    return tuple(a)


def _fed_in_random_blocks(x: np.ndarray, fs: int, seed: int, longest: int) -> SpeechVoltmeter:
    rng = np.random.default_rng(seed)
    meter = SpeechVoltmeter(fs)
    pos = 0
    while pos < x.shape[0]:
        step = int(rng.integers(1, longest))
        meter.feed(x[pos : pos + step])
        pos += step
    return meter


def test_vectorised_activity_counts_equal_the_per_sample_loop_for_any_blocks() -> None:
    x = _raw("voice.src")[:12000]
    expected = _per_sample_reference(x, 8000)
    assert _fed_in_random_blocks(x, 8000, seed=1, longest=700).counts.active == expected
    # Blocks longer than the 0.2 s hangover (1600 samples at 8 kHz) are counted in chunks.
    assert _fed_in_random_blocks(x, 8000, seed=4, longest=5000).counts.active == expected


def test_hangover_into_digital_silence_counts_like_the_per_sample_loop() -> None:
    """Speech, then blocks of true digital silence (every envelope bin below the lowest
    threshold), speech again: the 0.2 s hangover after each burst is counted at every
    threshold. (A block wholly below c[0] once applied it to the top threshold only.)"""
    speech = _raw("voice.src")[:3000]
    x = np.concatenate([speech, np.zeros(4000), speech * 0.01, np.zeros(2500), speech])
    expected = _per_sample_reference(x, 8000)
    for seed in (2, 3):
        assert _fed_in_random_blocks(x, 8000, seed, longest=400).counts.active == expected


def test_rising_falling_and_flat_envelopes_count_like_the_per_sample_loop() -> None:
    """Chunks where the envelope only rises (a step onto a steady tone), only falls (the decay
    into silence) or stays flat take the meter's no-scan path; counts stay the loop's."""
    steady = np.full(5000, 0.25)
    decay = np.zeros(5000)
    swell = np.linspace(0.0, 0.5, 5000)
    x = np.concatenate([steady, decay, swell, decay, _raw("voice.src")[:2000], decay])
    expected = _per_sample_reference(x, 8000)
    for longest in (300, 1700, 5000):
        assert _fed_in_random_blocks(x, 8000, 5, longest).counts.active == expected


def test_silence_reads_minus_100_dbov_and_zero_activity() -> None:
    result = active_speech_level(np.zeros(16000), 16000)
    assert result.active_level_dbov == -100.0
    assert result.activity == 0.0
    summary = measure(np.zeros(16000, dtype=np.int16), 16000)
    assert (summary.active_level_dbov, summary.activity_pct, summary.rms_dbov) == (
        -100.0,
        0.0,
        -100.0,
    )


def test_real_speech_moves_by_exactly_the_applied_gain() -> None:
    loud = measure(_speech("agent.wav"), 16000)
    quiet = measure(_speech("agent_gain-10dB.wav"), 16000)
    # sox `vol -10dB`: RMS moves by 10 dB to int16 rounding; P.56 also shifts its thresholds
    # by 10 dB relative to the 6.02 dB grid, which changes activity by a few hundredths.
    assert loud.rms_dbov - quiet.rms_dbov == pytest.approx(10.0, abs=0.002)
    assert loud.active_level_dbov - quiet.active_level_dbov == pytest.approx(10.0, abs=0.05)
    # Digital gain of exactly one threshold step (2x, 6.02 dB) moves P.56 exactly.
    x = _speech("agent.wav")
    half = active_speech_level(x / 2, 16000)
    assert active_speech_level(x, 16000).active_level_dbov - half.active_level_dbov == (
        pytest.approx(20 * math.log10(2), abs=1e-9)
    )


@pytest.mark.parametrize("rate", [8000, 48000])
def test_same_speech_at_8_16_48_khz_reads_the_same_level(rate: int) -> None:
    x16 = _speech("agent.wav")
    g = math.gcd(rate, 16000)
    x = resample_poly(x16, rate // g, 16000 // g)
    level16 = active_speech_level(x16, 16000)
    other = active_speech_level(x, rate)
    # 8 kHz loses the 4-8 kHz band (little energy in speech); levels agree to a few tenths.
    assert other.active_level_dbov == pytest.approx(level16.active_level_dbov, abs=0.3)
    assert other.activity_pct == pytest.approx(level16.activity_pct, abs=2.0)
    assert measure(x, rate).active_level_dbov == pytest.approx(other.active_level_dbov, abs=1e-9)


def test_streaming_in_20ms_blocks_equals_the_whole_file() -> None:
    x = (np.round(_speech("agent.wav") * 32768)).astype(np.int16)
    whole = ChannelMeter(16000)
    whole_periods = whole.feed(x) + whole.flush()
    streamed = ChannelMeter(16000)
    streamed_periods = []
    for start in range(0, x.shape[0], 320):
        streamed_periods += streamed.feed(x[start : start + 320])
    streamed_periods += streamed.flush()
    assert streamed_periods == whole_periods
    assert streamed.summary() == whole.summary()
    assert whole.summary().active_level_dbov == pytest.approx(-27.095, abs=0.001)


def test_periods_flag_speech_and_an_utterance_carries_its_p56_level() -> None:
    meter = ChannelMeter(16000)
    speech = (np.round(_speech("agent.wav") * 32768)).astype(np.int16)
    periods = meter.feed(np.concatenate([speech, np.zeros(16000, dtype=np.int16)]))
    assert sum(p.speech for p in periods) >= 35  # ~5.5 s of speech in 100 ms periods
    assert not any(p.speech for p in periods[-5:])
    utterances = [p for p in periods if p.utterance_s > 0]
    assert len(utterances) == 1
    assert utterances[0].utterance_s == pytest.approx(5.2, abs=0.3)
    assert utterances[0].utterance_level_dbov == pytest.approx(-27.1, abs=0.5)
    # Per-period thresholds count quiet stretches of a period as inactive, so the combined
    # level sits a little above, and the active time below, whole-file P.56 (-27.1, 5.0 s).
    level, active_s = combine_active_levels(periods)
    assert level == pytest.approx(-27.1, abs=0.5)
    assert 4.0 <= active_s <= 5.0


def test_an_utterance_running_to_the_end_of_a_file_is_reported_by_flush() -> None:
    x = np.fromfile(DATA / "voice.src", dtype="<i2")  # 6.592 s: ends on a partial period
    meter = ChannelMeter(8000)
    periods = meter.feed(x) + meter.flush()
    utterances = [p for p in periods if p.utterance_s > 0]
    assert len(utterances) == 1 and utterances[0] is periods[-1]
    assert utterances[0].utterance_level_dbov == pytest.approx(-25.022, abs=0.1)
