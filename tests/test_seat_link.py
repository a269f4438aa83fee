"""The seat's MQTT link publishing before the broker answers (box boot, broker outage).

`seatbox run` publishes state as soon as its devices report, often before the CONNACK.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from support import free_port, mosquitto, wait_until

from edge.api.broker import BrokerSection
from edge.core.effects import Event
from edge.shell.config import SeatConfig, SeatSection
from edge.shell.mqtt.link import SeatLink


def test_messages_published_before_the_broker_is_up_are_delivered_once_it_is(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = SeatConfig(
        seat=SeatSection(site="site1", id="seat-01"),
        broker=BrokerSection(url=f"mqtt://127.0.0.1:{port}"),
    )
    link = SeatLink(config, "boot-1", on_command=lambda _command: None)
    link.start()  # nobody listens on the port yet: paho keeps retrying
    try:
        # Each publish looks at the earlier ones; none may raise (this stopped the seat).
        link.publish_event(Event(seq=0, ts="t0", type="radar.lost", data={"detail": "x"}))
        link.publish_state({"presence": {"state": "present"}})
        link.publish_event(Event(seq=1, ts="t1", type="presence.present"))
        assert not link.connected.is_set()

        with mosquitto(tmp_path, port=port):
            assert link.connected.wait(15), "the link did not connect"
            assert link.flush(10), "messages published while disconnected were not acknowledged"
            got: dict[str, Any] = {}
            arrived = threading.Event()

            def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
                got[msg.topic] = json.loads(msg.payload)
                arrived.set()

            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="checker")
            sub.on_message = on_message
            sub.connect("127.0.0.1", port)
            sub.subscribe("seatbox/v1/site1/seat-01/state", qos=1)
            sub.loop_start()
            try:
                wait_until(arrived.is_set, 10, "the retained state")
            finally:
                sub.loop_stop()
                sub.disconnect()
            assert got["seatbox/v1/site1/seat-01/state"] == {"presence": {"state": "present"}}
    finally:
        link.stop(flush_timeout=0.5)
