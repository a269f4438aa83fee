"""The site layout (`[layout] file` of floor.toml): which seats a site has, their team, label
and optional floor-plan position. docs/floor.md describes the file.

```toml
[teams]                         # optional: teams and their display names
sales = { name = "Sales" }
care = { name = "Customer care" }

[seats]                         # seat id = its team, label and position (grid units)
A-01 = { team = "sales", label = "A1", x = 0, y = 0 }
A-02 = { team = "sales", x = 1, y = 0 }   # label defaults to the seat id
B-01 = { team = "care" }                  # no position: listed, not on the map
```

A seat that publishes but is not in the layout still shows (`in_layout: false`, no team). A bad
file is a ConfigError naming the file, the key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from edge.base.errors import ConfigError
from edge.base.files import read_toml
from edge.base.schema import Id, Section, Text, format_validation_error

GridUnit = Annotated[float, Field(ge=0, le=10_000)]
Label = Annotated[Text, Field(min_length=1, max_length=64)]


class _TeamEntry(Section):
    name: Label | None = None


class _SeatEntry(Section):
    team: Id
    label: Label | None = None
    x: GridUnit | None = None
    y: GridUnit | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> _SeatEntry:
        if (self.x is None) != (self.y is None):
            raise ValueError("expected both x and y (a floor-plan position) or neither")
        return self


class _LayoutFile(Section):
    teams: dict[Id, _TeamEntry] = {}
    seats: dict[Id, _SeatEntry] = {}


@dataclass(frozen=True)
class LayoutSeat:
    seat: str
    team: str | None
    label: str
    x: float | None
    y: float | None
    in_layout: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "seat": self.seat,
            "team": self.team,
            "label": self.label,
            "x": self.x,
            "y": self.y,
            "in_layout": self.in_layout,
        }


@dataclass(frozen=True)
class Layout:
    """Seats -> team, label, position; teams -> display name. `Layout()` is the empty layout
    (no file): every seat is shown, none has a team."""

    seats: dict[str, LayoutSeat] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)  # team id -> display name
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None) -> Layout:
        """The layout in `path` (TOML), or the empty layout for None."""
        if path is None:
            return cls()
        path = Path(path)
        data = read_toml(path)
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "layout") -> Layout:
        try:
            parsed = _LayoutFile.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(source, exc)) from None
        if parsed.teams:
            unknown = [
                f"{source}: [seats] {seat}.team: expected one of the [teams] "
                f"({', '.join(sorted(parsed.teams))}), got {entry.team!r}"
                for seat, entry in parsed.seats.items()
                if entry.team not in parsed.teams
            ]
            if unknown:
                raise ConfigError("\n".join(unknown))
        seats = {
            seat: LayoutSeat(
                seat=seat,
                team=entry.team,
                label=entry.label or seat,
                x=entry.x,
                y=entry.y,
                in_layout=True,
            )
            for seat, entry in parsed.seats.items()
        }
        teams = {team: entry.name or team for team, entry in parsed.teams.items()}
        for entry in parsed.seats.values():  # teams named only by seats: their id is the name
            teams.setdefault(entry.team, entry.team)
        return cls(seats=seats, teams=dict(sorted(teams.items())), source=source)

    def team_of(self, seat: str) -> str | None:
        entry = self.seats.get(seat)
        return entry.team if entry else None

    def seat(self, seat: str) -> LayoutSeat:
        """The seat as the floor shows it: from the layout, or unknown (`in_layout` False)."""
        entry = self.seats.get(seat)
        if entry is not None:
            return entry
        return LayoutSeat(seat=seat, team=None, label=seat, x=None, y=None, in_layout=False)

    def seats_of(self, team: str) -> list[str]:
        return sorted(seat for seat, entry in self.seats.items() if entry.team == team)
