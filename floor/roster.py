"""The roster (`[roster] file` of floor.toml): who sits where on which day, for hot-desking.

A CSV file with the header `date,seat,agent,team`, one row per seat and local day of the site:

```csv
date,seat,agent,team
2026-11-23,A-01,agent-007,sales
2026-11-23,A-02,agent-011,
```

`date` is an ISO date (YYYY-MM-DD); `seat` and `agent` are ids (1-64 of A-Z a-z 0-9 _ -);
`team` is an id, or empty for the seat's team in the layout. A team given here overrides the
layout's that day. One row per (date, seat). A bad row is a ConfigError naming the file, the
line and the column, and what was expected.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from edge.base.errors import ConfigError
from edge.base.files import read_text
from edge.base.schema import valid_id

HEADER = ("date", "seat", "agent", "team")
# 10,000 seats for a month at ~40 bytes a row is 12 MB.
MAX_ROSTER_BYTES = 64 * 1024 * 1024
_ID_NEED = "expected an id: 1 to 64 of A-Z a-z 0-9 _ -"


@dataclass(frozen=True)
class RosterEntry:
    day: str  # YYYY-MM-DD, the site's local day
    seat: str
    agent: str
    team: str | None  # None: the layout's team of the seat


@dataclass(frozen=True)
class Roster:
    entries: dict[tuple[str, str], RosterEntry] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None) -> Roster:
        """The roster in `path`, or the empty roster for None."""
        if path is None:
            return cls()
        path = Path(path)
        return cls.parse(read_text(path, MAX_ROSTER_BYTES), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "roster") -> Roster:
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ConfigError(f"{source}: line 1: not CSV ({exc})") from None
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise ConfigError(f"{source}: line 1: expected the header {','.join(HEADER)}")
        entries: dict[tuple[str, str], RosterEntry] = {}
        problems: list[str] = []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(HEADER):
                    problems.append(
                        f"{source}: line {line}: expected 4 columns (date,seat,agent,team), "
                        f"got {len(row)}"
                    )
                    continue
                entry, bad = _entry(row)
                problems += [f"{source}: line {line}, column {col}: {need}" for col, need in bad]
                if entry is None:
                    continue
                key = (entry.day, entry.seat)
                if key in entries:
                    problems.append(
                        f"{source}: line {line}, column seat: expected one row per date and "
                        f"seat, {entry.seat} on {entry.day} is already given"
                    )
                    continue
                entries[key] = entry
                if len(problems) >= 20:
                    break
        except csv.Error as exc:
            problems.append(f"{source}: line {reader.line_num}: not CSV ({exc})")
        if problems:
            raise ConfigError("\n".join(problems[:20]))
        return cls(entries=entries, source=source)

    def on(self, day: str | date, seat: str) -> RosterEntry | None:
        """Who sat at `seat` on the local `day`, if the roster says."""
        text = day.isoformat() if isinstance(day, date) else day
        return self.entries.get((text, seat))

    def assignment(
        self, day: str | date, seat: str, layout_team: str | None
    ) -> tuple[str | None, str | None]:
        """(agent, team) of `seat` on the local `day`: the roster's, the team falling back to
        the layout's (`layout_team`)."""
        entry = self.on(day, seat)
        if entry is None:
            return None, layout_team
        return entry.agent, entry.team or layout_team

    def day(self, day: str | date) -> list[RosterEntry]:
        text = day.isoformat() if isinstance(day, date) else day
        return [entry for (d, _), entry in sorted(self.entries.items()) if d == text]


def _entry(row: list[str]) -> tuple[RosterEntry | None, list[tuple[str, str]]]:
    day, seat, agent, team = (cell.strip() for cell in row)
    bad: list[tuple[str, str]] = []
    try:
        if len(day) != 10:
            raise ValueError
        date.fromisoformat(day)
    except ValueError:
        bad.append(("date", f"expected an ISO date YYYY-MM-DD, got {day[:40]!r}"))
    for name, value in (("seat", seat), ("agent", agent)):
        if not valid_id(value):
            bad.append((name, f"{_ID_NEED}, got {value[:70]!r}"))
    if team and not valid_id(team):
        bad.append(("team", f"{_ID_NEED} (or empty for the layout's team), got {team[:70]!r}"))
    if bad:
        return None, bad
    return RosterEntry(day=day, seat=seat, agent=agent, team=team or None), []
