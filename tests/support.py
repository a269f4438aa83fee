"""Real parts for tests: a Mosquitto on a free loopback port, free ports, waiting on sockets.

Waiting here polls a real condition (a port accepting, a message arriving), never a timer.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll a real condition until it holds; fail with what we were waiting for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto process of our own, with the config text we give it."""

    def __init__(self, workdir: Path, config: str = "", port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.log = workdir / f"mosquitto-{self.port}.log"
        self.conf.write_text(
            config or f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, 10, "mosquitto")
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def mosquitto(workdir: Path, config: str = "", port: int | None = None) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir, config, port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def file_mic_asoundrc(raw: Path, rate: int = 16000) -> str:
    """An ALSA config whose `seat_mic` PCM plays a raw S16_LE mono file as a microphone
    (PortAudio reads it through the plug and file plugins) and whose `seat_sink` discards."""
    return f"""pcm.seat_sink {{ type null }}
pcm.seat_mic_raw {{
    type file
    slave.pcm "seat_sink"
    file "/dev/null"
    infile "{raw}"
    format "raw"
}}
pcm.seat_mic {{
    type plug
    slave {{ pcm "seat_mic_raw" format S16_LE rate {rate} channels 1 }}
}}
"""
