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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
