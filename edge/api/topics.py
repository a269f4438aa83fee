"""The MQTT topic tree of API v1: `seatbox/v1/<site>/<seat>/...`, built only from valid ids,
and the one parser of a seat topic (`parse_topic`), for the seat and the floor alike.

Ids are checked before they become topic levels (no `+ # / .`), so no wildcard leaks in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from edge.base.errors import ConfigError
from edge.base.schema import valid_id

ROOT = "seatbox/v1"


@dataclass(frozen=True)
class Topics:
    site: str
    seat: str

    def __post_init__(self) -> None:
        for name, value in (("site", self.site), ("seat", self.seat)):
            if not valid_id(value):
                raise ConfigError(
                    f"[seat] {'id' if name == 'seat' else name}: {value!r} cannot be a topic "
                    "level: expected letters, digits, '_' or '-' (1 to 64), no '+ # / .'"
                )

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site}/{self.seat}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def levels(self) -> str:
        return f"{self.base}/levels"

    @property
    def info(self) -> str:
        return f"{self.base}/info"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/+"

    def reply(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/reply"

    def command_name(self, topic: str) -> str | None:
        prefix = f"{self.base}/cmd/"
        if topic.startswith(prefix):
            name = topic[len(prefix) :]
            return name if "/" not in name else None
        return None


def site_filter(site: str, leaf: str) -> str:
    """A subscription for every seat of a site: `seatbox/v1/<site>/+/<leaf>`."""
    if not valid_id(site):
        raise ConfigError(f"site: {site!r}: expected letters, digits, '_' or '-' (1 to 64)")
    return f"{ROOT}/{site}/+/{leaf}"


class SeatTopic(NamedTuple):
    """A seat topic taken apart; a tuple, so `site, seat, kind = parse_topic(t)` works too."""

    site: str
    seat: str
    kind: str  # `event`, `state`, `cmd/resend`, `cmd/call/reply`, ...


def parse_topic(topic: str) -> SeatTopic | None:
    """`(site, seat, kind)` of a seat topic, or None for anything else: a level that is not a
    valid id (`alice@supervisors`) is no seat, whoever managed to publish there."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        return None
    if not (valid_id(parts[2]) and valid_id(parts[3])):
        return None
    kind = "/".join(parts[4:])
    return SeatTopic(parts[2], parts[3], kind) if kind else None
