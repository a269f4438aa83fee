"""systemd service notification (sd_notify) and the core-progress watchdog that feeds it.

No libsystemd: the protocol is one datagram of `KEY=value` lines to $NOTIFY_SOCKET (sd_notify(3)).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

# sd_notify(3): a service must ping at least once per WatchdogSec; systemd recommends
# sending at half the interval so one late ping does not restart a healthy service.
PING_FRACTION = 0.5


def socket_address(path: str) -> str | bytes:
    """$NOTIFY_SOCKET as a connectable address: a leading `@` means the abstract namespace."""
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """WatchdogSec= as seconds from $WATCHDOG_USEC, or None when no watchdog is armed for us.

    systemd also sets $WATCHDOG_PID; when it names another process the watchdog is not ours
    (sd_watchdog_enabled(3)), e.g. in a child started by the service.
    """
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number of microseconds; watchdog off", raw)
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner.isdigit() and int(owner) != (os.getpid() if pid is None else pid):
        return None
    return usec / 1_000_000


class Notifier:
    """Sends sd_notify messages; every method is a no-op when not started by systemd."""

    def __init__(self, socket_path: str | None = None) -> None:
        path = os.environ.get("NOTIFY_SOCKET", "") if socket_path is None else socket_path
        self.socket_path = path
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.socket_path)

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; False when disabled or the send failed."""
        if not self.enabled:
            return False
        message = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(message, socket_address(self.socket_path))
            except OSError as exc:
                # systemd may be restarting or the socket gone; the service must not die of it.
                log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Devices and broker are up (Type=notify: systemd counts the service as started)."""
        lines = ["READY=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
            self._last_status = _one_line(status)
        lines.append(f"MAINPID={os.getpid()}")
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        """One line shown by `systemctl status`; repeated identical lines are not resent."""
        line = _one_line(text)
        if line == self._last_status:
            return False
        self._last_status = line
        return self.notify(f"STATUS={line}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Ask systemd to act as if the watchdog expired (a fault the core cannot recover)."""
        return self.notify("WATCHDOG=trigger")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (slow device enumeration) than TimeoutStartSec."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        return self.notify(*lines)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    # STATUS= is one line: a newline would start a new (bogus) assignment.
    return " ".join(text.split())


class CoreWatchdog:
    """Pings the systemd watchdog only while the seat core is making progress.

    The core thread calls `core_alive(now)` each time it has processed an input or a timer;
    the ticker calls `tick(now)` at least every `ping_every` seconds. A ping is sent only
    if the core reported progress since the previous ping, so a hung core stops the pings
    and systemd restarts the service after WatchdogSec. The core must therefore see at
    least one timer input per `ping_every` even when the seat is idle.
    `now` is a monotonic clock reading (time.monotonic()) passed in by the caller.

    Checks added with `add_check` withhold the ping as well while they report a problem: a
    seat whose core runs but whose MQTT network thread is gone for good is as dead to the
    floor as a hung one, and a restart is what mends it.
    """

    def __init__(self, notifier: Notifier, interval_s: float | None) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self.ping_every = None if interval_s is None else interval_s * PING_FRACTION
        self.progress_at: float | None = None  # when the core last reported progress
        self._progress = 0  # bumped by core_alive; compared, not timed, so clocks never tie
        self._progress_at_ping = 0
        self._last_ping: float | None = None
        self._progress_lock = threading.Lock()
        self.pings = 0
        self.missed = 0  # ticks that found no progress (a stalled core) or a failed check
        self._checks: list[Callable[[], str | None]] = []
        self._problem: str | None = None  # the last problem logged, to log each one once

    def add_check(self, check: Callable[[], str | None]) -> None:
        """A liveness check run at each due ping: a returned text withholds the ping."""
        self._checks.append(check)

    @property
    def enabled(self) -> bool:
        return self.ping_every is not None and self.notifier.enabled

    def core_alive(self, now: float) -> None:
        with self._progress_lock:
            self._progress += 1
            self.progress_at = now

    def due(self, now: float) -> bool:
        if self.ping_every is None:
            return False
        return self._last_ping is None or now - self._last_ping >= self.ping_every

    def tick(self, now: float) -> bool:
        """Send WATCHDOG=1 if a ping is due and the core progressed since the last one."""
        if not self.enabled or not self.due(now):
            return False
        problem = self._failed_check()
        if problem is not None:
            self.missed += 1
            if problem != self._problem:
                log.error("%s; withholding watchdog", problem)
            self._problem = problem
            return False
        self._problem = None
        with self._progress_lock:
            progress = self._progress
        if progress == self._progress_at_ping:
            self.missed += 1
            if self.missed == 1:
                log.error(
                    "seat core made no progress for %.1f s; withholding watchdog", self.ping_every
                )
            return False
        self.missed = 0
        self._progress_at_ping = progress
        self._last_ping = now
        self.pings += 1
        return self.notifier.watchdog()

    def _failed_check(self) -> str | None:
        for check in self._checks:
            try:
                problem = check()
            except Exception as exc:  # a broken check is a problem, not a crash of the ticker
                problem = f"watchdog check failed: {exc}"
            if problem is not None:
                return problem
        return None


class WatchdogTicker:
    """A daemon thread calling `CoreWatchdog.tick` with the monotonic clock.

    It sleeps on an Event so `stop()` returns at once; the waiting is production pacing,
    tests call `CoreWatchdog.tick(now)` directly with their own clock.
    """

    def __init__(self, watchdog: CoreWatchdog, clock: Callable[[], float]) -> None:
        self.watchdog = watchdog
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.watchdog.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.watchdog.ping_every is not None
        # Check four times per ping period so a ping is never more than a quarter late.
        step = self.watchdog.ping_every / 4
        while not self._stop.wait(step):
            self.watchdog.tick(self.clock())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
