"""What the web app serves from: the config, the store (reading), the accounts file, the live
floor and the site's places, plus the few numbers /metrics reports of the ingest and store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from floor.accounts import Accounts
from floor.config import FloorConfig, FloorPaths
from floor.store import Batch, Purged, Written
from floor.web.live import LiveFloor
from floor.web.places import Places
from floor.web.report_cache import ReportCache


class TimedStore:
    """The store the ingest writes to, timing each batch: from the arrival of its oldest event
    to its commit (/metrics: seatbox_floor_store_lag_seconds), and telling the report cache
    (`reports`) which days each write and purge may change. Everything else passes through
    unchanged."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._lag_s = 0.0
        self._last_write = time.time()
        self.ingest: Any = None  # set once the ingest exists: its queue and store health
        self.reports: ReportCache | None = None  # finished days' reports, kept while unchanged

    def write_batch(self, site: str, batch: Batch) -> Written:
        if self.reports is None:
            written: Written = self._store.write_batch(site, batch)
        else:
            with self.reports.changing(self.reports.batch_days(batch)):
                written = self._store.write_batch(site, batch)
                self.reports.written(batch)
        now = time.time()
        with self._lock:
            self._last_write = now
            if batch.events:
                self._lag_s = max(0.0, now - min(arrived for _, _, arrived in batch.events))
            elif self.ingest is None or not self.ingest.queued:
                self._lag_s = 0.0
        return written

    def purge(self, now: float) -> Purged:
        """The store's purge; reports of every day are computed again after one that removed
        events or seats (a report reads both)."""
        if self.reports is None:
            purged: Purged = self._store.purge(now)
            return purged
        with self.reports.changing(None) as change:
            purged = self._store.purge(now)
            change.changed = bool(purged.events or purged.seats)
        return purged

    def lag_s(self) -> float:
        """The latest batch's lag; while the store cannot be written, the time since the last
        write that succeeded (it grows until the store is back)."""
        with self._lock:
            if self.ingest is not None and not self.ingest.store_ok:
                return max(self._lag_s, time.time() - self._last_write)
            if self.ingest is not None and not self.ingest.queued:
                return 0.0
            return self._lag_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class FloorService:
    config: FloorConfig
    paths: FloorPaths
    store: Any  # floor.store.Store with its reading methods
    accounts: Accounts
    live: LiveFloor
    places: Places
    store_lag: Callable[[], float] = lambda: 0.0
    store_queued: Callable[[], int] = lambda: 0  # events received, not yet in the store
    # True once the server is shutting down: open event streams end.
    stopping: Callable[[], bool] = lambda: False
    reports: ReportCache | None = None  # finished days' whole-site reports (build_service)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def site(self) -> str:
        return self.config.site.id


def build_service(
    config: FloorConfig, paths: FloorPaths, store: Any, places: Places | None = None
) -> FloorService:
    places = places or Places.load(config, paths)
    live = LiveFloor(config.site.id, places, places.level)
    return FloorService(
        config=config,
        paths=paths,
        store=store,
        accounts=Accounts(paths.accounts),
        live=live,
        places=places,
        reports=ReportCache(places.tz),
    )
