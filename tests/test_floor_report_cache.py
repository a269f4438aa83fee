"""Finished days' daily reports kept in the floor service's memory (floor.web.report_cache).

The service as `seatbox floor serve` wires it, in this process so the store's reads can be
counted: a real Mosquitto, the real ingest writing through `TimedStore` into a real SQLite
store, the FastAPI app with accounts, and seats publishing events of yesterday and today.
A second request for a finished day reads no events; an event of that day stored later (an
outbox replayed after midnight) or a purge changes the next answer; today's report is never
kept; each request is still in the access log and scoped to its role.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from floor_web_support import PASSWORD, RINGING, TZ, USERS, Seats, add_users, write_config
from support import Mosquitto, wait_until

from edge.api.models import StreamEvent
from floor.accounts import Accounts
from floor.config import load_floor_config
from floor.ingest import Ingest
from floor.reports import Report
from floor.store import Batch, open_store
from floor.web.app import create_app
from floor.web.places import Places
from floor.web.report_cache import ReportCache
from floor.web.service import FloorService, TimedStore, build_service

ZONE = ZoneInfo(TZ)


class CountingStore:
    """The real store, counting the reads of events a report makes."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reads = 0

    def events_between(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.reads += 1
        found: list[dict[str, Any]] = self._store.events_between(*args, **kwargs)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class Site:
    service: FloorService
    store: CountingStore
    timed: TimedStore
    seats: Seats
    accounts: Accounts
    tokens: dict[str, str]
    client: TestClient
    yesterday: str
    today: str

    def get(self, token: str, day: str, **query: str) -> Any:
        params = {"date": day, **query}
        return self.client.get(
            "/api/v1/reports/daily", params=params, headers={"Authorization": f"Bearer {token}"}
        )

    def send(self, seat: str, seq: int, kind: str, data: dict[str, Any], day: str) -> None:
        """An event of `day` at noon (site time), as a seat's outbox sends it."""
        moment = datetime.combine(date.fromisoformat(day), time(12), ZONE)
        ts = moment + timedelta(seconds=seq)
        payload = {
            "boot_id": "5-0a0b0c0d",
            "seq": seq,
            "ts": ts.isoformat(timespec="milliseconds"),
            "type": kind,
            "data": data,
        }
        self.seats.send(seat, "event", json.dumps(payload).encode())

    def stored(self, count: int) -> None:
        wait_until(lambda: len(self.store.events("lab")) == count, 10, f"{count} events stored")

    def logged(self, who: str, what: str) -> int:
        return sum(
            1 for row in self.accounts.access_log(1000) if (row["who"], row["what"]) == (who, what)
        )


@pytest.fixture
def site(broker: Mosquitto, tmp_path: Path) -> Iterator[Site]:
    config_path = write_config(tmp_path / "floor", broker, min_group_size=1)
    add_users(config_path, [user for user in USERS if user[0] in ("boss", "agent-a1")])
    config, paths = load_floor_config(config_path)
    places = Places.load(config, paths)
    store = CountingStore(open_store(config, paths, roster=places.roster))
    timed = TimedStore(store)  # as serve() wires it
    service = build_service(config, paths, timed, places)
    timed.reports = service.reports
    tokens = {
        "boss": service.accounts.add_token("bi", "manager"),
        "sup-a": service.accounts.add_token("sup-a", "supervisor", ["A"]),
    }
    ingest = Ingest(
        config.broker,
        config.site.id,
        config.client_id,
        timed,
        listeners=[service.live.apply],
        keep=places.shows,
    )
    timed.ingest = ingest
    ingest.start()
    seats = Seats(broker)
    log = Accounts(paths.accounts)
    today = places.day(datetime.now().timestamp())
    yesterday = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    try:
        wait_until(ingest.subscribed.is_set, 10, "the ingest's SUBACKs")
        with TestClient(create_app(service)) as client:
            yield Site(service, store, timed, seats, log, tokens, client, yesterday, today)
    finally:
        seats.close()
        ingest.stop()
        log.close()
        service.accounts.close()
        store.close()


def played_yesterday(site: Site) -> None:
    site.send("A-01", 0, "call.ringing", RINGING, site.yesterday)
    site.send("A-01", 1, "hold.too_long", {"hold_s": 181}, site.yesterday)
    site.send("B-01", 0, "call.ringing", RINGING, site.yesterday)
    site.stored(3)


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["seat"]: row for row in body["rows"]}


def test_a_finished_days_report_is_computed_once_and_again_when_an_event_of_it_arrives(
    site: Site,
) -> None:
    played_yesterday(site)
    boss = site.tokens["boss"]
    first = site.get(boss, site.yesterday)
    assert first.status_code == 200
    reads = site.store.reads
    assert reads > 0
    second = site.get(boss, site.yesterday)
    assert second.status_code == 200 and second.json() == first.json()
    assert site.store.reads == reads  # served from memory: no event read
    assert rows(first.json())["A-01"]["events"] == {"call.ringing": 1, "hold.too_long": 1}
    assert site.logged("bi", f"report {site.yesterday}") == 2  # a hit is logged as well

    # The seat was offline: its outbox replays another event of yesterday after midnight.
    site.send("A-01", 2, "hold.too_long", {"hold_s": 240}, site.yesterday)
    site.stored(4)
    third = site.get(boss, site.yesterday).json()
    assert rows(third)["A-01"]["events"] == {"call.ringing": 1, "hold.too_long": 2}
    assert rows(third)["A-01"]["holds_too_long"] == 2
    assert site.store.reads > reads
    reads = site.store.reads
    assert site.get(boss, site.yesterday).json() == third
    assert site.store.reads == reads

    # An event of today changes nothing of yesterday: still served from memory.
    site.send("A-01", 3, "call.ringing", RINGING, site.today)
    site.stored(5)
    assert site.get(boss, site.yesterday).json() == third
    assert site.store.reads == reads


def test_todays_report_is_never_kept(site: Site) -> None:
    site.send("A-01", 0, "call.ringing", RINGING, site.today)
    site.stored(1)
    boss = site.tokens["boss"]
    first = site.get(boss, site.today).json()
    reads = site.store.reads
    assert site.get(boss, site.today).json()["rows"] == first["rows"]
    assert site.store.reads > reads  # computed again
    assert site.service.reports is not None
    assert site.today not in site.service.reports.days()
    assert site.logged("bi", f"report {site.today}") == 2


def test_each_role_sees_its_scope_of_a_kept_report_and_each_view_is_logged(site: Site) -> None:
    played_yesterday(site)
    whole = site.get(site.tokens["boss"], site.yesterday).json()
    assert {"A-01", "B-01"} <= set(rows(whole)) and whole["totals"] is not None
    reads = site.store.reads
    sup = site.get(site.tokens["sup-a"], site.yesterday).json()
    assert site.store.reads == reads  # a hit
    assert sup["rows"] == [row for row in whole["rows"] if row["team"] == "A"]
    assert [team["team"] for team in sup["teams"]] == ["A"]
    assert sup["totals"] is None and set(sup["distributions"]["teams"]) == {"A"}
    refused = site.get(site.tokens["sup-a"], site.yesterday, team="B")
    assert refused.status_code == 403
    csv = site.get(site.tokens["sup-a"], site.yesterday, format="csv")
    assert {line.split(",")[0] for line in csv.text.splitlines()[1:]} == {
        row["seat"] for row in sup["rows"]
    }
    assert site.store.reads == reads
    assert site.logged("sup-a", f"report {site.yesterday}") == 2
    assert site.logged("bi", f"report {site.yesterday}") == 1
    # The whole site's report is kept, never a role's scope of it: the manager's next view is
    # the whole site again.
    assert site.get(site.tokens["boss"], site.yesterday).json() == whole

    answer = site.client.post("/api/v1/login", json={"username": "agent-a1", "password": PASSWORD})
    assert answer.status_code == 200
    headers = {"X-CSRF-Token": answer.json()["csrf"]}
    refused = site.client.get(
        "/api/v1/reports/daily", params={"date": site.yesterday}, headers=headers
    )
    assert refused.status_code == 403  # an agent sees today only, kept or not
    own = site.client.get("/api/v1/reports/daily", params={"date": site.today}, headers=headers)
    assert [row["seat"] for row in own.json()["rows"]] == ["A-01"]
    assert site.logged("agent-a1", f"report {site.yesterday}") == 0


def test_a_purge_that_removes_events_changes_the_next_answer(site: Site) -> None:
    played_yesterday(site)
    boss = site.tokens["boss"]
    before = site.get(boss, site.yesterday).json()
    assert rows(before)["A-01"]["calls"] == 1
    reads = site.store.reads
    nothing = site.timed.purge(datetime.now().timestamp())  # nothing is past retention
    assert nothing.events == 0 and nothing.seats == 0
    assert site.get(boss, site.yesterday).json() == before
    assert site.store.reads == reads  # a purge that removed nothing keeps the report
    later = datetime.now().timestamp() + 10 * 365 * 86400  # everything is past retention
    assert site.timed.purge(later).events == 3
    after = site.get(boss, site.yesterday).json()
    assert rows(after)["A-01"]["calls"] is None and rows(after)["A-01"]["events"] == {}
    assert site.store.reads > reads


# --- the cache itself: one computation per day, writes racing it, its bound -----------------


def _report(day: str, mark: str = "") -> Report:
    return Report("lab", day, TZ, [{"seat": mark}], [], {}, {})


def _cache(**kw: Any) -> ReportCache:
    # Noon of 2026-12-10 at the site: 2026-12-09 and before have ended.
    now = datetime.combine(date(2026, 12, 10), time(12), ZONE).timestamp()
    return ReportCache(ZONE, clock=lambda: now, **kw)


def test_requests_for_one_uncached_day_wait_for_one_computation() -> None:
    cache = _cache()
    release, started = threading.Event(), threading.Event()
    computed: list[str] = []

    def slow() -> Report:
        computed.append("x")
        started.set()
        assert release.wait(10)
        return _report("2026-12-09", "slow")

    results: list[Report] = []
    first = threading.Thread(target=lambda: results.append(cache.report("2026-12-09", slow)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.append(cache.report("2026-12-09", slow)))
    second.start()
    wait_until(lambda: cache.misses == 2, 10, "the second request waiting")
    release.set()
    first.join(10)
    second.join(10)
    assert computed == ["x"] and len(results) == 2 and results[0] is results[1]
    assert cache.report("2026-12-09", slow) is results[0] and cache.hits == 1


def test_a_report_computed_while_its_day_is_written_is_not_kept() -> None:
    cache = _cache()
    day = "2026-12-09"

    def racing() -> Report:
        with cache.changing([day]):  # an event of that day stored meanwhile
            pass
        return _report(day, "old")

    assert cache.report(day, racing).rows == [{"seat": "old"}]
    assert cache.days() == []
    with cache.changing([day]):  # while a write is under way: computed, not kept
        assert cache.report(day, lambda: _report(day, "during")).rows == [{"seat": "during"}]
        assert cache.days() == []
    kept = cache.report(day, lambda: _report(day, "after"))
    assert cache.report(day, lambda: _report(day, "again")) is kept
    with cache.changing(None):  # a purge: every day again
        pass
    assert cache.report(day, lambda: _report(day, "new")).rows == [{"seat": "new"}]
    with cache.changing(None) as change:
        change.changed = False  # the purge removed nothing
    assert cache.report(day, lambda: _report(day, "newer")).rows == [{"seat": "new"}]


def test_today_is_computed_each_time_and_at_most_keep_days_are_kept() -> None:
    cache = _cache(keep=2)
    for day in ("2026-12-10", "2026-12-11"):  # today, and a day not begun
        cache.report(day, lambda day=day: _report(day))
    assert cache.days() == []
    for day in ("2026-12-07", "2026-12-08", "2026-12-07", "2026-12-09"):
        cache.report(day, lambda day=day: _report(day))
    assert cache.days() == ["2026-12-07", "2026-12-09"]  # 12-08 least recently used


def test_the_day_of_an_event_is_the_sites_local_day_of_its_ts() -> None:
    cache = _cache()
    assert cache.day_of("2026-12-09T23:30:00.000Z") == "2026-12-10"  # 00:30 in Berlin
    assert cache.day_of("2026-12-09T23:30:00.000+01:00") == "2026-12-09"


def test_a_seats_new_thresholds_change_every_day_and_its_next_boot_does_not() -> None:
    cache = _cache()
    info = {"boot_id": "1-0a0b0c0d", "checks": {}, "thresholds": {"hold_time": {"warn": 60}}}

    def batch(**changes: Any) -> Batch:
        return Batch([], {("info", "A-01"): (json.dumps(info | changes), 0.0)}, {})

    assert cache.batch_days(batch()) is None  # not seen yet: every day's report may change
    refused = batch()  # the store refused it: it is still news when written again
    assert cache.batch_days(refused) is None
    cache.written(batch())
    assert cache.batch_days(batch(boot_id="2-0a0b0c0d", checks={"radar": "ok"})) == set()
    assert cache.batch_days(batch(thresholds={"hold_time": {"warn": 90}})) is None
    event = StreamEvent("1-0a0b0c0d", 0, "2026-12-08T23:59:59.000+01:00", "call.ringing", {})
    assert cache.batch_days(Batch([("A-01", event, 0.0)], {}, {})) == {"2026-12-08"}
