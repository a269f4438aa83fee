"""One seat's JSON record of today's figures under its state directory, written atomically.

The hearing dose (`edge/shell/dose_store.py`) and the day's tallies of the norms (`edge/shell/day_store.py`)
are each such a file: `{"format", "version", "site", "seat", "saved_at", ...fields}`. Writes go to
a temp file, are fsynced and renamed over the old one, then the directory is fsynced: after a
power cut the file is the old one or the new one, never half of one. A file that cannot be this
seat's (unreadable, not JSON, another format, version or seat) is ignored with one log line
naming the file, what was found and what was expected; a failed write is logged once per cause.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from drivers.files import write_atomically
from edge.core.clock import Instant


class DayFile:
    """Reads and writes one such file; `what` names its content in log lines ("hearing dose"),
    `fresh` says what happens without it ("today's hearing dose starts at 0")."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        version: int,
        site: str,
        seat: str,
        what: str,
        fresh: str,
        log: logging.Logger,
    ) -> None:
        self.path, self.format, self.version = path, fmt, version
        self.site, self.seat = site, seat
        self.what, self.fresh = what, fresh
        self.log = log
        self._last_error = ""

    def read(self) -> dict[str, Any] | None:
        """The file's content when it is a file of this format, version and seat; else None."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.log.info("%s: no saved %s; %s", self.path, self.what, self.fresh)
            return None
        except OSError as exc:
            self.ignore(f"cannot read it ({exc.strerror})", "a readable file")
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            self.ignore(f"not JSON ({exc})", f"a {self.format} version {self.version} JSON file")
            return None
        if not isinstance(data, dict) or data.get("format") != self.format:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            self.ignore(f"format {got!r}", f"format {self.format!r}")
            return None
        if data.get("version") != self.version:
            self.ignore(f"version {data.get('version')!r}", f"version {self.version}")
            return None
        if (data.get("site"), data.get("seat")) != (self.site, self.seat):
            got = f"{data.get('site')}/{data.get('seat')}"
            self.ignore(f"the {self.what} of seat {got}", f"seat {self.site}/{self.seat}")
            return None
        return data

    def ignore(self, found: str, expected: str) -> None:
        self.log.warning("%s: ignored: %s, expected %s; %s", self.path, found, expected, self.fresh)

    def write(self, fields: dict[str, Any], now: Instant) -> bool:
        """Replace the file with `fields` in the envelope; False (logged once) when it failed."""
        payload: dict[str, Any] = {
            "format": self.format,
            "version": self.version,
            "site": self.site,
            "seat": self.seat,
            "saved_at": now.iso(),
            **fields,
        }
        try:
            write_atomically(self.path, json.dumps(payload, indent=1) + "\n")
        except OSError as exc:
            message = f"{self.path}: cannot save the {self.what}: {exc.strerror or exc}"
            if message != self._last_error:  # once per cause, not every minute
                self.log.error(
                    "%s (the seat keeps running; a restart would lose today's %s)",
                    message,
                    self.what,
                )
                self._last_error = message
            return False
        if self._last_error:
            self.log.info("%s: %s saved again", self.path, self.what)
            self._last_error = ""
        return True
