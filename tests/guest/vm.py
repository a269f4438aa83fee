"""Runs a guest image under QEMU (software emulation): boot with a job, read its console
line by line, wait for a line, SIGKILL it (a power cut), or let it power off.

One `Guest` is one boot. Its console (the serial port) is read by a thread; every line is
kept with the host's monotonic time it arrived.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .build import GuestImage, GuestUnavailable, job_archive

QEMU = "qemu-system-x86_64"
READY = re.compile(r"^GUEST-READY ")
EXIT = re.compile(r"^GUEST-EXIT rc=(\d+)")


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise GuestUnavailable(f"{QEMU} not found: apt-get install qemu-system-x86")
    return path


@dataclass(frozen=True)
class Disk:
    """A raw image attached as a virtio disk (/dev/vda, /dev/vdb, ... in order)."""

    path: Path
    readonly: bool = False
    # writeback: the guest sees a volatile write cache and must flush, as on real storage.
    cache: str = "writeback"


@dataclass
class ConsoleLine:
    at: float  # host monotonic seconds
    text: str


@dataclass
class Guest:
    """One boot of `image` running `job` (a shell script, /job/run) with `files` laid over
    the image (guest path -> bytes or a host file). `net`: user-mode networking; the guest
    reaches the host's 127.0.0.1 as 10.0.2.2."""

    image: GuestImage
    job: str
    files: Mapping[str, bytes | Path] = field(default_factory=dict)
    disks: Sequence[Disk] = ()
    net: bool = False
    memory_mb: int = 512
    append: str = ""
    lines: list[ConsoleLine] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="seatbox-guest-")
        self.started_at = 0.0
        self.ended_at: float | None = None
        self.killed = False

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Guest:
        initrd = Path(self._scratch.name) / "initrd"
        with initrd.open("wb") as out:
            out.write(self.image.initrd.read_bytes())
            out.write(job_archive({**self.files, "/job/run": self.job.encode()}))
        command = [
            qemu_binary(),
            "-machine",
            "accel=tcg",  # KVM inside this VM hangs or aborts (shared/reference/bridge.md §4)
            "-cpu",
            "max",
            "-smp",
            "1",
            "-m",
            str(self.memory_mb),
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(initrd),
            "-append",
            f"console=ttyS0 panic=-1 quiet loglevel=3 {self.append}".strip(),
        ]
        for disk in self.disks:
            spec = f"file={disk.path},format=raw,if=virtio,cache={disk.cache}"
            if disk.readonly:
                spec += ",readonly=on"
            command += ["-drive", spec]
        if self.net:
            command += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a ^C to the test does not reach QEMU first
        )
        self._reader = threading.Thread(target=self._read, name="guest-console", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append(ConsoleLine(time.monotonic(), text))
                self._cond.notify_all()
        self._proc.wait()
        with self._cond:
            self.ended_at = time.monotonic()
            self._cond.notify_all()

    def kill(self) -> None:
        """Pull the plug: SIGKILL QEMU. Whatever the guest kernel had not yet written to its
        virtual disk is gone; what QEMU had written is in the host file."""
        if self._proc is not None and self._proc.poll() is None:
            self.killed = True
            os.kill(self._proc.pid, signal.SIGKILL)
        self.wait_ended(30)

    def wait_ended(self, timeout: float) -> None:
        self.wait_for(lambda: self.ended_at is not None, timeout, "QEMU to exit")
        if self._reader is not None:
            self._reader.join(5)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        self._scratch.cleanup()

    def __enter__(self) -> Guest:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the console --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def text(self) -> str:
        with self._cond:
            return "\n".join(line.text for line in self.lines)

    def matching(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        with self._cond:
            found = [pattern.search(line.text) for line in self.lines]
        return [m for m in found if m]

    def wait_for(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Until `predicate()` holds (checked at each console line); fails naming `what`, with
        the console's tail, when the deadline passes or the guest stops first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or (self.ended_at is not None and what != "QEMU to exit"):
                    if predicate():
                        return
                    tail = "\n".join(line.text for line in self.lines[-40:])
                    state = "timed out" if left <= 0 else "guest stopped"
                    raise AssertionError(
                        f"{state} after {time.monotonic() - self.started_at:.1f}s waiting for "
                        f"{what}; console tail:\n{tail}"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            hits = [pattern.search(line.text) for line in self.lines]
            return next((h for h in hits if h), None)

        self.wait_for(found, timeout, f"a console line matching {pattern.pattern!r}")
        match = found()
        assert match is not None
        return match

    def line_time(self, pattern: re.Pattern[str]) -> float | None:
        """Seconds from QEMU's start to the first console line matching `pattern`."""
        with self._cond:
            for line in self.lines:
                if pattern.search(line.text):
                    return line.at - self.started_at
        return None

    def exit_code(self, timeout: float) -> int:
        """Wait for the job to end and the guest to power off; the job's exit status."""
        self.wait_ended(timeout)
        codes = self.matching(EXIT)
        if not codes:
            raise AssertionError(f"the guest stopped without GUEST-EXIT:\n{self.text()[-3000:]}")
        return int(codes[-1].group(1))
