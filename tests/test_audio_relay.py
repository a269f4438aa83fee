"""The bridge's audio relay in real time through a real ALSA path (PulseAudio null sinks and the
ALSA pulse plugin; `tests/relay_probe.py` runs the relay in a child whose HOME holds the
`.asoundrc`), with the gadget's clock 208 ppm fast (its stream opened at 48010 Hz while the
relay takes it for 48000):

- hold: the mic gate is fully closed within one audio period of `set_hold(True)`, lets nothing
  through while held, and reopens on resume to the agent's own mute (off);
- hearing safety: a +20 dB burst from the PC is held at the profile's peak limit at the
  earpiece, sample by sample, and the far end (the earpiece sink's monitor) never exceeds it;
- drift: with the gadget's clock 208 ppm fast the relay runs without underrun or overrun after
  its warm-up, and its delay towards the PC (cross-correlation of the known signal it captured
  with what it played) stays within its buffer target; "no growth" to the millisecond is
  tested with simulated clocks (tests/test_dsp_relay.py), as PulseAudio's own buffering makes
  the real path's delay swing by a few ms;
- the meters are fed: the seat's sink receives `AudioLevels` at 10 Hz.

This machine is shared: when the audio server or the relay is starved of CPU (device xruns
reported by PortAudio), the drift figures of that run do not judge the relay; the run is
repeated once, then the test says plainly that the machine could not keep real time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relay_probe import PULSE_MISSING, RATE, private_pulse, pulse_missing
from support import wait_until

from dsp.limiter import db_to_gain

REPO = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "relay_probe.py"
PERIOD_S = 0.01
LATENCY_S = 0.05  # the drift buffers: PulseAudio wakes its clients in bursts of tens of ms
DEVICE_LATENCY_S = 0.05  # PortAudio buffer of each stream (PulseAudio wakes clients in bursts)
PEAK_LIMIT_DBFS = -8.0  # the default profile: 102 dB SPL limit, 110 dB SPL sensitivity
SKEWED_RATE = 48010  # +208 ppm


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private PulseAudio server with the four null sinks, and the env that reaches it."""
    if pulse_missing():
        pytest.skip(PULSE_MISSING)
    with private_pulse(tmp_path_factory.mktemp("relay")) as env:
        yield env


def probe(env: dict[str, str], *args: str) -> dict[str, Any]:
    run = subprocess.run(
        [
            sys.executable,
            str(PROBE),
            "--period",
            str(PERIOD_S),
            "--latency",
            str(LATENCY_S),
            "--device-latency",
            str(DEVICE_LATENCY_S),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def held_run(pulse: dict[str, str]) -> dict[str, Any]:
    """One run: hold from 3 s to 4 s, a +20 dB burst from the PC at 4.5 s, meters on."""
    return probe(
        pulse,
        "--seconds", "8",
        "--pc-rate", str(SKEWED_RATE),
        "--hold-at", "3",
        "--hold-for", "1",
        "--burst-at", "4.5",
        "--peak-limit", str(PEAK_LIMIT_DBFS),
        "--record",
        "--meters",
    )  # fmt: skip


def test_hold_closes_the_mic_gate_within_one_period_and_resume_reopens_it(
    held_run: dict[str, Any],
) -> None:
    period = held_run["period"]
    assert period == int(PERIOD_S * RATE)
    (closed, told, settled), (reopened, told_open, settled_open) = held_run["gate"]
    assert closed and not reopened
    assert 0 < settled - told <= period  # fully closed within one period of the hold
    assert 0 < settled_open - told_open <= period  # resume: back to the agent's own (unmuted)
    # Roughly a second held, in frames of the headset's stream.
    assert abs((told_open - told) / RATE - 1.0) < 0.1
    (span,) = held_run["gate_spans"]
    assert span["mic_rms"] > 0.01  # the agent kept talking into the mic ...
    assert span["gated_peak"] == 0.0  # ... and nothing of it went to the PC while held
    assert span["before_rms"] > 0.01 and span["after_rms"] > 0.01  # open before and after
    # The PC's side heard the silence: 100 ms windows of digital silence in its recording,
    # about as many as the hold lasted (the rest of the recording carries the voice).
    windows = held_run["far_end"]["pc_mic_rms_per_100ms"]
    silent = sum(1 for rms in windows if rms < 1e-4)
    assert silent >= 8, windows


def test_a_20_db_burst_from_the_pc_is_held_at_the_peak_limit(held_run: dict[str, Any]) -> None:
    cap = db_to_gain(PEAK_LIMIT_DBFS)
    assert held_run["ear_out_peak"] <= cap  # every sample the relay played
    assert held_run["ear_out_peak"] > 0.95 * cap  # held at the cap, not merely quiet
    assert held_run["limiter_min_gain"] < db_to_gain(-3.0)  # it did cut the burst
    # At the far end of the real path (the earpiece sink's monitor, 16-bit): one LSB at most.
    assert held_run["far_end"]["ear_peak"] <= cap + 1 / 32768


def test_the_seats_meters_receive_levels_from_the_relayed_audio(held_run: dict[str, Any]) -> None:
    audio_s = held_run["audio_s"]
    # 10 Hz AudioLevels for the seat; a level needs both channels' period (the earpiece's
    # stream may run a few blocks behind the mic's when the machine is busy).
    assert 0.8 * audio_s * 10 <= held_run["levels"] <= audio_s * 10 + 1
    assert held_run["meter_drops"] == 0


def clean_after_warm_up(run: dict[str, Any]) -> bool:
    """No device xrun, underrun or overrun after the warm-up: the audio kept real time."""
    warm = run["at_warm_up"]
    return all(run[key] == warm[key] for key in ("device_xruns", "underruns", "overruns"))


def judged_run(pulse: dict[str, str]) -> dict[str, Any]:
    for _ in range(2):
        result = probe(
            pulse,
            "--seconds", "20",
            "--pc-rate", str(SKEWED_RATE),
            "--record",
            "--warm-up", "4",
        )  # fmt: skip
        if clean_after_warm_up(result):
            return result
    pytest.skip(
        "this machine starved the audio twice (after the warm-up: device xruns "
        f"{result['device_xruns']}, underruns {result['underruns']}, overruns "
        f"{result['overruns']}): the drift run cannot be judged in real time now"
    )


def test_the_relay_runs_through_200_ppm_of_clock_skew_with_a_bounded_delay(
    pulse: dict[str, str],
) -> None:
    """What the real path can show here: 20 s with the gadget's playback 208 ppm fast, no
    underrun or overrun after the warm-up, and the relay's own delay towards the PC within its
    buffer target (plus two periods) all along. It cannot show "no growth" to a millisecond:
    through PulseAudio the delay swings by 1.5-4 ms and the learnt skew is noisy (-600 to +500
    ppm for a true -208 in clean runs), so that property is asserted with simulated clocks in
    tests/test_dsp_relay.py (within 0.5 ms over 28 s, and the skew learnt within 40 ppm)."""
    run = judged_run(pulse)
    delays = run["delay_tx"]  # one per second from 1 s; rx sees no skew here (see the probe)
    assert len(delays) >= 17, delays
    bound = run["target_ms"]["tx"] / 1000 + 2 * PERIOD_S
    assert all(0 < d < bound for d in delays[3:]), (bound, delays)
    median = sorted(delays[3:])[len(delays[3:]) // 2]
    assert all(abs(d - median) < 0.006 for d in delays[3:]), delays


def test_bad_relay_settings_and_a_missing_device_are_reported_not_raised() -> None:
    from drivers.audio.events import AudioStatus
    from drivers.audio.relay import AudioRelay, RelaySide

    side = RelaySide("in", "out")
    with pytest.raises(ValueError, match="latency: expected at least two periods"):
        AudioRelay(side, side, period_s=0.01, latency_s=0.015)
    with pytest.raises(ValueError, match="device names are needed"):
        AudioRelay(RelaySide("", "out"), side)
    seen: list[object] = []
    relay = AudioRelay(
        RelaySide("no such headset", "no such headset"), side, meters=False, retry_initial_s=5
    )
    relay.set_hold(True)  # before start: kept, applied when the streams open
    relay.start(seen.append)
    try:
        wait_until(lambda: seen, 10, "the relay's status")
    finally:
        relay.stop()
    (status,) = seen
    assert isinstance(status, AudioStatus) and not status.ok
    assert "input device 'no such headset' not found" in status.detail
    assert relay.gate_closed and not relay.running.is_set()
