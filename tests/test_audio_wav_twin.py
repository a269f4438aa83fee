"""The virtual audio twin: a channel plays generated levels or a WAV file through the dsp meters;
scenario `audio.tx` / `audio.rx` steps name files and are checked when the scenario loads.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.audio.events import AudioLevels, AudioStatus
from drivers.audio.virtual import VirtualAudio, VirtualChannel
from drivers.audio.wavfile import read_audio
from dsp.meter import ChannelMeter, to_int16
from edge.base.errors import ConfigError
from edge.shell.scenario import load_scenario, scenario_from_dict
from edge.sim.build import VirtualCti, VirtualSeat, act

DATA = Path(__file__).parent / "data" / "audio"
AGENT = DATA / "agent.wav"


def _agent(gain_db: float = 0.0) -> np.ndarray:
    return to_int16(read_audio(AGENT).samples * 10.0 ** (gain_db / 20.0))


def _played(audio: VirtualAudio, ticks: int) -> list[AudioLevels]:
    got: list[AudioLevels] = []
    audio.start(lambda x: got.append(x) if isinstance(x, AudioLevels) else None)
    for _ in range(ticks):
        audio.tick()
    return got


def test_a_file_on_tx_is_measured_by_the_channel_meter_and_rx_keeps_its_levels() -> None:
    got: list[object] = []
    audio = VirtualAudio(period_s=0.1, samplerate=16000)
    audio.start(got.append)
    audio.play("tx", AGENT)
    audio.rx = VirtualChannel(speech=True, level_dbov=-28.0)
    for _ in range(55):
        audio.tick()
    assert got[0] == AudioStatus(ok=True, detail="virtual")
    levels = [g for g in got if isinstance(g, AudioLevels)]
    assert len(levels) == 55  # speech on rx: every period is reported
    # The file's samples through a fresh meter, period by period, exactly.
    expected = ChannelMeter(16000).feed(_agent())
    assert [lv.tx for lv in levels] == expected[:55]
    assert all(lv.rx == VirtualChannel(True, -28.0).levels(0.1) for lv in levels)
    assert audio.playing("tx") and not audio.playing("rx")


def test_after_the_file_the_channel_plays_silence_through_the_meter_and_ends_the_utterance() -> (
    None
):
    audio = VirtualAudio()
    audio.play("tx", AGENT)
    levels = _played(audio, 80)
    assert not audio.playing("tx")  # 5.51 s played
    utterances = [lv.tx for lv in levels if lv.tx.utterance_s > 0]
    assert len(utterances) == 1  # the meter saw the speech end in the silence after the file
    assert utterances[0].utterance_level_dbov == pytest.approx(-27.1, abs=0.5)  # P.56 of the file
    # Unchanged silence on both channels is summed into one report a second.
    assert levels[-1].tx.period_s == pytest.approx(1.0)
    assert levels[-1].tx.rms_dbov == -100.0 and not levels[-1].tx.speech


def test_gain_moves_the_measured_level_by_exactly_the_gain() -> None:
    loud = _played(_playing("tx", gain_db=0.0), 50)
    quiet = _played(_playing("tx", gain_db=-12.0), 50)
    # loud periods (away from int16 rounding) read exactly 12 dB lower
    steps = [a.tx.rms_dbov - b.tx.rms_dbov for a, b in zip(loud, quiet, strict=True)]
    loud_periods = [s for s, a in zip(steps, loud, strict=True) if a.tx.rms_dbov > -40]
    assert len(loud_periods) > 30 and all(abs(s - 12.0) < 0.01 for s in loud_periods)
    expected = ChannelMeter(16000).feed(_agent(-12.0))
    assert [lv.tx for lv in quiet] == expected[:50]


def _playing(channel: str, **kwargs: Any) -> VirtualAudio:
    audio = VirtualAudio()
    audio.play(channel, AGENT, **kwargs)
    return audio


def test_the_rx_cap_attenuates_a_file_on_rx_and_a_looping_file_never_ends() -> None:
    got: list[AudioLevels] = []
    audio = VirtualAudio()
    audio.start(lambda x: got.append(x) if isinstance(x, AudioLevels) else None)
    audio.play("rx", AGENT, loop=True)
    for _ in range(20):
        audio.tick()
    audio.set_rx_cap(-12.0)
    audio.play("rx", AGENT, loop=True)  # from the start again, same meter
    for _ in range(20):
        audio.tick()
    before = [lv.rx.rms_dbov for lv in got[:20]]
    after = [lv.rx.rms_dbov for lv in got[20:40]]
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if b > -40]
    assert pairs and all(abs((b - a) - 12.0) < 0.05 for b, a in pairs)
    for _ in range(100):  # 10 s: past the end of the 5.5 s file
        audio.tick()
    assert audio.playing("rx")
    assert sum(lv.rx.speech for lv in got[-20:]) > 10  # still speaking: it looped


def test_a_slam_on_a_file_playing_mic_is_a_full_scale_click_through_the_meter() -> None:
    audio = VirtualAudio()
    audio.play("tx", AGENT)
    _played(audio, 70)  # past the end: silence through the meter
    audio.impact()
    levels = _played(audio, 1)
    click = levels[-1].tx
    assert click.peak_dbfs > -0.01 and click.clipping_pct > 0
    assert click.crest_db > 20.0


def test_generated_levels_are_unchanged_and_a_level_step_ends_a_file() -> None:
    audio = VirtualAudio()
    seat = VirtualSeat(headset=None, host=None, radar=None, audio=audio, cti=VirtualCti())  # type: ignore[arg-type]
    scenario = scenario_from_dict(
        {
            "seat": {"site": "lab", "id": "S-1", "start": "2026-11-23T08:44:00+08:00"},
            "step": [
                {"t": 0, "do": "audio.tx", "file": str(AGENT), "gain_db": -6},
                {"t": 1, "do": "audio.tx", "level_dbov": -20},
                {"t": 2, "do": "audio.rx", "silence": True, "noise_dbfs": -50},
            ],
        }
    )
    act(seat, scenario.steps[0], lambda: None)
    first = _played(audio, 1)[0]
    assert first.tx == ChannelMeter(16000).feed(_agent(-6.0)[:1600])[0]
    act(seat, scenario.steps[1], lambda: None)
    act(seat, scenario.steps[2], lambda: None)
    assert not audio.playing("tx")
    levels = _played(audio, 1)[0]
    assert levels.tx.speech and levels.tx.active_level_dbov == -20.0
    assert levels.rx.rms_dbov == -50.0 and not levels.rx.speech


# --- scenario steps naming files ---------------------------------------------------------------


def _scenario(tmp: Path, step: str) -> Path:
    path = tmp / "s.toml"
    path.write_text(
        '[seat]\nsite = "lab"\nid = "S-1"\nstart = "2026-11-23T08:44:00+08:00"\n\n'
        '[[step]]\nt = "1s"\ndo = "radar.present"\n\n'
        f'[[step]]\nt = "2s"\ndo = "audio.tx"\n{step}\n'
    )
    return path


def test_a_file_is_relative_to_the_scenario_and_loaded_with_gain_and_loop(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "speech.wav").write_bytes(AGENT.read_bytes())
    scenario = load_scenario(
        _scenario(tmp_path, 'file = "audio/speech.wav"\ngain_db = -20\nloop = true')
    )
    step = scenario.steps[1]
    assert step.args == {
        "file": str(tmp_path / "audio" / "speech.wav"),
        "gain_db": -20,
        "loop": True,
    }


def _wav_header(rate: int, bits: int, data: bytes, tag: int = 1) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * bits // 8, bits // 8, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


@pytest.mark.parametrize(
    ("step", "files", "message"),
    [
        ('file = "nope.wav"', {}, "#2 file: {tmp}/nope.wav: not found"),
        (
            'file = "speech.raw"',
            {"speech.raw": b"\x00\x01" * 800},
            "#2 file: {tmp}/speech.raw: not a WAV file",
        ),
        (
            'file = "empty.wav"',
            {"empty.wav": _wav_header(16000, 16, b"")},
            "#2 file: {tmp}/empty.wav: WAV 'data' chunk holds no complete sample frame",
        ),
        (
            'file = "mulaw.wav"',
            {"mulaw.wav": _wav_header(8000, 8, b"\x7f" * 80, tag=7)},
            "#2 file: {tmp}/mulaw.wav: WAV format tag 0x0007",
        ),
        (
            'file = "cut.wav"',
            {"cut.wav": _wav_header(16000, 16, b"\x00" * 64)[:30]},
            "#2 file: {tmp}/cut.wav:",
        ),
        ("file = 3", {}, "#2 file: expected a WAV file path, got 3"),
        (
            'file = "ok.wav"\nlevel_dbov = -20',
            {"ok.wav": AGENT.read_bytes()},
            "#2 level_dbov: not with file",
        ),
        (
            'file = "ok.wav"\ngain_db = "loud"',
            {"ok.wav": AGENT.read_bytes()},
            "#2 gain_db: expected a number of dB",
        ),
        (
            'file = "ok.wav"\nloop = 1',
            {"ok.wav": AGENT.read_bytes()},
            "#2 loop: expected true or false",
        ),
        ("gain_db = -6\nlevel_dbov = -20", {}, '#2 gain_db: only with file = "..." on audio.tx'),
    ],
)
def test_a_bad_audio_file_step_is_refused_naming_the_step_and_the_key(
    tmp_path: Path, step: str, files: dict[str, bytes], message: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = _scenario(tmp_path, step)
    with pytest.raises(ConfigError) as error:
        load_scenario(path)
    assert f"{path}: [[step]] " + message.format(tmp=tmp_path) in str(error.value)


def test_a_file_gone_after_loading_plays_silence_and_the_seat_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "speech.wav").write_bytes(AGENT.read_bytes())
    scenario = load_scenario(_scenario(tmp_path, 'file = "speech.wav"'))
    (tmp_path / "speech.wav").unlink()
    audio = VirtualAudio()
    audio.play("tx", AGENT)
    seat = VirtualSeat(headset=None, host=None, radar=None, audio=audio, cti=VirtualCti())  # type: ignore[arg-type]
    act(seat, scenario.steps[1], lambda: None)
    assert not audio.playing("tx")
    assert _played(audio, 1)[0].tx == VirtualChannel().levels(0.1)
    assert "audio.tx at 2.0 s:" in caplog.text and "speech.wav" in caplog.text
