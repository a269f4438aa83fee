"""The service under a systemd-like NOTIFY_SOCKET: READY=1 once up, then periodic WATCHDOG=1.

Needs `seatbox run` (the runtime); skipped with that reason until the command exists.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import build_parser

SEATBOX = str(Path(sys.executable).parent / "seatbox")


def has_run_command() -> bool:
    try:
        build_parser().parse_args(["run", "x.toml"])
    except SystemExit:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not has_run_command(), reason="`seatbox run` (edge/shell/runtime.py) is not in this tree yet"
)


def test_service_sends_ready_then_watchdog_pings(tmp_path: Path) -> None:
    config = tmp_path / "seatbox.toml"
    made = subprocess.run(
        [SEATBOX, "provision", "--site", "lab", "--seat", "s1", "--broker", "embedded",
         "--simulate", "--no-check", "--output", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    state = tmp_path / "state"
    state.mkdir()
    text = config.read_text().replace('"/var/lib/seatbox"', f'"{state}"')
    # A free port for the embedded broker: this machine may run its own Mosquitto on 1883.
    config.write_text(text.replace('url = "embedded"', 'url = "embedded"\nembedded_port = 0'))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "1000000"}  # fmt: skip
    proc = subprocess.Popen([SEATBOX, "run", str(config)], env=env, stderr=subprocess.PIPE)
    try:
        seen: list[str] = []
        while seen.count("WATCHDOG=1") < 3:
            seen += listener.recv(4096).decode().split("\n")
        assert "READY=1" in seen
        assert seen.index("READY=1") < seen.index("WATCHDOG=1")
        assert any(line.startswith("STATUS=call idle") for line in seen)

        # A hung core: the pings stop, so systemd (WatchdogSec) would restart the service.
        proc.send_signal(signal.SIGUSR2)
        listener.settimeout(1.0)  # a ping already due (half an interval) still comes
        drained = 0
        while drained < 50:  # what was in flight when the core stopped
            try:
                listener.recv(4096)
            except TimeoutError:
                break
            drained += 1
        listener.settimeout(3.0)  # three watchdog intervals of 1 s
        after: list[str] = []
        try:
            while True:
                after += listener.recv(4096).decode().split("\n")
        except TimeoutError:
            pass
        assert "WATCHDOG=1" not in after
        assert proc.poll() is None  # alive but hung: exactly what the watchdog is for
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        listener.close()


def test_status_says_when_the_broker_is_unreachable_and_how_many_events_wait(
    tmp_path: Path,
) -> None:
    """`systemctl status seatbox` shows the STATUS line: a seat cut off from its broker says
    so, and how many events its outbox holds for later."""
    from support import free_port

    config = tmp_path / "seatbox.toml"
    nowhere = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    made = subprocess.run(
        [SEATBOX, "provision", "--site", "lab", "--seat", "s1", "--broker", nowhere,
         "--simulate", "--no-check", "--output", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    state = tmp_path / "state"
    config.write_text(config.read_text().replace('"/var/lib/seatbox"', f'"{state}"'))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    proc = subprocess.Popen([SEATBOX, "run", str(config)], env=env, stderr=subprocess.PIPE)
    try:
        seen: list[str] = []
        while "READY=1" not in seen:  # READY comes after the broker wait, offline
            seen += listener.recv(4096).decode().split("\n")
        assert "broker unreachable" in [s for s in seen if s.startswith("STATUS=")][-1]
        # The seat works on and its events wait on disk; the line says how many (the count is
        # refreshed every few seconds; a recv timeout fails the test).
        status = ""
        while "waiting to be sent" not in status:
            lines = listener.recv(4096).decode().split("\n")
            status = next((s for s in reversed(lines) if s.startswith("STATUS=")), status)
        assert "broker unreachable" in status
        waiting = int(status.split(", ")[-1].split(" ")[0])
        assert waiting >= 1  # at least headset.connected, stored on disk
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        listener.close()
