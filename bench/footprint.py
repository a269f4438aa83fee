"""Footprint of the commands and of a running seat, against the targets of issue 13.

- `seatbox --help`, `config check`, `headset describe`, `radar decode`: wall time of each, as a
  ratio to `python -c "import pydantic"` timed in the same rounds (target: at most 4x).
- `import edge.core...` in a fresh interpreter: which I/O libraries and driver backends it loads
  (target: none of paho, sqlite3, scipy, serial, sounddevice, hid, pyudev, rich, numpy).
- `seatbox run` with virtual devices on a local Mosquitto: READY=1 on a fake NOTIFY_SOCKET
  (target 0.6 s from exec), RSS after a minute (60 MB), idle CPU (1 % of a core).
- `seatbox run` with the real audio backend reading an ALSA `file` PCM (as the capture tests
  do): READY, when numpy and scipy appear in the process (they belong in the capture worker,
  after READY), and RSS.

Wall times on a shared machine move with its load: each command's figure is the median of
`--rounds` runs interleaved with the baseline's, and CPU time (user+system) is shown beside it.
Modules are byte-compiled first, as on an installed box.

Run: .venv/bin/python bench/footprint.py [--rounds 9] [--run-seconds 60] [--audio-seconds 20]
(`--strict`: exit 1 when a target fails; `make bench` runs it without, as a report).
"""

from __future__ import annotations

import argparse
import array
import compileall
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from machine import cpu_s, describe, rss_mb  # noqa: E402  (bench/machine.py)
from support import Mosquitto, file_mic_asoundrc  # noqa: E402

PYTHON = sys.executable
SEATBOX = str(Path(sys.executable).parent / "seatbox")

COMMAND_RATIO = 4.0
READY_S = 0.6
RSS_MB = 60.0
IDLE_CPU_PCT = 1.0
# What importing the core may not load (numpy too: no norm needs it).
IO_LIBS: tuple[str, ...] = ("paho", "sqlite3", "scipy", "serial", "sounddevice", "hid", "hidraw")
IO_LIBS += ("pyudev", "rich", "numpy", "usb", "amqtt", "asyncio")
CORE_PROBE = """
import importlib, json, pkgutil, sys, time
t = time.perf_counter()
import edge.core
names = ["edge.core"] + [m.name for m in pkgutil.walk_packages(edge.core.__path__, "edge.core.")]
for name in names:
    importlib.import_module(name)
took = time.perf_counter() - t
print(json.dumps({"seconds": took, "modules": sorted(sys.modules), "core": names}))
"""

results: list[tuple[str, str, str, bool | None]] = []


def record(name: str, figure: str, target: str, ok: bool | None) -> None:
    results.append((name, figure, target, ok))
    verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    print(f"  {name:<44} {figure:<34} {target:<16} {verdict}", flush=True)


def timed(cmd: Sequence[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(cmd, capture_output=True, cwd=REPO, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def check_config(tmp: Path) -> Path:
    """The example config, reachable on this machine: a plain local broker instead of the TLS
    one (whose certificate files a development machine lacks), state under `tmp`."""
    lines = []
    for line in (REPO / "config" / "seatbox.example.toml").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("ca_file", "cert_file", "key_file"):
            continue
        if key == "url" and line.startswith("url"):
            line = 'url = "mqtt://127.0.0.1:1883"'
        if key == "state_dir":
            line = f'state_dir = "{tmp / "state"}"'
        lines.append(line)
    path = tmp / "seatbox.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def commands(tmp: Path, rounds: int) -> None:
    frames = json.loads((REPO / "tests" / "data" / "ld2410" / "frames.json").read_text())
    frame = frames["data"][0]["hex"]
    descriptor = REPO / "tests" / "data" / "hid" / "jabra_biz2400_ii.hex"
    runs: dict[str, list[str]] = {
        'python -c "import pydantic"': [PYTHON, "-c", "import pydantic"],
        "seatbox --help": [SEATBOX, "--help"],
        "seatbox config check": [SEATBOX, "config", "check", str(check_config(tmp))],
        "seatbox headset describe": [SEATBOX, "headset", "describe", str(descriptor)],
        "seatbox radar decode": [SEATBOX, "radar", "decode", frame],
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for name, cmd in runs.items():  # once each, unmeasured: page cache, and a failure shows
        _, _, code = timed(cmd)
        if code != 0:
            raise SystemExit(f"{name} exited {code}: {' '.join(cmd)}")
    for _ in range(rounds):
        for name, cmd in runs.items():
            wall, cpu, _ = timed(cmd)
            figures[name].append((wall, cpu))
    base_wall = statistics.median(w for w, _ in figures['python -c "import pydantic"'])
    base_cpu = statistics.median(c for _, c in figures['python -c "import pydantic"'])
    print(f"commands: median of {rounds} rounds, ratio to the baseline's median")
    for name, runs_ in figures.items():
        wall = statistics.median(w for w, _ in runs_)
        cpu = statistics.median(c for _, c in runs_)
        if name.startswith("python"):
            record(name, f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU", "baseline", None)
            continue
        figure = (
            f"{wall / base_wall:.2f}x ({wall * 1000:.0f} ms), CPU {cpu / base_cpu:.2f}x"
            f" ({cpu * 1000:.0f} ms)"
        )
        record(name, figure, f"<= {COMMAND_RATIO:g}x", wall / base_wall <= COMMAND_RATIO)


def core_imports() -> None:
    out = subprocess.run(
        [PYTHON, "-c", CORE_PROBE], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    probe = json.loads(out)
    loaded = set(probe["modules"])
    io = sorted(lib for lib in IO_LIBS if lib in loaded)
    drivers = sorted(
        m
        for m in loaded
        if m.startswith("drivers.") and m.count(".") > 1 and not m.endswith(".events")
    )
    third = sorted(
        {m.split(".")[0] for m in loaded}
        - set(sys.stdlib_module_names)
        - {"edge", "drivers", "dsp", "__main__"}
    )
    third = [m for m in third if not m.startswith("_") and "editable" not in m]
    print(f"import of the {len(probe['core'])} edge.core modules in a fresh interpreter")
    record("edge.core: I/O libraries loaded", ", ".join(io) or "none", "none", not io)
    record(
        "edge.core: driver modules beyond events", ", ".join(drivers) or "none", "none", not drivers
    )
    record("edge.core: third-party packages", ", ".join(third), "pydantic only", None)
    record("edge.core: import time", f"{probe['seconds'] * 1000:.0f} ms", "", None)


def mapped(pid: int, names: Sequence[str]) -> set[str]:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {n for n in names if f"/{n}/" in maps or f"/{n}." in maps}


class Seat:
    """`seatbox run CONFIG` under a fake systemd NOTIFY_SOCKET."""

    def __init__(self, config: Path, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.sock_path = tmp / f"notify-{time.monotonic_ns()}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.setblocking(False)
        self.log = (tmp / "seat.log").open("ab")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [SEATBOX, "run", str(config)],
            env={**os.environ, **(env or {}), "NOTIFY_SOCKET": str(self.sock_path)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.seen: dict[str, float] = {}
        self.ready_cpu = 0.0  # CPU seconds the process had used when READY=1 came

    def wait_ready(self, timeout: float, watch: Sequence[str] = ()) -> float | None:
        """Seconds from exec to READY=1; meanwhile when each of `watch` got mapped."""
        ready = None
        while time.monotonic() - self.start < timeout and self.proc.poll() is None:
            try:
                if ready is None and "READY=1" in self.sock.recv(4096).decode():
                    ready = time.monotonic() - self.start
                    self.ready_cpu = cpu_s(self.proc.pid)
            except BlockingIOError:
                pass
            now = time.monotonic() - self.start
            for name in mapped(self.proc.pid, [w for w in watch if w not in self.seen]):
                self.seen[name] = now
            if ready is not None and all(w in self.seen for w in watch):
                break
            time.sleep(0.005)
        return ready

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
        self.log.close()


def virtual_seat(tmp: Path, seconds: float, starts: int) -> None:
    broker = Mosquitto(tmp)
    broker.start()
    try:
        config = tmp / "virtual.toml"
        subprocess.run(
            [SEATBOX, "provision", "--site", "bench", "--seat", "v1", "--broker", broker.url,
             "--simulate", "--no-check", "--output", str(config)],
            check=True, capture_output=True, cwd=REPO,
        )  # fmt: skip
        (tmp / "vstate").mkdir()
        config.write_text(config.read_text().replace('"/var/lib/seatbox"', f'"{tmp / "vstate"}"'))
        readies, cpus = [], []
        for _ in range(starts):
            seat = Seat(config, tmp)
            try:
                ready = seat.wait_ready(20.0)
            finally:
                seat.stop()
            if ready is None:
                raise SystemExit(f"seatbox run: no READY=1; see {tmp / 'seat.log'}")
            readies.append(ready)
            cpus.append(seat.ready_cpu)
        print(f"seatbox run, virtual devices, local Mosquitto ({starts} starts, then one for "
              f"{seconds:g} s)")  # fmt: skip
        ready = statistics.median(readies)
        record(
            "READY=1 from exec (median)",
            f"{ready:.3f} s (min {min(readies):.3f}), CPU {statistics.median(cpus):.2f} s",
            f"<= {READY_S:g} s",
            ready <= READY_S,
        )
        seat = Seat(config, tmp)
        try:
            seat.wait_ready(20.0)
            settle = min(10.0, seconds / 3)
            time.sleep(settle)  # start-up done: what follows is the idle seat
            cpu0, t0 = cpu_s(seat.proc.pid), time.monotonic()
            time.sleep(max(0.0, seconds - settle))
            cpu1, t1 = cpu_s(seat.proc.pid), time.monotonic()
            rss = rss_mb(seat.proc.pid)
            heavy = sorted(mapped(seat.proc.pid, ["numpy", "scipy", "sounddevice", "_sounddevice"]))
        finally:
            seat.stop()
        idle = 100.0 * (cpu1 - cpu0) / (t1 - t0)
        record(f"RSS after {seconds:g} s", f"{rss:.1f} MB", f"<= {RSS_MB:g} MB", rss <= RSS_MB)
        record(
            f"idle CPU over the last {t1 - t0:.0f} s",
            f"{idle:.2f} % of a core",
            f"<= {IDLE_CPU_PCT:g} %",
            idle <= IDLE_CPU_PCT,
        )
        record("numpy / scipy / PortAudio mapped", ", ".join(heavy) or "none", "none", not heavy)
    finally:
        broker.stop()


def real_audio_seat(tmp: Path, seconds: float) -> None:
    print(f"seatbox run, real audio backend (PortAudio on an ALSA file PCM), {seconds:g} s")
    probe = subprocess.run(
        [PYTHON, "-c", "import sounddevice"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0 or not shutil.which("aplay"):
        record("real audio", "skipped: no PortAudio / ALSA utils", "", None)
        return
    home = tmp / "home"
    home.mkdir()
    raw = home / "mic.raw"
    # Eight seconds of low noise (int16 LE); the file PCM repeats its buffer after the end.
    rng = random.Random(1)
    raw.write_bytes(array.array("h", (rng.randint(-300, 300) for _ in range(16000 * 8))).tobytes())
    (home / ".asoundrc").write_text(file_mic_asoundrc(raw))
    broker = Mosquitto(tmp)
    broker.start()
    try:
        config = home / "seat.toml"
        config.write_text(
            f'[seat]\nsite = "bench"\nid = "a1"\nprofile = "default"\n\n'
            f'[broker]\nurl = "{broker.url}"\n\n'
            '[headset]\ndevice = "virtual"\n\n[radar]\nbackend = "virtual"\n\n'
            '[audio]\nbackend = "sounddevice"\ntx_device = "seat_mic"\nsamplerate = 16000\n'
            'mixer = "none"\n\n[call]\nsources = ["cti"]\n\n'
            f'[storage]\nstate_dir = "{home}"\n'
        )
        seat = Seat(config, tmp, env={"HOME": str(home)})
        try:
            ready = seat.wait_ready(60.0, watch=["numpy", "scipy"])
            time.sleep(max(0.0, seconds - (time.monotonic() - seat.start)))
            rss = rss_mb(seat.proc.pid) if seat.proc.poll() is None else 0.0
        finally:
            seat.stop()
        if ready is None:
            record("READY=1 from exec", "no READY=1", "", False)
            return
        record("READY=1 from exec", f"{ready:.3f} s, CPU {seat.ready_cpu:.2f} s", "", None)
        for lib in ("numpy", "scipy"):
            at = seat.seen.get(lib)
            figure = "not loaded" if at is None else f"mapped at {at:.3f} s"
            record(f"{lib} loaded after READY", figure, "after READY", at is None or at > ready)
        record(f"RSS after {seconds:g} s", f"{rss:.1f} MB", "(report)", None)
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="runs of each command")
    parser.add_argument("--starts", type=int, default=5, help="seat starts timed to READY")
    parser.add_argument("--run-seconds", type=float, default=60.0, help="virtual seat run")
    parser.add_argument("--audio-seconds", type=float, default=20.0, help="real-audio seat run")
    parser.add_argument("--no-audio", action="store_true", help="skip the real audio backend")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    print(f"machine: {describe()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for folder in ("edge", "drivers", "dsp", "floor"):  # as an installed box has them
        compileall.compile_dir(str(REPO / folder), quiet=1)
    steps: list[Callable[[Path], None]] = [
        lambda tmp: commands(tmp, args.rounds),
        lambda tmp: core_imports(),
        lambda tmp: virtual_seat(tmp, args.run_seconds, args.starts),
    ]
    if not args.no_audio:
        steps.append(lambda tmp: real_audio_seat(tmp, args.audio_seconds))
    for step in steps:
        with tempfile.TemporaryDirectory(prefix="seatbox-footprint-") as tmp:
            step(Path(tmp))
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = [name for name, _, _, ok in results if ok is False]
    print(f"targets: {sum(ok is True for *_, ok in results)} PASS, {len(failed)} FAIL")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
