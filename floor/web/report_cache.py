"""Whole-site daily reports of finished days, kept in the floor service's memory.

A finished day's report (`floor.reports.daily_report`, the site's local day before today) is
computed once and served again while nothing it reads has changed: at 10,000 seats it costs
about 30 s, and at 8:00 every supervisor opens yesterday's. Today's (and a future day's) report
is always computed fresh. Only the unscoped report is kept; scoping per role, the access log
and the rendering stay per request (floor.web.app).

What a finished day's report reads can still change: a seat that was offline replays its
outbox after midnight (events of an earlier day), the retention purge deletes raw events and
forgotten seats, and a seat's `info` (its thresholds) can change. The store the ingest writes
through (floor.web.service.TimedStore) reports each write with `changing(days)`: while it runs
those days are neither served from nor stored into the cache, and when it ends their
generation moves on, so an entry computed before (or while) the write is never served again.
A report is stored under the generation taken before it was computed.

Requests for the same uncached day while it is computed wait for that one computation. At most
`keep` days are kept, the least recently used dropped first.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from floor.reports import Report, day_window
from floor.store_common import Batch

KEEP_DAYS = 7  # a week of yesterdays (raw events are kept 7 days by default): ~120 MB at 10,000 seats


@dataclass
class Change:
    """What a writer says of its write: `changed = False` when it removed or added nothing."""

    changed: bool = True


@dataclass(frozen=True)
class _Entry:
    generation: tuple[int, int]
    report: Report


def _thresholds_key(info: Any) -> int:
    """A seat's `info` as a report sees it: its `thresholds` part (not its boot id or checks)."""
    try:
        parsed = json.loads(info) if isinstance(info, str | bytes) else info
        part = parsed.get("thresholds") if isinstance(parsed, dict) else parsed
        return hash(json.dumps(part, sort_keys=True))
    except (TypeError, ValueError):
        return hash(repr(info))


class ReportCache:
    """Finished days' whole-site reports, keyed by the site-local day (ISO date)."""

    def __init__(
        self, tz: tzinfo, keep: int = KEEP_DAYS, clock: Callable[[], float] = time.time
    ) -> None:
        self.tz = tz
        self.keep = keep
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, tuple[tuple[int, int], Future[Report]]] = {}
        self._every = 0  # generation of every day (a purge, a changed threshold)
        self._days: dict[str, int] = {}  # generation of one day (its events)
        self._busy_every = 0  # writes under way that may change any day
        self._busy: dict[str, int] = {}  # writes under way that may change these days
        self._thresholds: dict[str, int] = {}  # seat -> hash of the last `info` thresholds
        self.hits = 0
        self.misses = 0

    # --- what the store's writer says --------------------------------------------------------

    @contextlib.contextmanager
    def changing(self, days: Iterable[str] | None) -> Iterator[Change]:
        """Around a write that may change these days' reports (None: every day's). The
        generations move on when it ends, whether it succeeded or not, unless the writer
        says it changed nothing (`Change.changed = False`)."""
        change = Change()
        todo = None if days is None else set(days)
        if todo is not None and not todo:
            yield change
            return
        with self._lock:
            if todo is None:
                self._busy_every += 1
            else:
                for day in todo:
                    self._busy[day] = self._busy.get(day, 0) + 1
        try:
            yield change
        finally:
            with self._lock:
                if todo is None:
                    self._busy_every -= 1
                    self._every += change.changed
                else:
                    for day in todo:
                        left = self._busy[day] - 1
                        if left:
                            self._busy[day] = left
                        else:
                            del self._busy[day]
                        if change.changed:
                            self._days[day] = self._days.get(day, 0) + 1

    def batch_days(self, batch: Batch) -> set[str] | None:
        """The site-local days a batch of the ingest may change: those of its events' `ts`;
        None (every day) when it carries a seat's `info` with thresholds other than the last
        seen (reports judge every day by the seat's latest thresholds)."""
        with self._lock:
            for (column, seat), (value, _now) in batch.seats.items():
                if column == "info" and self._thresholds.get(seat) != _thresholds_key(value):
                    return None
        try:
            return {self.day_of(event.ts) for _seat, event, _arrived in batch.events}
        except ValueError:  # the models checked `ts`; if one slipped through, any day
            return None

    def written(self, batch: Batch) -> None:
        """A batch is in the store: its seats' thresholds are the ones reports now read (only
        once written: a batch the store refused is written again later, a change again)."""
        with self._lock:
            for (column, seat), (value, _now) in batch.seats.items():
                if column == "info":
                    self._thresholds[seat] = _thresholds_key(value)

    def day_of(self, ts: str) -> str:
        """The site-local day of an event's own `ts` (the day whose report reads it)."""
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz).date().isoformat()

    # --- what the web app asks ---------------------------------------------------------------

    def finished(self, day: str) -> bool:
        """Whether the site-local `day` has ended."""
        return day_window(day, self.tz)[1] <= self.clock()

    def report(self, day: str, compute: Callable[[], Report]) -> Report:
        """The whole-site report of `day`: from the cache when the day has ended and nothing
        it reads changed since; else `compute()` (once for requests that arrive together)."""
        if not self.finished(day):
            return compute()
        with self._lock:
            generation = (self._every, self._days.get(day, 0))
            quiet = not self._busy_every and day not in self._busy
            entry = self._entries.get(day)
            if quiet and entry is not None and entry.generation == generation:
                self._entries.move_to_end(day)
                self.hits += 1
                return entry.report
            self.misses += 1
            pending = self._pending.get(day) if quiet else None
            if pending is not None and pending[0] == generation:
                waiting: Future[Report] | None = pending[1]
            else:
                waiting = None
                mine: Future[Report] = Future()
                if quiet:
                    self._pending[day] = (generation, mine)
        if waiting is not None:
            return waiting.result()
        try:
            report = compute()
        except BaseException as exc:
            with self._lock:
                if self._pending.get(day, (None, None))[1] is mine:
                    del self._pending[day]
            mine.set_exception(exc)
            raise
        with self._lock:
            if self._pending.get(day, (None, None))[1] is mine:
                del self._pending[day]
            current = (self._every, self._days.get(day, 0))
            if quiet and current == generation and not self._busy_every and day not in self._busy:
                self._entries[day] = _Entry(generation, report)
                self._entries.move_to_end(day)
                while len(self._entries) > self.keep:
                    self._entries.popitem(last=False)
        mine.set_result(report)
        return report

    def days(self) -> list[str]:
        """The days kept, least recently used first."""
        with self._lock:
            return list(self._entries)
