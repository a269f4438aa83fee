"""sd_notify over a real AF_UNIX datagram socket; the watchdog stops when the core hangs."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.shell.notify import CoreWatchdog, Notifier, WatchdogTicker, watchdog_interval


class NotifySocket:
    """The systemd side: a bound datagram socket whose messages the test reads."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def recv(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def pending(self) -> list[list[str]]:
        """Every message already queued, without waiting."""
        self.sock.setblocking(False)
        messages = []
        try:
            while True:
                messages.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(5)
        return messages


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, NotifySocket]]:
    path = str(tmp_path / "notify.sock")
    listener = NotifySocket(path)
    yield path, listener
    listener.sock.close()


def test_ready_status_stopping_arrive_as_sd_notify_datagrams(
    systemd: tuple[str, NotifySocket],
) -> None:
    path, listener = systemd
    notifier = Notifier(path)
    assert notifier.ready("seat A/12 online, 3 devices")
    assert listener.recv() == [
        "READY=1",
        "STATUS=seat A/12 online, 3 devices",
        f"MAINPID={os.getpid()}",
    ]
    assert notifier.status("in call\nsince 10:02")
    assert listener.recv() == ["STATUS=in call since 10:02"]
    assert notifier.watchdog()
    assert listener.recv() == ["WATCHDOG=1"]
    assert notifier.extend_timeout(20)
    assert listener.recv() == ["EXTEND_TIMEOUT_USEC=20000000"]
    assert notifier.stopping("shutting down")
    assert listener.recv() == ["STOPPING=1", "STATUS=shutting down"]


def test_repeated_status_line_is_sent_once(systemd: tuple[str, NotifySocket]) -> None:
    path, listener = systemd
    notifier = Notifier(path)
    notifier.status("idle")
    notifier.status("idle")
    notifier.status("ringing")
    assert listener.pending() == [["STATUS=idle"], ["STATUS=ringing"]]


def test_abstract_namespace_socket_is_reached_with_at_sign() -> None:
    name = f"seatbox-test-{os.getpid()}-{id(object())}"
    listener = NotifySocket(b"\0" + name.encode())
    try:
        assert Notifier(f"@{name}").ready()
        assert listener.recv()[0] == "READY=1"
    finally:
        listener.sock.close()


def test_without_notify_socket_every_call_is_a_quiet_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.watchdog() is False


def test_watchdog_interval_from_environment() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    # WATCHDOG_PID names the process the watchdog is meant for.
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, pid=99) is None
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "99"}, pid=99) == 2.0


def test_watchdog_pings_at_half_interval_only_while_core_progresses(
    systemd: tuple[str, NotifySocket],
) -> None:
    path, listener = systemd
    dog = CoreWatchdog(Notifier(path), interval_s=10.0)
    assert dog.ping_every == 5.0
    assert not dog.tick(0.0), "no ping before the core has processed anything"
    dog.core_alive(0.5)
    assert dog.tick(1.0)
    dog.core_alive(2.0)
    assert not dog.tick(3.0), "a ping 2 s after the last is not due yet"
    assert dog.tick(6.0)
    # The core hangs: no core_alive from here on; no more pings however often we tick.
    for now in (11.0, 16.0, 21.0, 26.0):
        assert not dog.tick(now)
    assert dog.missed == 4
    # It recovers: pings resume.
    dog.core_alive(27.0)
    assert dog.tick(27.5)
    assert listener.pending() == [["WATCHDOG=1"]] * 3
    assert dog.pings == 3


def test_watchdog_is_off_without_watchdog_usec(systemd: tuple[str, NotifySocket]) -> None:
    path, listener = systemd
    dog = CoreWatchdog(Notifier(path), interval_s=None)
    dog.core_alive(1.0)
    assert not dog.enabled
    assert not dog.tick(100.0)
    assert listener.pending() == []


def test_ticker_thread_pings_while_core_alive_and_stops_when_it_hangs(
    systemd: tuple[str, NotifySocket],
) -> None:
    """The real thread with a short interval: pings arrive, then stop once the core stalls."""
    path, listener = systemd
    clock_value = [0.0]
    dog = CoreWatchdog(Notifier(path), interval_s=0.2)
    ticker = WatchdogTicker(dog, clock=lambda: clock_value[0])
    ticker.start()
    try:
        # Drive a fake clock forward from the test, one core step per tick period; the thread
        # reads it. Each received datagram proves a ping was sent for fresh progress.
        for step in range(1, 4):
            clock_value[0] = step * 1.0
            dog.core_alive(clock_value[0])
            assert listener.recv() == ["WATCHDOG=1"]
        clock_value[0] = 10.0  # core hung: time moves on, core_alive is never called again
        listener.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.recv()
        assert dog.missed >= 1
    finally:
        ticker.stop()
