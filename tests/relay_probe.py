"""Child process of the audio relay tests and `bench/bridge.py`: the relay in real time.

A PulseAudio server with four null sinks stands in for the two USB devices: `hs_mic` (the
agent's voice, which this probe plays; the relay captures its monitor), `hs_ear` (the relay's
earpiece output; this probe records its monitor), `pc_spk` (the customer's voice from the PC,
played here) and `pc_mic` (the relay's output to the PC, recorded here). The ALSA pulse plugin
(`.asoundrc` in this process's HOME, read when PortAudio initialises) gives PortAudio a real
ALSA path to each. Each side can be opened at another rate than the nominal 48 kHz, which the
relay does not know about: a clock off by `--pc-rate`/48000 - 1 (`--hs-rate` likewise). Only
the playback streams keep that rate in real time (PulseAudio paces a capture stream at its
source's rate), so the skew of each direction is its consumer's.

Prints one JSON object: the relay's counters, per-second delays of each direction (by
cross-correlation of what the relay captured and what it played, on time axes fitted to the
callbacks' clocks), the gate's changes, the limiter's output peaks, the end-to-end recordings'
figures, and the CPU time of the relay's process per audio second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from drivers.audio.relay import AudioRelay, RelaySide
from dsp.limiter import db_to_gain

RATE = 48000
SINKS = ("hs_mic", "hs_ear", "pc_spk", "pc_mic")


def asoundrc() -> str:
    lines = []
    for sink in SINKS:
        lines.append(f'pcm.{sink}_play {{ type pulse device "{sink}" }}')
        lines.append(f'pcm.{sink}_rec {{ type pulse device "{sink}.monitor" }}')
    return "\n".join(lines) + "\n"


def pulse_modules() -> list[str]:
    return [f"module-null-sink sink_name={s} rate={RATE} channels=1" for s in SINKS]


PULSE_MISSING = "needs pulseaudio, pulseaudio-utils and libasound2-plugins (make test installs them)"
PULSE_UP_S = 15.0


def pulse_missing() -> bool:
    """Whether this machine lacks what a private PulseAudio through ALSA needs."""
    plugin = list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so"))
    return shutil.which("pulseaudio") is None or shutil.which("pactl") is None or not plugin


@contextmanager
def private_pulse(home: Path, rc: str | None = None) -> Iterator[dict[str, str]]:
    """A private PulseAudio server with the four null sinks, run in `home` (HOME and
    XDG_RUNTIME_DIR), whose `.asoundrc` is `rc` (default `asoundrc()`); yields the env that
    reaches it, with PYTHONPATH for the project and tests/ (for child processes)."""
    here = Path(__file__).resolve().parent
    (home / ".asoundrc").write_text(asoundrc() if rc is None else rc)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}
    env["PYTHONPATH"] = os.pathsep.join([str(here.parent), str(here)])
    args = ["pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--use-pid-file=yes"]
    args += ["-L", "module-native-protocol-unix"]
    for module in pulse_modules():
        args += ["-L", module]
    subprocess.run(args, check=True, capture_output=True, timeout=30, env=env)
    try:
        deadline = time.monotonic() + PULSE_UP_S
        while subprocess.run(["pactl", "info"], capture_output=True, env=env).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the PulseAudio server did not start within {PULSE_UP_S} s")
            time.sleep(0.05)  # polling the server, not waiting for a timer
        yield env
    finally:
        subprocess.run(["pulseaudio", "-k"], capture_output=True, timeout=30, env=env)


def speech_band(seconds: float, seed: int, level: float = 0.1) -> np.ndarray:
    """Noise low-passed at 3.4 kHz (windowed sinc): a known signal with a sharp correlation."""
    rng = np.random.default_rng(seed)
    k = np.arange(-64, 65)
    taps = 2 * 3400 / RATE * np.sinc(2 * 3400 / RATE * k) * np.hanning(129)
    x = np.convolve(rng.standard_normal(int(seconds * RATE)), taps, "same")
    return np.asarray(level * x / np.abs(x).max(), dtype=np.float64)


def joined(blocks: list[tuple[int, float, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples, each block's first frame and its callback time."""
    samples = np.concatenate([b for _, _, b in blocks])
    firsts = np.array([f for f, _, _ in blocks], dtype=np.float64)
    times = np.array([t for _, t, _ in blocks])
    return samples, firsts, times


def time_axis(firsts: np.ndarray, times: np.ndarray, rate: float) -> tuple[float, float]:
    """Callback time of frame f as t0 + f / rate: the stream's own rate (the pulse server's
    clock is the system's), t0 the median offset of the callbacks after the first second
    (an output stream asks for a whole buffer at its start; the audio server wakes its clients
    in bursts)."""
    slope = 1.0 / rate
    later = firsts >= rate
    offsets = times[later] - firsts[later] * slope
    return float(np.median(offsets)), slope


def lag_in(x: np.ndarray, y: np.ndarray, max_lag: int) -> float:
    """m such that y[i] ~ x[i + m], 0 <= m <= max_lag, with a parabolic peak fit."""
    n = 1 << int(np.ceil(np.log2(x.shape[0] + y.shape[0])))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)[: max_lag + 1]
    m = int(np.argmax(corr))
    if 0 < m < max_lag:
        a, b, c = corr[m - 1], corr[m], corr[m + 1]
        return m + 0.5 * (a - c) / (a - 2 * b + c)
    return float(m)


def delays(
    src: list[tuple[int, float, Any]],
    dst: list[tuple[int, float, Any]],
    src_rate: float,
    dst_rate: float,
    skip_s: float,
) -> list[float]:
    """Delay (s) of `dst` behind `src` for each second of `dst` after `skip_s`: the frames
    matched by cross-correlation, each placed on its stream's fitted time axis."""
    x, xf, xt = joined(src)
    y, yf, yt = joined(dst)
    x0, x_slope = time_axis(xf, xt, src_rate)
    y0, y_slope = time_axis(yf, yt, dst_rate)
    max_lag = RATE // 10
    out = []
    j = int(skip_s * RATE)
    while j + RATE <= y.shape[0]:
        t = y0 + j * y_slope  # when dst frame j was played
        i0 = int((t - x0) / x_slope) - max_lag  # src frames up to 100 ms earlier
        if i0 < 0 or i0 + RATE + max_lag > x.shape[0]:
            j += RATE
            continue
        m = lag_in(x[i0 : i0 + RATE + max_lag], y[j : j + RATE], max_lag)
        out.append(t - (x0 + (i0 + m) * x_slope))
        j += RATE
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--pc-rate", type=int, default=RATE)
    parser.add_argument("--hs-rate", type=int, default=RATE)
    parser.add_argument("--period", type=float, default=0.005)
    parser.add_argument("--latency", type=float, default=0.011)
    parser.add_argument("--device-latency", type=float, default=0.02)
    parser.add_argument("--hold-at", type=float, default=0.0, help="0: no hold")
    parser.add_argument("--hold-for", type=float, default=1.0)
    parser.add_argument("--burst-at", type=float, default=0.0, help="0: no +20 dB burst")
    parser.add_argument("--peak-limit", type=float, default=-8.0, help="dBFS")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--meters", action="store_true")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--warm-up", type=float, default=3.0, help="counters snapshot (s)")
    args = parser.parse_args()
    import sounddevice as sd

    seconds = args.seconds
    voice = speech_band(seconds + 2, seed=1, level=0.3)
    customer = speech_band(seconds + 2, seed=2, level=0.1)  # peaks at -20 dBFS
    if args.burst_at:
        start = int(args.burst_at * RATE)
        customer[start : start + RATE // 2] *= db_to_gain(20.0)  # +20 dB: peaks at 0 dBFS
    levels: list[Any] = []
    relay = AudioRelay(
        RelaySide("hs_mic_rec", "hs_ear_play", open_rate=args.hs_rate),
        RelaySide("pc_spk_rec", "pc_mic_play", open_rate=args.pc_rate),
        samplerate=RATE,
        period_s=args.period,
        latency_s=args.latency,
        device_latency_s=args.device_latency,
        meters=args.meters,
        record=args.record,
    )
    relay.set_peak_limit_dbfs(args.peak_limit)
    played = {"hs_mic": voice, "pc_spk": customer}
    recorded: dict[str, list[np.ndarray]] = {"pc_mic": [], "hs_ear": []}
    positions = {"hs_mic": 0, "pc_spk": 0}

    def player(name: str) -> Any:
        def callback(outdata: Any, frames: int, t: Any, status: Any) -> None:
            p = positions[name]
            chunk = played[name][p : p + frames]
            outdata.fill(0)
            outdata[: chunk.shape[0], 0] = chunk
            positions[name] = p + frames

        return callback

    def recorder(name: str) -> Any:
        def callback(indata: Any, frames: int, t: Any, status: Any) -> None:
            recorded[name].append(indata[:, 0].copy())

        return callback

    def index(name: str) -> int:
        return next(d["index"] for d in sd.query_devices() if d["name"] == name)

    common = {"channels": 1, "samplerate": RATE, "dtype": "float32", "latency": 0.04}
    streams = [
        sd.OutputStream(device=index("hs_mic_play"), callback=player("hs_mic"), **common),
        sd.OutputStream(device=index("pc_spk_play"), callback=player("pc_spk"), **common),
        sd.InputStream(device=index("pc_mic_rec"), callback=recorder("pc_mic"), **common),
        sd.InputStream(device=index("hs_ear_rec"), callback=recorder("hs_ear"), **common),
    ]
    for s in streams:
        s.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    relay.start(levels.append)
    deadline = time.monotonic() + 10
    while not relay.running.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    events: list[tuple[float, str]] = []
    hold_done = not args.hold_at
    release_done = not args.hold_at
    warm: dict[str, Any] = {}
    while time.monotonic() - started < seconds:
        elapsed = time.monotonic() - started
        if not hold_done and elapsed >= args.hold_at:
            relay.set_hold(True)
            hold_done = True
        if hold_done and not release_done and elapsed >= args.hold_at + args.hold_for:
            relay.set_hold(False)  # resume: back to the agent's own mute (off)
            release_done = True
        time.sleep(0.005)
        if not warm and elapsed >= args.warm_up:
            st = relay.stats
            relay._update_stats()
            warm = {
                "underruns": dict(st.underruns),
                "overruns": dict(st.overruns),
                "device_xruns": dict(st.device_xruns),
            }
        if args.trace and relay._dsp is not None and int(elapsed * 4) != getattr(main, "_q", -1):
            main._q = int(elapsed * 4)  # type: ignore[attr-defined]
            b = relay._dsp.tx
            print(
                f"{elapsed:5.2f} fill {b.fill:7.1f} avg {b._fill_avg or 0:7.1f} step-1 {1e6 * (b.step - 1):7.0f} "
                f"int {b.ppm:7.0f} w {b.written} r {b.read_count} u {b.underruns} f {relay.stats.frames} pc {relay._pc_frames}",
                file=sys.stderr,
            )
    relay.stop()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for s in streams:
        s.abort()
        s.close()
    stats = relay.stats
    audio_s = stats.frames / RATE
    result: dict[str, Any] = {
        "audio_s": audio_s,
        "period": relay.period,
        "warm_up_s": args.warm_up,
        "at_warm_up": warm,
        "target_ms": {
            k: 1000 * b.target_s for k, b in (("tx", relay._dsp.tx), ("rx", relay._dsp.rx))
        }
        if relay._dsp
        else {},
        "underruns": stats.underruns,
        "overruns": stats.overruns,
        "device_xruns": stats.device_xruns,
        "ppm": stats.ppm,
        "meter_drops": stats.meter_drops,
        "limiter_min_gain": stats.limiter_min_gain,
        "device_latency_s": [float(s.latency) for s in relay.streams],
        "gate": [[c.closed, c.told_frame, c.settled_frame] for c in relay.gate_changes],
        "levels": len([x for x in levels if type(x).__name__ == "AudioLevels"]),
        "events": events,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
    }
    ear = np.concatenate(recorded["hs_ear"]) if recorded["hs_ear"] else np.zeros(1)
    pc_mic = np.concatenate(recorded["pc_mic"]) if recorded["pc_mic"] else np.zeros(1)
    result["far_end"] = {
        "ear_peak": float(np.abs(ear).max()),
        "pc_mic_rms_per_100ms": [
            float(np.sqrt(np.mean(pc_mic[i : i + RATE // 10] ** 2)))
            for i in range(0, pc_mic.shape[0] - RATE // 10, RATE // 10)
        ],
    }
    if args.record:
        rec = relay.recorded
        # PulseAudio delivers a capture stream opened at another rate than its source's at
        # the source's rate in real time (the relay learns no skew on them, and the delays
        # drift by the nominal difference if placed at the opened rate): the clock skew is
        # simulated by the playback streams, whose time axes are at their opened rate.
        result["delay_tx"] = delays(rec["mic_in"], rec["pc_out"], RATE, args.pc_rate, 1.0)
        result["delay_rx"] = delays(rec["pc_in"], rec["ear_out"], RATE, args.hs_rate, 1.0)
        result["ear_out_peak"] = float(np.abs(joined(rec["ear_out"])[0]).max())
        mic = joined(rec["mic_in"])[0]
        gated = joined(rec["mic_gated"])[0]
        spans = []
        changes = relay.gate_changes
        for k, change in enumerate(changes):
            if change.closed and change.settled_frame is not None:
                end = changes[k + 1].told_frame if k + 1 < len(changes) else gated.shape[0]
                spans.append(
                    {
                        # what the mic carried and what the gate let through, told -> reopened
                        "mic_rms": float(np.sqrt(np.mean(mic[change.settled_frame : end] ** 2))),
                        "gated_peak": float(np.abs(gated[change.settled_frame : end]).max()),
                        "before_rms": float(
                            np.sqrt(
                                np.mean(
                                    gated[change.told_frame - RATE // 2 : change.told_frame] ** 2
                                )
                            )
                        ),
                        "after_rms": float(
                            np.sqrt(np.mean(gated[end + RATE // 100 : end + RATE // 2] ** 2))
                        ),
                    }
                )
        result["gate_spans"] = spans
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
