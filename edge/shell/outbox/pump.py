"""The outbox's publisher: `OutboxPump` drains an `Outbox` in order at QoS 1 through one paho
client from its own thread, paced, and publishes again what a consumer's `cmd/resend` asks for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge.shell.outbox.store import (
    MAX_LOSS_RANGES,
    RETRY_S,
    Outbox,
    OutboxEntry,
    ResendResult,
    SeqRange,
)

log = logging.getLogger(__name__)


# cmd/resend limits (docs/reliability.md "Command limits and resend caps"). Resends are queued
# as seq ranges, never as copies: the rows are read again in small batches when published.
RESEND_MAX_SPAN = 1000  # seqs one request looks at; the rest of its range is answered missing
RESEND_MAX_QUEUED = 10_000  # seqs waiting to be published again, all requests together
RESEND_MAX_RANGES = 1000  # separate ranges in that queue (a fragmented queue costs lookups)
RESEND_MAX_REQUESTS = 1000  # requests waiting for their lookup on the pump thread
RESEND_BATCH = 32  # rows read per query while publishing copies
RESEND_LOOKUPS_PER_CYCLE = 20  # lookups between two looks at the live events


@dataclass(frozen=True)
class _ResendRequest:
    boot_id: str
    from_seq: int
    to_seq: int
    answer: Callable[[ResendResult], None]


class TokenBucket:
    """Paces publishing: `rate` per second with bursts up to `burst`; time is an argument."""

    def __init__(self, rate: float | None, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._at = now

    def take(self, now: float) -> float:
        """0.0 and one token taken, or the seconds to wait before the next token."""
        if self.rate is None:
            return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (ValueError, RuntimeError):  # rc was NO_CONN: acknowledged via its mid instead
        return False


class OutboxPump:
    """Publishes the outbox in order at QoS 1 through one paho client, from its own thread.

    Holds at most `max_inflight` unacknowledged publishes; marks a row acknowledged when its
    PUBACK arrives (paho's `MQTTMessageInfo`); paces at `rate_per_s` (None: unpaced) so a
    backlog replay after an outage does not flood broker and subscribers. Call `attach()` (it
    chains any callbacks already set) or forward paho's callbacks to `handle_connect`,
    `handle_disconnect` and `handle_publish` yourself.
    """

    def __init__(
        self,
        client: mqtt.Client,
        outbox: Outbox,
        *,
        rate_per_s: float | None = 200.0,
        burst: int = 50,
        max_inflight: int = 32,
        purge_every_s: float = 60.0,
        loss_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.max_inflight = max_inflight
        self._clock = clock
        self._bucket = TokenBucket(rate_per_s, burst, clock())
        self._purge_every_s = purge_every_s
        self._next_purge = clock() + purge_every_s
        self._loss_every_s = loss_every_s
        self._next_loss = clock()
        self._cond = threading.Condition()
        self._woken = True
        self._stopping = False
        self._connected = False
        self._lock = threading.Lock()  # guards the maps below; never held while calling paho
        self._inflight: dict[int, mqtt.MQTTMessageInfo] = {}  # entry id -> info, in order
        self._by_mid: dict[int, int] = {}  # mid -> entry id
        self._acked_ids: set[int] = set()
        self._to_ack: list[int] = []  # acknowledged, not yet written to the outbox
        self._cursor = 0  # highest entry id handed to paho
        # Resends (guarded by _lock): requests waiting for their lookup, the queued ranges of
        # held seqs ([boot_id, first, last], disjoint, in arrival order), the rows read from
        # the head range, and the copies paho holds (at most a wire window of them).
        self._resend_requests: deque[_ResendRequest] = deque()
        self._resend_ranges: deque[list[Any]] = deque()
        self._resend_queued = 0
        self._resend_rows: deque[OutboxEntry] = deque()
        self._resend_infos: deque[mqtt.MQTTMessageInfo] = deque()
        self._live_caught_up = False
        self.resent = 0
        self._thread: threading.Thread | None = None
        self.published = 0
        self.acknowledged = 0
        # On the wire at most `max_inflight` (paho enforces it); handed to paho up to four
        # windows, so paho refills the wire window from its own thread at each PUBACK instead
        # of waiting for this thread to wake.
        self._handoff = 4 * max_inflight
        client.max_inflight_messages_set(max_inflight)
        outbox.add_listener(self.wake)

    # --- wiring ---------------------------------------------------------------------------

    def attach(self) -> None:
        """Install paho callbacks that feed the pump, calling any set before."""
        # Any: paho types these as a union of its v1 and v2 signatures; make_client uses v2.
        prev_connect: Any = self.client.on_connect
        prev_disconnect: Any = self.client.on_disconnect
        prev_publish: Any = self.client.on_publish

        def on_connect(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
        ) -> None:
            if prev_connect:
                prev_connect(client, userdata, flags, reason, props)
            if not reason.is_failure:
                self.handle_connect()

        def on_disconnect(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
        ) -> None:
            if prev_disconnect:
                prev_disconnect(client, userdata, flags, reason, props)
            self.handle_disconnect()

        def on_publish(
            client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
        ) -> None:
            if prev_publish:
                prev_publish(client, userdata, mid, reason, props)
            self.handle_publish(mid)

        self.client.on_connect = on_connect
        self.client.on_disconnect = on_disconnect
        self.client.on_publish = on_publish

    def handle_connect(self) -> None:
        self._connected = True
        self.wake()

    def handle_disconnect(self) -> None:
        # In-flight publishes stay with paho, which sends them again after reconnecting.
        self._connected = False

    def handle_publish(self, mid: int) -> None:
        with self._lock:
            entry_id = self._by_mid.pop(mid, None)
            if entry_id is not None:
                self._acked_ids.add(entry_id)
            # Wake the pump once a wire window is acknowledged or everything is: it refills
            # in batches, so waking it at every PUBACK would only cost thread switches.
            due = (
                entry_id is None
                or len(self._acked_ids) >= self.max_inflight
                or len(self._acked_ids) >= len(self._inflight)
            )
        if due:
            self.wake()

    def reset(self) -> None:
        """The client was replaced or its session lost: publish everything unacked again."""
        with self._lock:
            self._inflight.clear()
            self._by_mid.clear()
            self._acked_ids.clear()
            self._cursor = 0
        self.outbox.unclaim()
        self.wake()

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout)
        self._collect_acks(flush=True)

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def request_resend(
        self, boot_id: str, from_seq: int, to_seq: int, answer: Callable[[ResendResult], None]
    ) -> bool:
        """Hand a resend to the pump thread, which looks it up and calls `answer` with the
        result; False (nothing done) when `RESEND_MAX_REQUESTS` are already waiting. Cheap:
        paho's network thread calls it for every `cmd/resend`."""
        with self._lock:
            if len(self._resend_requests) >= RESEND_MAX_REQUESTS:
                return False
            self._resend_requests.append(_ResendRequest(boot_id, from_seq, to_seq, answer))
        self.wake()
        return True

    @property
    def resend_queued(self) -> int:
        """Seqs waiting to be published again (held rows, rows already read included)."""
        with self._lock:
            return self._resend_queued + len(self._resend_rows)

    def _queue_resend(self, boot_id: str, from_seq: int, to_seq: int) -> ResendResult:
        """Look a range up (at most RESEND_MAX_SPAN seqs, by range in SQL) and queue its held
        runs that are not queued already; everything else of the range is `missing`."""
        last = min(to_seq, from_seq + RESEND_MAX_SPAN - 1)
        held = self.outbox.held_seqs(boot_id, from_seq, last)
        runs: list[list[int]] = []  # consecutive held seqs
        for seq in held:
            if runs and runs[-1][1] == seq - 1:
                runs[-1][1] = seq
            else:
                runs.append([seq, seq])
        missing: list[SeqRange] = []
        expected = from_seq
        for first, end in runs:
            if first > expected:
                missing.append(SeqRange(boot_id, expected, first - 1))
            expected = end + 1
        if expected <= to_seq:
            missing.append(SeqRange(boot_id, expected, to_seq))
        if len(missing) > MAX_LOSS_RANGES:
            tail = SeqRange(boot_id, missing[MAX_LOSS_RANGES - 1].from_seq, to_seq)
            missing = [*missing[: MAX_LOSS_RANGES - 1], tail]
        with self._lock:
            new = self._unqueued(boot_id, runs)
            count = sum(b - a + 1 for a, b in new)
            if (
                self._resend_queued + count > RESEND_MAX_QUEUED
                or len(self._resend_ranges) + len(new) > RESEND_MAX_RANGES
            ):
                return ResendResult(
                    0,
                    (),
                    f"{self._resend_queued} events already wait to be resent (at most "
                    f"{RESEND_MAX_QUEUED}); ask again later",
                )
            self._resend_ranges.extend([boot_id, a, b] for a, b in new)
            self._resend_queued += count
        return ResendResult(len(held), tuple(missing))

    def _unqueued(self, boot_id: str, runs: list[list[int]]) -> list[tuple[int, int]]:
        """The parts of `runs` no queued range covers (the same gap asked for by several
        consumers, or again before it was resent, is published once). Under _lock."""
        pieces = [(a, b) for a, b in runs]
        queued = [(r[1], r[2]) for r in self._resend_ranges if r[0] == boot_id]
        queued += [(e.seq, e.seq) for e in self._resend_rows if e.boot_id == boot_id]
        for qa, qb in queued:
            rest: list[tuple[int, int]] = []
            for a, b in pieces:
                if b < qa or a > qb:
                    rest.append((a, b))
                    continue
                if a < qa:
                    rest.append((a, qa - 1))
                if b > qb:
                    rest.append((qb + 1, b))
            pieces = rest
            if not pieces:
                break
        return pieces

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        timeout: float | None = None
        while True:
            with self._cond:
                if not self._woken and not self._stopping:
                    self._cond.wait(timeout)
                self._woken = False
                if self._stopping:
                    return
            try:
                timeout = self._cycle()
            except Exception:  # the pump must outlive a bad cycle (disk full, closed client)
                log.exception("outbox pump cycle failed; retrying")
                timeout = 1.0

    def _cycle(self) -> float | None:
        """One pass; returns how long to sleep unless woken (None: until woken)."""
        self._collect_acks()
        if self.outbox.degraded:
            self.outbox.retry()  # the disk may take the held events again
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + self._purge_every_s
            self.outbox.purge()
        self._answer_resend_requests()
        if not (self._connected and self.client.is_connected()):
            return 1.0
        # At most one loss report per interval: a steady overflow gives a few summaries.
        if self.outbox.loss_pending and now >= self._next_loss:
            self._next_loss = now + self._loss_every_s
            self.outbox.flush_loss()
        # Live events (and an outage's backlog) first: resent copies only once caught up.
        wait = self._publish_pending()
        if wait is None and self._live_caught_up:
            wait = self._publish_resends()
        if wait is not None:
            return wait
        if self._resend_requests:
            return 0.0  # more lookups waiting
        # Paho marks a message published just after calling on_publish; a short re-check
        # catches an acknowledgement that raced with our bookkeeping.
        if self.inflight or self._resend_infos:
            return 0.02
        return RETRY_S if self.outbox.degraded else None

    def _answer_resend_requests(self) -> None:
        """Look up a few waiting resends (SQL by range, on this thread, never paho's)."""
        for _ in range(RESEND_LOOKUPS_PER_CYCLE):
            with self._lock:
                if not self._resend_requests:
                    return
                request = self._resend_requests.popleft()
            try:
                result = self._queue_resend(request.boot_id, request.from_seq, request.to_seq)
            except Exception as exc:  # the outbox cannot be read: say so, keep pumping
                log.exception("resend lookup failed")
                result = ResendResult(
                    0, (), f"the outbox cannot be read now ({exc}); ask again later"
                )
            try:
                request.answer(result)
            except Exception:  # a failing reply must not stop the pump
                log.exception("answering a resend request failed")

    def _publish_resends(self) -> float | None:
        """Publish queued copies, at most a wire window of them in paho at a time, so a live
        event stored meanwhile waits behind no more than that."""
        while True:
            with self._lock:
                while self._resend_infos and _published(self._resend_infos[0]):
                    self._resend_infos.popleft()
                if len(self._resend_infos) >= self.max_inflight:
                    return 0.02  # a PUBACK wakes us sooner
            entry = self._next_resend()
            if entry is None:
                return None
            wait = self._bucket.take(self._clock())
            if wait > 0:
                return wait
            info = self.client.publish(entry.topic, entry.payload, qos=entry.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                return 0.1  # paho's queue is full: try again on the next pass
            with self._lock:
                self._resend_rows.popleft()
                self._resend_infos.append(info)
            self.resent += 1

    def _next_resend(self) -> OutboxEntry | None:
        """The next copy to publish, reading the head range a batch at a time."""
        while True:
            with self._lock:
                if self._resend_rows:
                    return self._resend_rows[0]
                if not self._resend_ranges:
                    return None
                boot_id, first, last = self._resend_ranges[0]
            rows = self.outbox.get_range(boot_id, first, last, limit=RESEND_BATCH)
            with self._lock:
                head = self._resend_ranges[0]
                done_to = rows[-1].seq if len(rows) == RESEND_BATCH else last
                self._resend_queued -= done_to - first + 1
                if done_to >= last:
                    self._resend_ranges.popleft()
                else:
                    head[1] = done_to + 1
                self._resend_rows.extend(rows)

    def _publish_pending(self) -> float | None:
        self._live_caught_up = False
        room = self._handoff - self.inflight
        # Refill in batches: one query per wire window, not per PUBACK.
        if room <= 0 or (room < 2 * self.max_inflight and room < self._handoff):
            return None
        entries = self.outbox.pending(room, after_id=self._cursor, claim=True)
        for entry in entries:
            wait = self._bucket.take(self._clock())
            if wait > 0:
                return wait
            info = self.client.publish(entry.topic, entry.payload, qos=entry.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # Not queued by paho (queue full): try again on the next pass.
                log.warning(
                    "outbox publish of seq %d refused: %s", entry.seq, mqtt.error_string(info.rc)
                )
                return 0.1
            with self._lock:
                self._inflight[entry.id] = info
                self._by_mid[info.mid] = entry.id
                self._cursor = entry.id
            self.published += 1
        self._live_caught_up = len(entries) < room
        return None

    def _collect_acks(self, flush: bool = False) -> None:
        with self._lock:
            if self._acked_ids:
                done = [entry_id for entry_id in self._acked_ids if entry_id in self._inflight]
            else:
                # Nothing known acknowledged by mid: look for a PUBACK that raced with our
                # bookkeeping (or a publish queued while disconnected).
                done = [eid for eid, info in self._inflight.items() if _published(info)]
            for entry_id in done:
                info = self._inflight.pop(entry_id)
                if self._by_mid.get(info.mid) == entry_id:
                    del self._by_mid[info.mid]
            self._acked_ids.clear()  # all handled, or stale after reset()
            idle = not self._inflight
        self._to_ack.extend(done)
        self.acknowledged += len(done)
        # Acks are written in batches (a lost ack only causes a duplicate), and at once when
        # the window is idle so `stats().pending` is exact whenever nothing is in flight.
        if self._to_ack and (flush or idle or len(self._to_ack) >= 4 * self._handoff):
            self.outbox.ack(self._to_ack)
            self._to_ack = []
