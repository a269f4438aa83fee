"""The disk probe: the state folder exists, the service user can write it, and there is room."""

from __future__ import annotations

import os
from pathlib import Path

from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine, can_access, service_identity
from edge.shell.config import SeatConfig

# Outbox budget: a day of a busy seat's events is a few MB; below these the outbox may
# have to drop events while the broker is away.
DISK_FAIL_BYTES = 20 * 1024 * 1024
DISK_WARN_BYTES = 100 * 1024 * 1024


def check_disk(config: SeatConfig, machine: Machine) -> Check:
    state = Path(config.storage.state_dir)
    if not state.is_dir():
        return Check(
            "disk", "FAIL", f"state folder {state} does not exist",
            "run sudo make install (or systemd-tmpfiles --create /etc/tmpfiles.d/seatbox.conf)",
        )  # fmt: skip
    who = service_identity(machine)
    if not can_access(state, who, os.W_OK | os.X_OK):
        return Check(
            "disk", "FAIL", f"{state} is not writable by {who.name}",
            f"chown {who.name} {state} (systemd-tmpfiles --create sets it)",
        )  # fmt: skip
    fs = os.statvfs(state)
    free = fs.f_bavail * fs.f_frsize
    free_mb = free / (1024 * 1024)
    if free < DISK_FAIL_BYTES:
        return Check(
            "disk", "FAIL", f"{free_mb:.0f} MB free in {state}: the outbox cannot keep events",
            "free space: old tapes in /var/lib/seatbox/tapes, the journal (journalctl --vacuum)",
        )  # fmt: skip
    if free < DISK_WARN_BYTES:
        return Check(
            "disk", "WARN", f"only {free_mb:.0f} MB free in {state}",
            "free space before the outbox fills: old tapes, journal (journalctl --vacuum-size)",
        )  # fmt: skip
    return Check("disk", "OK", f"{free_mb:.0f} MB free in {state}")
