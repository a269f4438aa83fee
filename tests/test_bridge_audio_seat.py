"""A bridged seat with its audio relay, built from the config by the real wiring: the PC's
softphone puts the call on hold (its Hold LED report through the gadget's HID node) and the
agent's microphone stops reaching the PC within one audio period; resume lets it through again.

The parts: `build_devices` builds the `AudioRelay` from `[bridge] audio_headset`/`audio_pc`,
`build_seat` wires it, the seat core turns the PC's Hold LED into the call's hold and mute by
hold_policy, and the relay runs in real time on real ALSA devices (ALSA pulse plugin PCMs on a
private PulseAudio's null sinks, as in tests/test_audio_relay.py; each card an `asym` PCM, one
name for its capture and playback as on real hardware). The PC's end of /dev/hidgN is a socket
pair as in tests/test_bridge_seat.py. PortAudio reads the `.asoundrc` once per process, so the
seat runs in a child process (this file run as a script) whose HOME holds it; the child prints
one JSON object, the test judges it.

The timing is judged on the relay's frame-accurate gate record (frames of the headset's
stream), not on wall time: this machine is shared and its real time is not reliable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from relay_probe import PULSE_MISSING, private_pulse, pulse_missing

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
RATE = 48000
PERIOD_S = 0.01  # PulseAudio wakes its clients in bursts: 10 ms periods, as the relay test
SINKS = ("hs_mic", "hs_ear", "pc_spk", "pc_mic")
HELD_S = 1.0  # audio the hold lasts, in frames of the headset stream
WAIT = 15.0


def asoundrc() -> str:
    lines = []
    for sink in SINKS:
        lines.append(f'pcm.{sink}_play {{ type pulse device "{sink}" }}')
        lines.append(f'pcm.{sink}_rec {{ type pulse device "{sink}.monitor" }}')
    # One name per card for its capture and its playback, as a USB card has.
    lines.append('pcm.headset { type asym capture.pcm "hs_mic_rec" playback.pcm "hs_ear_play" }')
    lines.append('pcm.gadget { type asym capture.pcm "pc_spk_rec" playback.pcm "pc_mic_play" }')
    return "\n".join(lines) + "\n"


def test_the_pcs_hold_closes_the_relayed_mic_within_one_period_and_resume_reopens_it(
    tmp_path: Path,
) -> None:
    if pulse_missing():
        pytest.skip(PULSE_MISSING)
    with private_pulse(tmp_path, asoundrc()) as env:
        for attempt in range(2):
            state_dir = tmp_path / f"state{attempt}"
            state_dir.mkdir()
            run = subprocess.run(
                [sys.executable, __file__, str(state_dir)],
                capture_output=True,
                text=True,
                timeout=90,
                env=env,
            )
            assert run.returncode == 0, run.stderr[-3000:]
            seen: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
            # A run in which the machine starved the audio while held (an underrun, an overrun
            # that dropped buffered audio, a device xrun) cannot show the far end's silence
            # whole: it is run once more.
            if not seen["troubles_while_held"]:
                break

    # The wiring built the relay from [bridge] and set the profile's peak limit:
    # 102 dB SPL at the ear, 110 dB SPL for 0 dBFS (the default profile) -> -8 dBFS.
    assert seen["audio"] == "AudioRelay" and seen["peak_limit_dbfs"] == -8.0
    # The seat's state, as published: held, muted by hold_policy; then active, mic on.
    assert seen["held_state"] == {"call": "held", "muted": True, "by": "hold_policy"}
    assert seen["resumed_state"] == {"call": "active", "muted": False, "by": None}
    # The gate: closed once on hold and opened once on resume, each complete within one period
    # of the seat telling the relay (frames of the headset's stream).
    period = seen["period"]
    assert period == int(PERIOD_S * RATE)
    (closed, told, settled), (reopened, told_open, settled_open) = seen["gate"]
    assert closed and not reopened
    assert 0 < settled - told <= period
    assert 0 < settled_open - told_open <= period
    assert told_open - told >= HELD_S * RATE
    # The agent talked all along; nothing of it went on while held, and it did before and after.
    assert seen["mic_rms_held"] > 0.01
    assert seen["gated_peak_held"] == 0.0
    assert seen["gated_rms_before"] > 0.01 and seen["gated_rms_after"] > 0.01
    # What the relay played to the PC (the gadget's playback): digital silence for about as
    # long as the hold, in 100 ms windows (its own frames, behind the drift buffer).
    windows = seen["pc_out_rms_per_100ms"]
    if seen["troubles_while_held"]:
        pytest.skip(
            f"this machine starved the audio during the hold twice ({seen['troubles_while_held']}"
            " underruns, overruns or device xruns): the PC's side of the hold cannot be judged now"
        )
    assert sum(1 for rms in windows if rms == 0.0) >= 8, windows
    assert sum(1 for rms in windows if rms > 0.01) >= 5, windows


# --- the child: the seat with its relay, in a process whose HOME holds the .asoundrc ----------


def child(state_dir: Path) -> dict[str, Any]:
    import numpy as np
    import sounddevice as sd
    from test_bridge_seat import SEAT, SITE, FakeGadget, PcNodes, running

    from drivers.audio.relay import AudioRelay
    from drivers.gadget.bridge import GadgetBridge
    from edge.core.clock import Clock
    from edge.core.snapshot import snapshot
    from edge.shell.config import (
        AudioSection,
        BridgeSection,
        CallSection,
        HeadsetSection,
        RadarSection,
        SeatConfig,
        SeatSection,
        StorageSection,
        load_profile,
    )
    from edge.shell.wiring import build_devices, build_seat

    config = SeatConfig(
        seat=SeatSection(site=SITE, id=SEAT),
        headset=HeadsetSection(device="none"),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
        call=CallSection(sources=["bridge"]),
        bridge=BridgeSection(
            hid_device="/dev/hidg0",
            audio="uac2",
            audio_headset="headset",
            audio_pc="gadget",
            audio_period=PERIOD_S,
            audio_latency=0.05,
            audio_device_latency=0.05,
        ),
        storage=StorageSection(state_dir=str(state_dir)),
    )
    devices = build_devices(config)
    relay = devices.audio
    assert isinstance(relay, AudioRelay), devices
    relay.record = True  # its blocks, frame by frame, for the judgement
    gadget = FakeGadget(state_dir)
    nodes = PcNodes()
    devices.host = GadgetBridge(
        config.bridge.hid_device,
        root=gadget.root,
        udc_class=gadget.udc_class,
        opener=nodes.open,
        poll=0.05,
    )
    runtime = build_seat(config, load_profile("default"), devices=devices, clock=Clock())

    # The agent's voice, all along: a 440 Hz tone played into the headset's microphone.
    phase = [0]

    def voice(outdata: Any, frames: int, t: Any, status: Any) -> None:
        n = np.arange(phase[0], phase[0] + frames)
        outdata[:, 0] = 0.3 * np.sin(2 * np.pi * 440 * n / RATE)
        phase[0] += frames

    player = sd.OutputStream(
        device="hs_mic_play", channels=1, samplerate=RATE, dtype="float32", callback=voice
    )
    player.start()

    def until(what: str, predicate: Any) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.01)

    def seen_state() -> dict[str, Any]:
        snap = snapshot(runtime.state, runtime.clock.now(), SITE, SEAT, runtime._storage())
        return {
            "call": snap["call"]["state"],
            "muted": snap["mute"]["muted"],
            "by": snap["mute"]["by"],
        }

    def troubles() -> int:
        """The relay's buffer underruns and overruns and PortAudio's xrun flags so far."""
        relay._update_stats()
        st = relay.stats
        return (
            sum(st.underruns.values()) + sum(st.overruns.values()) + sum(st.device_xruns.values())
        )

    def audio_for(seconds: float) -> None:
        start = relay.stats.frames
        until(f"{seconds} s of audio", lambda: relay.stats.frames >= start + seconds * RATE)

    try:
        with running(runtime):
            until("the relay's streams", relay.running.is_set)
            softphone = nodes.ends.get(timeout=WAIT)
            softphone.send(bytes.fromhex("0201"))  # the softphone's call: Off-Hook
            until("an active call", lambda: runtime.state.facts.call.state == "active")
            audio_for(1.0)
            softphone.send(bytes.fromhex("0209"))  # Off-Hook | Hold
            until("the hold", lambda: runtime.state.facts.call.state == "held")
            until("the relay's hold", lambda: relay.held)  # set_hold(True), the seat's step
            held_state = seen_state()
            troubles_before = troubles()
            audio_for(HELD_S)
            softphone.send(bytes.fromhex("0201"))  # resumed
            until("the resume", lambda: runtime.state.facts.call.state == "active")
            until("the relay's resume", lambda: not relay.held)
            resumed_state = seen_state()
            troubles_held = troubles() - troubles_before
            until("the gate reopened", lambda: relay.gate_changes[-1].settled_frame is not None)
            audio_for(1.0)
            gate = [[c.closed, c.told_frame, c.settled_frame] for c in relay.gate_changes]
            recorded = {k: list(v) for k, v in relay.recorded.items()}
    finally:
        player.abort()
        player.close()

    def joined(name: str) -> Any:
        return np.concatenate([block for _, _, block in recorded[name]]).astype(np.float64)

    def rms(x: Any) -> float:
        return float(np.sqrt(np.mean(x**2))) if x.shape[0] else 0.0

    mic, gated, pc_out = joined("mic_in"), joined("mic_gated"), joined("pc_out")
    first = recorded["mic_in"][0][0]  # the headset stream's frame of the first recorded block
    settled, told_open = gate[0][2] - first, gate[1][1] - first
    told = gate[0][1] - first
    step = RATE // 10
    return {
        "audio": type(runtime.devices.audio).__name__,
        "peak_limit_dbfs": relay.peak_limit_dbfs,
        "held_state": held_state,
        "resumed_state": resumed_state,
        "period": relay.period,
        "gate": gate,
        "mic_rms_held": rms(mic[settled:told_open]),
        "gated_peak_held": float(np.abs(gated[settled:told_open]).max()),
        "gated_rms_before": rms(gated[max(0, told - RATE // 2) : told]),
        "gated_rms_after": rms(gated[gate[1][2] - first :][: RATE // 2]),
        "troubles_while_held": troubles_held,
        "pc_out_rms_per_100ms": [
            rms(pc_out[i : i + step]) for i in range(0, pc_out.shape[0] - step, step)
        ],
    }


if __name__ == "__main__":
    print(json.dumps(child(Path(sys.argv[1]))))
