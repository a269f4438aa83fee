"""Test parts for the outbox over real brokers: a seat side (outbox + pump + paho client that
answers `cmd/resend`) and a subscriber that de-duplicates with the consumer library.

Both are thin wiring of the shipped classes; waiting polls real conditions (support.wait_until).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from support import Mosquitto, free_port

from edge.api.broker import BrokerSection, make_client
from edge.api.models import parse_event
from edge.api.stream import StreamTracker, Verdict, seat_topic
from edge.api.topics import parse_topic
from edge.shell.mqtt.commands import CommandError, parse
from edge.shell.outbox.pump import OutboxPump
from edge.shell.outbox.store import Outbox

SITE = "hq"


class SeatSide:
    """What the seat runtime will do with the outbox: pump it, answer resend commands."""

    def __init__(
        self,
        url: str,
        db: Path,
        seat: str = "s01",
        *,
        broker: BrokerSection | None = None,
        budget_bytes: int = 64 * 1024 * 1024,
        rate_per_s: float | None = None,
        max_inflight: int = 32,
    ) -> None:
        self.seat = seat
        self.outbox = Outbox(db, seat_topic(SITE, seat, "event"), budget_bytes=budget_bytes)
        self.client, _ = make_client(
            broker or BrokerSection(url=url), f"seatbox-{SITE}-{seat}", url
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        self.resend_errors: list[str] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.pump = OutboxPump(
            self.client, self.outbox, rate_per_s=rate_per_s, max_inflight=max_inflight
        )
        self.pump.attach()
        endpoint = url.split("//")[1]
        host, port = endpoint.rsplit(":", 1)
        self.client.connect_async(host, int(port), keepalive=5)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(seat_topic(SITE, self.seat, "cmd/resend"), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # As the seat does: its own command parser, the lookup on the pump's thread.
        try:
            command = parse("resend", msg.payload)
        except CommandError as err:
            self.resend_errors.append(str(err))
            return
        args = command.args or {}
        self.pump.request_resend(args["boot_id"], args["from_seq"], args["to_seq"], lambda _: None)

    def start(self) -> SeatSide:
        self.pump.start()
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.pump.stop()
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()


@dataclass
class Received:
    arrivals: list[tuple[str, int]] = field(default_factory=list)  # every copy, in order
    new: list[tuple[str, int]] = field(default_factory=list)  # first copies, in order
    types: dict[tuple[str, int], str] = field(default_factory=dict)
    data: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


class Subscriber:
    """A floor consumer with a persistent session that asks for resends of gaps."""

    def __init__(
        self, url: str, client_id: str = "floor-1", *, reorder_s: float = 0.5, retry_s: float = 2.0
    ) -> None:
        self.tracker = StreamTracker(reorder_s=reorder_s, retry_s=retry_s, max_attempts=20)
        self.received = Received()
        self.requested: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()
        self.client, _ = make_client(BrokerSection(url=url), client_id, url, clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        host, port = url.split("//")[1].rsplit(":", 1)
        self.client.connect_async(host, int(port), keepalive=5)
        self.connected = threading.Event()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        client.subscribe(f"seatbox/v1/{SITE}/+/event", qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = parse_topic(msg.topic)
        assert parts is not None
        event = parse_event(msg.payload)
        key = (event.boot_id, event.seq)
        with self._lock:
            self.received.arrivals.append(key)
            accepted = self.tracker.accept(parts.site, parts.seat, event, time.monotonic())
            if accepted.verdict is Verdict.NEW:
                self.received.new.append(key)
                self.received.types[key] = event.type
                self.received.data[key] = event.data

    def ask_for_gaps(self) -> None:
        """Send the due resend requests (the floor view does this on a timer)."""
        with self._lock:
            requests = self.tracker.due_resends(time.monotonic())
        for request in requests:
            self.requested.append((request.boot_id, request.from_seq, request.to_seq))
            self.client.publish(request.topic, request.payload(), qos=1)

    def new_keys(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self.received.new)

    def start(self) -> Subscriber:
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def broker_workdir() -> Iterator[Path]:
    """A directory the broker can write after it drops root (Mosquitto started as root runs as
    user `mosquitto`, which cannot enter pytest's 0700 temporary directories)."""
    path = Path(tempfile.mkdtemp(prefix="seatbox-broker-"))
    path.chmod(0o755)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("mosquitto")
            os.chown(path, user.pw_uid, user.pw_gid)
        except KeyError:
            pass  # no such user: mosquitto keeps running as root
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def persistent_broker() -> Iterator[Mosquitto]:
    """A running Mosquitto that keeps sessions across clean restarts, on a free fixed port."""
    with broker_workdir() as workdir:
        port = free_port()
        running = Mosquitto(workdir, persistent_mosquitto_config(port, workdir), port)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def persistent_mosquitto_config(port: int, workdir: Path, extra: str = "") -> str:
    """A broker that keeps sessions across restarts (saved on a clean stop)."""
    return (
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "max_queued_messages 100000\n"
        f"{extra}"
    )
