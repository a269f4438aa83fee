"""The outbox probe: what the seat has not yet delivered, how full its budget is, losses not yet
reported, damaged files set aside, and whether the service user can write it. It reads the
outbox through its own read-only inspection API (edge.shell.outbox.inspect), never its tables."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine, can_access, service_identity, user_name
from edge.shell.config import SeatConfig
from edge.shell.outbox.inspect import (
    CHECK_S,
    CORRUPT_MARK,
    DEFAULT_MEMORY_BYTES,
    OUTBOX_FILE,
    RECOVER_FREE_BYTES,
    OutboxUnreadable,
    free_bytes,
    outbox_files,
    outbox_path,
    read_outbox,
    set_aside,
    started,
)

# Connected, the pump publishes an event within milliseconds, and a lost connection is retried
# at least every 30 s (edge/shell/mqtt/link.py, reconnect max_delay): an unacknowledged event older than
# 5 min means the broker has been out of reach for many attempts, or the seat is not running.
OUTBOX_BACKLOG_WARN_S = 300.0
# The budget drops events once full (docs/reliability.md): above 80 % a longer outage will
# start dropping informational events, time to look before it happens.
OUTBOX_USAGE_WARN = 0.80


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def check_outbox(config: SeatConfig, machine: Machine) -> Check:
    state = Path(config.storage.state_dir)
    if not state.is_dir():
        return Check("outbox", "WARN", "not checked: the state folder is missing",
                     "see the disk check")  # fmt: skip
    free = free_bytes(state)
    if free < RECOVER_FREE_BYTES:
        return Check(
            "outbox", "FAIL",
            f"the disk holding {state} is full ({free // 1024} KiB free): the outbox cannot "
            f"write. A running seat holds new events in memory (up to "
            f"{_megabytes(DEFAULT_MEMORY_BYTES)}, then drops informational ones first and "
            "reports them in outbox.loss) and writes them once "
            f"{_megabytes(RECOVER_FREE_BYTES)} are free; a restart or power cut before then "
            "loses what it holds",
            "free space on that file system now (old tapes in tapes/, the journal: "
            "journalctl --vacuum-size=50M); the seat's state `storage` and "
            "systemctl status seatbox say when it has written them",
        )  # fmt: skip
    kept = set_aside(state)
    check = _check_outbox_file(config, machine, state)
    if not kept or check.status == "FAIL":
        return check
    names = ", ".join(f"{p.name} ({_megabytes(p.stat().st_size)})" for p in kept)
    problem = (
        f"the seat found its outbox damaged and set it aside: {names}; events not yet "
        "published from it were not sent (the seat reported this in an outbox.reset event)"
    )
    fix = (
        f"to salvage them: sqlite3 {kept[-1]} .recover > salvage.sql; when done, delete "
        f"{state}/{OUTBOX_FILE}{CORRUPT_MARK}*; a disk that damages files again: check dmesg"
    )
    detail = problem if check.status == "OK" else f"{problem}; {check.detail}"
    return Check("outbox", "WARN", detail, fix if check.status == "OK" else f"{fix}; {check.fix}")


def _check_outbox_file(config: SeatConfig, machine: Machine, state: Path) -> Check:
    path = outbox_path(state)
    if not started(path):
        return Check("outbox", "OK", f"no outbox yet in {state} (the seat creates it at start)")
    who = service_identity(machine)
    files = outbox_files(path)
    denied = [p for p in files if not can_access(p, who, os.R_OK | os.W_OK)]
    if denied:
        listed = ", ".join(
            f"{p.name} ({stat.filemode(p.stat().st_mode)} {user_name(p.stat().st_uid)})"
            for p in denied
        )
        return Check(
            "outbox", "FAIL", f"{who.name} cannot write {listed} in {state}: "
            "the seat cannot store its events",
            f"chown {who.name}: {path}* (a seat once started as root leaves root's files)",
        )  # fmt: skip
    if not all(os.access(p, os.R_OK) for p in files):
        me = pwd.getpwuid(os.geteuid()).pw_name
        return Check("outbox", "WARN", f"not checked: {me} cannot read {path}",
                     f"run doctor as root or as {who.name}")  # fmt: skip
    try:
        reading = read_outbox(path)
    except OutboxUnreadable as exc:
        return Check(
            "outbox", "FAIL", f"{path} is damaged: {exc}",
            "systemctl restart seatbox: the seat keeps the file as "
            f"{OUTBOX_FILE}{CORRUPT_MARK}<UTC time> (with its -wal, -shm) and starts a new outbox. "
            f"Events not yet published are in that file (sqlite3 <file> .recover can salvage "
            "them)",
        )  # fmt: skip
    budget = int(config.storage.outbox_budget_mb * 1024 * 1024)
    usage = reading.used_bytes / budget
    summary = f"{reading.pending} pending"
    age = 0.0
    if reading.oldest_pending is not None:
        age = max(0.0, machine.wall_clock() - reading.oldest_pending)
        summary += f" (oldest {_duration_text(age)})"
    summary += (
        f", {_megabytes(reading.used_bytes)} of the {_megabytes(budget)} budget ({usage:.0%})"
    )
    problems: list[str] = []
    fixes: list[str] = []
    if reading.pending and age > OUTBOX_BACKLOG_WARN_S:
        replay = reading.pending / config.broker.replay_rate
        problems.append(
            f"{reading.pending} events not acknowledged by the broker, the oldest stored "
            f"{_duration_text(age)} ago"
        )
        fixes.append(
            "check the broker check and that the seat runs (systemctl status seatbox); once "
            f"connected it sends the backlog at [broker] replay_rate (about {_duration_text(replay)})"
        )
    if usage > OUTBOX_USAGE_WARN:
        problems.append(f"{usage:.0%} of the disk budget used")
        fixes.append(
            "at 100 % informational events are dropped first: get the broker back; if outages "
            "this long are normal, raise [storage] outbox_budget_mb"
        )
    if reading.lost:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(reading.lost.items()))
        problems.append(
            f"{sum(reading.lost.values())} events dropped by the budget, not yet reported ({kinds})"
        )
        fixes.append("the seat reports them in an outbox.loss event once the broker is back")
    if reading.lost_disk_full:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(reading.lost_disk_full.items()))
        problems.append(
            f"{sum(reading.lost_disk_full.values())} events dropped while the disk was full, "
            f"not yet reported ({kinds})"
        )
        fixes.append("the seat reports them in an outbox.loss event once the broker is back")
    if not reading.integrity_checked:
        problems.append(f"integrity not checked: quick_check took over {CHECK_S:g} s")
        fixes.append("a slow or failing disk: check dmesg for I/O errors")
    if problems:
        return Check("outbox", "WARN", f"{'; '.join(problems)} ({summary})", "; ".join(fixes))
    return Check("outbox", "OK", f"{summary}, integrity ok")
