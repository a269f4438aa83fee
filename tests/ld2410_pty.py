"""An emulated LD2410 on a real pseudo-terminal pair for the radar tests.

The emulator speaks on the pty master; the code under test opens the slave path with pyserial.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from drivers.radar.ld2410_emulator import LD2410Emulator, open_pty


@contextlib.contextmanager
def emulated_radar(link: str | None = None, **options: Any) -> Iterator[tuple[LD2410Emulator, str]]:
    """(emulator, path): path is `link` when given (a symlink to the slave), else the slave."""
    master, slave, path = open_pty(link)
    options.setdefault("period", 0.02)
    emulator = LD2410Emulator(master, **options)
    emulator.set_target("still", 60, 50, 60, 50)
    emulator.start()
    try:
        yield emulator, link or path
    finally:
        emulator.stop()
        os.close(master)
        os.close(slave)
