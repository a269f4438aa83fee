"""The floor service's ingest and store as a supervisor's reports will read them: a real
Mosquitto, simulated seats (`seatbox simulate --fast`), the SQLite store.

Every event once (QoS 1 redelivery, a resend and a restarted service with its persistent
session all bring copies), no `levels`, rollups per seat-day from a known scenario, a gap
filled by `cmd/resend`, hostile payloads counted and ignored, retention by `purge(now)`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from floor_support import STORES, open_test_store, pg_server  # noqa: F401
from paho.mqtt.enums import CallbackAPIVersion
from payload_samples import valid_state
from support import Mosquitto, free_port, wait_until

from edge.api.broker import BrokerSection
from edge.api.models import parse_event
from edge.api.stream import StreamTracker
from edge.base.errors import ParseError
from floor.config import load_floor_config
from floor.ingest import Ingest
from floor.store import SqliteStore

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "config" / "scenarios"
DAY = "2026-11-23"  # the scenarios start 2026-11-23T08:44:00+08:00


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    return [*base, "--log-level", "WARNING", *args]


def simulate(broker: Mosquitto, name: str) -> list[dict[str, Any]]:
    """Play a scenario on a simulated seat publishing to the broker; the events it made."""
    run = subprocess.run(
        seatbox("simulate", str(SCENARIOS / f"{name}.toml"), "--fast", "--broker", broker.url)
        + ["--events-out", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def event(seq: int, kind: str = "call.ringing", boot: str = "7-0a0b0c0d") -> bytes:
    data = {"source": "host", "call": 1, "call_id": None} if kind == "call.ringing" else {}
    return json.dumps(
        {
            "boot_id": boot,
            "seq": seq,
            "ts": "2026-11-23T09:00:00.000+01:00",
            "type": kind,
            "data": data,
        }
    ).encode()


class Publisher:
    """A plain client: the test's own messages (a seat, or a hostile publisher)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteStore]:
    """Each store in turn (SQLite, PostgreSQL): the same behaviour expected of both."""
    opened = open_test_store(request.param, tmp_path, request)
    try:
        yield opened
    finally:
        opened.close()


def started(broker: Mosquitto, store: SqliteStore, **kwargs: Any) -> Ingest:
    ingest = Ingest(BrokerSection(url=broker.url), "lab", "seatbox-floor-test", store, **kwargs)
    ingest.start()
    wait_until(ingest.subscribed.is_set, 10, "the ingest's SUBACKs")
    return ingest


def keys(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["boot_id"], e["seq"]) for e in events]


def test_simulated_seats_are_stored_once_with_day_rollups_and_no_levels(
    broker: Mosquitto, store: SqliteStore
) -> None:
    ingest = started(broker, store)
    try:
        held = simulate(broker, "hold_time")
        away = simulate(broker, "away")
        wait_until(lambda: len(store.events("lab")) == len(held) + len(away), 15, "both seats")
    finally:
        ingest.stop()
    assert keys(store.events("lab", "S-holdtime")) == keys(held)
    assert keys(store.events("lab", "S-away")) == keys(away)
    # hold_time: rings at 2 s, answered at 5 s, held 20 s..220 s (hold.long at 120 s,
    # hold.too_long at 180 s), hung up at 240 s.
    rollup = store.rollups("lab", "S-holdtime", DAY)
    assert {k: rollup.get(k) for k in ("calls", "answered", "answer_s", "holds", "hold_s")} == {
        "calls": 1.0,
        "answered": 1.0,
        "answer_s": 3.0,
        "holds": 1.0,
        "hold_s": 200.0,
    }
    assert rollup["holds_too_long"] == 1.0
    assert rollup["events.hold.long"] == rollup["events.hold.too_long"] == 1.0
    assert "answered_late" not in rollup and "away_count" not in rollup
    # away: absent from 16 min to 33 min: one absence of 17 minutes, both away norms.
    rollup = store.rollups("lab", "S-away", DAY)
    assert rollup["away_count"] == 1.0 and rollup["away_s"] == 17 * 60
    assert rollup["events.away.long"] == rollup["events.away.too_long"] == 1.0
    # The latest retained state and info, the seat offline at the end; levels nowhere.
    seat = store.seat("lab", "S-holdtime")
    assert seat is not None and seat["online"] is False
    assert seat["state"]["call"]["state"] == "idle" and seat["info"]["seat"] == "S-holdtime"
    assert store.tables() == ["agent_rollups", "counters", "events", "rollups", "seats"]
    assert not any(e["type"].startswith("levels") for e in store.events("lab"))

    # The service goes away; a seat plays again meanwhile (a new boot); the broker keeps the
    # persistent session's QoS 1 events. A restarted service gets them, and a copy of an
    # event already stored (a redelivery) is ignored and counted.
    again = simulate(broker, "hold_time")
    ingest = started(broker, store)
    try:
        wait_until(
            lambda: len(store.events("lab", "S-holdtime")) == len(held) + len(again),
            15,
            "the events published while the service was down",
        )
        copy = Publisher(broker)
        copy.send("seatbox/v1/lab/S-holdtime/event", json.dumps(held[3]).encode())
        copy.send("seatbox/v1/lab/S-holdtime/event", json.dumps(again[3]).encode())
        copy.close()
        wait_until(lambda: store.counters().get("duplicates", 0) >= 2, 10, "duplicates counted")
    finally:
        ingest.stop()
    assert keys(store.events("lab", "S-holdtime")) == sorted(keys(held) + keys(again))
    rollup = store.rollups("lab", "S-holdtime", DAY)
    assert (rollup["answered"], rollup["holds"], rollup["hold_s"]) == (2.0, 2.0, 400.0)
    assert store.counters().get("invalid", 0) == 0


def test_a_gap_is_filled_by_resend_and_hostile_payloads_are_counted_and_ignored(
    broker: Mosquitto, store: SqliteStore
) -> None:
    seat = "F-01"
    base = f"seatbox/v1/lab/{seat}"
    outbox = {seq: event(seq) for seq in range(6)}
    asked: list[dict[str, Any]] = []
    publisher = Publisher(broker)

    def on_resend(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # The seat's side of cmd/resend: publish the asked range again from its outbox.
        request = json.loads(msg.payload)
        asked.append(request)
        for seq in range(request["from_seq"], request["to_seq"] + 1):
            client.publish(f"{base}/event", outbox[seq], qos=1)

    publisher.client.message_callback_add(f"{base}/cmd/resend", on_resend)
    publisher.client.subscribe(f"{base}/cmd/resend", qos=1)
    ingest = started(broker, store, tracker=StreamTracker(from_zero=True, reorder_s=0.0))
    try:
        for seq in (0, 1, 2, 4):  # 3 never arrives: a gap
            publisher.send(f"{base}/event", outbox[seq])
        hostile = [
            (f"{base}/event", b"{not json"),
            (f"{base}/event", b'{"boot_id": 7, "seq": "3", "ts": 1, "type": [], "data": 0}'),
            (f"{base}/event", b"x" * (300 * 1024)),
            (f"{base}/state", b'{"site": "lab", "seat": "F-01", "call": "ringing"}'),
            (f"{base}/availability", b"maybe"),
            (f"seatbox/v1/lab/{'X' * 5000}/event", outbox[0]),  # an id far past 64 characters
            ("seatbox/v1/lab/alice@supervisors/event", outbox[0]),
        ]
        for topic, payload in hostile:
            publisher.send(topic, payload)
        publisher.send(f"{base}/event", outbox[5])  # the rest goes on
        wait_until(lambda: len(store.events("lab")) == 5, 10, "seqs 0-2, 4 and 5 stored")
        wait_until(lambda: store.counters().get("invalid") == len(hostile), 10, "bad counted")
        assert ingest.ask_for_gaps() == 1
        wait_until(lambda: len(store.events("lab")) == 6, 10, "seq 3 resent and stored")
        publisher.send(f"{base}/event", outbox[2])  # a second copy
        wait_until(lambda: store.counters().get("duplicates") == 1, 10, "the copy counted")
    finally:
        ingest.stop()
        publisher.close()
    assert [(r["boot_id"], r["from_seq"], r["to_seq"]) for r in asked] == [("7-0a0b0c0d", 3, 3)]
    assert [e["seq"] for e in store.events("lab", seat)] == list(range(6))
    assert store.rollups("lab", seat, "2026-11-23")["calls"] == 6.0
    assert store.counters()["resend_requests"] == 1
    assert store.seat("lab", seat) is None or store.seat("lab", seat)["state"] is None  # type: ignore[index]


def test_event_types_the_site_does_not_keep_are_never_stored_and_not_asked_for_again(
    broker: Mosquitto, store: SqliteStore
) -> None:
    """[privacy] norms: a hold norm the site neither shows nor stores leaves no row, no
    rollup, and no gap to ask the seat for; the call events around it are stored."""
    base = "seatbox/v1/lab/P-01"
    publisher = Publisher(broker)
    ingest = started(
        broker,
        store,
        tracker=StreamTracker(from_zero=True, reorder_s=0.0),
        keep=lambda kind: kind.startswith("call."),
    )
    try:
        for seq, kind in enumerate(("call.ringing", "hold.too_long", "call.ringing")):
            publisher.send(f"{base}/event", event(seq, kind))
        wait_until(lambda: store.counters().get("withheld") == 1, 10, "the hold event withheld")
        wait_until(lambda: len(store.events("lab")) == 2, 10, "the call events stored")
        assert ingest.ask_for_gaps() == 0  # seq 1 was received: not a gap
    finally:
        ingest.stop()
        publisher.close()
    assert [(e["seq"], e["type"]) for e in store.events("lab")] == [
        (0, "call.ringing"),
        (2, "call.ringing"),
    ]
    rollup = store.rollups("lab", "P-01", "2026-11-23")
    assert rollup["calls"] == 2.0 and not any("hold" in name for name in rollup)


@pytest.mark.parametrize("kind", STORES)
def test_purge_removes_only_what_is_past_retention(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    store = open_test_store(kind, tmp_path, request, raw_s=7 * 86400, rollups_s=90 * 86400)
    now = datetime(2026, 12, 31, 12, tzinfo=UTC).timestamp()
    try:
        for day, seq in (
            ("2026-09-01", 0),
            ("2026-10-02", 1),
            ("2026-12-23", 2),
            ("2026-12-25", 3),
        ):
            payload = json.loads(event(seq))
            payload["ts"] = f"{day}T10:00:00.000Z"
            store.add_event("lab", "A-01", parse_event(json.dumps(payload).encode()), now)
        store.put_state("lab", "A-01", b"{}", now - 8 * 86400)  # not heard of for 8 days
        store.put_info("lab", "A-02", b"{}", now)
        purged = store.purge(now)
        # Raw events: 7 days (24 Dec 12:00 on); rollups: days from 2 Oct (90 days back).
        assert (purged.events, purged.rollups, purged.seats) == (3, 2, 1)
        assert [e["day"] for e in store.events("lab")] == ["2026-12-25"]
        assert store.rollups("lab", "A-01", "2026-09-01") == {}
        assert store.rollups("lab", "A-01", "2026-10-02")["calls"] == 1.0
        assert store.rollups("lab", "A-01", "2026-12-23")["calls"] == 1.0
        assert store.seat("lab", "A-01") is None and store.seat("lab", "A-02") is not None
        assert store.purge(now) == type(purged)(0, 0, 0)  # nothing more to do
    finally:
        store.close()


def test_the_store_takes_only_valid_ids_and_binds_every_value(store: SqliteStore) -> None:
    for site, seat in (("lab", "A'; DROP TABLE events; --"), ("x" * 65, "A-01"), ("lab", "")):
        with pytest.raises(ParseError):
            store.add_event(site, seat, parse_event(event(0)), 0.0)
    odd = json.loads(event(0, kind="seat.identify"))
    odd["data"] = {"note": "'); DELETE FROM events; --"}
    assert store.add_event("lab", "A-01", parse_event(json.dumps(odd).encode()), 0.0)
    assert store.events("lab")[0]["data"] == odd["data"]
    assert store.tables() == ["agent_rollups", "counters", "events", "rollups", "seats"]


def test_seatbox_floor_serve_runs_until_sigterm_and_stores_a_seat(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type all\n"
    )
    broker.start()
    config = tmp_path / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "{broker.url}"\nclient_id = "seatbox-floor-cli"\n'
        '[site]\nid = "lab"\n[store]\ndir = "store"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'  # not 8080: other tests, a demo
        # The scenario's events are dated 2026-11-23: a retention they are within, or the
        # service's purge at start (1 s in) would rightly remove them as they arrive.
        '[privacy]\nraw_events = "3650d"\nrollups = "3650d"\n'
    )
    (tmp_path / "store").mkdir()
    parsed, path = load_floor_config(config)
    assert parsed.privacy.raw_events == 3650 * 86400
    assert path.sqlite == tmp_path / "store/floor.sqlite"
    serve = subprocess.Popen(seatbox("floor", "serve", "--config", str(config)), cwd=REPO)
    try:
        wait_until(
            lambda: "seatbox/v1/lab/+/event" in broker.log.read_text(),
            30,  # the service imports its web stack first: slow on a loaded machine
            "the service's SUBSCRIBE",
        )
        wait_until(lambda: "SUBACK to seatbox-floor-cli" in broker.log.read_text(), 30, "SUBACK")
        played = simulate(broker, "away")
        reader = SqliteStore(path.sqlite)
        try:
            wait_until(lambda: len(reader.events("lab")) == len(played), 30, "the seat stored")
        finally:
            reader.close()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        broker.stop()


def test_a_bad_floor_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "floor.toml"
    config.write_text(
        '[broker]\nurl = "mqtt://h:1"\n[site]\nid = "a/b"\n[privacy]\nrollups = "0d"\n'
    )
    run = subprocess.run(
        seatbox("floor", "serve", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "[site] id" in run.stderr and "[privacy] rollups" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_events_published_while_the_service_is_down_arrive_from_its_session(
    broker: Mosquitto, store: SqliteStore, protocol: str
) -> None:
    """MQTT 3.1.1 clean_session=False, MQTT 5 clean_start=False with a session expiry: the
    broker queues QoS 1 events for the fixed client id while the service is away."""
    section = BrokerSection(url=broker.url, protocol=protocol)  # type: ignore[arg-type]
    client_id = f"seatbox-floor-session-{protocol}"
    base = f"seatbox/v1/lab/P-{protocol.replace('.', '')}"
    seat = base.rsplit("/", 1)[1]
    publisher = Publisher(broker)
    try:
        ingest = Ingest(section, "lab", client_id, store)
        ingest.start()
        wait_until(ingest.subscribed.is_set, 10, "the ingest's SUBACKs")
        ingest.stop()
        for seq in range(3):  # published while no one is connected under client_id
            publisher.send(f"{base}/event", event(seq))
        ingest = Ingest(section, "lab", client_id, store)
        ingest.start()
        try:
            wait_until(lambda: len(store.events("lab", seat)) == 3, 10, "the queued events")
        finally:
            ingest.stop()
    finally:
        publisher.close()


def test_each_payload_is_checked_once_and_the_live_floor_sees_what_the_store_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The ingest hands its listener (the live floor's model) what it parsed: one schema check
    per payload (issue 15), the same verdicts on both sides, bad payloads logged once."""
    import edge.api.models as models
    from floor.model import FloorModel

    checked: list[str] = []
    validated = models._validated

    def counting(model: Any, what: str, payload: bytes) -> Any:
        checked.append(what)
        return validated(model, what, payload)

    monkeypatch.setattr(models, "_validated", counting)
    store = SqliteStore(tmp_path / "floor.sqlite")
    live = FloorModel(site="lab")
    ingest = Ingest(
        BrokerSection(url="mqtt://127.0.0.1:1"), "lab", "t", store, listeners=[live.apply]
    )
    base = "seatbox/v1/lab/F-01"
    good_state = json.dumps({**valid_state("F-01"), "site": "lab"}).encode()
    bad_state = b'{"site": "lab", "seat": "F-01", "call": "ringing"}'
    messages = [
        (f"{base}/state", good_state),
        (f"{base}/event", event(0)),
        (f"{base}/event", event(0)),  # a QoS 1 copy
        (f"{base}/event", event(2)),  # 1 never came: a gap
        (f"{base}/event", b"{not json"),
        (f"{base}/availability", b"maybe"),
        (f"{base}/state", bad_state),
        (f"{base}/state", bad_state),  # the same seat repeating itself
    ]
    ingest.start_writer()
    try:
        with caplog.at_level("WARNING"):
            for n, (topic, payload) in enumerate(messages):
                ingest.apply(topic, payload, 1_700_000_000.0 + n, 100.0 + n)
    finally:
        ingest.stop_writer()
        store.close()
    assert len(checked) == 7  # every JSON payload once, not once more by the live floor
    view = live.seats["F-01"]
    assert view.state is None and view.problems["state"].startswith("bad state")
    assert view.events == 2 and view.missing == 1 and live.invalid == 1
    assert view.problems["availability"] == "bad availability: payload"
    assert ingest.tracker.duplicates == 1 and live.tracker.duplicates == 1
    ingest_lines = [r for r in caplog.records if "bad state ignored" in r.getMessage()]
    view_lines = [r for r in caplog.records if "floor view: seat F-01: state" in r.getMessage()]
    assert len(ingest_lines) == 1 and len(view_lines) == 1
