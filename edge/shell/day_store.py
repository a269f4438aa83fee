"""The day's tallies of the norms on disk, so that a restart on the same day continues the day.

Without them a service restart (a power cut, an update, a crash) at 10:30 forgets that the agent
arrived at 08:40: the agent on a break at that moment would be reported absent, and the day's
answer and away counts would start again. Every norm with a `DayTally` (attendance, answer,
away) gives its tally; this shell object writes them to `<state_dir>/day-tallies.json` whenever
they change (checked every second; a write is ~400 bytes, a few times a day) and at stop, and at
start hands a file of today back to the core as one `RestoreDay` input (recorded on a tape like
any input). A file of another day or seat, or one that does not parse, is ignored with a log line
naming the file and what was expected; a norm whose tally is malformed is left at zero and named,
the other norms keep theirs. The hearing dose has its own file (`edge/shell/dose_store.py`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.core.clock import Instant
from edge.core.inputs import RestoreDay
from edge.core.norms import NORMS
from edge.core.norms.base import DayTally, check_tally
from edge.core.state import SeatState
from edge.shell.config import SeatConfig
from edge.shell.day_file import DayFile

if TYPE_CHECKING:
    from edge.shell.runtime import Runtime

log = logging.getLogger(__name__)

FILE_NAME = "day-tallies.json"
FORMAT = "seatbox/day-tallies"
VERSION = 1
CHECK_EVERY_S = 1.0  # how often the tallies are compared with the file (written on change)

# Norm name -> its day tally, for the norms that keep one.
TALLIED: dict[str, DayTally[Any]] = {norm.name: norm.day for norm in NORMS if norm.day is not None}


def tallies(state: SeatState) -> tuple[str, dict[str, dict[str, Any]]]:
    """The day the norms are counting and each tallied norm's tally of it."""
    out: dict[str, dict[str, Any]] = {}
    day = ""
    for name, tally in TALLIED.items():
        norm_state = state.norms[name]
        day = day or getattr(norm_state, "day", "")
        out[name] = tally.save(norm_state)
    return day, out


class DayStore:
    """Saves and restores one seat's day tallies under its state directory."""

    def __init__(self, state_dir: str | Path, site: str, seat: str) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self._file = DayFile(
            self.path,
            FORMAT,
            VERSION,
            site,
            seat,
            "day's tallies",
            "today's arrival, answer and away counts start afresh",
            log,
        )
        self._saved: tuple[str, dict[str, dict[str, Any]]] | None = None

    @classmethod
    def for_config(cls, config: SeatConfig) -> DayStore:
        return cls(config.storage.state_dir, config.seat.site, config.seat.id)

    def load(self, day: str) -> RestoreDay | None:
        """Today's saved tallies, or None (no file, or none usable: logged)."""
        data = self._file.read()
        if data is None:
            return None
        if data.get("day") != day:
            self._file.ignore(f"the tallies of {data.get('day') or 'no day'}", f"today's ({day})")
            return None
        saved = data.get("norms")
        if not isinstance(saved, dict):
            self._file.ignore(f"norms {type(saved).__name__}", "norms: an object of tallies")
            return None
        restored: dict[str, dict[str, Any]] = {}
        for name, tally in TALLIED.items():
            if name not in saved:
                continue
            try:
                restored[name] = check_tally(name, tally.fields, saved[name])
            except ValueError as exc:
                log.warning(
                    "%s: the %s tally is ignored: %s; its counts start afresh", self.path, name, exc
                )
        return RestoreDay(day=day, tallies=restored) if restored else None

    def save(self, state: SeatState, now: Instant) -> bool:
        """Write the tallies if they changed since the last write; False when writing failed."""
        current = tallies(state)
        if current == self._saved:
            return True
        day, norms = current
        if not self._file.write({"day": day, "norms": norms}, now):
            return False
        self._saved = current
        return True

    def attach(self, runtime: Runtime) -> None:
        """Restore today's tallies into the core now, then save on change and at close.

        Call before `runtime.start()`, on the thread that runs the loop, like `DoseStore`.
        """
        now = runtime.clock.now()
        restore = self.load(now.wall.date().isoformat())
        if restore is not None:
            runtime.process(now, restore)
            log.info(
                "%s: restored today's tallies of %s", self.path, ", ".join(sorted(restore.tallies))
            )
        else:
            self._saved = tallies(runtime.state)  # nothing to write until something is counted

        def save() -> None:
            self.save(runtime.state, runtime.clock.now())

        runtime.every(CHECK_EVERY_S, save)
        runtime.close_hooks.append(save)
