"""The day's hearing dose on disk, so that a restart on the same day continues it.

The pure core keeps the dose in the `hearing` norm's state; this shell object writes it to
`<state_dir>/hearing-dose.json` every `[storage] dose_save_every` and when the seat stops, and at
start hands a file of today back to the core as a `RestoreDose` input. Writes are atomic
(`edge/shell/day_file.py`): after a power cut the file is the old one or the new one, never half of
one. A file of another day, of another seat, of an unknown format or
version, or one that does not parse is ignored with a log line naming the file and what was
expected; the seat then starts today's dose from zero and keeps running.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from dsp.exposure import NoiseDose
from edge.core.clock import Instant
from edge.core.inputs import RestoreDose
from edge.core.norms import hearing
from edge.shell.config import SeatConfig
from edge.shell.day_file import DayFile

if TYPE_CHECKING:
    from edge.shell.runtime import Runtime

log = logging.getLogger(__name__)

FILE_NAME = "hearing-dose.json"
FORMAT = "seatbox/hearing-dose"
VERSION = 1


def today(now: Instant) -> str:
    """The day a dose belongs to: the local date of the seat's clock, as the hearing norm has it."""
    return now.wall.date().isoformat()


class DoseStore:
    """Saves and restores one seat's daily noise dose under its state directory."""

    def __init__(self, state_dir: str | Path, site: str, seat: str, save_every: float) -> None:
        if save_every <= 0:
            raise ValueError(
                f"[storage] dose_save_every: expected a duration > 0, got {save_every}"
            )
        self.path = Path(state_dir) / FILE_NAME
        self.save_every = save_every
        self._file = DayFile(
            self.path,
            FORMAT,
            VERSION,
            site,
            seat,
            "hearing dose",
            "today's hearing dose starts at 0",
            log,
        )
        self._saved: tuple[str, float, float] | None = None  # what the file holds now

    @classmethod
    def for_config(cls, config: SeatConfig) -> DoseStore:
        storage = config.storage
        return cls(storage.state_dir, config.seat.site, config.seat.id, storage.dose_save_every)

    def load(self, day: str) -> RestoreDose | None:
        """Today's saved dose, or None (no file, or a file that cannot be today's: logged)."""
        data = self._file.read()
        if data is None:
            return None
        try:
            dose = NoiseDose.from_dict(
                {key: data.get(key) for key in ("day", "exposure_pa2s", "seconds")}
            )
        except ValueError as exc:
            self._file.ignore(str(exc), "day (YYYY-MM-DD), exposure_pa2s >= 0, seconds >= 0")
            return None
        if dose.day != day:
            self._file.ignore(f"the dose of {dose.day or 'no day'}", f"today's ({day})")
            return None
        return RestoreDose(day=dose.day, exposure_pa2s=dose.exposure_pa2s, seconds=dose.seconds)

    def save(self, state: hearing.State, now: Instant) -> bool:
        """Write the dose if it changed since the last write; False when writing failed."""
        current = (state.day, state.exposure_pa2s, state.seconds)
        if current == self._saved:
            return True
        dose = NoiseDose(day=state.day, exposure_pa2s=state.exposure_pa2s, seconds=state.seconds)
        if not self._file.write(dose.to_dict(), now):
            return False
        self._saved = current
        return True

    # --- on a runtime ----------------------------------------------------------------------

    def attach(self, runtime: Runtime) -> None:
        """Restore today's dose into the core now, then save periodically and at close.

        Call before `runtime.start()`, on the thread that runs the loop: the restore is processed
        at once, so the first state the broker sees already carries the restored dose.
        """
        now = runtime.clock.now()
        restore = self.load(today(now))
        if restore is not None:
            runtime.process(now, restore)
            restored = runtime.state.norms["hearing"]
            log.info(
                "%s: restored today's hearing dose: %.2f %% after %.0f s of receive audio",
                self.path,
                restored.dose_pct,
                restored.seconds,
            )

        def save() -> None:
            self.save(runtime.state.norms["hearing"], runtime.clock.now())

        runtime.every(self.save_every, save)
        runtime.close_hooks.append(save)
