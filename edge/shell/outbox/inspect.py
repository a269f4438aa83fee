"""The outbox seen from outside the seat, read-only: what `seatbox doctor` shows.

Nothing here creates, migrates or writes the file, not even a -wal or -shm next to it; a seat
running meanwhile is not held up. The outbox's tables, meta keys and file names are known here
and in `edge.shell.outbox.store` only: a change to the schema changes both, side by side.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.shell.outbox.store import (
    BUDGET,
    CORRUPT_MARK,
    DEFAULT_MEMORY_BYTES,
    DISK_FULL,
    OUTBOX_FILE,
    RECOVER_FREE_BYTES,
    OutboxError,
    loss_key,
)

__all__ = [
    "CHECK_S",
    "CORRUPT_MARK",
    "DEFAULT_MEMORY_BYTES",
    "OUTBOX_FILE",
    "RECOVER_FREE_BYTES",
    "OutboxReading",
    "OutboxUnreadable",
    "free_bytes",
    "outbox_files",
    "outbox_path",
    "read_outbox",
    "set_aside",
    "started",
]

# quick_check reads every page: ~0.1 s for a full 64 MB outbox on a Pi 4's SD card; stop and
# say "not checked" rather than hold up doctor (or the seat's start) on a dying disk.
CHECK_S = 5.0


class OutboxUnreadable(OutboxError):
    """The outbox file is there but SQLite cannot read it as an outbox (damaged, foreign)."""


@dataclass(frozen=True)
class OutboxReading:
    pending: int  # stored, not yet acknowledged by the broker
    oldest_pending: float | None  # epoch seconds the oldest of them was stored
    used_bytes: int  # what the disk budget counts (the sum of the rows' `size`)
    lost: dict[str, int]  # drops not yet reported in an outbox.loss event, by event type
    integrity_checked: bool  # False: quick_check did not finish within the limit
    lost_disk_full: dict[str, int] = field(default_factory=dict)  # dropped from memory


def outbox_path(state_dir: str | os.PathLike[str]) -> Path:
    """The seat's outbox file in its state folder."""
    return Path(state_dir) / OUTBOX_FILE


def started(path: Path) -> bool:
    """Has a seat started this outbox? (SQLite leaves an empty file until its first write.)"""
    return path.exists() and path.stat().st_size > 0


def outbox_files(path: Path) -> list[Path]:
    """The outbox file and its -wal and -shm, those that exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def set_aside(state_dir: str | os.PathLike[str]) -> list[Path]:
    """Damaged outboxes the seat kept (`outbox.sqlite.corrupt-<UTC time>`), oldest first,
    without their -wal and -shm."""
    return sorted(
        p
        for p in Path(state_dir).glob(f"{OUTBOX_FILE}{CORRUPT_MARK}*")
        if not p.name.endswith(("-wal", "-shm"))
    )


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path` (the seat
    holds events in memory below RECOVER_FREE_BYTES)."""
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


def _fingerprint(path: Path) -> tuple[int, int, int, int]:
    info = path.stat()
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def read_outbox(path: Path, limit_s: float = CHECK_S) -> OutboxReading:
    """Read the seat's outbox without writing anything, not even files next to it.

    With a seat running (its -wal file exists) a `mode=ro` connection is one more WAL reader,
    which never blocks the writer. Without one, `mode=ro` would create -wal and -shm files
    owned by whoever runs doctor, so the file is read `immutable` instead, and read again the
    ordinary way if a seat opened it meanwhile. Raises OutboxUnreadable.
    """
    wal = Path(f"{path}-wal")
    quiet = not wal.exists()
    before = _fingerprint(path) if quiet else None
    reading = _query_outbox(path, quiet, limit_s)
    if quiet and (wal.exists() or _fingerprint(path) != before):
        reading = _query_outbox(path, not wal.exists(), limit_s)
    return reading


def _query_outbox(path: Path, immutable: bool, limit_s: float) -> OutboxReading:
    uri = path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    try:
        db = sqlite3.connect(uri, uri=True, timeout=1.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise OutboxUnreadable(f"cannot open it ({exc})") from exc
    keys = (loss_key(BUDGET), loss_key(DISK_FULL))
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not {"entry", "meta"} <= tables:
            raise OutboxUnreadable("not a seatbox outbox (no `entry` and `meta` tables)")
        checked = True
        started = time.monotonic()
        # quick_check past the limit is interrupted (SQLITE_INTERRUPT, "interrupted").
        db.set_progress_handler(lambda: int(time.monotonic() - started > limit_s), 10_000)
        try:
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            checked, problems = False, ["ok"]
        db.set_progress_handler(None, 0)  # the counts below are one index or table scan each
        if problems != ["ok"]:
            raise OutboxUnreadable(f"integrity check failed: {'; '.join(problems)}")
        pending, oldest = db.execute(
            "SELECT COUNT(*), MIN(created) FROM entry WHERE acked IS NULL"
        ).fetchone()
        used = db.execute("SELECT COALESCE(SUM(size), 0) FROM entry").fetchone()[0]
        records = dict(db.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", keys))
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        raise OutboxUnreadable(str(exc)) from exc
    finally:
        db.close()
    lost = {key: _loss_record(key, records.get(key)) for key in keys}
    return OutboxReading(int(pending), oldest, int(used), lost[keys[0]], checked, lost[keys[1]])


def _loss_record(key: str, text: object) -> dict[str, int]:
    if not text:
        return {}
    try:
        return {str(k): int(v) for k, v in json.loads(str(text))["dropped"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # The seat would set this outbox aside at start (Outbox reads the same record).
        raise OutboxUnreadable(f"its loss record (meta '{key}') is not readable: {exc}") from exc
