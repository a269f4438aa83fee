"""Floor store write speed: events/s into SQLite and PostgreSQL, batched (the ingest's path:
`write_batch`, BATCH events a transaction) against one transaction per event (`add_event`), in
the same run; and the ingest's own path (`Ingest.apply` on the caller's thread, the writer
thread draining its queue into the store) with its per-message cost on the MQTT thread.

PostgreSQL: a server of its own in a temp dir (Debian's /usr/lib/postgresql/15/bin, as the
`postgres` user when run as root), default durability (fsync on, synchronous_commit on), or
`--pg-url postgresql://...` for an existing one (a scratch database: tables are created).

    .venv/bin/python bench/floor_store.py [--events 20000] [--pg-url URL]

Best of `--rounds` (3), the paths interleaved: the machine is shared. Prints the machine and the
figures; record them in docs/floor.md (Store throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model  # noqa: E402  (bench/machine.py)

from edge.api.broker import BrokerSection  # noqa: E402
from edge.api.models import parse_event  # noqa: E402
from floor.ingest import Ingest  # noqa: E402
from floor.store import Batch, SqliteStore  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SITE = "bench"
SEATS = 200  # --seats
BATCH = 2000
NOW_TS = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
KINDS = ("call.ringing", "call.answered", "call.hold", "call.ended", "presence.away")


def payload(i: int) -> bytes:
    seat, seq = i % SEATS, i // SEATS
    kind = KINDS[seq % len(KINDS)]
    data: dict[str, Any] = {"call": seq, "source": "host", "call_id": None}
    if kind == "call.ended":
        data = {"call": seq, "talk_s": 61.5, "hold_s": 12.0}
    return json.dumps(
        {
            "boot_id": f"{seat}-0a0b0c0d",
            "seq": seq,
            "ts": NOW_TS,  # now: within the seeding window
            "type": kind,
            "data": data,
        }
    ).encode()


def seat_of(i: int) -> str:
    return f"S-{i % SEATS:05d}"


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server of our own on a free port; its url."""
    if not (PG_BIN / "pg_ctl").exists():
        raise SystemExit(f"PostgreSQL not installed ({PG_BIN}): apt-get install postgresql")
    work = Path(tempfile.mkdtemp(prefix="seatbox-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(work, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = work / "data"

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd="/")

    run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "seatbox", "--auth=trust")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data}"
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(work / "log"), "-o", options, "-w",
        "start")  # fmt: skip
    try:
        yield f"postgresql://seatbox@127.0.0.1:{port}/postgres"
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(work, ignore_errors=True)


def _single(open_store: Any, parsed: list[tuple[str, Any]]) -> float:
    store = open_store()
    try:
        start = time.perf_counter()
        for seat, event in parsed:
            store.add_event(SITE, seat, event, 0.0)
        return len(parsed) / (time.perf_counter() - start)
    finally:
        store.close()


def _batched(store: Any, parsed: list[tuple[str, Any]]) -> float:
    start = time.perf_counter()
    for first in range(0, len(parsed), BATCH):
        chunk = parsed[first : first + BATCH]
        store.write_batch(SITE, Batch([(s, e, 0.0) for s, e in chunk], {}, {}))
    return len(parsed) / (time.perf_counter() - start)


def _ingest(open_store: Any, events: int) -> tuple[float, float]:
    """(events/s through Ingest.apply + the writer thread, us per apply on the caller)."""
    store = open_store()
    try:
        ingest = Ingest(BrokerSection(url="mqtt://127.0.0.1:1"), SITE, "bench", store)
        ingest.start_writer()
        messages = [(f"seatbox/v1/{SITE}/{seat_of(i)}/event", payload(i)) for i in range(events)]
        start = time.perf_counter()
        for topic, body in messages:
            ingest.apply(topic, body, 0.0, time.monotonic())
        applied = time.perf_counter() - start
        while ingest.queued:
            time.sleep(0.005)
        took = time.perf_counter() - start
        ingest.stop_writer()
        return events / took, applied / events * 1e6
    finally:
        store.close()


def measure(name: str, open_store: Any, events: int, rounds: int) -> dict[str, float]:
    """Best of `rounds`, the paths interleaved (the machine is shared: a busy moment should
    not fall on one path only)."""
    parsed = [(seat_of(i), parse_event(payload(i))) for i in range(events)]
    single_n = min(events, 2000)  # one transaction per event is slow: fewer of them
    best: dict[str, float] = {"single": 0.0, "batched": 0.0, "copies": 0.0, "ingest": 0.0}
    apply_us, seed_s, streams = float("inf"), float("inf"), 0
    for _ in range(rounds):
        best["single"] = max(best["single"], _single(open_store, parsed[:single_n]))
        store = open_store()
        try:
            best["batched"] = max(best["batched"], _batched(store, parsed))
            best["copies"] = max(best["copies"], _batched(store, parsed))  # all duplicates
            start = time.perf_counter()
            streams = len(store.streams(SITE, time.time()))
            seed_s = min(seed_s, time.perf_counter() - start)
        finally:
            store.close()
        ingest_rate, us = _ingest(open_store, events)
        best["ingest"], apply_us = max(best["ingest"], ingest_rate), min(apply_us, us)
    print(f"  {name:10} one transaction per event: {best['single']:8.0f} events/s")
    print(f"  {name:10} batched ({BATCH} a transaction): {best['batched']:8.0f} events/s")
    print(f"  {name:10} batched copies (all duplicates): {best['copies']:8.0f} events/s")
    print(
        f"  {name:10} ingest (apply + writer thread): {best['ingest']:8.0f} events/s; "
        f"{apply_us:.0f} us a message on the MQTT thread"
    )
    print(f"  {name:10} seeding a restarted service: {streams} streams in {seed_s:.3f} s")
    return best


def main() -> None:
    global SEATS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pg-url", default="")
    parser.add_argument("--seats", type=int, default=SEATS)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    SEATS = args.seats
    print(f"machine: {platform.uname()}")
    print(f"cpu: {cpu_model()}  cores: {os.cpu_count()}  python: {platform.python_version()}")
    print(f"sqlite {sqlite3.sqlite_version}; {args.events} events from {SEATS} seats")
    results: dict[str, dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="seatbox-bench-sqlite-"))
    counter = iter(range(1000))
    try:
        results["SQLite"] = measure(
            "SQLite",
            lambda: SqliteStore(work / f"floor{next(counter)}.sqlite"),
            args.events,
            args.rounds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from floor.store_pg import PostgresStore

    def pg(url: str) -> None:
        import psycopg

        databases = iter(range(1000))
        versions: set[str] = set()

        def fresh() -> PostgresStore:
            name = f"floor_bench_{os.getpid()}_{next(databases)}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")
                conn.execute(f"CREATE DATABASE {name}")
                version = conn.execute("SHOW server_version").fetchone()
            versions.add(version[0] if version else "?")
            return PostgresStore(url.rsplit("/", 1)[0] + "/" + name)

        results["PostgreSQL"] = measure("PostgreSQL", fresh, args.events, args.rounds)
        print(f"  (PostgreSQL {', '.join(sorted(versions))})")

    if args.pg_url:
        pg(args.pg_url)
    else:
        with postgres() as url:
            pg(url)
    for name, figures in results.items():
        print(
            f"{name}: batched {figures['batched']:.0f}/s, ingest {figures['ingest']:.0f}/s, "
            f"one per transaction {figures['single']:.0f}/s: "
            f"batched x{figures['batched'] / figures['single']:.1f}"
        )


if __name__ == "__main__":
    main()
