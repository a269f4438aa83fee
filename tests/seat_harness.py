"""Drive the pure seat core with a fake clock: inputs at given seconds, deadlines in between.

Ticks are given exactly at the deadlines the core asks for, as the runtime does; no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.core.clock import Instant
from edge.core.effects import Effect, Event
from edge.core.inputs import Input, Tick
from edge.core.profile import Profile
from edge.core.profile_schema import profile_from_dict
from edge.core.seat import new_seat, next_deadline, step
from edge.core.state import SeatState
from edge.shell.config import load_profile

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_0844 = datetime(2026, 11, 23, 8, 44, tzinfo=TZ)


def profile_with(**sections: dict[str, Any]) -> Profile:
    """The default profile with some keys changed (as a site profile would)."""
    base = load_profile("default")
    data = {name: section.model_dump(mode="json") for name, section in base.sections.items()}
    for name, values in sections.items():
        data[name].update(values)
    return profile_from_dict("test", data)


@dataclass
class Harness:
    profile: Profile = field(default_factory=lambda: load_profile("default"))
    start: datetime = MONDAY_0844
    t: float = 0.0
    effects: list[tuple[float, Effect]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state: SeatState = new_seat(self.profile, self.instant(0.0))

    def instant(self, t: float) -> Instant:
        from datetime import timedelta

        return Instant(t, self.start + timedelta(seconds=t))

    def _step(self, inp: Input, t: float) -> None:
        self.state, effects = step(self.state, inp, self.instant(t))
        self.effects += [(t, e) for e in effects]
        self.t = t

    def until(self, t: float) -> None:
        """Let time pass to `t`, ticking at every deadline on the way (and at `t`)."""
        while True:
            deadline = next_deadline(self.state, self.instant(self.t))
            if deadline is None or deadline > t + 1e-9:
                break
            self._step(Tick(), max(deadline, self.t))
        self.t = t

    def at(self, t: float, *inputs: Input) -> None:
        self.until(t)
        for inp in inputs:
            self._step(inp, t)

    def events(self, prefix: str = "") -> list[tuple[float, str, dict[str, Any]]]:
        return [
            (t, e.type, e.data)
            for t, e in self.effects
            if isinstance(e, Event) and e.type.startswith(prefix)
        ]

    def types(self, prefix: str = "") -> list[str]:
        return [kind for _, kind, _ in self.events(prefix)]

    def of(self, kind: type) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.effects if isinstance(e, kind)]
