"""Where the web app meets the site's layout, roster, privacy switches and severity rules
(floor.layout, floor.roster, floor.privacy, floor.severity): one place that answers "which
team and agent is this seat today", "may this event type be shown" and "what colour is it".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from floor.config import FloorConfig, FloorPaths
from floor.layout import Layout
from floor.model import SeatView
from floor.privacy import Privacy
from floor.roster import Roster
from floor.severity import RANK, REASONS, Thresholds, severity


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

    def __init__(
        self,
        config: FloorConfig,
        layout: Layout | None = None,
        roster: Roster | None = None,
    ) -> None:
        self.site = config.site.id
        self.timezone = config.site.timezone
        self.tz = ZoneInfo(config.site.timezone)
        self.layout = layout or Layout()
        self.roster = roster or Roster()
        self.privacy = Privacy(config.privacy)

    @classmethod
    def load(cls, config: FloorConfig, paths: FloorPaths) -> Places:
        """The layout and roster files the config names (ConfigError naming a bad one)."""
        return cls(config, Layout.load(paths.layout), Roster.load(paths.roster))

    @property
    def individual_views(self) -> bool:
        return self.privacy.individual_views

    @property
    def min_group_size(self) -> int:
        return self.privacy.min_group_size

    def day(self, now: float) -> str:
        """The site's local date at wall time `now`."""
        return datetime.fromtimestamp(now, UTC).astimezone(self.tz).date().isoformat()

    def place_on(self, seat: str, day: str) -> Place:
        """The seat on a local day: the roster's agent and team (if it says), else the
        layout's team."""
        entry = self.layout.seat(seat)
        sitting = self.roster.on(day, seat)
        team = entry.team
        if sitting is not None and sitting.team:
            team = sitting.team
        return Place(
            team=team,
            agent=sitting.agent if sitting else None,
            label=entry.label,
            x=entry.x,
            y=entry.y,
            in_layout=entry.in_layout,
        )

    def place(self, seat: str, now: float) -> Place:
        return self.place_on(seat, self.day(now))

    def layout_seats(self) -> list[str]:
        return list(self.layout.seats)

    def known(self, seat: str) -> bool:
        return seat in self.layout.seats

    def shows(self, event_type: str) -> bool:
        """[privacy] norms: whether an event type (or violation) may be shown."""
        return self.privacy.shows(event_type)

    def level(self, view: SeatView, now: float) -> tuple[str, list[str], str | None]:
        """(level, reasons, since) by the seat's own published thresholds (floor.severity);
        reasons about norms the site does not show are left out."""
        found = severity(view, Thresholds.from_info(view.info), now)
        reasons = [r for r in found.reasons if r in _ALWAYS or self.shows(_NORM.get(r, r))]
        if reasons == found.reasons:
            return found.level, found.reasons, found.since
        if not reasons:
            return "ok", [], None
        # A hidden norm was among them: the colour is that of the most urgent shown one (its
        # start is not kept apart by floor.severity: none is given).
        level = max((REASONS[r] for r in reasons), key=RANK.__getitem__)
        return level, reasons, None


# Reasons that are not norms (the box's own health): always shown.
_ALWAYS = {"offline", "state.unknown", "headset.lost", "radar.lost", "audio.lost", "state.bad"}
# Reason key -> the event type a [privacy] norms pattern names.
_NORM = {
    "ring.late": "answer.late",
    "hold.violation": "hold.too_long",
    "hold.warn": "hold.long",
    "away.15min": "away.too_long",
    "away.5min": "away.long",
    "speech_on_hold": "hold.unmuted_speech",
}
