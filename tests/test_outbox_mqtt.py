"""The outbox pump through a real Mosquitto: in-order delivery, broker killed and restarted
many times, the seat SIGKILLed during an outage, resend from the outbox, the budget's loss event.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from outbox_support import (
    SITE,
    SeatSide,
    Subscriber,
    broker_workdir,
    persistent_mosquitto_config,
)
from support import Mosquitto, free_port, wait_until

from edge.shell.outbox.store import ResendResult, SeqRange

REPO = Path(__file__).parent.parent


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    port = free_port()
    with broker_workdir() as data:
        broker = Mosquitto(tmp_path, persistent_mosquitto_config(port, data), port)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
        log = broker.log.read_text()
        assert "Error saving" not in log, log  # sessions really were persisted


def test_pump_publishes_events_in_order_and_marks_them_acknowledged(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url).start()
    assert subscriber.connected.wait(10)
    seat = SeatSide(persistent_broker.url, tmp_path / "o.db").start()
    try:
        entries = [seat.outbox.add_event("hold.long", {"n": n}) for n in range(300)]
        wait_until(lambda: len(subscriber.new_keys()) == 300, 20, "300 events at the subscriber")
        assert subscriber.new_keys() == [(e.boot_id, e.seq) for e in entries]
        assert subscriber.received.data[(entries[7].boot_id, 7)] == {"n": 7}
        wait_until(lambda: seat.outbox.stats().pending == 0, 10, "every PUBACK recorded")
        assert seat.outbox.stats().kept == 300  # kept for resends
    finally:
        seat.stop()
        subscriber.stop()


def test_resend_command_republishes_held_events_and_names_the_missing(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url).start()
    assert subscriber.connected.wait(10)
    seat = SeatSide(persistent_broker.url, tmp_path / "o.db").start()
    try:
        entries = [seat.outbox.add_event("mute.on", {"n": n}) for n in range(10)]
        wait_until(lambda: len(subscriber.received.arrivals) == 10, 10, "10 events")
        answers: list[ResendResult] = []
        assert seat.pump.request_resend(seat.outbox.boot_id, 3, 12, answers.append)
        wait_until(lambda: answers, 10, "the resend's answer")
        (result,) = answers
        assert result.queued == 7
        assert [(r.from_seq, r.to_seq) for r in result.missing] == [(10, 12)]
        wait_until(lambda: len(subscriber.received.arrivals) == 17, 10, "7 resent copies")
        assert subscriber.received.arrivals[10:] == [(entries[0].boot_id, s) for s in range(3, 10)]
        assert len(subscriber.new_keys()) == 10  # the copies are recognised as duplicates
    finally:
        seat.stop()
        subscriber.stop()


def test_broker_killed_and_restarted_20_times_subscriber_gets_every_event_once_in_order(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url).start()
    assert subscriber.connected.wait(10)
    seat = SeatSide(persistent_broker.url, tmp_path / "o.db").start()
    stop = threading.Event()
    emitted: list[tuple[str, int]] = []

    def emit_steadily() -> None:
        n = 0
        while not stop.wait(0.004):  # the seat's pace (~250 events/s), not a wait for a result
            entry = seat.outbox.add_event("call.ring" if n % 3 else "hold.long", {"n": n})
            emitted.append((entry.boot_id, entry.seq))
            n += 1

    emitter = threading.Thread(target=emit_steadily)
    emitter.start()
    try:
        for cycle in range(20):
            seen = len(subscriber.new_keys())
            wait_until(lambda s=seen: len(subscriber.new_keys()) > s + 20, 20, "events flowing")
            # Half the restarts are crashes (session state since the last save is lost, so
            # acknowledged events may never reach the subscriber: the resend path covers it).
            if cycle % 2:
                persistent_broker.kill()
            else:
                persistent_broker.stop()
            persistent_broker.start()
            subscriber.ask_for_gaps()
        stop.set()
        emitter.join()

        def complete() -> bool:
            subscriber.ask_for_gaps()
            return set(subscriber.new_keys()) == set(emitted)

        wait_until(complete, 60, "every emitted event at the subscriber")
        new = subscriber.new_keys()
        assert len(new) == len(set(new)) == len(emitted)
        # Order: first arrivals are increasing except the events that came back via resend.
        resent = {(b, s) for b, a, z in subscriber.requested for s in range(a, z + 1)}
        in_stream = [seq for boot, seq in new if (boot, seq) not in resent]
        assert in_stream == sorted(in_stream)
        assert not seat.resend_errors
    finally:
        stop.set()
        seat.stop()
        subscriber.stop()


DRIVER = """
import sys
from tests.outbox_support import SeatSide
seat = SeatSide(sys.argv[1], sys.argv[2]).start()
print("boot", seat.outbox.boot_id, flush=True)
for line in sys.stdin:
    for n in range(int(line)):
        entry = seat.outbox.add_event("hold.long", {"n": n})
        print("stored", entry.boot_id, entry.seq, flush=True)
    print("done", flush=True)
"""


class Driver:
    """A seat process writing events on request and printing each one it has stored."""

    def __init__(self, url: str, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, url, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"},
        )
        assert self.proc.stdout is not None
        self.boot_id = self.proc.stdout.readline().split()[1]
        self.stored: list[tuple[str, int]] = []

    def emit(self, count: int) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("done"):
                return
            _, boot, seq = line.split()
            self.stored.append((boot, int(seq)))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def test_seat_sigkilled_during_outage_delivers_everything_after_restart_none_invented(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url).start()
    assert subscriber.connected.wait(10)
    first = Driver(persistent_broker.url, tmp_path / "o.db")
    second: Driver | None = None
    try:
        first.emit(50)
        wait_until(lambda: len(subscriber.new_keys()) == 50, 20, "50 events before the outage")
        persistent_broker.stop()
        first.emit(80)  # stored during the outage, never published
        first.kill()
        persistent_broker.start()
        second = Driver(persistent_broker.url, tmp_path / "o.db")
        second.emit(20)
        expected = first.stored + second.stored
        wait_until(lambda: len(subscriber.new_keys()) >= 150, 30, "backlog and new events")
        new = subscriber.new_keys()
        assert new == expected  # all, once, in order: old boot's backlog before the new boot
        assert set(subscriber.received.arrivals) <= set(expected)  # nothing invented
        assert second.boot_id != first.boot_id and second.stored[0][1] == 0
    finally:
        first.kill()
        if second:
            second.kill()
        subscriber.stop()


def test_budget_overflow_during_outage_keeps_conduct_events_and_reports_the_loss(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url, reorder_s=0.0).start()
    assert subscriber.connected.wait(10)
    seat = SeatSide(persistent_broker.url, tmp_path / "o.db", budget_bytes=32768).start()
    try:
        seat.outbox.add_event("shift.late", {})
        wait_until(lambda: len(subscriber.new_keys()) == 1, 10, "first event")
        persistent_broker.stop()
        kinds = ["call.ring", "hold.long", "mute.on", "presence.away"] * 25
        for n, kind in enumerate(kinds):
            seat.outbox.add_event(kind, {"n": n, "pad": "x" * 200})
        persistent_broker.start()

        def loss_arrived() -> bool:
            return "outbox.loss" in subscriber.received.types.values()

        wait_until(loss_arrived, 20, "the outbox.loss event")
        wait_until(lambda: seat.outbox.stats().pending == 0, 20, "backlog drained")
        types = subscriber.received.types
        loss_key = next(k for k, t in types.items() if t == "outbox.loss")
        data = subscriber.received.data[loss_key]
        got = [t for k, t in types.items() if k[1] >= 1 and t != "outbox.loss"]
        assert got.count("hold.long") == 25  # every conduct event kept
        for kind in ("call.ring", "mute.on", "presence.away"):
            assert got.count(kind) + data["dropped"].get(kind, 0) == 25
        assert data["total"] == 75 - (len(got) - 25) and "hold.long" not in data["dropped"]
        # The consumer does not ask for what the seat reported lost.
        subscriber.ask_for_gaps()
        assert subscriber.requested == [] and subscriber.tracker.gaps() == []
        assert SITE == "hq"
    finally:
        seat.stop()
        subscriber.stop()


def test_resend_requests_are_looked_up_on_the_pump_thread_and_a_repeated_gap_goes_out_once(
    tmp_path: Path, persistent_broker: Mosquitto
) -> None:
    subscriber = Subscriber(persistent_broker.url).start()
    assert subscriber.connected.wait(10)
    seat = SeatSide(persistent_broker.url, tmp_path / "o.db").start()
    try:
        entries = [seat.outbox.add_event("mute.on", {"n": n}) for n in range(100)]
        wait_until(lambda: len(subscriber.received.arrivals) == 100, 10, "100 events")
        wait_until(lambda: seat.outbox.stats().pending == 0, 10, "every PUBACK recorded")
        persistent_broker.stop()  # requests are looked up meanwhile; nothing is published
        answers: list[tuple[str, ResendResult]] = []

        def answer(result: ResendResult) -> None:
            answers.append((threading.current_thread().name, result))

        boot = entries[0].boot_id
        for _ in range(3):  # three consumers ask for the same gap
            assert seat.pump.request_resend(boot, 0, 99, answer)
        assert seat.pump.request_resend(boot, 90, 10**12, answer)  # and one far too wide
        wait_until(lambda: len(answers) == 4, 10, "four answers")
        assert {thread for thread, _ in answers} == {"outbox-pump"}  # never paho's thread
        assert [r.queued for _, r in answers] == [100, 100, 100, 10]
        assert answers[3][1].missing == (SeqRange(boot, 100, 10**12),)
        assert seat.pump.resend_queued == 100  # the same gap is queued once

        persistent_broker.start()
        wait_until(lambda: len(subscriber.received.arrivals) >= 200, 20, "the copies")
        wait_until(lambda: seat.pump.resend_queued == 0, 10, "the resend queue empty")
        copies = subscriber.received.arrivals[100:]
        assert sorted(set(copies)) == [(boot, s) for s in range(100)]
        # Queued once, not four times (310 copies): a reconnect under load may still make paho
        # send its in-flight window again (QoS 1), so at most one window more than 100.
        assert len(copies) <= 100 + seat.pump.max_inflight, len(copies)
    finally:
        seat.stop()
        subscriber.stop()
