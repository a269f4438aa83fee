"""The bridge's audio relay: added delay per direction, CPU per audio second, xruns over a run.

1. CPU (no devices, deterministic): the relay's sample path for 60 s of both directions at
   48 kHz in 5 ms blocks (gate, two drift buffers resampling at +-208 ppm, gain cap, peak
   limiter) without the seat's meters, with them at 48 kHz (before) and decimated to 16 kHz
   as the relay meters now (`RelayMeters`), and the meters alone, next to today's audio
   pipeline (both channels' meters at 16 kHz in 20 ms blocks, as bench/dsp.py) in the same
   run; best of 5.
2. Added delay (a real JACK server, dummy driver, 5 ms periods; tests/jack_relay.py): what
   each far end hears, sample-exact on the server's frame clock, with the relay between the
   ports minus a plain wire in its place, per second of the run; the relay's buffer underruns
   and overruns, the server's xruns, and the relay process's CPU. Default 30 s; `--long` runs
   10 minutes (the issue's xrun run).
3. Clock skew (a private PulseAudio with null sinks through the ALSA pulse plugin, as
   tests/test_audio_relay.py; the gadget side opened at 48010 Hz = +208 ppm): the learnt clock
   difference, underruns/overruns/device xruns, and the relay's own delay per direction
   estimated from callback times (PulseAudio needs 10 ms periods and 50 ms buffers).

    .venv/bin/python bench/bridge.py [--long] [--seconds N] [--skew-seconds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from jack_relay import JackServer, JackUnavailable, after_warm_up, measure  # noqa: E402
from machine import cpu_model  # noqa: E402  (bench/machine.py)
from relay_probe import PULSE_MISSING, private_pulse, pulse_missing, speech_band  # noqa: E402

from drivers.audio.levels import LevelsPipeline  # noqa: E402
from drivers.audio.relay import RelayMeters  # noqa: E402
from dsp.drift import DriftBuffer  # noqa: E402
from dsp.gate import MicGate  # noqa: E402
from dsp.limiter import GainCap, PeakLimiter  # noqa: E402
from dsp.meter import to_int16  # noqa: E402

RATE = 48000
BLOCK = 240
SECONDS = 60
RUNS = 5


def relay_path(tx: np.ndarray, rx: np.ndarray, meters: str) -> None:
    """Both directions as the relay's four callbacks do it, the PC clock 208 ppm fast, and the
    meter worker's meters: "relay" as the relay meters now (each channel decimated to 16 kHz
    once per meter period, `RelayMeters`), "48k" as it did before (every 5 ms block metered at
    48 kHz), "" none."""
    gate, cap, limiter = MicGate(RATE), GainCap(RATE), PeakLimiter(RATE)
    limiter.set_ceiling_dbfs(-8.0)
    cap.set_cap_db(-6.0)
    to_pc, to_ear = DriftBuffer(RATE, 0.011), DriftBuffer(RATE, 0.011)
    relay_meters = RelayMeters(RATE, 0.1) if meters == "relay" else None
    pipeline = LevelsPipeline(RATE, 0.1) if meters == "48k" else None
    pc_period = BLOCK / (RATE * (1 + 208e-6))
    pc_next = 0.0
    for k, start in enumerate(range(0, tx.size - BLOCK + 1, BLOCK)):
        now = k * BLOCK / RATE
        mic = tx[start : start + BLOCK]
        sent = gate.process(mic)
        to_pc.write(sent, now)
        while pc_next <= now:  # the gadget's callbacks on its own clock
            to_ear.write(rx[start : start + BLOCK], pc_next)
            to_pc.read(BLOCK, pc_next)
            pc_next += pc_period
        ear = limiter.process(cap.process(to_ear.read(BLOCK, now)))
        if relay_meters is not None:
            relay_meters.feed("tx", sent)
            relay_meters.feed("rx", ear)
        if pipeline is not None:
            pipeline.feed("tx", to_int16(sent))
            pipeline.feed("rx", to_int16(ear))


def todays_pipeline(tx: np.ndarray, rx: np.ndarray) -> None:
    """bench/dsp.py's measured path: both channels' meters at 16 kHz in 20 ms blocks."""
    pipeline = LevelsPipeline(16000, 0.1)
    for start in range(0, tx.size, 320):
        pipeline.feed("tx", tx[start : start + 320])
        pipeline.feed("rx", rx[start : start + 320])


def best_ms_per_audio_s(func: Any, *args: Any) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.process_time()
        func(*args)
        best = min(best, time.process_time() - start)
    return 1000.0 * best / SECONDS


def cpu_figures() -> None:
    tx = speech_band(SECONDS, seed=1, level=0.3)
    rx = speech_band(SECONDS, seed=2, level=0.1)
    tx16 = to_int16(tx[::3])
    rx16 = to_int16(rx[::3])

    def meters_alone(x: np.ndarray, y: np.ndarray, kind: str) -> None:
        """The meter worker's share only: the relay's 5 ms blocks straight into the meters
        (steadier than a difference of two runs of the whole path)."""
        relay_meters = RelayMeters(RATE, 0.1) if kind == "relay" else None
        pipeline = LevelsPipeline(RATE, 0.1)  # "48k": every block at 48 kHz, as before
        for start in range(0, x.size - BLOCK + 1, BLOCK):
            for channel, block in (
                ("tx", x[start : start + BLOCK]),
                ("rx", y[start : start + BLOCK]),
            ):
                if relay_meters is not None:
                    relay_meters.feed(channel, block)
                else:
                    pipeline.feed(channel, to_int16(block))

    relay_path(tx[: RATE * 2], rx[: RATE * 2], "relay")  # warm up imports and caches
    relay_path(tx[: RATE * 2], rx[: RATE * 2], "48k")
    todays_pipeline(tx16[:32000], rx16[:32000])
    bare = best_ms_per_audio_s(relay_path, tx, rx, "")
    old = best_ms_per_audio_s(relay_path, tx, rx, "48k")
    full = best_ms_per_audio_s(relay_path, tx, rx, "relay")
    old_meters = best_ms_per_audio_s(meters_alone, tx, rx, "48k")
    new_meters = best_ms_per_audio_s(meters_alone, tx, rx, "relay")
    today = best_ms_per_audio_s(todays_pipeline, tx16, rx16)
    print(f"CPU, {SECONDS} s of audio, both directions, best of {RUNS}:")
    print(f"  relay sample path alone (48 kHz, 5 ms blocks):  {bare:7.3f} ms CPU per audio second")
    print(f"  relay + the meters at 48 kHz (before):          {old:7.3f} ms CPU per audio second")
    print(f"  relay + the meters decimated to 16 kHz (now):   {full:7.3f} ms CPU per audio second")
    print(
        f"  the relay's meters alone, 48 kHz (before):      {old_meters:7.3f} ms CPU per audio second"
    )
    print(
        f"  the relay's meters alone, decimated (now):      {new_meters:7.3f} ms CPU per audio second"
    )
    print(f"  today's pipeline (meters, 16 kHz, 20 ms):       {today:7.3f} ms CPU per audio second")
    print(f"  ratio the relay's meters / today's pipeline: at 48 kHz {old_meters / today:.2f}, "
          f"decimated {new_meters / today:.2f}; relay + meters / today's: at 48 kHz "
          f"{old / today:.2f}, decimated {full / today:.2f}")  # fmt: skip


def realtime(seconds: float, record: bool) -> dict[str, Any]:
    if pulse_missing():
        raise SystemExit(PULSE_MISSING)
    with (
        tempfile.TemporaryDirectory(prefix="seatbox-bridge-bench-") as home,
        private_pulse(Path(home)) as env,
    ):
        probe = [sys.executable, str(REPO / "tests" / "relay_probe.py")]
        probe += ["--seconds", str(seconds), "--pc-rate", "48010", "--warm-up", "3"]
        probe += ["--period", "0.01", "--latency", "0.03", "--device-latency", "0.05"]
        probe.append("--meters")
        if record:
            probe.append("--record")
        run = subprocess.run(probe, capture_output=True, text=True, timeout=seconds + 120, env=env)
    if run.returncode:
        raise SystemExit(run.stderr[-2000:])
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


def jack_figures(seconds: float) -> None:
    print(
        f"\nadded delay, {seconds:.0f} s ("
        + ("10-minute run" if seconds >= 600 else "short run; --long for 10 minutes")
        + "), a real JACK server (dummy driver, 48 kHz, 5 ms periods), the seat's defaults"
        " (5 ms periods, 11 ms drift buffers, meters on); what each far end hears, minus a wire:"
    )
    try:
        with JackServer() as server:
            wire, _ = measure(server, 4, wire=True)
            ends, relay = measure(server, seconds)
    except JackUnavailable as exc:
        print(f"  skipped: {exc}")
        return
    assert relay is not None
    for d, name in (("tx", "tx (mic -> PC)"), ("rx", "rx (PC -> ear)")):
        base = float(np.median(wire[d]))
        added = (np.array(ends[d][1:]) - base) * 1000
        if added.size == 0:
            print(f"  {name}: no delay measured: {ends}")
            continue
        print(
            f"  {name}: added median {np.median(added):.2f} ms (min {added.min():.2f}, max "
            f"{added.max():.2f}, last-first {added[-1] - added[0]:+.2f}) over {added.size} s; "
            f"wire {1000 * base:.1f} ms; relay buffer underruns "
            f"{after_warm_up(relay, 'underruns')[d]}, overruns "
            f"{after_warm_up(relay, 'overruns')[d]} after its {2:.0f} s warm-up; buffer target "
            f"{relay['target_ms'].get(d, 0):.0f} ms"
        )
    print(
        f"  server xruns seen by the far ends: {ends['xruns']}; PortAudio xrun flags after "
        f"warm-up: {after_warm_up(relay, 'device_xruns')}; relay process CPU "
        f"{relay['cpu_ms_per_audio_s']:.1f} ms per audio second after its warm-up (PortAudio's "
        f"four streams, the sample path, the meters)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="the 10-minute JACK run")
    parser.add_argument("--seconds", type=float, default=0.0, help="JACK run length")
    parser.add_argument("--skew-seconds", type=float, default=30.0, help="PulseAudio run length")
    args = parser.parse_args()
    seconds = args.seconds or (600.0 if args.long else 30.0)
    print(f"machine: {platform.uname()}")
    print(f"cpu: {cpu_model()}; python {platform.python_version()}; numpy {np.__version__}")
    print(f"load average before: {os.getloadavg()}")
    cpu_figures()
    jack_figures(seconds)
    seconds = args.skew_seconds
    record = seconds <= 60
    print(f"\nclock skew, {seconds:.0f} s,"
          " PulseAudio null sinks via the ALSA pulse plugin, gadget side +208 ppm,"
          " 10 ms periods, drift buffers 30 ms, PortAudio buffers 50 ms:")  # fmt: skip
    r = realtime(seconds, record)
    print(f"  audio relayed: {r['audio_s']:.1f} s; load average after: {os.getloadavg()}")
    warm = r["at_warm_up"]
    for d in ("tx", "rx"):
        name = "tx (mic -> PC)" if d == "tx" else "rx (PC -> ear)"
        line = (
            f"  {name}: underruns {r['underruns'][d]} (after warm-up "
            f"{r['underruns'][d] - warm['underruns'].get(d, 0)}), overruns {r['overruns'][d]} "
            f"(after warm-up {r['overruns'][d] - warm['overruns'].get(d, 0)}), learnt "
            f"{r['ppm'][d]:+.0f} ppm, buffer target {r['target_ms'][d]:.0f} ms"
        )
        if record and r[f"delay_{d}"]:
            delays = np.array(r[f"delay_{d}"][2:]) * 1000
            line += (
                f"; relay's own delay median {np.median(delays):.1f} ms "
                f"(min {delays.min():.1f}, max {delays.max():.1f}, last-first "
                f"{delays[-1] - delays[0]:+.1f})"
            )
        print(line)
    print(f"  device xruns (PortAudio flags): {r['device_xruns']} (after warm-up: "
          f"{ {k: v - warm['device_xruns'].get(k, 0) for k, v in r['device_xruns'].items()} })")  # fmt: skip
    print(f"  PortAudio buffers of the four streams: {[round(x * 1000) for x in r['device_latency_s']]} ms"
          " (mic in, ear out, PC speaker in, PC mic out); one direction adds its input's and its"
          " output's buffer to the relay's own delay")  # fmt: skip
    print(f"  process CPU (relay + the probe's own four streams): "
          f"{1000 * r['cpu_s'] / max(r['audio_s'], 1e-9):.1f} ms per audio second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
