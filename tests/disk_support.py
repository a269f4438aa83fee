"""Real storage faults for tests: a small tmpfs that fills up for real (ENOSPC), and garbage
written into the data pages of an SQLite file.

Mounting needs root (CAP_SYS_ADMIN); without it the tests that need a full disk are skipped
and say why.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of `size_kib` mounted at `path` for the test, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a really full disk needs a tmpfs mount: run the tests as root")
    if shutil.which("mount") is None:
        pytest.skip("mount(8) not installed")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (container without CAP_SYS_ADMIN?): {done.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in `directory` until the file system says ENOSPC; returns the file."""
    filler = directory / name
    chunk = b"\0" * 4096
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
    # Blocks of 1 byte may still fit after the last 4 KiB refused: take them too.
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(b"\0")
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
    return filler


def garble_data_pages(path: Path, seed: int = 12) -> list[int]:
    """Overwrite pages in the middle of an SQLite file with random bytes, page 1 (the header
    and schema) untouched: the file still opens, its data does not read. Returns the pages."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    finally:
        db.close()
    assert pages >= 8, f"{path}: only {pages} pages, too small to garble its data alone"
    rng = random.Random(seed)
    chosen = list(range(pages // 3, pages // 3 + max(2, pages // 4)))
    with path.open("r+b") as raw:
        for page in chosen:
            raw.seek((page - 1) * page_size)
            raw.write(rng.randbytes(page_size))
    return chosen
