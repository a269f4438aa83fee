"""`seatbox floor serve`: the ingest (one site subscription into the store, feeding the live
floor) and the web app on uvicorn, in one process; SIGTERM or SIGINT stops both.
"""

from __future__ import annotations

import logging
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from edge.base.errors import SeatboxError
from floor.config import load_floor_config

log = logging.getLogger(__name__)

GRACE_S = 2  # open event streams get this long to end at shutdown


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SeatboxError(
            f"[http] listen: cannot listen on {host}:{port} ({exc.strerror})"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def seed_live_floor(service: Any, store: Any) -> None:
    """The live floor from the store's last state/info/availability per seat, before the
    ingest subscribes: a full floor at once after a restart, whatever the broker replays
    (issue 15). A store that cannot be read is logged; the broker's messages still come."""
    started = time.monotonic()
    try:
        records = store.seat_records(service.site)
    except (SeatboxError, sqlite3.Error) as exc:
        log.warning("floor service: live floor not seeded from the store: %s", exc)
        return
    seeded = service.live.seed(records, time.monotonic())
    log.info(
        "floor service: %d seats seeded from the store in %.2f s",
        seeded,
        time.monotonic() - started,
    )


def serve(config_path: str | Path, duration: float | None = None) -> int:
    import uvicorn

    from floor.ingest import Ingest
    from floor.store import open_store
    from floor.web.app import create_app
    from floor.web.places import Places
    from floor.web.service import TimedStore, build_service

    config, paths = load_floor_config(config_path)
    places = Places.load(config, paths)  # layout and roster: the roster keys agent_rollups
    store = open_store(config, paths, roster=places.roster)
    where = getattr(store, "where", None) or str(paths.sqlite)
    service = build_service(config, paths, store, places)
    seed_live_floor(service, store)
    stop = threading.Event()
    try:
        sock = _listen(config.http.host, config.http.port)
        timed = TimedStore(store)
        ingest = Ingest(
            config.broker,
            config.site.id,
            config.client_id,
            timed,  # a Store: add_event timed, every other method passed through
            listeners=[service.live.apply],
            keep=service.places.shows,  # [privacy] norms: not shown is not stored
        )
        timed.ingest = ingest
        timed.reports = service.reports  # what the ingest writes or purges: reports recomputed
        service.store_lag = timed.lag_s
        service.store_queued = lambda: ingest.queued
        app = create_app(service)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                proxy_headers=False,  # the app trusts X-Forwarded-* from a local proxy itself
                server_header=False,
                access_log=False,
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=GRACE_S,
            )
        )
        service.stopping = lambda: server.should_exit

        def shut(*_: Any) -> None:
            stop.set()
            server.should_exit = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, shut)
        if duration:
            threading.Timer(duration, shut).start()
        worker = threading.Thread(target=ingest.serve, args=(stop,), name="floor-ingest")
        worker.start()
        host = f"[{config.http.host}]" if ":" in config.http.host else config.http.host
        log.info(
            "floor service: site %s, wallboard at http://%s:%d/ (store %s)",
            config.site.id,
            host,
            config.http.port,
            where,
        )
        try:
            server.run(sockets=[sock])
        finally:
            stop.set()
            worker.join(15)
            sock.close()
        log.info("floor service: stopped")
    finally:
        service.accounts.close()
        store.close()
    return 0
