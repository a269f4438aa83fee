"""The floor store under stress, on both stores (SQLite and a real PostgreSQL started here):
batches, a restarted service seeding its stream tracker, the service killed (SIGKILL) mid-burst
and restarted, the database going away and coming back, an unreachable PostgreSQL at start.

Seats are light simulated seats (floor_support.SimSeat) on a real Mosquitto: numbered events
on the real topic tree, QoS 1, answering `cmd/resend` from their outbox.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from disk_support import fill, small_tmpfs
from floor_support import (
    DAY,
    STORES,
    PgServer,
    SimSeat,
    event_payload,
    open_test_store,
    own_pg_server,  # noqa: F401
    pg_server,  # noqa: F401
)
from support import Mosquitto, free_port, wait_until

from edge.api.broker import BrokerSection
from edge.api.models import parse_event
from edge.api.stream import StreamTracker
from edge.base.errors import ParseError
from floor.ingest import Ingest
from floor.roster import Roster
from floor.store import Batch, SqliteStore, StoreUnavailable, spans
from floor.store_pg import PostgresStore

REPO = Path(__file__).resolve().parent.parent
SITE = "lab"


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    return [*base, *args]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    opened = open_test_store(request.param, tmp_path, request, raw_s=3650 * 86400.0)
    try:
        yield opened
    finally:
        opened.close()


def ev(seq: int, boot: str = "1-0a0b0c0d", kind: str = "call.ringing") -> Any:
    return parse_event(event_payload(seq, boot, kind))


def keys(store: Any, seat: str | None = None) -> list[tuple[str, str, int]]:
    return [(e["seat"], e["boot_id"], e["seq"]) for e in store.events(SITE, seat)]


def test_a_batch_is_one_transaction_with_copies_counted_once(store: Any) -> None:
    assert store.add_event(SITE, "A-01", ev(0), 1.0)
    batch = Batch(
        events=[("A-01", ev(0), 2.0), ("A-01", ev(1), 2.0), ("A-01", ev(1), 2.0)]
        + [("A-02", ev(seq, kind="call.ended"), 2.0) for seq in range(3)],
        seats={("online", "A-01"): (True, 2.0), ("state", "A-02"): ('{"x": 1}', 2.0)},
        counts={"invalid": 2},
    )
    written = store.write_batch(SITE, batch)
    assert (written.stored, written.duplicates) == (4, 2)
    assert keys(store) == [("A-01", "1-0a0b0c0d", 0), ("A-01", "1-0a0b0c0d", 1)] + [
        ("A-02", "1-0a0b0c0d", seq) for seq in range(3)
    ]
    assert store.rollups(SITE, "A-01", DAY) == {"calls": 2.0, "events.call.ringing": 2.0}
    assert store.rollups(SITE, "A-02", DAY) == {
        "events.call.ended": 3.0,
        "hold_s": 3.0,
        "talk_s": 6.0,
    }
    assert store.counters() == {"duplicates": 2, "invalid": 2}
    assert store.seat(SITE, "A-01") == {"state": None, "info": None, "online": True}
    assert store.seat(SITE, "A-02") == {"state": {"x": 1}, "info": None, "online": None}
    # The bulk read that seeds the live floor at start: the same, every seat at once.
    store.put_info(SITE, "A-02", b'{"i": 2}', 3.0)
    store.put_availability(SITE, "A-02", False, 3.0)
    assert [tuple(r) for r in store.seat_records(SITE)] == [
        ("A-01", None, None, True),
        ("A-02", '{"x": 1}', '{"i": 2}', False),
    ]
    assert store.seat_records("other-site") == []


@pytest.mark.parametrize("kind", STORES)
def test_agent_day_rollups_follow_the_roster_count_each_event_once_and_are_purged_by_day(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    roster = Roster.parse(
        "date,seat,agent,team\n"
        f"{DAY},A-01,agent-007,sales\n"
        f"{DAY},A-02,agent-011,\n"
        "2026-11-24,A-01,agent-011,\n"  # hot-desking: agent-011 at A-01 the next day
    )
    opened = open_test_store(
        kind,
        tmp_path,
        request,
        raw_s=3650 * 86400.0,
        rollups_s=30 * 86400.0,
        roster=roster,
        tz=ZoneInfo("Europe/Berlin"),
    )
    with closing(opened) as store:
        late = "2026-11-23T23:30:00.000+00:00"  # the seat's 23rd, the site's (Berlin) 24th
        batch = Batch(
            events=[
                ("A-01", ev(0), 1.0),
                ("A-01", ev(1, kind="call.ended"), 1.0),
                ("A-02", ev(0), 1.0),
                ("A-03", ev(0), 1.0),  # no roster row: seat rollups only
                ("A-01", parse_event(event_payload(2, "1-0a0b0c0d", "call.ringing", late)), 1.0),
            ],
            seats={},
            counts={},
        )
        assert store.write_batch(SITE, batch).stored == 5
        # Copies (a redelivery, a resend) in a batch and one by one: not counted again.
        assert store.write_batch(SITE, batch).duplicates == 5
        assert not store.add_event(SITE, "A-02", ev(0), 2.0)
        assert store.add_event(SITE, "A-02", ev(1, kind="call.ended"), 2.0)  # one at a time

        assert store.agent_rollups(SITE, "agent-007", DAY) == {
            "calls": 1.0,
            "events.call.ringing": 1.0,
            "events.call.ended": 1.0,
            "hold_s": 1.0,
            "talk_s": 2.0,
        }
        assert store.agent_rollups(SITE, "agent-011", DAY) == {
            "calls": 1.0,
            "events.call.ringing": 1.0,
            "events.call.ended": 1.0,
            "hold_s": 1.0,
            "talk_s": 2.0,
        }
        assert store.agent_rollups(SITE, "agent-011", "2026-11-24") == {
            "calls": 1.0,
            "events.call.ringing": 1.0,
        }
        # The seat rollups are unchanged: A-01's late call is on the seat's own day.
        assert store.rollups(SITE, "A-01", DAY)["calls"] == 2.0
        assert store.rollups(SITE, "A-03", DAY) == {"calls": 1.0, "events.call.ringing": 1.0}
        assert store.agent_rollups(SITE, "agent-999", DAY) == {}
        with pytest.raises(ParseError, match="agent id"):
            store.agent_rollups(SITE, "x'; DROP TABLE agent_rollups; --", DAY)
        assert "agent_rollups" in store.tables()

        # Retention: the rollups of days before the day 30 days ago go, agents' too.
        purged = store.purge(datetime(2026, 12, 24, 12, tzinfo=UTC).timestamp())
        assert purged.agent_rollups == 10  # 5 names each for agent-007 and agent-011 on DAY
        assert store.agent_rollups(SITE, "agent-007", DAY) == {}
        assert store.agent_rollups(SITE, "agent-011", DAY) == {}
        assert store.agent_rollups(SITE, "agent-011", "2026-11-24") == {
            "calls": 1.0,
            "events.call.ringing": 1.0,
        }


def test_seats_and_events_are_listed_in_the_same_order_by_both_stores(store: Any) -> None:
    seats = ["b-2", "B-1", "_z", "a_1", "Z", "-x", "0"]
    for seat in seats:
        store.add_event(SITE, seat, ev(0), 0.0)
    assert [e["seat"] for e in store.events(SITE)] == sorted(seats)  # byte order, as Python
    start = datetime.fromisoformat(f"{DAY}T00:00:00+00:00").timestamp()
    assert store.seats_between(SITE, start, start + 86400) == sorted(seats)
    assert [e["seat"] for e in store.events_between(SITE, start, start + 86400)] == sorted(seats)
    assert store.events_between(SITE, start + 86400, start + 2 * 86400) == []


def test_a_restarted_service_asks_only_for_what_the_store_is_missing(store: Any) -> None:
    recent = time.time()
    for seq in [0, 1, 2, 3, 4, 6, 7, 8, 9, 12]:  # missing 5 and 10-11
        store.add_event(SITE, "A-01", ev(seq), recent)
    for seq in (3, 4):  # a boot first stored at seq 3 (0-2 never came)
        store.add_event(SITE, "A-02", ev(seq, boot="2-0a0b0c0d"), recent)
    tracker = StreamTracker(from_zero=True, reorder_s=0.0)
    ingest = Ingest(BrokerSection(url="mqtt://127.0.0.1:1"), SITE, "t", store, tracker=tracker)
    day = datetime.fromisoformat(f"{DAY}T12:00:00+00:00").timestamp()
    assert ingest.seed(now=day, mono=0.0) == 2  # retention 10 years: A-02's 0-2 never came
    gaps = [(g.seat, g.boot_id, g.first, g.last) for g in tracker.gaps()]
    assert gaps == [
        ("A-01", "1-0a0b0c0d", 5, 5),
        ("A-01", "1-0a0b0c0d", 10, 11),
        ("A-02", "2-0a0b0c0d", 0, 2),
    ]
    # Anything the store has is a copy; the next seq is new.
    assert tracker.accept(SITE, "A-01", ev(7), 0.0).verdict.value == "duplicate"
    assert tracker.accept(SITE, "A-01", ev(13), 0.0).verdict.value == "new"
    assert [(r.from_seq, r.to_seq) for r in tracker.due_resends(1.0)] == [(5, 5), (10, 11), (0, 2)]
    # A boot whose first stored event is older than retention allows: its early seqs may have
    # been purged, so they are not asked for again.
    islands = [("A-03", "3-0a0b0c0d", 40, 49, 100.0)]
    assert spans(islands, 50.0, {("A-03", "3-0a0b0c0d"): 40})[0].missing == [(0, 39)]
    assert spans(islands, 150.0, {("A-03", "3-0a0b0c0d"): 40})[0].missing == []
    # Older seqs of the boot stored before the seeding window: not missing either.
    assert spans(islands, 50.0, {("A-03", "3-0a0b0c0d"): 0})[0].missing == []
    # Events older than the seeding window are not read at all.
    assert ingest.store.streams(SITE, day + 7 * 3600) == []


def test_an_unreachable_postgresql_is_one_clear_line_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://floor:s3cr%40t-pw@127.0.0.1:{port}/floor"
    with pytest.raises(Exception) as caught:
        PostgresStore(url)
    message = str(caught.value)
    assert f"[store] url: PostgreSQL postgresql://floor@127.0.0.1:{port}/floor" in message
    assert "s3cr" not in message
    # libpq echoes a token it cannot parse (a bad %-escape): the password is masked anyway.
    for bad in (
        f"postgresql://floor:s3cr%zzt@127.0.0.1:{port}/floor",
        f"postgresql://floor@127.0.0.1:{port}/floor?password=s3cr%25t&sslmode=bogus",
    ):
        with pytest.raises(Exception) as caught:
            PostgresStore(bad)
        assert "[store] url: PostgreSQL postgresql://floor@127.0.0.1:" in str(caught.value)
        assert "s3cr" not in str(caught.value), str(caught.value)
    config = tmp_path / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "mqtt://127.0.0.1:{free_port()}"\n[site]\nid = "lab"\n'
        f'[store]\nurl = "{url}"\n'
    )
    run = subprocess.run(
        seatbox("floor", "serve", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert f"postgresql://floor@127.0.0.1:{port}/floor" in run.stderr
    assert "s3cr" not in run.stderr and "Traceback" not in run.stderr


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            seatbox("--log-level", "INFO", "floor", "serve", "--config", str(config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


@pytest.mark.parametrize("kind", STORES)
def test_the_service_killed_mid_burst_and_restarted_stores_every_event_once(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    broker = Mosquitto(tmp_path)
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_type subscribe\nlog_dest stderr\n"
    )
    broker.start()
    url = ""
    if kind == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.new_database()
    config = tmp_path / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "{broker.url}"\nclient_id = "seatbox-floor-kill-{kind}"\n'
        f'[site]\nid = "{SITE}"\n[store]\ndir = "store"\nurl = "{url}"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'  # not 8080: other tests, a demo
        '[privacy]\nraw_events = "3650d"\nrollups = "3650d"\n[roster]\nfile = "roster.csv"\n'
    )
    log = tmp_path / "serve.log"
    seats = [SimSeat(broker.port, SITE, f"K-{n:02d}") for n in range(4)]
    # The roster the service loads reaches its store: two seats' events add to their agents.
    (tmp_path / "roster.csv").write_text(
        "date,seat,agent,team\n"
        + "".join(f"{seat.day},{seat.seat},agent-{n},\n" for n, seat in enumerate(seats[:2]))
    )
    subscribed = "seatbox/v1/lab/+/event"
    (tmp_path / "store").mkdir()
    check = PostgresStore(url) if url else SqliteStore(tmp_path / "store" / "floor.sqlite")
    serve = _serve(config, log)
    try:
        wait_until(lambda: subscribed in broker.log.read_text(), 30, "the SUBSCRIBE")
        per_seat, killed_at, lost_at = 400, 120, 300
        for i in range(per_seat):
            for seat in seats:
                seat.publish(lose=seat is seats[0] and i == lost_at)
            if i == killed_at:  # mid-burst: whatever the service held in memory is gone
                wait_until(
                    lambda: {e["seat"] for e in check.events(SITE)} >= {s.seat for s in seats},
                    30,
                    "some events of each seat stored before the kill",
                )
                serve.send_signal(signal.SIGKILL)
                serve.wait(10)
                serve = _serve(config, log)
            time.sleep(0.004)  # a burst at about 1,000 events/s from four seats
        total = per_seat * len(seats)
        wait_until(lambda: len(check.events(SITE)) >= total, 60, f"{total} events stored")
        expected = sorted((seat.seat, seat.boot, seq) for seat in seats for seq in range(per_seat))
        assert keys(check) == expected  # every event, once
        for seat in seats:
            rollup = check.rollups(SITE, seat.seat, seat.day)
            assert {k: rollup[k] for k in seat.expected_rollups()} == seat.expected_rollups()
        for n, seat in enumerate(seats[:2]):  # the site's zone is UTC, as the seats' ts
            agent = check.agent_rollups(SITE, f"agent-{n}", seat.day)
            assert {k: agent[k] for k in seat.expected_rollups()} == seat.expected_rollups()
        assert check.agent_rollups(SITE, "agent-2", seats[2].day) == {}
        # Seeded from the store, the restarted service asked the seats only for what the
        # killed one had not written, not for all they had published before the kill. (Its
        # request for seq 300, lost on the way after the restart, has come: any gap it saw at
        # the restart was due before that. The broker may also have dropped some of what it
        # queued for the service meanwhile: those come later in the seqs.)
        assert lost_at in seats[0].resent_seqs
        early = [seq for seat in seats for seq in seat.resent_seqs if seq <= killed_at]
        assert len(early) < (killed_at + 1) * len(seats) // 2, early
        assert serve.poll() is None, log.read_text()[-2000:]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(20) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        for seat in seats:
            seat.close()
        broker.stop()
        check.close()
    text = log.read_text()
    assert "Traceback" not in text
    # The restarted service knew the four seats' streams from the store: it asked only for
    # what the killed one had not written, not for every event from seq 0 again.
    assert "floor ingest: 4 streams known from the store" in text


@pytest.mark.parametrize("kind", STORES)
def test_the_database_going_away_keeps_the_floor_live_and_the_store_catches_up(
    request: pytest.FixtureRequest,
    broker: Mosquitto,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: str,
) -> None:
    """PostgreSQL: the server stopped, then started again. SQLite: its disk full for real (a
    small tmpfs filled up), then space freed."""
    monkeypatch.setattr("floor.ingest.RETRY_MAX_S", 1.0)  # retry every second at most
    caplog.set_level(logging.INFO, logger="floor")
    with ExitStack() as stack:
        store: Any
        if kind == "postgresql":
            pg: PgServer = request.getfixturevalue("own_pg_server")  # stopped and started
            store = PostgresStore(pg.url(), raw_s=3650 * 86400.0)
            go_away, come_back = pg.stop, pg.start
        else:
            disk = stack.enter_context(small_tmpfs(tmp_path / "disk", 16 * 1024))
            store = SqliteStore(disk / "floor.sqlite", raw_s=3650 * 86400.0)

            def go_away() -> None:
                # The WAL's pages already on disk would take a few more writes: checkpoint
                # and truncate it first, then fill the disk.
                with closing(sqlite3.connect(disk / "floor.sqlite")) as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                fill(disk, "filler")

            def come_back() -> None:
                (disk / "filler").unlink()

        stack.callback(store.close)
        _outage(store, go_away, come_back, broker, caplog)


def _outage(
    store: Any,
    go_away: Callable[[], object],
    come_back: Callable[[], object],
    broker: Mosquitto,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    refused: list[float] = []  # the writer's attempts while the store was away
    write_batch = store.write_batch

    def counted(site: str, batch: Batch) -> Any:
        try:
            return write_batch(site, batch)
        except StoreUnavailable:
            refused.append(time.monotonic())
            raise

    store.write_batch = counted
    # A small queue bound, so the outage also overflows it: dropped events are asked for again.
    ingest = Ingest(
        BrokerSection(url=broker.url),
        SITE,
        "seatbox-floor-db-away",
        store,
        tracker=StreamTracker(from_zero=True, reorder_s=0.5, retry_s=2.0),
        listeners=[lambda topic, payload, mono, parsed: seen.append(topic)],
        max_queued=150,
    )
    seats = [SimSeat(broker.port, SITE, f"D-{n:02d}") for n in range(3)]
    stop = threading.Event()
    runner = threading.Thread(target=ingest.serve, args=(stop,), kwargs={"resend_period_s": 0.2})
    runner.start()
    try:
        wait_until(ingest.subscribed.is_set, 10, "SUBACKs")
        for _ in range(50):
            for seat in seats:
                seat.publish()
        wait_until(lambda: len(store.events(SITE)) == 150, 10, "the first 150 events")
        go_away()
        for _ in range(150):  # 450 events while the database is down: 150 kept, 300 dropped
            for seat in seats:
                seat.publish()
        wait_until(lambda: len(seen) == 600, 10, "the live floor sees every event")
        wait_until(lambda: not ingest.store_ok, 10, "the outage noticed")
        wait_until(lambda: ingest.dropped == 300, 10, "events over the bound dropped")
        assert runner.is_alive()
        come_back()
        wait_until(lambda: len(store.events(SITE)) == 600, 40, "the store caught up")
    finally:
        stop.set()
        runner.join(30)
        for seat in seats:
            seat.close()
    assert keys(store) == sorted((s.seat, s.boot, q) for s in seats for q in range(200))
    for seat in seats:
        rollup = store.rollups(SITE, seat.seat, seat.day)
        assert {k: rollup[k] for k in seat.expected_rollups()} == seat.expected_rollups()
    # 300 dropped in the outage; resends answered in bursts may overflow the small bound again.
    assert store.counters()["store_dropped"] == ingest.dropped >= 300
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("floor")]
    assert len([m for m in lines if "floor store: unavailable" in m]) == 1, lines
    assert len([m for m in lines if "floor store: back after" in m]) == 1, lines
    assert len([m for m in lines if "dropping new ones" in m]) == 1, lines
    # Retried with backoff (here at most every second), not once per message that came in.
    assert 1 <= len(refused) <= 2 + (refused[-1] - refused[0]) / 0.5, len(refused)


def test_a_dropped_event_becomes_a_gap_again_merged_with_its_neighbours() -> None:
    tracker = StreamTracker(from_zero=True, reorder_s=0.0)
    for seq in range(10):
        tracker.accept(SITE, "A-01", ev(seq), 0.0)
    for seq in (4, 5, 3, 8):  # dropped before they reached the store
        tracker.reopen(SITE, "A-01", "1-0a0b0c0d", seq, 1.0)
    tracker.reopen(SITE, "A-01", "1-0a0b0c0d", 42, 1.0)  # never seen: nothing to ask
    assert [(g.first, g.last) for g in tracker.gaps()] == [(3, 5), (8, 8)]
    assert [(r.from_seq, r.to_seq) for r in tracker.due_resends(2.0)] == [(3, 5), (8, 8)]
    assert tracker.accept(SITE, "A-01", ev(4), 3.0).verdict.value == "new"  # the resend
    assert tracker.accept(SITE, "A-01", ev(4), 3.0).verdict.value == "duplicate"


def test_the_store_lag_is_the_age_of_the_oldest_event_not_written(store: Any) -> None:
    ingest = Ingest(BrokerSection(url="mqtt://127.0.0.1:1"), SITE, "lag", store)
    assert ingest.store_lag_s(now=100.0) == 0.0
    for seq in range(3):
        ingest.apply(
            f"seatbox/v1/{SITE}/L-01/event", event_payload(seq, "1-0a0b0c0d", "x.y"), 50.0, 0
        )
    assert ingest.queued == 3 and ingest.store_lag_s(now=100.0) == 50.0  # no writer yet
    ingest.start_writer()
    wait_until(lambda: ingest.queued == 0, 10, "the writer")
    ingest.stop_writer()
    assert ingest.store_lag_s(now=100.0) == 0.0 and len(store.events(SITE)) == 3


class _Refusing(SqliteStore):
    """A real SQLite store that refuses one kind of event (as a server refuses a statement)."""

    def write_batch(self, site: str, batch: Batch) -> Any:
        if any(event.type == "bad.kind" for _seat, event, _now in batch.events):
            raise RuntimeError("value out of range")
        return super().write_batch(site, batch)


def test_an_event_the_store_refuses_costs_only_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _Refusing(tmp_path / "floor.sqlite")
    ingest = Ingest(BrokerSection(url="mqtt://127.0.0.1:1"), SITE, "refused", store)
    try:
        for seq in range(10):
            kind = "bad.kind" if seq == 4 else "call.ringing"
            topic = f"seatbox/v1/{SITE}/R-01/event"
            ingest.apply(topic, event_payload(seq, "1-0a0b0c0d", kind), 0.0, 0.0)
        ingest.start_writer()  # all ten in one batch: refused, then written one by one
        wait_until(lambda: ingest.queued == 0, 10, "the writer")
        ingest.stop_writer()
        assert [e["seq"] for e in store.events(SITE)] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
        assert store.counters()["store_refused"] == 1
        assert ingest.store_ok  # not an outage
        assert "refused seat R-01 boot 1-0a0b0c0d seq 4 (bad.kind)" in caplog.text
    finally:
        store.close()
