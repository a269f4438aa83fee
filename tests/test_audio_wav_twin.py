"""The WAV-playing virtual audio measures through the same meters; VirtualAudio still works."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drivers.audio import AudioLevels, AudioStatus, VirtualAudio, WavAudio
from drivers.wavfile import read_audio
from dsp.meter import ChannelMeter
from dsp.types import ChannelLevels

DATA = Path(__file__).parent / "data" / "audio"


def test_wav_twin_plays_files_per_channel_through_the_dsp_meters() -> None:
    got: list[object] = []
    audio = WavAudio(period_s=0.1, samplerate=16000)
    audio.start(got.append)
    audio.play("tx", DATA / "agent.wav")
    audio.play("rx", DATA / "voice.src")  # raw 8 kHz would be read at 16 kHz: use a WAV
    audio.silence("rx")
    for _ in range(60):
        audio.tick()
    assert got[0] == AudioStatus(ok=True, detail="wav")
    levels = [g for g in got if isinstance(g, AudioLevels)]
    assert len(levels) == 60
    agent = np.round(read_audio(DATA / "agent.wav").samples * 32768).astype(np.int16)
    expected = ChannelMeter(16000).feed(np.concatenate([agent, np.zeros(16000, np.int16)]))
    assert [lv.tx for lv in levels] == expected[:60]
    assert all(lv.rx == ChannelLevels.silence(0.1) for lv in levels)
    assert not audio.playing("tx")  # the file ended after 5.5 s


def test_wav_twin_resamples_and_applies_the_rx_cap() -> None:
    got: list[AudioLevels] = []
    audio = WavAudio(period_s=0.1, samplerate=16000)
    audio.start(lambda x: got.append(x) if isinstance(x, AudioLevels) else None)
    audio.play("rx", DATA / "agent.wav", loop=True)
    for _ in range(20):
        audio.tick()
    audio.set_rx_cap(-12.0)
    audio.play("rx", DATA / "agent.wav", loop=True)
    for _ in range(20):
        audio.tick()
    before = [lv.rx.rms_dbov for lv in got[:20]]
    after = [lv.rx.rms_dbov for lv in got[20:40]]
    # same periods of the same file, 12 dB lower (loud periods, away from int16 rounding)
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if b > -40]
    assert pairs and all(abs((b - a) - 12.0) < 0.05 for b, a in pairs)


def test_virtual_audio_still_hands_generated_levels() -> None:
    got: list[object] = []
    audio = VirtualAudio()
    audio.start(got.append)
    audio.tx = audio.tx.__class__(speech=True, level_dbov=-20.0)
    audio.tick()
    assert isinstance(got[-1], AudioLevels) and got[-1].tx.speech
    assert got[-1].tx.active_level_dbov == -20.0
