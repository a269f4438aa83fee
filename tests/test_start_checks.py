"""`seatbox run`'s start checks: the microphone is judged on the seat's own capture (a tap on
the runtime's inputs), not by opening the device a second time."""

from __future__ import annotations

import threading

from drivers.audio.events import AudioLevels, AudioStatus
from dsp.types import ChannelLevels
from edge.ops.doctor.audio import check_microphone
from edge.ops.doctor.machine import Machine
from edge.ops.doctor.start import SeatMicrophone, before_devices, pending
from edge.shell.config import SeatConfig


def _config(**audio: object) -> SeatConfig:
    return SeatConfig.model_validate(
        {
            "seat": {"site": "s", "id": "a"},
            "audio": {"backend": "sounddevice", "tx_device": "USB Headset", **audio},
        }
    )


def _levels(dbov: float) -> AudioLevels:
    return AudioLevels(
        tx=ChannelLevels(period_s=0.1, rms_dbov=dbov), rx=ChannelLevels(period_s=0.1)
    )


def _feed(taps: list, items: list[object]) -> threading.Thread:
    def run() -> None:
        while not taps:  # the check registers its tap first
            threading.Event().wait(0.001)
        for item in items:
            for tap in tuple(taps):
                tap(item)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_microphone_check_reads_the_seats_own_levels() -> None:
    taps: list = []
    config = _config(levels_hz=10.0)
    feeder = _feed(taps, [_levels(-60.0 + i) for i in range(12)])
    check = check_microphone(config, Machine(mic_probe=SeatMicrophone(taps)), audio_ok=True)
    feeder.join(5)
    # The loudest of the first second (10 periods), as doctor's own probe reports it.
    assert (check.status, check.detail) == ("OK", "signal -51.0 dBov RMS")
    assert taps == []  # the tap is gone once it has heard enough


def test_a_capture_that_fails_in_the_seat_fails_the_check_with_its_reason() -> None:
    taps: list = []
    feeder = _feed(taps, [AudioStatus(ok=False, detail="device unplugged")])
    check = check_microphone(_config(), Machine(mic_probe=SeatMicrophone(taps)), audio_ok=True)
    feeder.join(5)
    assert check.status == "FAIL"
    assert "device unplugged" in check.detail


def test_only_the_radars_serial_probe_runs_before_the_seat_opens_its_devices() -> None:
    assert before_devices(_config()) == []  # virtual radar: nothing to run first
    shown = pending([])
    assert [c.name for c in shown][:3] == ["broker", "headset", "audio"]
    assert all(c.status == "WARN" and "being checked" in c.detail for c in shown)
