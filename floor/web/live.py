"""The live floor the browsers see: one `FloorModel` fed by the ingest's listener hook (one
broker subscription, whatever the number of browsers), turned into Seat rows and team
aggregates, and the changes since the last tick (the SSE diffs).

Thread-safe: `apply` runs on the MQTT thread, `step` wherever the web app calls it from.
Pure of I/O otherwise: time comes in as an argument.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.api.topics import ROOT
from edge.base.schema import valid_id
from floor.model import FloorModel, Parsed, SeatView, topic_parts
from floor.store_common import SeatRecord
from floor.web.places import Places

Seat = dict[str, Any]

# Seats whose colour can change with time alone (a hold growing past its limit) are looked at
# every tick; the others only when a message about them came, or at a full pass this often.
FULL_PASS_S = 30.0
# A full pass is spread over this many steps (10 s at two a second), so no one tick computes
# every row of a 10,000-seat floor while the browsers wait for it (issue 15).
SWEEP_STEPS = 20
RATE_WINDOW_S = 10


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def epoch_of(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Counters:
    """What /metrics reports of the ingest side (messages seen by the live floor)."""

    events: int = 0  # event messages received (before de-duplication by the store)
    messages: int = 0  # every message of the site
    per_second: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=64))

    def event(self, mono: float) -> None:
        self.events += 1
        second = int(mono)
        if self.per_second and self.per_second[-1][0] == second:
            self.per_second[-1] = (second, self.per_second[-1][1] + 1)
        else:
            self.per_second.append((second, 1))

    def rate(self, mono: float) -> float:
        """Events per second over the last RATE_WINDOW_S whole seconds."""
        now = int(mono)
        seen = sum(n for second, n in self.per_second if now - RATE_WINDOW_S <= second < now)
        return seen / RATE_WINDOW_S


class LiveFloor:
    """Seat rows of the whole site, recomputed as messages come and as time passes."""

    def __init__(
        self,
        site: str,
        places: Places,
        level: Callable[[SeatView, float], tuple[str, list[str], str | None]],
    ) -> None:
        self.site = site
        self.places = places
        self._level = level
        self.model = FloorModel(site=site)
        self.counters = Counters()
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._timed: set[str] = set()  # seats whose level may change with time alone
        self.current: dict[str, Seat] = {}
        self._last_full = float("-inf")
        self._sweep: list[str] = []  # seats of the full pass under way, not yet looked at
        self._sweep_chunk = 1
        # Seats shown from the store's copy (seed) until the broker says anything of them.
        self._from_store: set[str] = set()

    # --- the ingest's listener (MQTT thread) -----------------------------------------------

    def apply(self, topic: str, payload: bytes, mono: float, parsed: Parsed | None = None) -> None:
        """One message (the ingest's listener); `parsed` is what the ingest's check made of
        the payload, so it is validated once (issue 15), or None to parse it here."""
        where = topic_parts(topic)
        if where is None:
            return
        with self._lock:
            if where.site == self.site:
                self.model.apply_leaf(where.seat, where.kind, payload, mono, parsed)
            self._dirty.add(where.seat)
            if where.kind != "event":
                self._from_store.discard(where.seat)
            self.counters.messages += 1
            if where.kind == "event":
                self.counters.event(mono)

    def seed(self, records: Iterable[SeatRecord], mono: float) -> int:
        """The store's last state, info and availability of each seat, applied before the
        broker's retained messages arrive, so a restarted service shows the whole floor at
        once whatever the broker still holds (issue 15). Seats the broker has already spoken
        of are left alone; its messages arriving later overwrite the seeded ones. A seeded
        seat's row says `from_store` until the broker sends its state, info or availability.
        Returns the number of seats seeded."""
        seeded = 0
        with self._lock:
            for record in records:
                if record.seat in self.model.seats or not valid_id(record.seat):
                    continue
                base = f"{ROOT}/{self.site}/{record.seat}"
                if record.info:
                    self.model.apply(f"{base}/info", record.info.encode(), mono)
                if record.state:
                    self.model.apply(f"{base}/state", record.state.encode(), mono)
                if record.online is not None:
                    payload = b"online" if record.online else b"offline"
                    self.model.apply(f"{base}/availability", payload, mono)
                if record.seat in self.model.seats:
                    self._dirty.add(record.seat)
                    self._from_store.add(record.seat)
                    seeded += 1
        return seeded

    # --- rows ------------------------------------------------------------------------------

    def seat_row(
        self, seat: str, view: SeatView | None, now: float, day: str | None = None
    ) -> Seat:
        place = self.places.place_on(seat, day or self.places.day(now))
        from_store = seat in self._from_store
        state = view.state if view is not None else None
        online = view.online if view is not None else None
        if view is not None:
            level, reasons, since = self._level(view, now)
        else:
            level, reasons, since = "offline", ["offline"], None
        call = state.call.state if state else "idle"
        return {
            "seat": seat,
            "team": place.team,
            "agent": place.agent,
            "label": place.label,
            "x": place.x,
            "y": place.y,
            "in_layout": place.in_layout,
            "online": online,
            "call": "hold" if call == "held" else call,
            "call_since": state.call.since if state else None,
            "presence": state.presence.state if state else "unknown",
            "presence_since": state.presence.since if state else None,
            "muted": bool(state and state.mute.muted),
            "headset_ok": state.headset.connected if state else None,
            "radar_ok": state.radar.ok if state else None,
            "level": level,
            "reasons": reasons,
            "since": since,
            "violations": [
                {"type": v.type, "since": v.since}
                for v in (state.violations if state else [])
                if self.places.shows(v.type)
            ],
            "from_store": from_store,
        }

    def step(self, now: float) -> dict[str, Seat]:
        """Recompute what may have changed at wall time `now`; the rows that did.

        The rows are computed outside the lock the MQTT thread's `apply` takes, so a long
        step (a full pass over 10,000 seats) does not hold up the ingest (bench/floor.py);
        steps themselves run one at a time."""
        with self._step_lock:
            with self._lock:
                names: set[str] = self._dirty | self._timed
                if not self.current:  # the first rows: every seat at once
                    self._last_full = now
                    names |= set(self.model.seats) | set(self.places.layout_seats())
                else:
                    if not self._sweep and now - self._last_full >= FULL_PASS_S:
                        self._last_full = now
                        self._sweep = sorted(
                            set(self.model.seats) | set(self.places.layout_seats())
                        )
                        self._sweep_chunk = -(-len(self._sweep) // SWEEP_STEPS)
                    if self._sweep:
                        names.update(self._sweep[-self._sweep_chunk :])
                        del self._sweep[-self._sweep_chunk :]
                self._dirty = set()
                views = [(seat, self.model.seats.get(seat)) for seat in names]
            day = self.places.day(now)
            rows = [(seat, self.seat_row(seat, view, now, day)) for seat, view in views]
            changed: dict[str, Seat] = {}
            with self._lock:
                for seat, row in rows:
                    if _timed(row):
                        self._timed.add(seat)
                    else:
                        self._timed.discard(seat)
                    if self.current.get(seat) != row:
                        self.current[seat] = row
                        changed[seat] = row
            return changed

    def rows(self) -> list[Seat]:
        with self._lock:
            return list(self.current.values())

    def views(self) -> list[SeatView]:
        with self._lock:
            return list(self.model.seats.values())


def _timed(row: Seat) -> bool:
    """Whether the row's colour can change with time alone (floor.severity: ringing past the
    answer limit, hold past its limits, away past 5 and 15 minutes)."""
    return row["call"] in ("ringing", "hold") or row["presence"] == "away"


AGG_KEYS = ("online", "on_call", "ringing", "on_hold", "away", "violations")


def aggregate(rows: Iterable[Seat], now: float, min_group: int, team: str | None) -> dict[str, Any]:
    """A TeamAgg over these rows; counts of agents' states suppressed (null) under the
    minimum group size."""
    rows = list(rows)
    counts = dict.fromkeys(AGG_KEYS, 0)
    longest_hold = longest_ring = 0.0
    for row in rows:
        counts["online"] += row["online"] is True
        counts["on_call"] += row["call"] in ("active", "hold")
        counts["ringing"] += row["call"] == "ringing"
        counts["on_hold"] += row["call"] == "hold"
        counts["away"] += row["presence"] == "away"
        counts["violations"] += row["level"] == "violation"
        if row["call"] == "hold" or row["call"] == "ringing":  # parse only these times
            since = epoch_of(row["call_since"])
            if since is not None and row["call"] == "hold":
                longest_hold = max(longest_hold, now - since)
            if since is not None and row["call"] == "ringing":
                longest_ring = max(longest_ring, now - since)
    agg: dict[str, Any] = {} if team is None else {"team": team}
    agg["seats"] = len(rows)
    suppressed = len(rows) < min_group
    for key in AGG_KEYS:
        agg[key] = None if suppressed else counts[key]
    agg["longest_hold_s"] = None if suppressed else int(longest_hold)
    agg["longest_ring_s"] = None if suppressed else int(longest_ring)
    agg["suppressed"] = suppressed
    return agg


def team_aggregates(rows: Iterable[Seat], now: float, min_group: int) -> list[dict[str, Any]]:
    by_team: dict[str, list[Seat]] = {}
    for row in rows:
        by_team.setdefault(row["team"] or "", []).append(row)
    return [aggregate(by_team[team], now, min_group, team) for team in sorted(by_team)]


def wall_now() -> float:
    return time.time()
