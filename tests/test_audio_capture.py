"""Real capture through PortAudio: sounddevice reads speech files through ALSA `file` PCMs.

Each test runs the driver in a child process whose HOME holds the test's .asoundrc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import wait_until

from drivers.audio.wavfile import read_audio
from dsp.meter import ChannelMeter, combine_active_levels
from dsp.types import ChannelLevels

REPO = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "audio"
CHILD = Path(__file__).parent / "audio_capture_child.py"


def _pcm(name: str, raw: Path) -> str:
    return f"""
pcm.{name}_raw {{
    type file
    slave.pcm "seat_sink"
    file "/dev/null"
    infile "{raw}"
    format "raw"
}}
pcm.{name} {{
    type plug
    slave {{ pcm "{name}_raw" format S16_LE rate 16000 channels 1 }}
}}
"""


def _stereo_pcm(name: str, raw: Path) -> str:
    """A two-channel headset whose both channels read the same mono file."""
    return (
        _pcm(f"{name}_mono", raw)
        + f"""
pcm.{name} {{
    type route
    slave {{ pcm "{name}_mono_raw" channels 1 }}
    ttable.0.0 1
    ttable.1.0 1
}}
"""
    )


def _asoundrc(home: Path, devices: dict[str, Path], stereo: dict[str, Path] | None = None) -> None:
    text = "pcm.seat_sink { type null }\n" + "".join(_pcm(n, p) for n, p in devices.items())
    text += "".join(_stereo_pcm(n, p) for n, p in (stereo or {}).items())
    (home / ".asoundrc").write_text(text)


def _raw(tmp: Path, name: str) -> tuple[Path, np.ndarray]:
    samples = np.round(read_audio(DATA / f"{name}.wav").samples * 32768).astype(np.int16)
    path = tmp / f"{name}.raw"
    samples.astype("<i2").tofile(path)
    return path, samples


class Child:
    """The capture child and the JSON lines it printed so far."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def levels(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == "levels"]

    def statuses(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == "status"]

    def finish(self) -> None:
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""


def _as_levels(fields: dict[str, list[Any]]) -> ChannelLevels:
    return ChannelLevels(**{name: value for name, (_, value) in fields.items()})


def _offline(samples: np.ndarray) -> list[ChannelLevels]:
    return ChannelMeter(16000).feed(samples)


def test_capture_of_two_devices_reaches_the_sink_as_audio_levels(tmp_path: Path) -> None:
    agent_raw, agent = _raw(tmp_path, "agent")
    customer_raw, customer = _raw(tmp_path, "customer")
    _asoundrc(tmp_path, {"seat_tx": agent_raw, "seat_rx": customer_raw})
    n_tx, n_rx = agent.size // 1600, customer.size // 1600  # whole 100 ms periods in the files
    child = Child(tmp_path, "--tx", "seat_tx", "--rx", "seat_rx", "--levels", str(n_tx))
    child.finish()
    assert child.statuses()[0] == {"kind": "status", "ok": True, "detail": "seat_tx, seat_rx"}
    captured = child.levels()
    assert len(captured) == n_tx
    # Privacy: the typed inputs carry only floats and bools, never samples.
    for line in captured:
        for channel in ("tx", "rx"):
            assert {kind for kind, _ in line[channel].values()} <= {"float", "bool"}
    tx = [_as_levels(line["tx"]) for line in captured]
    rx = [_as_levels(line["rx"]) for line in captured[:n_rx]]
    # The file PCM returns the file bit-exactly, so the live meters equal the offline ones.
    assert tx == _offline(agent)[:n_tx]
    assert rx == _offline(customer)[:n_rx]
    assert sum(levels.speech for levels in tx) >= 0.7 * n_tx
    level, _ = combine_active_levels(tx)
    assert level == pytest.approx(-27.1, abs=0.5)  # P.56 of agent.wav: -27.095 dBov
    assert [u.utterance_level_dbov for u in tx if u.utterance_s] in (
        [],
        [pytest.approx(-27.1, abs=0.5)],
    )


def test_one_stereo_stream_when_tx_and_rx_name_the_same_device(tmp_path: Path) -> None:
    agent_raw, agent = _raw(tmp_path, "agent")
    _asoundrc(tmp_path, {}, stereo={"seat_headset": agent_raw})
    child = Child(tmp_path, "--tx", "seat_headset", "--rx", "seat_headset", "--levels", "20")
    child.finish()
    captured = child.levels()
    # The route PCM copies the mono file to both channels, so channel 0 (tx) and channel 1
    # (rx) of the one stream read the same speech. (alsa-lib's route/file pair does not
    # return the file bit-exactly here, so the periods are compared with each other.)
    tx = [_as_levels(line["tx"]) for line in captured]
    rx = [_as_levels(line["rx"]) for line in captured]
    assert len(tx) == 20
    assert tx == rx
    assert sum(levels.speech for levels in tx) >= 10
    assert max(levels.rms_dbov for levels in tx) > -40.0


def test_missing_device_is_reported_lost_and_picked_up_when_it_appears(tmp_path: Path) -> None:
    agent_raw, agent = _raw(tmp_path, "agent")
    _asoundrc(tmp_path, {"seat_other": agent_raw})
    child = Child(tmp_path, "--tx", "seat_late", "--levels", "10", "--retry", "0.1")
    try:
        wait_until(lambda: child.statuses(), 30, "the first audio status")
        lost = child.statuses()[0]
        assert lost["ok"] is False
        assert "seat_late" in lost["detail"] and "not found" in lost["detail"]
        _asoundrc(tmp_path, {"seat_other": agent_raw, "seat_late": agent_raw})
        wait_until(lambda: len(child.levels()) >= 10, 30, "levels after the device appeared")
    finally:
        child.finish()
    assert [s["ok"] for s in child.statuses()] == [False, True]
    tx = [_as_levels(line["tx"]) for line in child.levels()]
    assert tx == _offline(agent)[:10]
    rx = [_as_levels(line["rx"]) for line in child.levels()]
    assert all(r == ChannelLevels.silence(0.1) for r in rx)
