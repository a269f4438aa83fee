"""What a supervisor knows of a site: per seat its availability, retained state, profile and
recent events, from the messages seats publish.

Pure: messages in (topic, payload, monotonic time), seats out; no MQTT, no screen. Every
payload is checked against the v1 schemas (`edge.api.models`) before the model keeps it: a bad
one marks its seat ("bad state: call.state"), never the floor. `floor.view` subscribes and
renders it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from edge.api.models import (
    SeatInfo,
    SeatState,
    StreamError,
    StreamEvent,
    parse_availability,
    parse_event,
    parse_info,
    parse_state,
)
from edge.api.stream import StreamTracker, Verdict
from edge.api.topics import SeatTopic, parse_topic

log = logging.getLogger(__name__)

# What a leaf's payload parsed to (`edge.api.models`), or why it did not: the ingest checks
# each payload once and hands the result to its listeners, so the live floor does not
# validate it a second time (issue 15: the ingest's thread was 41 % of the service).
Parsed = bool | SeatState | SeatInfo | StreamEvent | StreamError
_T = TypeVar("_T")


@lru_cache(maxsize=65_536)
def _cached_topic(topic: str) -> SeatTopic | None:
    return parse_topic(topic)


def topic_parts(topic: str) -> SeatTopic | None:
    """`parse_topic`, remembered: a site's topics repeat (four a seat), and the MQTT thread
    took each one apart twice per message (issue 15). Long topics (hostile ones) are not
    kept, so the cache stays under ~16 MB whatever is published."""
    return _cached_topic(topic) if len(topic) <= 256 else parse_topic(topic)


def _checked(
    parsed: Parsed | None, kind: type[_T], parse: Callable[[bytes], _T], payload: bytes
) -> _T:
    """`parsed` if it is already the leaf's value, its error raised if it is one, else the
    payload parsed here (a caller without the ingest: the floor view, the seed)."""
    if isinstance(parsed, StreamError):
        raise parsed
    return parsed if isinstance(parsed, kind) else parse(payload)


@dataclass
class SeatView:
    seat: str
    online: bool | None = None
    state: SeatState | None = None  # None until a valid one, or after a bad one
    last_event: str = ""
    last_event_ts: str = ""
    events: int = 0
    missing: int = 0  # events of this seat not (yet) received: gaps being asked for again
    lost: int = 0  # events the seat reported dropped, or gaps no resend filled
    profile: str = ""  # from the retained `info`: the profile's name and digest
    profile_digest: str = ""
    info: SeatInfo | None = None  # the last valid retained `info` (thresholds: floor.severity)
    # Per topic leaf, the last payload that failed its schema ("bad state: call.state"),
    # until a valid one arrives on the same leaf.
    problems: dict[str, str] = field(default_factory=dict)


@dataclass
class FloorModel:
    """What a supervisor knows: per seat its availability, retained state and recent events."""

    site: str
    seats: dict[str, SeatView] = field(default_factory=dict)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    # De-duplicates by (seat, boot_id, seq), finds gaps and says which resends to ask for.
    tracker: StreamTracker = field(default_factory=StreamTracker)
    invalid: int = 0  # event payloads that were not seatbox events (ignored)
    # Seats whose `missing` the last `_count_gaps` set above 0.
    _missing_at: set[str] = field(default_factory=set, repr=False)

    def seat(self, seat_id: str) -> SeatView:
        return self.seats.setdefault(seat_id, SeatView(seat=seat_id))

    def apply(
        self, topic: str, payload: bytes, now: float | None = None, parsed: Parsed | None = None
    ) -> None:
        """One message in; `now` (monotonic seconds) times gaps for resend requests. Topic
        levels that are not valid seat ids (`alice@supervisors`) are not seats: ignored.
        `parsed`: what the payload already parsed to (the ingest's check), if known."""
        where = topic_parts(topic)
        if where is None or where.site != self.site:
            return
        self.apply_leaf(where.seat, where.kind, payload, now, parsed)

    def apply_leaf(
        self,
        seat: str,
        leaf: str,
        payload: bytes,
        now: float | None = None,
        parsed: Parsed | None = None,
    ) -> None:
        """`apply` for a topic already parsed (a seat of this site) to `seat` and `leaf`."""
        if leaf not in ("availability", "state", "info", "event"):
            return
        view = self.seat(seat)
        try:
            if leaf == "availability":
                view.online = _checked(parsed, bool, parse_availability, payload)
            elif leaf == "state":
                view.state = None  # a bad state leaves nothing stale on screen
                view.state = _checked(parsed, SeatState, parse_state, payload)
            elif leaf == "info":
                info = _checked(parsed, SeatInfo, parse_info, payload)
                view.profile, view.profile_digest = info.profile, info.profile_digest
                view.info = info
            else:
                event = _checked(parsed, StreamEvent, parse_event, payload)
                self._event(view, event, time.monotonic() if now is None else now)
        except StreamError as exc:
            problem = f"bad {leaf}: {exc.field or 'payload'}"
            if view.problems.get(leaf) != problem:  # a seat repeating itself: one line
                log.warning("floor view: seat %s: %s", view.seat, exc)
            view.problems[leaf] = problem
            if leaf == "event":
                self.invalid += 1
            return
        view.problems.pop(leaf, None)

    def usual_profile(self) -> str:
        """The profile digest most seats enforce ("" before any `info`); a seat with another
        one enforces other numbers than its neighbours, which a supervisor should know."""
        counts: dict[str, int] = {}
        for view in self.seats.values():
            if view.profile_digest:
                counts[view.profile_digest] = counts.get(view.profile_digest, 0) + 1
        return max(sorted(counts), key=counts.__getitem__) if counts else ""

    def _event(self, view: SeatView, event: StreamEvent, now: float) -> None:
        accepted = self.tracker.accept(self.site, view.seat, event, now)
        if accepted.verdict is Verdict.DUPLICATE:
            return  # QoS 1 and resends may deliver twice; the floor counts once
        view.events += 1
        if event.type == "outbox.loss":
            view.lost += event.data["total"]  # parse_event checked it: an int >= 0
        # Gaps change only when this event opened one, filled one of this seat's, or reported
        # a loss (resends() recounts after giving up): recounting every seat for every event
        # is O(seats) per event, 68 % of the service's time at 10,000 seats (bench/floor.py).
        if accepted.gap_opened is not None or view.missing or event.type == "outbox.loss":
            self._count_gaps()
        view.last_event = event.type
        view.last_event_ts = event.ts
        if _notable(view.last_event):
            self.log.append(f"{event.ts[11:19]} {view.seat} {view.last_event}")

    def resends(self, now: float) -> list[tuple[str, bytes]]:
        """(topic, payload) of the `cmd/resend` requests due now; gaps given up count as lost."""
        given_up = len(self.tracker.given_up())
        requests = self.tracker.due_resends(now)
        for gap in self.tracker.given_up()[given_up:]:
            self.seat(gap.seat).lost += gap.last - gap.first + 1
        self._count_gaps()
        return [(r.topic, r.payload()) for r in requests]

    def _count_gaps(self) -> None:
        missing: dict[str, int] = {}
        for gap in self.tracker.gaps():
            missing[gap.seat] = missing.get(gap.seat, 0) + gap.last - gap.first + 1
        # Only seats that were missing something, or are now, can change: not every seat of
        # the site every second (`resends`).
        for seat_id in self._missing_at | missing.keys():
            view = self.seats.get(seat_id)
            if view is not None:
                view.missing = missing.get(seat_id, 0)
        self._missing_at = set(missing)


def _notable(kind: str) -> bool:
    return kind.split(".")[0] in {
        "answer",
        "greeting",
        "hold",
        "speech",
        "talk",
        "floor",
        "hearing",
        "away",
        "shift",
    } or kind in {"call.dead_air", "headset.impact", "headset.disconnected", "radar.lost"}
