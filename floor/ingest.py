"""The floor service's ingest: one MQTT subscription per site into the store.

A persistent session under a fixed client id (MQTT 3.1.1 `clean_session=False`; MQTT 5
`clean_start=False` with a session expiry, and Retain Handling 1 so a re-subscription does not
replay every retained message), QoS 1: while the service is down the broker queues the site's
events for it. Each payload is checked by `edge.api.models` (a bad one is counted and logged
once per seat and leaf, never fatal); events go through `edge.api.stream.StreamTracker`
(de-duplication, gaps) and the due `cmd/resend` requests are published as the floor view does.
`levels` are not subscribed to: the store never sees them.

Writes are batched: the MQTT thread checks a message, hands it to the listeners (the live
floor) and queues it; a writer thread drains the queue, many events per transaction
(`Store.write_batch`), so the MQTT thread never waits for the database. The queue is bounded
(`max_queued` events; the latest state/info/availability per seat and the counters are kept
apart, coalesced). When the store cannot be written (PostgreSQL stopped, a disk error) the
writer logs one line, keeps the queue in memory and retries with backoff; when the store is
back it logs one line and catches up. Over the bound new events are dropped and counted
(`store_dropped`): paho acknowledges QoS 1 messages on receipt, so the broker will not send
them again; instead each dropped seq becomes a gap in the stream tracker again, and once the
store is back the service asks the seat for it (`cmd/resend`; seats keep acknowledged events
an hour for this). No resend is asked while the store is down. A restarted service (`serve`)
seeds its stream tracker from the store (`Store.streams`, the last hours) in the background: it
asks only for what is missing; events wait for the seeding, the listeners do not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from edge.api.broker import BrokerSection, make_client
from edge.api.models import (
    SeatInfo,
    SeatState,
    StreamError,
    StreamEvent,
    parse_availability,
    parse_event,
    parse_info,
    parse_state,
)
from edge.api.stream import StreamTracker, Verdict
from edge.api.topics import site_filter
from floor.model import Parsed, topic_parts
from floor.store import Batch, SeatColumn, Store, StoreUnavailable

log = logging.getLogger(__name__)

# (topic, payload, monotonic now, what the payload parsed to or the StreamError it raised):
# the payload is checked once here, and listeners (the live floor) take the result.
Listener = Callable[[str, bytes, float, Parsed], None]
_PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    "availability": parse_availability,
    "state": parse_state,
    "info": parse_info,
    "event": parse_event,
}

LEAVES = ("availability", "state", "info", "event")  # never `levels`
# How long the broker keeps the session (and queues QoS 1 events) while the service is away
# (MQTT 5); a longer outage is covered by the seats' outboxes and resend requests.
SESSION_EXPIRY_S = 24 * 3600
RESEND_PERIOD_S = 1.0
PURGE_PERIOD_S = 3600.0
MAX_LOGGED = 10_000  # (seat, leaf) pairs whose bad payloads were logged once (then counted only)
# Events waiting for the store, at most (about 830 bytes each in memory, measured): 100,000 is
# 20 s at 5,000 events/s; beyond it events are dropped and asked for again later.
MAX_QUEUED = 100_000
BATCH_MAX = 5_000  # events in one transaction
RETRY_FIRST_S = 0.5  # backoff while the store is unavailable: doubled up to RETRY_MAX_S
RETRY_MAX_S = 10.0
FLUSH_S = 10.0  # on stop: how long to wait for the queue to reach the store
DROP_LOG_S = 60.0  # "dropping new ones" is logged at most once a minute


def _what(part: Batch) -> str:
    if part.events:
        seat, event, _ = part.events[0]
        return f"seat {seat} boot {event.boot_id} seq {event.seq} ({event.type})"
    return "seat states and counters"


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
        max_queued: int = MAX_QUEUED,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        self.site = site
        # Which event types are stored ([privacy] norms): the others are de-duplicated and
        # gap-tracked like any event, then dropped before the store (counted `withheld`).
        self.keep = keep
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
        # The write queue (see the module doc): events in order, the latest seat columns,
        # counters; `_cond` guards them and wakes the writer.
        self.max_queued = max_queued
        self._cond = threading.Condition()
        self._events: deque[tuple[str, StreamEvent, float]] = deque()
        self._seats: dict[tuple[SeatColumn, str], tuple[str | bool, float]] = {}
        self._counts: dict[str, int] = {}
        self._inflight = 0  # events taken by the writer, not yet written
        self._oldest_inflight = 0.0  # arrival (wall) of the first of them
        self._stopping = False
        self._flush_deadline = 0.0
        self._writer: threading.Thread | None = None
        self._wake = threading.Event()  # set by stop_writer: ends a backoff wait
        self.store_ok = True  # False from a failed write until the next one succeeds
        self.dropped = 0  # events dropped over max_queued (store_dropped)
        self._dropping = False
        self._drop_logged = -DROP_LOG_S
        # While `serve` seeds the tracker from the store (in the background), events wait here.
        self._seeding = False
        self._parked: list[tuple[str, StreamEvent, float]] = []

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
            if not self._pending and not self.subscribed.is_set():
                self.subscribed.set()
                log.info("floor ingest: subscribed to site %s", self.site)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self.apply(message.topic, bytes(message.payload), time.time(), time.monotonic())
        except Exception:  # a store failure or a bug: logged, the next message still comes
            log.exception("floor ingest: message on %.120r not stored", message.topic)

    # --- one message -----------------------------------------------------------------------

    def _bad(self, seat: str, leaf: str, problem: str) -> None:
        self.count("invalid")
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
        """One message: checked, given to the listeners, de-duplicated, queued for the store
        (written by the writer thread `start` starts). `now` is wall time (epoch seconds),
        `mono` the monotonic clock the tracker times gaps with."""
        parsed = topic_parts(topic)
        if parsed is None or parsed.site != self.site:
            # Not a seat topic of this site (an id that does not parse, a stray publisher).
            self._bad("?", "topic", f"{topic[:80]!r} is not a seat topic of site {self.site}")
            return
        seat, leaf = parsed.seat, parsed.kind
        if leaf not in LEAVES:
            return
        value: Parsed
        try:
            value = _PARSERS[leaf](payload)
        except StreamError as exc:
            value = exc
        for listener in self.listeners:
            try:
                listener(topic, payload, mono, value)
            except Exception:  # a listener's bug must not cost the store its event
                log.exception("floor ingest: listener failed on %.120r", topic)
        try:
            if isinstance(value, StreamError):
                raise value
            if isinstance(value, bool):
                self._put_seat("online", seat, value, now)
            elif isinstance(value, SeatState | SeatInfo):
                if (value.site, value.seat) != (self.site, seat):
                    raise StreamError(f"{leaf}: names seat {value.site}/{value.seat}", "seat")
                self._put_seat(
                    "state" if leaf == "state" else "info", seat, payload.decode("utf-8"), now
                )
            else:
                event = value
                with self._lock:
                    if self._seeding:  # the tracker is being seeded from the store: park it
                        self._park(seat, event, now)
                        return
                    accepted = self.tracker.accept(self.site, seat, event, mono)
                if accepted.verdict is Verdict.DUPLICATE:
                    self.count("duplicates")
                    return
                self._put_event(seat, event, now, mono)
        except StreamError as exc:
            self._bad(seat, leaf, str(exc))

    # --- the write queue and its writer ------------------------------------------------------

    def count(self, name: str, by: int = 1) -> None:
        """Add to a service counter (written with the next batch)."""
        with self._cond:
            self._counts[name] = self._counts.get(name, 0) + by
            self._cond.notify()

    def _put_seat(self, column: SeatColumn, seat: str, value: str | bool, now: float) -> None:
        with self._cond:
            key = (column, seat)
            if key not in self._seats and len(self._seats) >= self.max_queued:
                # Made-up seats by the thousand while the store is away: bounded too.
                self._counts["store_dropped"] = self._counts.get("store_dropped", 0) + 1
                return
            self._seats[key] = (value, now)  # only the latest counts
            self._cond.notify()

    def _put_event(self, seat: str, event: StreamEvent, now: float, mono: float) -> None:
        if self.keep is not None and not self.keep(event.type):
            self.count("withheld")
            return
        with self._cond:
            if len(self._events) + self._inflight < self.max_queued:
                self._events.append((seat, event, now))
                self._cond.notify()
                return
            self.dropped += 1
            self._counts["store_dropped"] = self._counts.get("store_dropped", 0) + 1
            now_mono = time.monotonic()
            first = not self._dropping and now_mono - self._drop_logged >= DROP_LOG_S
            self._dropping = True
            if first:
                self._drop_logged = now_mono
        with self._lock:  # asked for again (cmd/resend) once the store has caught up
            self.tracker.reopen(self.site, seat, event.boot_id, event.seq, mono)
        if first:
            log.error(
                "floor store: %d events wait for the store: dropping new ones (counted as "
                "store_dropped; asked for again from the seats once the store is back)",
                self.max_queued,
            )

    @property
    def queued(self) -> int:
        """Events not yet in the store (queued or being written)."""
        with self._cond:
            return len(self._events) + self._inflight

    def store_lag_s(self, now: float | None = None) -> float:
        """How long the oldest event not yet in the store has waited (seconds; 0 when none):
        `seatbox_floor_store_lag_seconds`."""
        with self._cond:
            oldest = self._oldest_inflight if self._inflight else None
            if oldest is None and self._events:
                oldest = self._events[0][2]
        if oldest is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - oldest)

    def _take(self) -> Batch | None:
        """The next batch, waiting for one; None when stopping and nothing is left."""
        with self._cond:
            while not (self._events or self._seats or self._counts):
                if self._stopping:
                    return None
                self._cond.wait(0.5)
            count = min(len(self._events), BATCH_MAX)
            events = [self._events.popleft() for _ in range(count)]
            batch = Batch(events, self._seats, self._counts)
            self._seats, self._counts = {}, {}
            self._inflight = count
            self._oldest_inflight = events[0][2] if events else 0.0
            return batch

    def _give_back(self, batch: Batch) -> None:
        """A batch the store did not take: back at the head of the queue (newer seat values
        and counters already queued win or add up)."""
        with self._cond:
            self._events.extendleft(reversed(batch.events))
            self._inflight = 0
            for key, value in batch.seats.items():
                self._seats.setdefault(key, value)
            for name, by in batch.counts.items():
                self._counts[name] = self._counts.get(name, 0) + by

    def _write_loop(self) -> None:
        backoff = RETRY_FIRST_S
        down_since = 0.0
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                written = self.store.write_batch(self.site, batch)
            except StoreUnavailable as exc:
                self._give_back(batch)
                if self.store_ok:
                    self.store_ok, down_since = False, time.monotonic()
                    log.error(
                        "floor store: unavailable (%s); the live floor goes on, events are "
                        "kept in memory (at most %d) and written when it is back",
                        exc,
                        self.max_queued,
                    )
                with self._cond:
                    stopping, left = self._stopping, self._flush_deadline - time.monotonic()
                if stopping and left <= 0:
                    return
                if stopping:  # flushing: one more try before the deadline
                    time.sleep(min(backoff, left))
                else:
                    self._wake.wait(backoff)  # not new messages: only stop() cuts it short
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            except Exception:  # the store refused something in it (a bug): find what
                log.exception(
                    "floor store: a batch of %d events refused; writing them one by one",
                    len(batch.events),
                )
                self._write_singly(batch)
                continue
            with self._cond:
                self._inflight = 0
                self.stored += written.stored
                waiting = len(self._events)
                if self._dropping and waiting < self.max_queued // 2:
                    self._dropping = False
            backoff = RETRY_FIRST_S
            if not self.store_ok:
                self.store_ok = True
                log.warning(
                    "floor store: back after %.0f s; catching up (%d events kept meanwhile)",
                    time.monotonic() - down_since,
                    waiting + len(batch.events),
                )

    def _park(self, seat: str, event: StreamEvent, now: float) -> None:
        """An event that came while the tracker is seeded (under `_lock`): kept for after."""
        if len(self._parked) < self.max_queued:
            self._parked.append((seat, event, now))
            return
        self.dropped += 1  # not seen by the tracker: a later event of the seat shows the gap
        self.count("store_dropped")

    def _write_singly(self, batch: Batch) -> None:
        """A refused batch, one part at a time: only what the store refuses is lost (counted
        `store_refused`, the first of each batch logged); an outage meanwhile gives the rest
        back to the queue."""
        parts = [Batch([], batch.seats, batch.counts)] + [
            Batch([item], {}, {}) for item in batch.events
        ]
        refused = 0
        for index, part in enumerate(parts):
            try:
                written = self.store.write_batch(self.site, part)
            except StoreUnavailable:
                self._give_back(Batch([p.events[0] for p in parts[max(index, 1) :]], {}, {}))
                if index == 0:
                    self._give_back(Batch([], batch.seats, batch.counts))
                return
            except Exception as exc:
                refused += len(part.events)
                if refused == 1:
                    log.error("floor store: refused %s: %s", _what(part), exc)
                continue
            with self._cond:
                self.stored += written.stored
        with self._cond:
            self._inflight = 0
            if refused:
                self._counts["store_refused"] = self._counts.get("store_refused", 0) + refused

    def seed(self, now: float | None = None, mono: float | None = None) -> int:
        """Seed the stream tracker from what the store holds (a restarted service asks only
        for what is missing, not every boot from seq 0 again), then take the events parked
        meanwhile; the number of streams. StoreUnavailable if the store cannot be read."""
        spans = self.store.streams(self.site, time.time() if now is None else now)
        at = time.monotonic() if mono is None else mono
        fresh: list[tuple[str, StreamEvent, float]] = []
        duplicates = 0
        with self._lock:
            for span in spans:
                self.tracker.resume(self.site, span.seat, span.boot_id, span.last, span.missing, at)
            for seat, event, wall in self._parked:
                accepted = self.tracker.accept(self.site, seat, event, at)
                if accepted.verdict is Verdict.DUPLICATE:
                    duplicates += 1
                else:
                    fresh.append((seat, event, wall))
            self._parked = []
            self._seeding = False
        for seat, event, wall in fresh:  # outside `_lock`: _put_event may take it
            self._put_event(seat, event, wall, at)
        if duplicates:
            self.count("duplicates", duplicates)
        gaps = sum(len(span.missing) for span in spans)
        log.info("floor ingest: %d streams known from the store (%d gaps)", len(spans), gaps)
        return len(spans)

    def _seed_until_done(self, stop: threading.Event) -> None:
        """Seed in the background (the live floor does not wait for it), retrying while the
        store cannot be read."""
        delay = RETRY_FIRST_S
        while not stop.is_set():
            try:
                self.seed()
                return
            except StoreUnavailable as exc:
                log.error("floor ingest: stream tracker not seeded from the store yet: %s", exc)
            except Exception:  # a bug: go on unseeded rather than park events forever
                log.exception("floor ingest: stream tracker not seeded from the store")
                break
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        with self._lock:
            parked, self._parked, self._seeding = self._parked, [], False
        for seat, event, wall in parked:
            with self._lock:
                accepted = self.tracker.accept(self.site, seat, event, time.monotonic())
            if accepted.verdict is Verdict.NEW:
                self._put_event(seat, event, wall, time.monotonic())

    # --- resends, purge, life --------------------------------------------------------------

    def ask_for_gaps(self, mono: float | None = None) -> int:
        """Publish the due `cmd/resend` requests; count gaps given up as `lost`. Nothing while
        the store is down (the answers would only wait in memory or be dropped)."""
        if not self.store_ok:
            return 0
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
            self.count("lost", gap.last - gap.first + 1)
        for request in requests:
            self.client.publish(request.topic, request.payload(), qos=1)
        if requests:
            self.count("resend_requests", len(requests))
        return len(requests)

    def start_writer(self) -> None:
        """The writer thread alone (`start` starts it; benchmarks call `apply` without MQTT)."""
        with self._cond:
            self._stopping = False
        self._wake.clear()
        self._writer = threading.Thread(target=self._write_loop, name="floor-store", daemon=True)
        self._writer.start()

    def stop_writer(self, flush_s: float = FLUSH_S) -> None:
        """Write what is queued (waiting at most `flush_s` for the store), then end the writer."""
        with self._cond:
            self._stopping = True
            self._flush_deadline = time.monotonic() + flush_s
            self._cond.notify_all()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(flush_s + RETRY_MAX_S)
            self._writer = None
        left = self.queued
        if left:
            log.error(
                "floor store: stopped with %d events not written (the seats keep them; the "
                "restarted service asks for them)",
                left,
            )

    def start(self) -> None:
        self.start_writer()
        kwargs: dict[str, Any] = {"keepalive": int(self.broker.keepalive) or 60}
        if self.broker.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs.update(clean_start=False, properties=properties)
        self.client.connect_async(self.endpoint.host, self.endpoint.port, **kwargs)
        self.client.loop_start()

    def stop(self, flush_s: float = FLUSH_S) -> None:
        """Disconnect, then write what is queued (waiting at most `flush_s` for the store)."""
        self.client.disconnect()
        self.client.loop_stop()
        self.stop_writer(flush_s)

    def serve(
        self,
        stop: threading.Event,
        purge_period_s: float = PURGE_PERIOD_S,
        resend_period_s: float = RESEND_PERIOD_S,
    ) -> None:
        """Run until `stop` is set: ingest, resend requests every second, purge hourly (and
        once at the start)."""
        with self._lock:
            self._seeding = True  # events wait for the seeding; the live floor does not
        self.start()
        seeding = threading.Thread(
            target=self._seed_until_done, args=(stop,), name="floor-seed", daemon=True
        )
        seeding.start()
        next_purge = time.monotonic()
        try:
            while not stop.wait(resend_period_s):
                self.ask_for_gaps()
                if time.monotonic() >= next_purge and self.store_ok:
                    try:
                        purged = self.store.purge(time.time())
                    except StoreUnavailable:  # the writer says so, once; try again later
                        next_purge = time.monotonic() + 60.0
                        continue
                    log.info("floor ingest: purged %s", purged)
                    next_purge = time.monotonic() + purge_period_s
        finally:
            seeding.join(RETRY_MAX_S)
            self.stop()
