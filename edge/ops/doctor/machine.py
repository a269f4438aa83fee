"""The machine doctor looks at (tests point it at a scratch tree), and who the seat runs as.

`Machine` is the box, not the softphone (`drivers.host`): where sysfs and /dev are, the
service user, the broker timeout, and the readers of what cannot be laid out as files. A
reader left None is the real one, kept in its probe's module (clock, audio).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.audio.events import AudioStatus
from edge.shell.config import AudioSection

SERVICE_USER = "seatbox"


@dataclass(frozen=True)
class ClockState:
    synchronised: bool | None  # None: cannot tell
    detail: str


@dataclass(frozen=True)
class MicReading:
    """What the microphone produced during the probe: levels only (dsp/ measured them)."""

    ok: bool
    rms_dbov: float = -100.0
    detail: str = ""


class MicListener:
    """Collects the agent channel's levels from what an audio driver delivers (`feed` is its
    sink, or a tap on the seat's): the first `seconds` of them, or the capture's failure."""

    def __init__(self, audio: AudioSection, seconds: float) -> None:
        self.audio, self.seconds = audio, seconds
        self.wanted = max(1, int(seconds * audio.levels_hz))
        self.levels: list[float] = []
        self.failure: list[str] = []
        self.enough = threading.Event()

    def feed(self, item: object) -> None:
        tx = getattr(item, "tx", None)
        if tx is not None:
            if len(self.levels) < self.wanted:
                self.levels.append(float(tx.rms_dbov))
            if len(self.levels) >= self.wanted:
                self.enough.set()
        elif isinstance(item, AudioStatus) and not item.ok:
            self.failure.append(item.detail or "capture failed")
            self.enough.set()

    def reading(self) -> MicReading:
        """After waiting (device start-up plus the capture itself, 5 s more at most)."""
        self.enough.wait(self.seconds + 5.0)
        if self.failure and not self.levels:
            return MicReading(False, detail=self.failure[0])
        if not self.levels:
            where = f"{self.audio.tx_device!r} within {self.seconds + 5:g} s"
            return MicReading(False, detail=f"no audio from {where}")
        return MicReading(True, rms_dbov=max(self.levels))


@dataclass(frozen=True)
class Machine:
    sys_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    service_user: str = SERVICE_USER
    broker_timeout: float = 10.0
    clock: Callable[[], ClockState] | None = None  # None: the kernel's (doctor.clock)
    # None: a real capture through drivers.audio (doctor.audio)
    mic_probe: Callable[[AudioSection, float], MicReading] | None = None
    audio_devices: Callable[[], list[dict[str, Any]]] | None = None  # None: PortAudio's
    wall_clock: Callable[[], float] = time.time  # epoch seconds, as the outbox stamps events


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gids: frozenset[int]


def service_identity(machine: Machine) -> Identity:
    """The service user when it exists (doctor run as root checks for it), else ourselves."""
    try:
        user = pwd.getpwnam(machine.service_user)
        gids = frozenset(os.getgrouplist(user.pw_name, user.pw_gid))
        return Identity(user.pw_name, user.pw_uid, gids)
    except KeyError:
        uid = os.geteuid()
        name = pwd.getpwuid(uid).pw_name if uid >= 0 else str(uid)
        return Identity(name, uid, frozenset(os.getgroups()) | {os.getegid()})


def can_access(path: Path, who: Identity, want: int) -> bool:
    """Would `who` get `want` (os.R_OK | os.W_OK ...) on path by its mode bits?"""
    info = path.stat()
    if who.uid == 0:
        return True
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == who.uid:
        bits = mode >> 6
    elif info.st_gid in who.gids:
        bits = mode >> 3
    else:
        bits = mode
    return (bits & want) == want


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
