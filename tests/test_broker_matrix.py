"""The same seat outbox against Mosquitto, NATS (MQTT + JetStream) and RabbitMQ (MQTT plugin):
ordered QoS 1 delivery to a persistent subscriber; MQTT 5 where the broker offers it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokers import nats_mqtt, rabbitmq_mqtt
from outbox_support import SeatSide, Subscriber
from support import mosquitto, wait_until
from test_e2e_mqtt import REPO, SCENARIOS, seatbox_command
from test_e2e_mqtt import Subscriber as SeatSubscriber

from edge.api.broker import BrokerSection
from edge.ops.broker_check import BrokerConnectError, connect_and_wait

BROKERS = ["mosquitto", "nats", "rabbitmq"]


@pytest.fixture(scope="module", params=BROKERS)
def matrix_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp(request.param)
    starter = {
        "mosquitto": lambda: mosquitto(workdir),
        "nats": lambda: nats_mqtt(workdir),
        "rabbitmq": lambda: rabbitmq_mqtt(workdir),
    }[request.param]
    with starter() as running:
        yield running if isinstance(running, str) else running.url


def test_outbox_events_arrive_in_order_exactly_once(matrix_url: str, tmp_path: Path) -> None:
    subscriber = Subscriber(matrix_url).start()
    assert subscriber.connected.wait(15)
    seat = SeatSide(matrix_url, tmp_path / "o.db").start()
    try:
        kinds = ["call.ring", "answer.late", "hold.long", "mute.on"]
        entries = [seat.outbox.add_event(kinds[n % 4], {"n": n}) for n in range(200)]
        wait_until(lambda: len(subscriber.new_keys()) == 200, 30, "200 events")
        assert subscriber.new_keys() == [(e.boot_id, e.seq) for e in entries]
        assert subscriber.received.types[(entries[1].boot_id, 1)] == "answer.late"
        wait_until(lambda: seat.outbox.stats().pending == 0, 15, "every PUBACK recorded")
    finally:
        seat.stop()
        subscriber.stop()


def test_mqtt5_where_offered_else_a_clear_refusal(matrix_url: str, tmp_path: Path) -> None:
    v5 = BrokerSection(url=matrix_url, protocol="5")
    try:
        client, _ = connect_and_wait(v5, "seatbox-hq-v5probe", timeout=10)
    except BrokerConnectError as err:
        # NATS speaks 3.1.1 only; RabbitMQ before 3.13 likewise.
        assert "MQTT 5" in str(err) and 'protocol = "3.1.1"' in str(err)
        assert "mosquitto" not in matrix_url
        return
    client.disconnect()
    subscriber = Subscriber(matrix_url).start()
    assert subscriber.connected.wait(15)
    seat = SeatSide(matrix_url, tmp_path / "o5.db", broker=v5).start()
    try:
        entries = [seat.outbox.add_event("hold.long", {"n": n}) for n in range(50)]
        wait_until(lambda: len(subscriber.new_keys()) == 50, 20, "50 events over MQTT 5")
        assert subscriber.new_keys() == [(e.boot_id, e.seq) for e in entries]
    finally:
        seat.stop()
        subscriber.stop()


def test_the_same_seat_scenario_end_to_end(matrix_url: str, tmp_path: Path) -> None:
    """`seatbox simulate` (core, norms, outbox, link) unchanged on each broker: a subscriber
    gets every event the seat wrote to its own log, once after de-duplication, schema-valid."""
    scenario = SCENARIOS / "hold_mute.toml"
    site, seat = "lab", "S-holdmute"
    subscriber = SeatSubscriber(matrix_url, site, seat)
    log = tmp_path / "events.jsonl"
    try:
        run = subprocess.run(
            [
                *seatbox_command(),
                "simulate",
                str(scenario),
                "--fast",
                "--broker",
                matrix_url,
                "--events-out",
                str(log),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        written = [json.loads(line) for line in log.read_text().splitlines()]
        assert {e["type"] for e in written} >= {"call.hold", "mute.on", "call.ended"}

        def deduplicated() -> list[dict[str, object]]:
            seen: dict[tuple[str, int], dict[str, object]] = {}
            for event in subscriber.of("event"):
                seen.setdefault((event["boot_id"], event["seq"]), event)
            return list(seen.values())

        wait_until(lambda: len(deduplicated()) >= len(written), 20, "every event of the run")
        assert deduplicated() == written
        subscriber.assert_valid()
        assert subscriber.last("availability") == "offline"  # the clean goodbye
        assert subscriber.last("state")["call"]["state"] == "idle"
    finally:
        subscriber.close()
