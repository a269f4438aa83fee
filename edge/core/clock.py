"""Time as the seat core sees it: a monotonic reading for durations, a wall clock for people.

The core never reads a clock; the shell passes an `Instant` to every step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo


@dataclass(frozen=True, slots=True)
class Instant:
    """One moment: `mono` seconds (monotonic) and `wall` (aware datetime in the seat's zone)."""

    mono: float
    wall: datetime

    def after(self, seconds: float) -> Instant:
        return Instant(self.mono + seconds, self.wall + timedelta(seconds=seconds))

    def mono_at(self, wall: datetime) -> float:
        """The monotonic reading at which the wall clock will show `wall`."""
        return self.mono + (wall - self.wall).total_seconds()

    def iso(self) -> str:
        """Wall clock with its offset, as events carry it."""
        return iso(self.wall)

    def iso_utc(self) -> str:
        """UTC, as state parts carry their `since`."""
        return iso(self.wall.astimezone(UTC))


def iso(wall: datetime) -> str:
    text = wall.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if wall.utcoffset() == timedelta(0) else text


class Clock:
    """The real clock of a running seat."""

    # Whether time passes by itself (the runtime then waits on its queue) or only when told.
    realtime = True

    def __init__(self, zone: tzinfo | None = None) -> None:
        self.zone = zone

    def now(self) -> Instant:
        return Instant(time.monotonic(), datetime.now(self.zone or UTC).astimezone(self.zone))

    def sleep_until(self, mono: float) -> None:
        delay = mono - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class SimClock(Clock):
    """Simulated time for scenarios: starts at a wall time, advances when told."""

    def __init__(self, start: datetime, realtime: bool = False) -> None:
        super().__init__(start.tzinfo)
        self.start = start
        self.realtime = realtime
        self.t = 0.0
        self._origin = time.monotonic()

    def now(self) -> Instant:
        if self.realtime:
            self.t = time.monotonic() - self._origin
        return Instant(self.t, self.start + timedelta(seconds=self.t))

    def sleep_until(self, mono: float) -> None:
        if self.realtime:
            delay = mono - (time.monotonic() - self._origin)
            if delay > 0:
                time.sleep(delay)
        self.t = max(self.t, mono)
