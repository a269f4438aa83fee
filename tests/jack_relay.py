"""The audio relay's added delay, sample-exact, through a real JACK server (tests and bench).

PulseAudio (tests/relay_probe.py) wakes its clients tens of milliseconds at a time, so through
it the relay needs 50 ms buffers and its delay can only be estimated from callback times. A
JACK server with its dummy driver is a real-time audio path with one clock and no buffering of
its own beyond one period: every client's ports are read and written once per cycle, and the
cycle's frame time numbers every sample. So:

- `ends` (a child process): two JACK clients stand in for the two USB devices. `hs` plays
  the agent's voice on its `mic` port and records its `ear` port; `pc` plays the customer's
  voice on `speaker` and records `mic`. Each recorded sample is stored at the frame time it
  was received, each played one at the frame time it was sent: the lag of a recording behind
  its signal is the delay of that direction in frames, exactly.
- The relay (`relay` child) opens PortAudio's JACK host API devices `hs` and `pc`, whose
  streams PortAudio connects to those clients' ports, as it opens the headset and the
  gadget's ALSA devices on a box.
- `--wire` instead connects `hs:mic` to `pc:mic` and `pc:speaker` to `hs:ear` directly: the
  delay the graph itself gives each direction (0 and one period: `hs` runs before `pc`). What
  the relay adds is its run's delay minus the wire's.

JACK has one clock: clock skew is tested through PulseAudio (tests/test_audio_relay.py) and
with simulated clocks (tests/test_dsp_relay.py).

    python tests/jack_relay.py ends --server NAME --seconds S [--wire]
    python tests/jack_relay.py relay --seconds S [--period P --latency L --meters]
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
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from relay_probe import lag_in, speech_band

RATE = 48000
PERIOD_FRAMES = 240  # the server's period: 5 ms, the relay's default period
HERE = Path(__file__).resolve().parent
REPO = HERE.parent


class JackUnavailable(RuntimeError):
    pass


class JackServer:
    """`jackd` with the dummy driver under a private server name, and the env reaching it."""

    def __init__(self, period_frames: int = PERIOD_FRAMES, rate: int = RATE) -> None:
        self.name = f"seatbox-{uuid.uuid4().hex[:8]}"
        self.period_frames, self.rate = period_frames, rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}
        self.env["JACK_NO_AUDIO_RESERVATION"] = "1"
        self.env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE)])

    def __enter__(self) -> JackServer:
        if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
            raise JackUnavailable("needs jackd2 (make test installs it)")
        try:
            import jack  # noqa: F401  (JACK-Client, the test extra)
        except (ImportError, OSError) as exc:
            raise JackUnavailable(f"needs JACK-Client and libjack: {exc}") from exc
        args = ["jackd", "-n", self.name, "-d", "dummy"]
        args += ["-r", str(self.rate), "-p", str(self.period_frames)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env
        )
        deadline = time.monotonic() + 15
        while True:
            lsp = subprocess.run(["jack_lsp"], capture_output=True, env=self.env, timeout=10)
            if lsp.returncode == 0 and b"system:" in lsp.stdout:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise JackUnavailable("jackd did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None


def lags(x: np.ndarray, y: np.ndarray, skip_s: float, max_lag_s: float = 0.1) -> list[float]:
    """Delay (s) of y behind x, sample-aligned arrays, for each whole second of y after
    `skip_s` that is not silent throughout (before the relay started): the lag of the
    cross-correlation peak (parabolic fit) within 0..max_lag_s."""
    max_lag = int(max_lag_s * RATE)
    out = []
    j = int(skip_s * RATE)
    while j + RATE <= y.shape[0]:
        heard = np.abs(y[j : j + RATE]).max() > 1e-4
        if j >= max_lag and heard:
            m = float(lag_in(x[j - max_lag : j + RATE], y[j : j + RATE], max_lag))
            out.append(float(max_lag - m) / RATE)
        j += RATE
    return out


def ends(server: str, seconds: float, wire: bool) -> int:
    """The two devices' far ends, until a line arrives on stdin; then the delays as JSON."""
    import jack

    total = int((seconds + 5) * RATE)
    voice = speech_band(total / RATE, seed=1, level=0.3).astype(np.float32)
    customer = speech_band(total / RATE, seed=2, level=0.1).astype(np.float32)
    to_pc = np.zeros(total, np.float32)  # what the PC heard from its microphone
    to_ear = np.zeros(total, np.float32)  # what the agent heard
    hs = jack.Client("hs", servername=server, no_start_server=True)
    pc = jack.Client("pc", servername=server, no_start_server=True)
    hs_mic, hs_ear = hs.outports.register("mic"), hs.inports.register("ear")
    pc_spk, pc_mic = pc.outports.register("speaker"), pc.inports.register("mic")
    start: list[int] = []
    xruns = [0]

    def endpoint(client: Any, out: Any, signal: np.ndarray, inp: Any, record: np.ndarray) -> Any:
        def process(frames: int) -> None:
            now = client.last_frame_time
            if not start:
                start.append(now)
            i = (now - start[0]) % (1 << 32)
            if i + frames <= signal.shape[0]:
                out.get_array()[:] = signal[i : i + frames]
                record[i : i + frames] = inp.get_array()
            else:
                out.get_array().fill(0)

        return process

    hs.set_process_callback(endpoint(hs, hs_mic, voice, hs_ear, to_ear))
    pc.set_process_callback(endpoint(pc, pc_spk, customer, pc_mic, to_pc))
    hs.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    hs.activate()
    pc.activate()
    if wire:
        hs.connect(hs_mic, pc_mic)
        pc.connect(pc_spk, hs_ear)
    print("ready", flush=True)
    sys.stdin.readline()
    hs.deactivate()
    pc.deactivate()
    heard = int(np.flatnonzero(to_pc)[-1]) + 1 if to_pc.any() else 0
    span = min(heard, total)
    result = {
        "tx": lags(voice, to_pc[:span], skip_s=1.0),
        "rx": lags(customer, to_ear[:span], skip_s=1.0),
        "xruns": xruns[0],
        "ear_peak": float(np.abs(to_ear).max()),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


def relay(args: argparse.Namespace) -> int:
    """The relay between the `hs` and `pc` devices for `seconds`; its counters as JSON."""
    sys.path.insert(0, str(REPO))
    from drivers.audio.relay import AudioRelay, RelaySide

    levels: list[Any] = []
    relay = AudioRelay(
        RelaySide("hs", "hs"),
        RelaySide("pc", "pc"),
        samplerate=RATE,
        period_s=args.period,
        latency_s=args.latency,
        meters=args.meters,
    )
    relay.start(levels.append)
    deadline = time.monotonic() + 15
    while not relay.running.is_set():
        if time.monotonic() > deadline:
            print(json.dumps({"error": [str(x) for x in levels]}))
            return 1
        time.sleep(0.01)
    started = time.monotonic()
    warm: dict[str, Any] = {}
    cpu0, frames0 = resource.getrusage(resource.RUSAGE_SELF), 0
    while (elapsed := time.monotonic() - started) < args.seconds:
        time.sleep(0.05)
        if not warm and elapsed >= args.warm_up:
            relay._update_stats()
            st = relay.stats
            warm = {
                "underruns": dict(st.underruns),
                "overruns": dict(st.overruns),
                "device_xruns": dict(st.device_xruns),
            }
            # CPU from here on: the start (imports, opening the streams) is not per second.
            cpu0, frames0 = resource.getrusage(resource.RUSAGE_SELF), st.frames
    cpu1, frames1 = resource.getrusage(resource.RUSAGE_SELF), relay.stats.frames
    relay.stop()
    st = relay.stats
    result = {
        "audio_s": st.frames / RATE,
        "at_warm_up": warm,
        "underruns": st.underruns,
        "overruns": st.overruns,
        "device_xruns": st.device_xruns,
        "meter_drops": st.meter_drops,
        "levels": sum(1 for x in levels if type(x).__name__ == "AudioLevels"),
        "target_ms": {
            name: round(1000 * buf.target_s, 2) for name, buf in (("tx", dsp.tx), ("rx", dsp.rx))
        }
        if (dsp := relay._dsp) is not None
        else {},
        # CPU per audio second after the warm-up: the streams, sample path and meters.
        "cpu_ms_per_audio_s": 1000
        * ((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime))
        / max((frames1 - frames0) / RATE, 1e-9),
    }
    json.dump(result, sys.stdout)
    print()
    return 0


def after_warm_up(run: dict[str, Any], key: str) -> dict[str, int]:
    warm = run["at_warm_up"].get(key, {})
    return {k: v - warm.get(k, 0) for k, v in run[key].items()}


def measure(
    server: JackServer,
    seconds: float,
    wire: bool = False,
    period_s: float = 0.005,
    latency_s: float = 0.011,
    meters: bool = True,
    warm_up_s: float = 2.0,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One run: the far ends, and the relay between them (or the wire). Returns the ends'
    delays and the relay's counters (None for the wire)."""
    here = str(Path(__file__).resolve())
    child = [sys.executable, here, "ends", "--server", server.name, "--seconds", str(seconds)]
    if wire:
        child.append("--wire")
    ends_proc = subprocess.Popen(
        child,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server.env,
    )
    assert ends_proc.stdin is not None and ends_proc.stdout is not None
    try:
        ready = ends_proc.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the JACK ends did not start: {ready}{ends_proc.stderr.read()}")
        relay_result = None
        if wire:
            time.sleep(seconds)  # the wire runs in the server: nothing to wait for but audio
        else:
            run = subprocess.run(
                [sys.executable, here, "relay", "--seconds", str(seconds)]
                + ["--period", str(period_s), "--latency", str(latency_s)]
                + ["--warm-up", str(warm_up_s)]
                + (["--meters"] if meters else []),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                env=server.env,
            )
            if run.returncode:
                raise RuntimeError(f"relay child failed: {run.stdout[-2000:]}{run.stderr[-3000:]}")
            relay_result = json.loads(run.stdout.splitlines()[-1])
        out, err = ends_proc.communicate("stop\n", timeout=120)
    finally:
        if ends_proc.poll() is None:
            ends_proc.kill()
            ends_proc.wait()
    if ends_proc.returncode:
        raise RuntimeError(f"the JACK ends failed: {err[-3000:]}")
    ends_result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return ends_result, relay_result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("ends", "relay"))
    parser.add_argument("--server", default=os.environ.get("JACK_DEFAULT_SERVER", "default"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--wire", action="store_true")
    parser.add_argument("--period", type=float, default=0.005)
    parser.add_argument("--latency", type=float, default=0.011)
    parser.add_argument("--warm-up", type=float, default=2.0)
    parser.add_argument("--meters", action="store_true")
    args = parser.parse_args()
    if args.mode == "ends":
        return ends(args.server, args.seconds, args.wire)
    return relay(args)


if __name__ == "__main__":
    sys.exit(main())
