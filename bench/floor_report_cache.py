"""The daily report of a finished day, first and second request (floor.web.report_cache).

A site of `--seats` seats (teams of 20) in a fresh SQLite store, each with a working day of
yesterday's events (arrival, `--calls` calls with ringing, answer, hold, resume and end, one
away episode) written as the ingest writes them (`TimedStore.write_batch`, the report cache
attached). The app is the floor service's own (`build_service` + `create_app`, as `seatbox
floor serve` wires them), asked over its ASGI interface (FastAPI's TestClient) with a manager
token: the first request computes the whole site's report, the second is served from memory;
a supervisor's request after them is a hit scoped to one team. Today's report (no events)
for comparison of the fixed cost.

    .venv/bin/python bench/floor_report_cache.py [--seats 2000] [--calls 40]

About 20 s at the defaults (most of it writing the store). Prints the machine, the size and the
times; record them in docs/benchmarks.md (Floor).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from machine import describe  # noqa: E402  (bench/machine.py)

from edge.api.models import StreamEvent  # noqa: E402
from floor.config import load_floor_config  # noqa: E402
from floor.store import Batch, open_store  # noqa: E402
from floor.web.places import Places  # noqa: E402
from floor.web.service import TimedStore, build_service  # noqa: E402

TZ = "Europe/Berlin"
BATCH = 500  # events a transaction, as the ingest's writer batches them


def write_site(folder: Path, seats: int) -> Path:
    teams = (seats + 19) // 20
    layout = ["[teams]"] + [f'T{t:03d} = {{ name = "Team {t}" }}' for t in range(teams)]
    layout += ["[seats]"] + [
        f'S-{i:05d} = {{ team = "T{i // 20:03d}", x = {i % 20}, y = {i // 20} }}'
        for i in range(seats)
    ]
    (folder / "layout.toml").write_text("\n".join(layout) + "\n")
    config = folder / "floor.toml"
    config.write_text(
        '[broker]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[site]\nid = "bench"\ntimezone = "{TZ}"\n'
        '[http]\nlisten = "127.0.0.1:8080"  # never listened on\n'
        '[store]\ndir = "state"\n[layout]\nfile = "layout.toml"\n'
    )
    return config


def seat_day(seat: str, day: date, calls: int) -> list[StreamEvent]:
    """A seat's working day: present at 08:00, `calls` calls, one 20-minute away episode."""
    zone = ZoneInfo(TZ)
    boot = f"1-{abs(hash(seat)) % 0xFFFFFFFF:08x}"
    events: list[tuple[float, str, dict[str, Any]]] = [(0, "presence.present", {})]
    t = 300.0
    for call in range(calls):
        events += [
            (t, "call.ringing", {"source": "host", "call": call, "call_id": None}),
            (t + 6, "call.answered", {"call": call, "answer_s": 6.0}),
            (t + 60, "call.hold", {"call": call}),
            (t + 90, "call.resumed", {"call": call, "hold_s": 30.0}),
            (t + 240, "call.ended", {"call": call, "talk_s": 204.0, "hold_s": 30.0}),
        ]
        t += 420
        if call == calls // 2:
            events += [(t, "presence.away", {}), (t + 1200, "presence.present", {"away_s": 1200})]
            t += 1260
    start = datetime.combine(day, datetime.min.time(), zone) + timedelta(hours=8)
    return [
        StreamEvent(
            boot,
            seq,
            (start + timedelta(seconds=at)).isoformat(timespec="milliseconds"),
            kind,
            data,
        )
        for seq, (at, kind, data) in enumerate(events)
    ]


def deep_size(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of a JSON-like value's objects (dicts, lists, strings, numbers), each counted once."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(deep_size(v, seen) for v in value)
    elif hasattr(value, "__dataclass_fields__"):
        size += sum(deep_size(getattr(value, name), seen) for name in value.__dataclass_fields__)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=40, help="calls per seat and day")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="Using `httpx`")  # starlette's TestClient
    from fastapi.testclient import TestClient

    from floor.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="seatbox-rcache-") as tmp:
        config_path = write_site(Path(tmp), args.seats)
        config, paths = load_floor_config(config_path)
        places = Places.load(config, paths)
        store = open_store(config, paths, roster=places.roster)
        timed = TimedStore(store)
        service = build_service(config, paths, timed, places)
        timed.reports = service.reports
        today = date.fromisoformat(places.day(time.time()))
        yesterday = today - timedelta(days=1)
        started = time.monotonic()
        pending: list[tuple[str, StreamEvent, float]] = []
        total = 0
        for i in range(args.seats):
            seat = f"S-{i:05d}"
            pending += [
                (seat, event, time.time()) for event in seat_day(seat, yesterday, args.calls)
            ]
            while len(pending) >= BATCH or (i == args.seats - 1 and pending):
                part, pending = pending[:BATCH], pending[BATCH:]
                total += timed.write_batch("bench", Batch(part, {}, {})).stored
        fill_s = time.monotonic() - started
        manager = service.accounts.add_token("bench", "manager")
        supervisor = service.accounts.add_token("sup", "supervisor", ["T000"])

        def get(token: str, day: date) -> tuple[float, dict[str, Any]]:
            t0 = time.perf_counter()
            answer = client.get(
                "/api/v1/reports/daily",
                params={"date": day.isoformat()},
                headers={"Authorization": f"Bearer {token}"},
            )
            elapsed = time.perf_counter() - t0
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return elapsed, body

        try:
            with TestClient(create_app(service)) as client:
                first_s, first = get(manager, yesterday)
                second_s, second = get(manager, yesterday)
                sup_s, sup = get(supervisor, yesterday)
                today_s, _ = get(manager, today)
                kept = service.reports.report(yesterday.isoformat(), lambda: None)  # type: ignore[arg-type,return-value]
                kept_mb = deep_size(kept) / 1e6
        finally:
            service.accounts.close()
            store.close()
    assert second == first and len(first["rows"]) == args.seats
    assert {row["team"] for row in sup["rows"]} == {"T000"}
    size = len(json.dumps(first))
    print(f"machine: {describe()}")
    print(
        f"site: {args.seats} seats, {total} events of yesterday ({args.calls} calls a seat), "
        f"written in {fill_s:.1f} s; report JSON {size / 1e6:.1f} MB"
    )
    print(f"first request (computed):        {first_s * 1000:9.1f} ms")
    print(f"second request (from the cache): {second_s * 1000:9.1f} ms")
    print(f"supervisor, one team (cache):    {sup_s * 1000:9.1f} ms")
    print(f"today's report (no events):      {today_s * 1000:9.1f} ms")
    print(f"first / second: {first_s / second_s:.0f}x")
    print(
        f"the kept report in memory: {kept_mb:.1f} MB ({kept_mb / args.seats * 1000:.1f} kB a seat)"
    )


if __name__ == "__main__":
    main()
