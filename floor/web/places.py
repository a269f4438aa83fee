"""Where the web app meets the site's layout, roster, privacy switches and severity rules: one
place that answers "which team and agent is this seat, today", "may this event type be shown"
and "what colour is this seat".
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from floor.config import FloorConfig
from floor.model import SeatView


@dataclass(frozen=True)
class Place:
    team: str | None
    agent: str | None
    label: str
    x: float | None
    y: float | None
    in_layout: bool


class Places:
    """The site's seats as the layout and roster describe them, and its privacy switches."""

    def __init__(self, config: FloorConfig) -> None:
        self.site = config.site.id
        self.timezone = config.site.timezone
        self.tz = ZoneInfo(config.site.timezone)
        self.individual_views = config.privacy.individual_views
        self.min_group_size = config.privacy.min_group_size
        self._norms = list(config.privacy.norms)

    def day(self, now: float) -> str:
        """The site's local date at wall time `now`."""
        return datetime.fromtimestamp(now, UTC).astimezone(self.tz).date().isoformat()

    def place(self, seat: str, now: float) -> Place:
        return Place(team=None, agent=None, label=seat, x=None, y=None, in_layout=False)

    def layout_seats(self) -> list[str]:
        return []

    def teams(self) -> list[str]:
        return []

    def shows(self, event_type: str) -> bool:
        """[privacy] norms: whether an event type (or violation) may be shown and stored."""
        return any(
            pattern == "*" or fnmatch.fnmatchcase(event_type, pattern) for pattern in self._norms
        )

    def level(self, view: SeatView, now: float) -> tuple[str, list[str], str | None]:
        """(level, reasons, since) from what the seat itself reports: offline; fault (headset
        or radar lost); violation (the seat's own open violations, by its profile's limits)."""
        if view.online is False:
            return "offline", ["offline"], None
        state = view.state
        if state is None:
            return "ok", [], None
        if not state.headset.connected:
            return "fault", ["headset.lost"], state.headset.since
        if state.radar.ok is False:
            return "fault", ["radar.lost"], state.radar.since
        shown = [v for v in state.violations if self.shows(v.type)]
        if shown:
            return "violation", [v.type for v in shown], min(v.since for v in shown)
        return "ok", [], None
