"""What the web app serves from: the config, the store (reading), the accounts file, the live
floor and the site's places, plus the few numbers /metrics reports of the ingest and store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.api.models import StreamEvent
from floor.accounts import Accounts
from floor.config import FloorConfig, FloorPaths
from floor.web.live import LiveFloor
from floor.web.places import Places


class TimedStore:
    """The store the ingest writes to, timing each event from its arrival at the live floor to
    its row in the store (/metrics: seatbox_floor_store_lag_seconds). Everything else passes
    through unchanged."""

    def __init__(self, store: Any, live: LiveFloor) -> None:
        self._store = store
        self._live = live
        self.lag_s = 0.0
        self._lock = threading.Lock()

    def add_event(self, site: str, seat: str, event: StreamEvent, now: float) -> bool:
        arrived = self._live.counters.last_message_mono
        stored: bool = self._store.add_event(site, seat, event, now)
        with self._lock:
            self.lag_s = max(0.0, time.monotonic() - arrived) if arrived else 0.0
        return stored

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
    # True once the server is shutting down: open event streams end.
    stopping: Callable[[], bool] = lambda: False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def site(self) -> str:
        return self.config.site.id


def build_service(config: FloorConfig, paths: FloorPaths, store: Any) -> FloorService:
    places = Places(config)
    live = LiveFloor(config.site.id, places, places.level)
    return FloorService(
        config=config,
        paths=paths,
        store=store,
        accounts=Accounts(paths.accounts),
        live=live,
        places=places,
    )
