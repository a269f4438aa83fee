"""Voice activity per 20 ms frame: the WebRTC detector as its own wrapper decides, gated by the
energy floor; any block size; the energy fallback on speech between noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import webrtcvad

from drivers.audio.wavfile import read_audio
from dsp.vad import ENERGY_FLOOR_DBOV, VoiceActivity

DATA = Path(__file__).parent / "data" / "audio"
RATE = 16000
FRAME = 320


def _speech() -> np.ndarray:
    samples = read_audio(DATA / "agent.wav").samples
    return np.asarray(np.round(samples * 32768), dtype=np.int16)


def _frame_dbov(frame: np.ndarray) -> float:
    power = float(np.mean((frame.astype(np.float64) / 32768.0) ** 2))
    return 10.0 * np.log10(power + 1e-20)


@pytest.mark.parametrize("mode", [0, 2, 3])
def test_webrtc_flags_are_the_wrappers_decisions_above_the_energy_floor(mode: int) -> None:
    x = _speech()
    flags = VoiceActivity(RATE, mode, "webrtc").feed(x)
    vad = webrtcvad.Vad(mode)
    frames = x[: len(flags) * FRAME].reshape(-1, FRAME)
    expected = [
        _frame_dbov(f) >= ENERGY_FLOOR_DBOV and vad.is_speech(f.tobytes(), RATE) for f in frames
    ]
    assert flags == expected
    assert len(flags) == x.size // FRAME
    # Real speech with pauses: both decisions occur.
    assert 0.3 < sum(flags) / len(flags) < 0.95


def test_any_block_sizes_give_the_same_flags() -> None:
    x = _speech()
    whole = VoiceActivity(RATE).feed(x)
    vad = VoiceActivity(RATE)
    rng = np.random.default_rng(7)
    flags: list[bool] = []
    pos = 0
    while pos < x.size:
        step = int(rng.integers(1, 900))
        flags += vad.feed(x[pos : pos + step])
        pos += step
    assert flags == whole


def test_frames_below_the_energy_floor_are_never_speech() -> None:
    quiet = (_speech().astype(np.float64) * 10 ** (-50 / 20)).astype(np.int16)
    assert not any(VoiceActivity(RATE, 3, "webrtc").feed(quiet))


def test_energy_fallback_finds_speech_between_steady_noise() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(RATE * 6) * 32768 * 10 ** (-50 / 20)).astype(np.int16)
    speech = _speech()
    vad = VoiceActivity(RATE, backend="energy")
    assert vad.backend == "energy"
    in_noise = vad.feed(noise[: RATE * 2])
    in_speech = vad.feed(np.clip(speech.astype(np.int32) + noise[: speech.size], -32768, 32767))
    # Steady noise is learnt as the floor; speech above it is voice.
    assert sum(in_noise[-50:]) == 0
    assert sum(in_speech) / len(in_speech) > 0.3


def test_rates_webrtc_cannot_take_fall_back_to_energy_or_are_refused() -> None:
    assert VoiceActivity(22050).backend == "energy"
    with pytest.raises(ValueError, match="22050"):
        VoiceActivity(22050, backend="webrtc")
