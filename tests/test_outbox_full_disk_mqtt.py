"""The outbox and its pump on a really full disk over a real Mosquitto: events held in memory
go out from there while connected, wait through a broker outage, are written once the disk
has room, and every one arrives once, in order. The disk is a small tmpfs (root only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_support import fill, small_tmpfs
from outbox_support import (
    SeatSide,
    Subscriber,
    persistent_broker,
)
from support import Mosquitto, wait_until


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with persistent_broker() as running:
        yield running


def test_held_events_go_out_from_memory_survive_an_outage_and_are_written_when_room_returns(
    tmp_path: Path, broker: Mosquitto
) -> None:
    subscriber = Subscriber(broker.url, reorder_s=0.0).start()
    assert subscriber.connected.wait(10)
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        seat = SeatSide(broker.url, disk / "outbox.sqlite").start()
        box = seat.outbox
        try:
            boot = box.boot_id
            for n in range(20):
                box.add_event("greeting.late", {"n": n})
            wait_until(lambda: len(subscriber.new_keys()) == 20, 20, "20 events before")
            filler = fill(disk)
            # SQLite first uses the slack in its files; then the disk refuses and events are
            # held in memory, published from there while the broker is up.
            n = 20
            while not box.degraded and n < 20_000:
                box.add_event("call.ringing", {"n": n, "pad": "x" * 400})
                n += 1
            assert box.degraded, "the filled disk kept taking events"
            for _ in range(30):
                box.add_event("hold.long", {"n": n})
                n += 1
            wait_until(lambda: len(subscriber.new_keys()) == n, 30, "held events published")
            broker.stop()
            for _ in range(50):  # held, and not published: no broker
                box.add_event("answer.late", {"n": n})
                n += 1
            assert box.stats().held >= 50
            filler.unlink()
            wait_until(lambda: not box.degraded, 10, "the pump writing the held events")
            assert box.stats().held == 0
            broker.start()
            wait_until(lambda: len(subscriber.new_keys()) >= n, 60, "every event, after the outage")
            new = subscriber.new_keys()
            assert new == [(boot, seq) for seq in range(n)]  # once each, in order, no gap
            assert "outbox.loss" not in subscriber.received.types.values()
        finally:
            seat.stop()
    subscriber.stop()
