"""The floor service's ingest: one MQTT subscription per site into the store.

A persistent session under a fixed client id (MQTT 3.1.1 `clean_session=False`; MQTT 5
`clean_start=False` with a session expiry, and Retain Handling 1 so a re-subscription does not
replay every retained message), QoS 1: while the service is down the broker queues the site's
events for it. Each payload is checked by `edge.api.models` (a bad one is counted and logged
once per seat and leaf, never fatal); events go through `edge.api.stream.StreamTracker`
(de-duplication, gaps) and the due `cmd/resend` requests are published as the floor view does.
`levels` are not subscribed to: the store never sees them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.api.broker import BrokerSection, make_client
from edge.api.models import (
    StreamError,
    parse_availability,
    parse_event,
    parse_info,
    parse_state,
)
from edge.api.stream import StreamTracker, Verdict
from edge.api.topics import parse_topic, site_filter
from floor.store import Store

log = logging.getLogger(__name__)

Listener = Callable[[str, bytes, float], None]

LEAVES = ("availability", "state", "info", "event")  # never `levels`
# How long the broker keeps the session (and queues QoS 1 events) while the service is away
# (MQTT 5); a longer outage is covered by the seats' outboxes and resend requests.
SESSION_EXPIRY_S = 24 * 3600
RESEND_PERIOD_S = 1.0
PURGE_PERIOD_S = 3600.0
MAX_LOGGED = 10_000  # (seat, leaf) pairs whose bad payloads were logged once (then counted only)


class Ingest:
    """Subscribes to one site and writes what seats publish to `store`."""

    def __init__(
        self,
        broker: BrokerSection,
        site: str,
        client_id: str,
        store: Store,
        *,
        url: str | None = None,
        tracker: StreamTracker | None = None,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.site = site
        # Called with (topic, payload, monotonic now) for every message of this site before the
        # store sees it (the live floor model): the live floor does not wait for the store.
        self.listeners = list(listeners)
        self.store = store
        self.broker = broker
        # from_zero: a store wants each boot's events from seq 0, so a stream first seen
        # mid-way (the service started after the seat) is a gap to ask for, not history.
        self.tracker = tracker or StreamTracker(from_zero=True)
        self.client, self.endpoint = make_client(broker, client_id, url, clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()
        self._pending: set[int] = set()
        self.subscribed = threading.Event()
        self.stored = 0  # events written by this process (for logs and tests)

    # --- MQTT callbacks (paho's thread: nothing may escape) ---------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("floor ingest: broker refused: %s", reason)
            return
        log.info(
            "floor ingest: connected to %s:%s (session present: %s)",
            self.endpoint.host,
            self.endpoint.port,
            getattr(flags, "session_present", None),
        )
        self.subscribed.clear()
        options: Any = 1
        if self.broker.protocol == "5":
            from paho.mqtt.subscribeoptions import SubscribeOptions

            options = SubscribeOptions(qos=1, retainHandling=1)
        with self._lock:
            for leaf in LEAVES:
                if self.broker.protocol == "5":
                    _, mid = client.subscribe(site_filter(self.site, leaf), options=options)
                else:
                    _, mid = client.subscribe(site_filter(self.site, leaf), qos=1)
                self._pending.add(mid)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            self._pending.discard(mid)
            if not self._pending:
                self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self.apply(message.topic, bytes(message.payload), time.time(), time.monotonic())
        except Exception:  # a store failure or a bug: logged, the next message still comes
            log.exception("floor ingest: message on %.120r not stored", message.topic)

    # --- one message -----------------------------------------------------------------------

    def _bad(self, seat: str, leaf: str, problem: str) -> None:
        self.store.count("invalid")
        if (seat, leaf) in self._logged:  # a seat repeating itself: one line
            return
        if len(self._logged) >= MAX_LOGGED:  # a flood of made-up seats: bounded memory
            if len(self._logged) == MAX_LOGGED:
                self._logged.add(("…", "…"))
                log.warning("floor ingest: more than %d seats sent bad payloads", MAX_LOGGED)
            return
        self._logged.add((seat, leaf))
        log.warning("floor ingest: seat %s: bad %s ignored: %s", seat, leaf, problem)

    def apply(self, topic: str, payload: bytes, now: float, mono: float) -> None:
        """One message: checked, de-duplicated, stored. `now` is wall time (epoch seconds),
        `mono` the monotonic clock the tracker times gaps with."""
        parsed = parse_topic(topic)
        if parsed is None or parsed.site != self.site:
            # Not a seat topic of this site (an id that does not parse, a stray publisher).
            self._bad("?", "topic", f"{topic[:80]!r} is not a seat topic of site {self.site}")
            return
        seat, leaf = parsed.seat, parsed.kind
        if leaf not in LEAVES:
            return
        for listener in self.listeners:
            try:
                listener(topic, payload, mono)
            except Exception:  # a listener's bug must not cost the store its event
                log.exception("floor ingest: listener failed on %.120r", topic)
        try:
            if leaf == "availability":
                self.store.put_availability(self.site, seat, parse_availability(payload), now)
            elif leaf == "state":
                state = parse_state(payload)
                if (state.site, state.seat) != (self.site, seat):
                    raise StreamError(f"state: names seat {state.site}/{state.seat}", "seat")
                self.store.put_state(self.site, seat, payload, now)
            elif leaf == "info":
                info = parse_info(payload)
                if (info.site, info.seat) != (self.site, seat):
                    raise StreamError(f"info: names seat {info.site}/{info.seat}", "seat")
                self.store.put_info(self.site, seat, payload, now)
            else:
                event = parse_event(payload)
                with self._lock:
                    accepted = self.tracker.accept(self.site, seat, event, mono)
                if accepted.verdict is Verdict.DUPLICATE:
                    self.store.count("duplicates")
                    return
                if self.store.add_event(self.site, seat, event, now):
                    self.stored += 1
        except StreamError as exc:
            self._bad(seat, leaf, str(exc))

    # --- resends, purge, life --------------------------------------------------------------

    def ask_for_gaps(self, mono: float | None = None) -> int:
        """Publish the due `cmd/resend` requests; count gaps given up as `lost`."""
        with self._lock:
            given_up = len(self.tracker.given_up())
            requests = self.tracker.due_resends(time.monotonic() if mono is None else mono)
            lost = self.tracker.given_up()[given_up:]
        for gap in lost:
            log.warning(
                "floor ingest: seat %s boot %s: seq %d-%d never came (lost)",
                gap.seat,
                gap.boot_id,
                gap.first,
                gap.last,
            )
            self.store.count("lost", gap.last - gap.first + 1)
        for request in requests:
            self.client.publish(request.topic, request.payload(), qos=1)
        if requests:
            self.store.count("resend_requests", len(requests))
        return len(requests)

    def start(self) -> None:
        kwargs: dict[str, Any] = {"keepalive": int(self.broker.keepalive) or 60}
        if self.broker.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs.update(clean_start=False, properties=properties)
        self.client.connect_async(self.endpoint.host, self.endpoint.port, **kwargs)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def serve(
        self,
        stop: threading.Event,
        purge_period_s: float = PURGE_PERIOD_S,
        resend_period_s: float = RESEND_PERIOD_S,
    ) -> None:
        """Run until `stop` is set: ingest, resend requests every second, purge hourly (and
        once at the start)."""
        self.start()
        next_purge = time.monotonic()
        try:
            while not stop.wait(resend_period_s):
                self.ask_for_gaps()
                if time.monotonic() >= next_purge:
                    purged = self.store.purge(time.time())
                    log.info("floor ingest: purged %s", purged)
                    next_purge = time.monotonic() + purge_period_s
        finally:
            self.stop()
