"""The clock probe: is the wall clock synchronised (attendance times depend on it)?"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import subprocess

from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import ClockState, Machine

log = logging.getLogger(__name__)


class _Timex(ctypes.Structure):
    # struct timex (adjtimex(2)); only the head is read, the tail is room for the kernel.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


STA_UNSYNC = 0x0040  # adjtimex(2): clock not synchronised
TIME_ERROR = 5  # adjtimex(2) return: clock not synchronised
# timedated's rule (NTPSynchronized): maxerror below 16 s counts as synchronised.
MAX_SYNC_ERROR_US = 16_000_000


def kernel_clock_state() -> ClockState:
    """Ask the kernel (adjtimex, read-only) like timedatectl does; fall back to timedatectl."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
        if state == -1:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        synced = (
            state != TIME_ERROR
            and not timex.status & STA_UNSYNC
            and timex.maxerror < MAX_SYNC_ERROR_US
        )
        return ClockState(synced, f"kernel: maxerror {timex.maxerror / 1e6:.1f} s")
    except (OSError, AttributeError) as exc:
        # The service's ProtectClock= filters adjtimex (EPERM): ask timedated instead.
        if isinstance(exc, OSError) and exc.errno not in (errno.EPERM, errno.ENOSYS, None):
            log.debug("adjtimex: %s", exc)
    return timedatectl_state()


def timedatectl_state() -> ClockState:
    if not shutil.which("timedatectl"):
        return ClockState(None, "cannot read the clock state (no adjtimex, no timedatectl)")
    result = subprocess.run(
        ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    value = result.stdout.strip()
    if result.returncode != 0 or value not in ("yes", "no"):
        return ClockState(None, f"timedatectl: {(result.stderr or value).strip() or 'no answer'}")
    return ClockState(value == "yes", "timedatectl NTPSynchronized")


def check_clock(machine: Machine) -> Check:
    state = (machine.clock or kernel_clock_state)()
    if state.synchronised is None:
        return Check(
            "clock", "WARN", f"synchronisation unknown ({state.detail})",
            "check NTP: timedatectl timesync-status (attendance times depend on the clock)",
        )  # fmt: skip
    if not state.synchronised:
        return Check(
            "clock", "FAIL", f"not synchronised ({state.detail}): attendance times would be wrong",
            "enable NTP: timedatectl set-ntp true; make sure the site's NTP server is reachable",
        )  # fmt: skip
    return Check("clock", "OK", f"synchronised ({state.detail})")
