"""The site's privacy switches (`[privacy]` of floor.toml) as the floor applies them.

`norms` names the event types shown (in timelines and reports): `"*"` all, `"hold.*"` a family
(`hold.long`, `hold.too_long`, ...), `"call.dead_air"` one type. Events no pattern names are
left out of timelines and of the report's `events` counts; the report's own columns that come
from them (e.g. `holds_too_long` from `hold.too_long`) are then empty (null) as well.
"""

from __future__ import annotations

from functools import lru_cache

from floor.config import PrivacySection


class Privacy:
    def __init__(self, section: PrivacySection | None = None) -> None:
        self.section = section or PrivacySection()
        self.patterns: tuple[str, ...] = tuple(self.section.norms)
        self._shows = lru_cache(maxsize=1024)(self._match)

    @property
    def individual_views(self) -> bool:
        """False: team-only mode (no seat timeline, no per-seat or per-agent report rows)."""
        return self.section.individual_views

    @property
    def min_group_size(self) -> int:
        """Aggregates over fewer people than this are not shown."""
        return self.section.min_group_size

    def shows(self, event_type: str) -> bool:
        """Whether events of this type may be shown (and stored)."""
        return self._shows(event_type)

    def _match(self, event_type: str) -> bool:
        for pattern in self.patterns:
            if pattern == "*" or pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False
