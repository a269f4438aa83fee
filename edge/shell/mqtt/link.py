"""The seat's MQTT link (paho 2.x): availability with a will, retained state and info, events,
levels, commands in and replies out, reconnecting by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from edge.api.broker import make_client
from edge.api.payloads import OFFLINE, ONLINE, dumps, event_payload
from edge.api.topics import Topics
from edge.base.schema import valid_id
from edge.core.effects import Event, Levels
from edge.shell.config import SeatConfig
from edge.shell.mqtt.commands import (
    Command,
    CommandError,
    parse,
    reply_payload,
    resend_reply,
)
from edge.shell.outbox.pump import OutboxPump
from edge.shell.outbox.store import EventDataError, Outbox, OutboxError, ResendResult

log = logging.getLogger(__name__)

# paho's own log: what it catches with suppress_exceptions; its per-packet DEBUG lines are off.
PAHO_LOG = logging.getLogger(f"{__name__}.paho")
PAHO_LOG.setLevel(logging.WARNING)


def _not_the_closed_socket_line(record: logging.LogRecord) -> bool:
    # paho 2.x's network loop logs this at ERROR for one last turn after every clean
    # disconnect(); the link reports its own connection state, so the line only alarms.
    return not str(record.msg).startswith("Client is not connected.")


PAHO_LOG.addFilter(_not_the_closed_socket_line)


class SeatLink:
    """One seat's connection to the site broker. Publishing never blocks the seat core.

    With an `Outbox`, events are stored durably (numbered by the outbox) and published by an
    `OutboxPump` in order, deleted only after the PUBACK; without one (a seat with no state
    directory), they go straight to paho's memory queue.

    The link answers `cmd/rebirth` and `cmd/resend` itself. It reaches the seat through two
    callables only: `on_command` (every other valid command, on paho's thread) and
    `on_connected` (publish the birth: info and state, after every connect and on rebirth).
    """

    def __init__(
        self,
        config: SeatConfig,
        boot_id: str,
        on_command: Callable[[Command], None] = lambda _command: None,
        on_connected: Callable[[], None] = lambda: None,
        url: str | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.config = config
        self.boot_id = boot_id  # the outbox's own when there is one (the wiring passes it)
        self.outbox = outbox
        self.topics = Topics(config.seat.site, config.seat.id)
        self.on_command = on_command
        self.on_connected = on_connected
        self.client, self.endpoint = make_client(config.broker, config.client_id, url)
        self.client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        # Our callbacks catch everything themselves; this is paho's own net below them (it
        # logs what escapes instead of ending its network thread).
        self.client.suppress_exceptions = True
        self.client.enable_logger(PAHO_LOG)
        self.connected = threading.Event()
        self._network: threading.Thread | None = None  # paho's network thread, once started
        self._stopped = False
        self.restarts = 0  # times the network thread was found dead and started again
        self._last_error = ""
        self._unacked: deque[mqtt.MQTTMessageInfo] = deque()
        self._unacked_lock = threading.Lock()  # events from the core thread, replies from paho's
        # The retained state published while offline: only the newest is kept, and it goes out
        # at the connect before the birth. Queued in paho instead, it went out after the birth
        # (paho sends what was queued after on_connect returns) and could leave an older state
        # retained than the birth's.
        self._state_lock = threading.Lock()
        self._pending_state: bytes | None = None
        self.pump: OutboxPump | None = None
        self._backlog, self._backlog_at = 0, float("-inf")
        if outbox is not None:
            self.pump = OutboxPump(
                self.client,
                outbox,
                rate_per_s=config.broker.replay_rate,
                max_inflight=config.broker.max_inflight,
            )
            self.pump.attach()  # after our callbacks: birth first, then the backlog

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._connect_async()
        self._start_network()
        if self.pump:
            self.pump.start()

    def _connect_async(self) -> None:
        self.client.connect_async(
            self.endpoint.host, self.endpoint.port, keepalive=int(self.config.broker.keepalive)
        )

    def _start_network(self) -> None:
        self.client.loop_start()
        # paho 2.x keeps its loop thread here and sets it to None when the thread ends; an
        # unstarted Thread stands for one that ended before we looked.
        self._network = self.client._thread or threading.Thread()

    def network_alive(self) -> bool:
        """False once paho's network thread has ended without `stop()`: nothing is received,
        no keepalive is sent, and the broker soon publishes our will (`offline`)."""
        thread = self._network
        return self._stopped or thread is None or thread.is_alive()

    def problem(self) -> str | None:
        """What is wrong with the link that no reconnect will mend (for the watchdog)."""
        if self.network_alive():
            return None
        return "the MQTT network thread has stopped"

    def supervise(self) -> bool:
        """Start paho's network thread again if it died (an error escaped every handler);
        True when it had to. The core thread calls this every second (a timer the wiring sets)."""
        if self.network_alive():
            return False
        self.restarts += 1
        log.error(
            "the MQTT network thread stopped; reconnecting on a new connection (restart %d)",
            self.restarts,
        )
        self.connected.clear()
        if self.pump:
            self.pump.handle_disconnect()
        # A new connection: the old socket may hold half a packet. paho re-sends its in-flight
        # QoS 1 messages after the connect, so nothing queued is lost.
        self._connect_async()
        self._start_network()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every QoS 1 message published so far is acknowledged (or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._unacked_lock:
                self._prune()
                done = not self._unacked
            if done and self.pump and self.outbox:
                done = self.pump.inflight == 0 and self.outbox.stats().pending == 0
            if done:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _prune(self) -> None:
        while self._unacked and self._unacked[0].is_published():
            self._unacked.popleft()

    def stop(self, flush_timeout: float = 5.0) -> None:
        """A clean goodbye: `offline` (a clean DISCONNECT suppresses the will). Events the
        broker has not acknowledged by then stay in the outbox for the next start."""
        if self.client.is_connected():
            self.flush(flush_timeout)
        self._stopped = True
        if self.pump:
            self.pump.stop()
        if self.client.is_connected():
            info = self.client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=3)
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho callbacks (paho's thread) ------------------------------------------------------
    # Each catches every Exception itself: one escaping would end paho's network thread, and
    # the seat would stay offline for good (issue 12).

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            self._connected(client, reason)
        except Exception:
            log.exception("handling the broker's CONNACK failed; the link carries on")

    def _connected(self, client: mqtt.Client, reason: Any) -> None:
        if reason.is_failure:
            message = f"broker refused the connection: {reason}"
            if message != self._last_error:
                log.error("%s (%s)", message, self.endpoint.host)
                self._last_error = message
            return
        self._last_error = ""
        log.info("connected to %s:%s", self.endpoint.host, self.endpoint.port)
        # Commands first, so a request that answers our birth is not missed (Sparkplug §5).
        client.subscribe(self.topics.commands, qos=1)
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        with self._state_lock:
            self.connected.set()
            pending, self._pending_state = self._pending_state, None
            if pending is not None:
                self._publish(self.topics.state, pending, retain=True)
        self.on_connected()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            self.connected.clear()
            if reason.is_failure:
                log.warning("lost the broker (%s); reconnecting", reason)
        except Exception:
            log.exception("handling a disconnect failed; the link carries on")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._command(message.topic, bytes(message.payload))
        except Exception:
            log.exception("a command on %r failed; the link carries on", message.topic[:200])

    def _command(self, topic: str, payload: bytes) -> None:
        name = self.topics.command_name(topic)
        if name is None or name.endswith("reply"):
            return
        if not valid_id(name):
            # Its reply topic would be as odd as its name: not answered, only logged.
            log.warning("ignored a command on %r: not a command name", topic[:200])
            return
        try:
            command = parse(name, payload)
        except CommandError as exc:
            log.warning("bad command on %s: %s", topic, exc)
            self.reply(name, reply_payload(exc.request_id, False, str(exc)))
            return
        try:
            self._dispatch(command)
        except Exception:
            log.exception("command %s %r failed", name, command.request_id)
            self.reply(
                name,
                reply_payload(
                    command.request_id, False, f"{name}: failed inside the seat (see its log)"
                ),
            )

    def _dispatch(self, command: Command) -> None:
        """A valid command, on paho's network thread: the link's own, or handed to the seat."""
        if command.name == "rebirth":
            self.on_connected()
            self.reply("rebirth", reply_payload(command.request_id, True))
        elif command.name == "resend":
            self._resend(command)
        else:
            self.on_command(command)

    def _resend(self, command: Command) -> None:
        """Answer a consumer's gap from the outbox: looked up on the pump's thread, which
        replies how many are on their way and which are gone."""
        args = command.args or {}

        def answer(result: ResendResult) -> None:
            self.reply("resend", resend_reply(command.request_id, result))

        refused = self.request_resend(args["boot_id"], args["from_seq"], args["to_seq"], answer)
        if refused is not None:
            self.reply("resend", reply_payload(command.request_id, False, f"resend: {refused}"))

    # --- publishing ----------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # Not connected (yet): paho keeps a QoS 1 message and sends it after the connect,
            # but its is_published() raises on this rc for good, which broke every later
            # publish and stopped the seat. Waiting for its PUBACK is all that is left.
            info.rc = mqtt.MQTT_ERR_SUCCESS
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("not published to %s: %s", topic, mqtt.error_string(info.rc))
            return
        with self._unacked_lock:
            self._unacked.append(info)
            self._prune()

    def publish_event(self, event: Event) -> dict[str, Any] | None:
        """Store (outbox) or queue (paho) one event; returns the payload as it goes on the wire,
        None when the outbox could not keep it (the loss is logged, and reported as an
        `outbox.loss` event when it was the budget)."""
        if self.outbox is None:
            payload = event_payload(self.boot_id, event)
            try:
                encoded = dumps(payload)
            except (TypeError, ValueError) as exc:
                log.error("event %s not sent: its data cannot be encoded (%s)", event.type, exc)
                return None
            self._publish(self.topics.event, encoded)
            return payload
        try:
            entry = self.outbox.add_event(event.type, event.data, event.ts)
        except EventDataError as exc:  # refused before numbering: no gap in the seqs
            log.error("%s: event not kept", exc)
            return None
        except OutboxError as exc:
            log.error("%s: event %s not kept", exc, event.type)
            return None
        if not entry.stored:
            return None
        wire: dict[str, Any] = json.loads(entry.payload)
        return wire

    def delivery_status(self) -> str:
        """What the STATUS line adds about getting events out: a disk in trouble, no broker,
        a backlog ("" when all is well)."""
        line = ""
        if self.outbox is not None and self.outbox.degraded:
            health = self.outbox.health()
            trouble = "full" if health.state == "disk_full" else "failing"
            line += f", disk {trouble}: {health.held} event(s) held in memory only"
        if not self.connected.is_set():
            line += ", broker unreachable"
        backlog = self.backlog()
        return line + (f", {backlog} event(s) waiting to be sent" if backlog else "")

    def backlog(self, max_age_s: float = 5.0) -> int:
        """Events stored but not yet acknowledged by the broker (counted at most every
        `max_age_s`: with a long outage the count scans the backlog)."""
        if self.outbox is None:
            return 0
        now = time.monotonic()
        if now - self._backlog_at >= max_age_s:
            self._backlog_at = now
            try:
                self._backlog = self.outbox.stats().pending
            except Exception as exc:  # a status line must never stop the seat
                log.warning("outbox backlog unknown: %s", exc)
        return self._backlog

    def request_resend(
        self,
        boot_id: str,
        from_seq: int,
        to_seq: int,
        answer: Callable[[ResendResult], None],
    ) -> str | None:
        """Hand a consumer's `cmd/resend` to the outbox pump, which looks it up on its own
        thread and calls `answer`; a reason instead when it cannot be taken now."""
        if self.pump is None:
            return "this seat runs without an outbox ([storage] state_dir)"
        if not self.pump.request_resend(boot_id, from_seq, to_seq, answer):
            return "too many resend requests waiting; ask again later"
        return None

    def publish_state(self, snapshot: dict[str, Any]) -> None:
        payload = dumps(snapshot)
        with self._state_lock:
            if not self.connected.is_set():
                self._pending_state = payload  # sent at the connect, before the birth
                return
            self._publish(self.topics.state, payload, retain=True)

    def publish_info(self, info: dict[str, Any]) -> None:
        self._publish(self.topics.info, dumps(info), retain=True)

    def publish_levels(self, levels: Levels) -> None:
        self.client.publish(self.topics.levels, dumps({"ts": levels.ts, **levels.data}), qos=0)

    def reply(self, name: str, payload: dict[str, Any]) -> None:
        self._publish(self.topics.reply(name), dumps(payload))
