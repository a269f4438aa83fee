"""The shipped site broker config (config/mosquitto/) run as is, with only ports and paths
rewritten: mutual TLS, clear connect errors, pattern ACLs between seats, read-only supervisors,
the websockets listener for floor views."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from outbox_support import broker_workdir
from support import Mosquitto, free_port, wait_until
from tls_support import CertificateAuthority, Issued

from edge.api.broker import BrokerSection
from edge.ops.broker_check import BrokerConnectError, connect_and_wait

REPO = Path(__file__).parent.parent
SHIPPED = REPO / "config" / "mosquitto"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    broker: Mosquitto
    tls_port: int
    ws_port: int
    server_ca: Path
    client_ca: CertificateAuthority
    rogue_ca: CertificateAuthority
    clients: Path
    password_file: Path

    def seat(self, name: str, **overrides: Any) -> BrokerSection:
        values: dict[str, Any] = {
            "url": f"mqtts://127.0.0.1:{self.tls_port}",
            "ca_file": str(self.server_ca),
        }
        if "cert_file" not in overrides:
            issued = self.client_ca.issue(name)
            values.update(cert_file=str(issued.cert), key_file=str(issued.key))
        values.update(overrides)
        return BrokerSection(**values)

    def wss(self) -> BrokerSection:
        """The browser listener with the supervisor's password."""
        return BrokerSection(
            url=f"wss://127.0.0.1:{self.ws_port}/mqtt",
            ca_file=str(self.server_ca),
            username="alice@supervisors",
            password_file=str(self.password_file),
        )


def _rewrite(conf: str, workdir: Path, tls_port: int, ws_port: int) -> str:
    """Only ports and paths change; every other line is the shipped one."""
    return (
        conf.replace("/etc/mosquitto/seatbox/", f"{workdir}/")
        .replace("/var/lib/mosquitto/", f"{workdir}/")
        .replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
        .replace("listener 8884\n", f"listener {ws_port} 127.0.0.1\n")
    )


def _give_to_broker_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for item in [path, *path.rglob("*")]:
        os.chown(item, user.pw_uid, user.pw_gid)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    clients = tmp_path_factory.mktemp("clients")
    with broker_workdir() as workdir:
        certs = workdir / "certs"
        certs.mkdir()
        server_ca = CertificateAuthority(certs, "server-ca")
        client_ca = CertificateAuthority(certs, "client-ca")
        server = server_ca.issue("localhost", server=True)
        server.cert.rename(certs / "server.crt")
        server.key.rename(certs / "server.key")
        shutil.copy(server_ca.path, clients / "server-ca.crt")
        shutil.copy(SHIPPED / "acl", workdir / "acl")
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                "-c",
                str(workdir / "passwd"),
                "alice@supervisors",
                PASSWORD,
            ],
            check=True,
            capture_output=True,
        )
        (workdir / "passwd").chmod(0o600)
        tls_port, ws_port = free_port(), free_port()
        conf = _rewrite((SHIPPED / "seatbox-site.conf").read_text(), workdir, tls_port, ws_port)
        _give_to_broker_user(workdir)
        broker = Mosquitto(workdir, conf, tls_port)
        broker.start()
        password_file = clients / "alice.pass"
        password_file.write_text(PASSWORD)
        password_file.chmod(0o600)
        try:
            yield Site(
                broker,
                tls_port,
                ws_port,
                clients / "server-ca.crt",
                client_ca,
                CertificateAuthority(clients, "rogue-ca"),
                clients,
                password_file,
            )
        finally:
            broker.stop()


class Listener:
    """A connected client that records what it receives and whether the broker dropped it."""

    def __init__(
        self, broker: BrokerSection, client_id: str, *topics: str, clean_session: bool = True
    ) -> None:
        self.client, _ = connect_and_wait(broker, client_id, clean_session=clean_session)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.dropped = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.loop_start()
        for topic in topics:
            self.subscribed.clear()
            self.client.subscribe(topic, qos=1)
            assert self.subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def topics(self) -> list[str]:
        with self._lock:
            return [topic for topic, _ in self.messages]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def still_connected(self) -> bool:
        """A QoS 1 round trip the broker answers only on a live connection."""
        if self.dropped.is_set():
            return False
        info = self.client.publish("seatbox/v1/ping", b"", qos=1)
        try:
            info.wait_for_publish(5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published() and not self.dropped.is_set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_seat_with_its_certificate_connects_and_its_events_reach_a_floor_service(
    site: Site,
) -> None:
    floor = Listener(site.seat("floor@services"), "floor-svc", "seatbox/v1/#")
    seat = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        seat.publish("seatbox/v1/hq/s01/event", b"hello")
        wait_until(lambda: "seatbox/v1/hq/s01/event" in floor.topics(), 5, "the seat's event")
    finally:
        seat.close()
        floor.close()


def test_server_certificate_from_an_unknown_ca_is_refused_clearly(site: Site) -> None:
    broker = site.seat("s01", ca_file=str(site.rogue_ca.path))
    with pytest.raises(BrokerConnectError, match=r"certificate at 127\.0\.0\.1:\d+ is not trusted"):
        connect_and_wait(broker, "seatbox-hq-s01")


def test_expired_seat_certificate_is_refused_clearly(site: Site) -> None:
    expired = site.client_ca.issue("s03", expired=True)
    broker = site.seat("s03", cert_file=str(expired.cert), key_file=str(expired.key))
    with pytest.raises(BrokerConnectError, match="refused our client certificate: it has expired"):
        connect_and_wait(broker, "seatbox-hq-s03")


def test_seat_certificate_from_another_ca_is_refused_clearly(site: Site) -> None:
    rogue: Issued = site.rogue_ca.issue("s01")
    broker = site.seat("s01", cert_file=str(rogue.cert), key_file=str(rogue.key))
    with pytest.raises(BrokerConnectError, match="does not accept our client certificate"):
        connect_and_wait(broker, "seatbox-hq-s01")


def test_plain_mqtt_to_the_tls_port_is_refused_with_a_hint(site: Site) -> None:
    broker = BrokerSection(url=f"mqtt://127.0.0.1:{site.tls_port}")
    with pytest.raises(BrokerConnectError, match="closed the connection.*use mqtts://"):
        connect_and_wait(broker, "seatbox-hq-s01", timeout=5)


def test_seat_cannot_publish_into_another_seats_topics(site: Site) -> None:
    floor = Listener(site.seat("floor@services"), "floor-svc", "seatbox/v1/#")
    seat_a = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        for topic in (
            "seatbox/v1/hq/s02/event",
            "seatbox/v1/hq/s02/state",
            "seatbox/v1/hq/s02/cmd/identify",
            "seatbox/v1/other/s02/event",
            "seatbox/v1/hq/s01-x/event",
        ):
            seat_a.publish(topic, b"forged")
        seat_a.publish("seatbox/v1/hq/s01/event", b"marker")  # allowed, and after the forgeries
        wait_until(lambda: "seatbox/v1/hq/s01/event" in floor.topics(), 5, "the marker")
        assert floor.topics() == ["seatbox/v1/hq/s01/event"]
    finally:
        seat_a.close()
        floor.close()


def test_seat_cannot_read_another_seats_commands(site: Site) -> None:
    seat_a = Listener(
        site.seat("s01"), "seatbox-hq-s01", "seatbox/v1/hq/s02/cmd/#", "seatbox/v1/hq/s01/cmd/#"
    )
    floor = Listener(site.seat("floor@services"), "floor-svc")
    try:
        floor.publish("seatbox/v1/hq/s02/cmd/resend", b'{"id":"x"}')
        floor.publish("seatbox/v1/hq/s01/cmd/resend", b'{"id":"marker"}')
        wait_until(lambda: seat_a.topics(), 5, "the seat's own command")
        assert seat_a.topics() == ["seatbox/v1/hq/s01/cmd/resend"]
    finally:
        seat_a.close()
        floor.close()


def test_supervisor_reads_the_site_but_cannot_publish(site: Site) -> None:
    supervisor = Listener(site.seat("alice@supervisors"), "alice", "seatbox/v1/#")
    seat = Listener(site.seat("s01"), "seatbox-hq-s01", "seatbox/v1/hq/s01/cmd/#")
    floor = Listener(site.seat("floor@services"), "floor-svc")
    try:
        supervisor.publish("seatbox/v1/hq/s01/cmd/resend", b'{"id":"sup"}')
        supervisor.publish("seatbox/v1/hq/s01/event", b"forged")
        floor.publish("seatbox/v1/hq/s01/cmd/resend", b'{"id":"marker"}')
        wait_until(lambda: seat.messages, 5, "the floor service's command")
        assert seat.messages == [("seatbox/v1/hq/s01/cmd/resend", b'{"id":"marker"}')]
        wait_until(lambda: supervisor.topics(), 5, "the supervisor reading the site")
        assert supervisor.topics() == ["seatbox/v1/hq/s01/cmd/resend"]  # not its own forgeries
    finally:
        for client in (supervisor, seat, floor):
            client.close()


def test_browser_floor_view_reads_over_secure_websockets_with_a_password(site: Site) -> None:
    wss = BrokerSection(
        url=f"wss://127.0.0.1:{site.ws_port}/mqtt",
        ca_file=str(site.server_ca),
        username="alice@supervisors",
        password_file=str(site.password_file),
    )
    view = Listener(wss, "floor-view-browser", "seatbox/v1/#")
    seat = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        seat.publish("seatbox/v1/hq/s01/state", b"{}")
        wait_until(lambda: view.topics() == ["seatbox/v1/hq/s01/state"], 5, "state over wss")
    finally:
        view.close()
        seat.close()


def test_websockets_with_a_wrong_password_is_refused(site: Site) -> None:
    wrong = site.clients / "wrong.pass"
    wrong.write_text("guess")
    wrong.chmod(0o600)
    wss = BrokerSection(
        url=f"wss://127.0.0.1:{site.ws_port}/mqtt",
        ca_file=str(site.server_ca),
        username="alice@supervisors",
        password_file=str(wrong),
    )
    with pytest.raises(BrokerConnectError, match="refused the connection"):
        connect_and_wait(wss, "floor-view-browser")


# --- fault 11: a client id belongs to one identity ------------------------------------------


def test_a_seat_using_another_seats_client_id_does_not_kick_it_offline(site: Site) -> None:
    floor = Listener(site.seat("floor@services"), "floor-svc", "seatbox/v1/#")
    seat_a = Listener(site.seat("s01"), "seatbox-hq-s01", "seatbox/v1/hq/s01/cmd/#")
    try:
        for _ in range(3):  # the attack was a loop: 20 flips in 20 s
            seat_b = Listener(site.seat("s02"), "seatbox-hq-s01", "seatbox/v1/hq/+/cmd/#")
            assert seat_a.still_connected(), "seat s01 was kicked by s02 using its client id"
            # s02 is s02, not s01's session: it cannot read s01's commands.
            floor.publish("seatbox/v1/hq/s01/cmd/rebirth", b'{"id":"r1"}')
            wait_until(lambda: seat_a.messages, 5, "s01's own command")
            assert seat_b.messages == []
            seat_b.close()
            seat_a.messages.clear()
    finally:
        seat_a.close()
        floor.close()


def test_a_supervisor_cannot_take_over_the_floor_services_session(site: Site) -> None:
    floor = Listener(site.seat("floor@services"), "floor-svc", "seatbox/v1/#", clean_session=False)
    floor.close()  # offline: the broker queues for its persistent session
    seat = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        seat.publish("seatbox/v1/hq/s01/event", b"queued while the floor service is away")
        # A supervisor's password over websockets, with the floor service's client id and a
        # clean session: before, this resumed and destroyed the floor service's session.
        intruder = Listener(site.wss(), "floor-svc", "seatbox/v1/#")
        intruder.close()
        back = Listener(site.seat("floor@services"), "floor-svc", clean_session=False)
        try:
            wait_until(lambda: back.messages, 5, "the event queued for the floor service")
            assert back.messages == [
                ("seatbox/v1/hq/s01/event", b"queued while the floor service is away")
            ]
        finally:
            back.client.unsubscribe("seatbox/v1/#")
            back.close()
    finally:
        seat.close()


def test_a_supervisor_over_websockets_cannot_kick_a_seat(site: Site) -> None:
    seat = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        intruder = Listener(site.wss(), "seatbox-hq-s01")
        assert seat.still_connected()
        intruder.close()
    finally:
        seat.close()


# --- fault 12: only seats write seat topics --------------------------------------------------


def test_people_and_services_cannot_publish_seat_topics_under_their_own_names(
    site: Site,
) -> None:
    floor = Listener(site.seat("floor@services"), "floor-svc", "seatbox/v1/#")
    seat = Listener(site.seat("s01"), "seatbox-hq-s01")
    try:
        # alice by certificate, then by password over websockets (one connection at a time:
        # the identity is the client id), then the floor service itself.
        for broker, name in (
            (site.seat("alice@supervisors"), "alice@supervisors"),
            (site.wss(), "alice@supervisors"),
            (None, "floor@services"),
        ):
            client = Listener(broker, "alice") if broker else floor
            for leaf in ("state", "availability", "info", "event"):
                client.publish(f"seatbox/v1/hq/{name}/{leaf}", b"forged", retain=True)
            if client is not floor:
                client.close()
        seat.publish("seatbox/v1/hq/s01/event", b"marker")
        wait_until(lambda: "seatbox/v1/hq/s01/event" in floor.topics(), 5, "the marker")
        assert floor.topics() == ["seatbox/v1/hq/s01/event"]
    finally:
        seat.close()
        floor.close()


def test_every_person_and_service_in_the_shipped_acl_is_denied_its_own_seat_subtree() -> None:
    """The seat patterns match every username: each `user` block must take them away."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in (SHIPPED / "acl").read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            current = words[1]
            blocks[current] = []
        elif current and words[:1] == ["topic"]:
            blocks[current].append(" ".join(words[1:]))
    assert blocks, "no user blocks found"
    for user, rules in blocks.items():
        assert rules[0] == f"deny seatbox/v1/+/{user}/#", f"{user}: first rule must deny"


# --- fault 14: what one seat can store on the broker is bounded -----------------------------


def _max_packet_size() -> int:
    for line in (SHIPPED / "seatbox-site.conf").read_text().splitlines():
        words = line.split()
        if words[:1] == ["max_packet_size"]:
            return int(words[1])
    raise AssertionError("the shipped config sets no max_packet_size")


def _retained(site: Site, topic_filter: str, marker_topic: str) -> list[tuple[str, bytes]]:
    """What a new subscriber gets from the broker's retained store under topic_filter (the
    seat's retained availability is delivered with it and marks the end)."""
    reader = Listener(site.seat("floor@services"), "floor-svc", topic_filter)
    try:
        wait_until(lambda: marker_topic in reader.topics(), 5, "the retained messages")
        return reader.messages
    finally:
        reader.close()


def test_an_oversized_publish_is_refused_and_the_broker_stays_up(site: Site) -> None:
    cap = _max_packet_size()
    seat = Listener(site.seat("s05"), "seatbox-hq-s05")
    seat.publish("seatbox/v1/hq/s05/availability", b"online", retain=True)
    seat.publish("seatbox/v1/hq/s05/state", b"{}", retain=True)
    # The largest legitimate payload, with room for the topic and the packet header.
    seat.publish("seatbox/v1/hq/s05/info", b"i" * (cap - 200), retain=True)
    assert seat.still_connected()
    seat.client.publish("seatbox/v1/hq/s05/state", b"x" * 200_000, qos=1, retain=True)
    assert seat.dropped.wait(5), "the broker accepted a 200 kB publish"
    seat.close()
    assert site.broker.proc is not None and site.broker.proc.poll() is None
    stored = dict(_retained(site, "seatbox/v1/hq/s05/#", "seatbox/v1/hq/s05/availability"))
    assert stored["seatbox/v1/hq/s05/state"] == b"{}"  # the old state, not the oversized one
    assert len(stored["seatbox/v1/hq/s05/info"]) == cap - 200


def test_a_seat_cannot_fill_the_broker_with_retained_messages_in_its_subtree(site: Site) -> None:
    seat = Listener(site.seat("s06"), "seatbox-hq-s06")
    try:
        for i in range(200):
            seat.publish(f"seatbox/v1/hq/s06/x{i}", b"y" * 1000, retain=True)
            seat.publish(f"seatbox/v1/site{i}/s06/state", b"y" * 1000, retain=True)
        seat.publish("seatbox/v1/hq/s06/availability", b"online", retain=True)
        assert seat.still_connected()
    finally:
        seat.close()
    stored = _retained(site, "seatbox/v1/+/s06/#", "seatbox/v1/hq/s06/availability")
    assert [topic for topic, _ in stored] == ["seatbox/v1/hq/s06/availability"]
