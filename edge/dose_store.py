"""The day's hearing dose on disk, so that a restart on the same day continues it.

The pure core keeps the dose in the `hearing` norm's state; this shell object writes it to
`<state_dir>/hearing-dose.json` every `[storage] dose_save_every` and when the seat stops, and at
start hands a file of today back to the core as a `RestoreDose` input. Writes are atomic (temp
file, fsync, rename, fsync of the directory): after a power cut the file is the old one or the
new one, never half of one. A file of another day, of another seat, of an unknown format or
version, or one that does not parse is ignored with a log line naming the file and what was
expected; the seat then starts today's dose from zero and keeps running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsp.exposure import NoiseDose
from edge.clock import Instant
from edge.config import SeatConfig
from edge.inputs import RestoreDose
from edge.norms import hearing

if TYPE_CHECKING:
    from edge.runtime import Runtime

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
        self.site, self.seat = site, seat
        self.save_every = save_every
        self._saved: tuple[str, float, float] | None = None  # what the file holds now
        self._last_error = ""

    @classmethod
    def for_config(cls, config: SeatConfig) -> DoseStore:
        storage = config.storage
        return cls(storage.state_dir, config.seat.site, config.seat.id, storage.dose_save_every)

    # --- reading ---------------------------------------------------------------------------

    def load(self, day: str) -> RestoreDose | None:
        """Today's saved dose, or None (no file, or a file that cannot be today's: logged)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.info("%s: no saved hearing dose; today's dose starts at 0", self.path)
            return None
        except OSError as exc:
            self._ignore(f"cannot read it ({exc.strerror})", "a readable file")
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self._ignore(f"not JSON ({exc})", f"a {FORMAT} version {VERSION} JSON file")
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            self._ignore(f"format {got!r}", f"format {FORMAT!r}")
            return None
        if data.get("version") != VERSION:
            self._ignore(f"version {data.get('version')!r}", f"version {VERSION}")
            return None
        if (data.get("site"), data.get("seat")) != (self.site, self.seat):
            got = f"{data.get('site')}/{data.get('seat')}"
            self._ignore(f"the dose of seat {got}", f"seat {self.site}/{self.seat}")
            return None
        try:
            dose = NoiseDose.from_dict(
                {key: data.get(key) for key in ("day", "exposure_pa2s", "seconds")}
            )
        except ValueError as exc:
            self._ignore(str(exc), "day (YYYY-MM-DD), exposure_pa2s >= 0, seconds >= 0")
            return None
        if dose.day != day:
            self._ignore(f"the dose of {dose.day or 'no day'}", f"today's ({day})")
            return None
        return RestoreDose(day=dose.day, exposure_pa2s=dose.exposure_pa2s, seconds=dose.seconds)

    def _ignore(self, found: str, expected: str) -> None:
        log.warning(
            "%s: ignored: %s, expected %s; today's hearing dose starts at 0",
            self.path,
            found,
            expected,
        )

    # --- writing ---------------------------------------------------------------------------

    def save(self, state: hearing.State, now: Instant) -> bool:
        """Write the dose if it changed since the last write; False when writing failed."""
        current = (state.day, state.exposure_pa2s, state.seconds)
        if current == self._saved:
            return True
        dose = NoiseDose(day=state.day, exposure_pa2s=state.exposure_pa2s, seconds=state.seconds)
        payload: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "site": self.site,
            "seat": self.seat,
            "saved_at": now.iso(),
            **dose.to_dict(),
        }
        try:
            self._write_atomically(json.dumps(payload, indent=1) + "\n")
        except OSError as exc:
            message = f"{self.path}: cannot save the hearing dose: {exc.strerror or exc}"
            if message != self._last_error:  # once per cause, not every minute
                log.error("%s (the seat keeps running; a restart would lose today's dose)", message)
                self._last_error = message
            return False
        if self._last_error:
            log.info("%s: hearing dose saved again", self.path)
            self._last_error = ""
        self._saved = current
        return True

    def _write_atomically(self, text: str) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)

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
