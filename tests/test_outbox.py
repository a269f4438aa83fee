"""The outbox store on its own: numbering, order, durability across restarts and SIGKILL,
acknowledgement, resend ranges, and the disk budget's drop order with its loss event."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from disk_support import fill, garble_data_pages, small_tmpfs
from schema_support import validate

from edge.shell.outbox.pump import TokenBucket
from edge.shell.outbox.store import (
    LOSS_TYPE,
    RETRY_S,
    Outbox,
    OutboxEntry,
    OutboxError,
    Priority,
    iso_utc,
    loss_reserve,
    priority_of,
)

REPO = Path(__file__).parent.parent
TOPIC = "seatbox/v1/hq/s01/event"


class FakeClock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def body(entry_payload: bytes) -> dict[str, object]:
    return json.loads(entry_payload)


def test_events_are_numbered_from_zero_in_order_with_boot_id_and_iso_time(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC, clock=FakeClock(1_790_000_000.25))
    first = box.add_event("call.ring", {"line": 1})
    second = box.add_event("answer.late", {"rings": 4}, ts=1_790_000_001.5)
    assert [e.seq for e in box.pending()] == [0, 1]
    assert body(first.payload) == {
        "boot_id": box.boot_id,
        "seq": 0,
        "ts": "2026-09-21T14:13:20.250Z",
        "type": "call.ring",
        "data": {"line": 1},
    }
    assert body(second.payload)["ts"] == "2026-09-21T14:13:21.500Z"
    assert first.topic == TOPIC and first.qos == 1


def test_restart_starts_new_boot_and_keeps_old_backlog_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC)
    for n in range(3):
        box.add_event("hold.long", {"n": n})
    old_boot = box.boot_id
    box.close()
    again = Outbox(tmp_path / "o.db", TOPIC)
    again.add_event("shift.late", {})
    pending = again.pending()
    assert again.boot_id != old_boot
    assert int(again.boot_id.split("-")[0]) == int(old_boot.split("-")[0]) + 1
    assert [(e.boot_id, e.seq) for e in pending] == [
        (old_boot, 0),
        (old_boot, 1),
        (old_boot, 2),
        (again.boot_id, 0),
    ]


def test_acknowledged_events_leave_pending_but_stay_for_resend_until_purged(tmp_path: Path) -> None:
    clock = FakeClock()
    box = Outbox(tmp_path / "o.db", TOPIC, clock=clock, keep_acked_s=60)
    entries = [box.add_event("mute.on", {"n": n}) for n in range(5)]
    box.ack([entries[0].id, entries[1].id])
    assert [e.seq for e in box.pending()] == [2, 3, 4]
    assert [e.seq for e in box.pending(after_id=entries[2].id)] == [3, 4]
    assert [e.seq for e in box.get_range(box.boot_id, 0, 3)] == [0, 1, 2, 3]
    clock.now += 61
    assert box.purge() == 2
    assert [e.seq for e in box.get_range(box.boot_id, 0, 3)] == [2, 3]
    assert box.stats().pending == 3


def test_levels_are_never_stored(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC)
    with pytest.raises(ValueError, match="levels"):
        box.add_event("levels", {"tx": -30})
    assert box.pending() == []


@pytest.mark.parametrize(
    ("event_type", "priority"),
    [
        ("answer.late", Priority.CONDUCT),
        ("greeting.late", Priority.CONDUCT),
        ("hold.too_long", Priority.CONDUCT),
        ("speech.too_loud", Priority.CONDUCT),
        ("talk.interrupt", Priority.CONDUCT),
        ("call.dead_air", Priority.CONDUCT),
        ("floor.loud", Priority.CONDUCT),
        ("headset.impact", Priority.CONDUCT),
        ("hearing.dose", Priority.CONDUCT),
        ("away.long", Priority.CONDUCT),
        ("shift.absent", Priority.CONDUCT),
        ("call.ring", Priority.INFO),
        ("mute.on", Priority.INFO),
        ("presence.away", Priority.INFO),
        ("headset.attached", Priority.INFO),
        (LOSS_TYPE, Priority.LOSS),
    ],
)
def test_priority_classes_follow_the_event_type(event_type: str, priority: Priority) -> None:
    assert priority_of(event_type) is priority


def _pad(kind: str) -> dict[str, str]:
    # The type is counted in the payload and in the row: pad so every type costs the same.
    return {"pad": "x" * (1200 - 2 * len(kind))}


def _fill(box: Outbox, kinds: list[str]) -> list[int]:
    return [box.add_event(kind, _pad(kind)).seq for kind in kinds]


@pytest.fixture
def budget_for_8(tmp_path: Path) -> int:
    """A budget with room for 8 padded events and not 9 (measured, not assumed)."""
    probe = Outbox(tmp_path / "probe.db", TOPIC)
    _fill(probe, ["call.ring"])
    unit = probe.stats().bytes
    probe.close()
    budget = 8 * unit + unit // 2
    while budget - loss_reserve(budget) < 8 * unit + unit // 2:
        budget += 256
    return budget


def test_full_budget_drops_oldest_informational_first_then_conduct_and_reports_loss(
    tmp_path: Path, budget_for_8: int
) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    seqs = _fill(box, ["hold.long", "call.ring", "mute.on", "answer.late"] * 2)
    assert len(box.pending()) == 8
    _fill(box, ["shift.late"])  # needs room: the oldest informational goes (call.ring seq 1)
    _fill(box, ["presence.away"])  # informational evicts the next oldest informational (mute.on 2)
    kept = {e.seq for e in box.pending()}
    assert kept == set(seqs + [8, 9]) - {1, 2}
    _fill(box, ["hold.long"] * 3)  # evicts call.ring 5, mute.on 6, presence.away 9
    kept = {e.seq: e.type for e in box.pending()}
    assert not any(kind.startswith(("call.ring", "mute.", "presence.")) for kind in kept.values())
    _fill(box, ["speech.too_loud"])  # only conduct left: the oldest conduct goes (hold.long 0)
    assert 0 not in {e.seq for e in box.pending()}
    assert box.stats().bytes <= budget_for_8 - loss_reserve(budget_for_8)
    loss = box.flush_loss()
    assert loss is not None and loss.type == LOSS_TYPE and loss.priority is Priority.LOSS
    validate("event", body(loss.payload))
    data = body(loss.payload)["data"]
    assert data["reason"] == "disk_budget" and data["budget_bytes"] == budget_for_8
    assert data["dropped"] == {"call.ring": 2, "hold.long": 1, "mute.on": 2, "presence.away": 1}
    assert data["total"] == 6
    assert data["ranges"] == [
        {"boot_id": box.boot_id, "from_seq": 0, "to_seq": 2},
        {"boot_id": box.boot_id, "from_seq": 5, "to_seq": 6},
        {"boot_id": box.boot_id, "from_seq": 9, "to_seq": 9},
    ]
    assert box.flush_loss() is None  # reported once; the report used the reserve, evicted none
    assert len(box.pending()) == 9


def test_informational_event_is_not_stored_when_only_conduct_fills_the_budget(
    tmp_path: Path, budget_for_8: int
) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    _fill(box, ["away.long"] * 8)
    dropped = box.add_event("call.ring", _pad("call.ring"))
    assert not dropped.stored
    assert [e.type for e in box.pending()] == ["away.long"] * 8
    loss = box.flush_loss()
    assert loss is not None and body(loss.payload)["data"]["dropped"] == {"call.ring": 1}


def test_acknowledged_copies_are_dropped_before_any_unsent_event(
    tmp_path: Path, budget_for_8: int
) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    entries = [box.add_event("call.ring", _pad("call.ring")) for _ in range(8)]
    box.ack(e.id for e in entries[:2])
    _fill(box, ["mute.on", "mute.on"])
    assert len(box.pending()) == 8
    assert not box.loss_pending


def test_events_claimed_for_publishing_are_not_dropped_for_room(
    tmp_path: Path, budget_for_8: int
) -> None:
    """What the publisher already holds still goes out after a reconnect: dropping it would
    free nothing and report as lost an event that arrives. The next unsent ones go instead."""
    box = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    _fill(box, ["call.ring"] * 8)
    claimed = box.pending(limit=3, claim=True)
    assert [e.seq for e in claimed] == [0, 1, 2]
    _fill(box, ["mute.on", "mute.on"])
    assert [e.seq for e in box.pending()] == [0, 1, 2, 5, 6, 7, 8, 9]
    box.unclaim()  # a new client holds nothing: the oldest unsent may go again
    _fill(box, ["mute.on"])
    assert [e.seq for e in box.pending()][:2] == [1, 2]


def test_pending_loss_survives_a_restart(tmp_path: Path, budget_for_8: int) -> None:
    box = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    _fill(box, ["call.ring"] * 9)
    boot = box.boot_id
    box.close()
    again = Outbox(tmp_path / "o.db", TOPIC, budget_bytes=budget_for_8)
    loss = again.flush_loss()
    assert loss is not None
    assert body(loss.payload)["data"]["ranges"] == [{"boot_id": boot, "from_seq": 0, "to_seq": 0}]


def test_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "o.db").mkdir()  # not a file at all: nothing to set aside, nothing to open
    with pytest.raises(OutboxError, match=r"o\.db: cannot open"):
        Outbox(tmp_path / "o.db", TOPIC)


def _old_outbox_with_backlog(path: Path, events: int = 400) -> Outbox:
    box = Outbox(path, TOPIC)
    box.add_events([("hold.long", _pad("hold.long"), None)] * events)
    return box


def test_garbage_in_data_pages_is_set_aside_and_a_fresh_outbox_says_so(tmp_path: Path) -> None:
    """Issue 12 fault 6: garbage in the data pages (the header intact, so the file opens)
    crashed every start. The file is kept beside as `.corrupt-<UTC time>`, a fresh outbox
    starts, and its first event, seq 0, says what happened and where the old file is."""
    path = tmp_path / "outbox.sqlite"
    old = _old_outbox_with_backlog(path)
    old_counter = int(old.boot_id.split("-")[0])
    old.close()
    garble_data_pages(path)
    box = Outbox(path, TOPIC, clock=FakeClock(1_790_000_000.0))
    kept = tmp_path / "outbox.sqlite.corrupt-20260921T141320Z"
    assert kept.exists() and kept.stat().st_size > 0
    assert int(box.boot_id.split("-")[0]) == old_counter + 1  # boots still sort
    [reset] = box.pending()
    assert (reset.seq, reset.type, reset.boot_id) == (0, "outbox.reset", box.boot_id)
    validate("event", body(reset.payload))
    data = body(reset.payload)["data"]
    assert data["reason"] == "corrupt" and data["during"] == "start"
    assert data["kept_as"] == str(kept) and data["error"]
    assert box.add_event("shift.late", {}).seq == 1
    box.close()
    assert [e.seq for e in Outbox(path, TOPIC).pending()] == [0, 1]  # the fresh file works


def test_damage_found_while_running_replaces_the_file_and_numbering_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    box = _old_outbox_with_backlog(path)
    handed_out = box.pending(limit=10, claim=True)
    garble_data_pages(path)
    # Another writer touches the file (as the pump's ack would): the cache is dropped and the
    # garbage is read at the next query, in the middle of the run.
    other = sqlite3.connect(path)
    other.execute("INSERT INTO meta (key, value) VALUES ('touched', '1')")
    other.close()
    pending = box.pending(limit=1000)  # no exception: the damaged file was replaced
    assert [e.type for e in pending] == ["outbox.reset"]
    assert pending[0].boot_id == box.boot_id and pending[0].seq == 400
    assert pending[0].id > handed_out[-1].id  # the pump's cursor stays valid
    assert body(pending[0].payload)["data"]["during"] == "run"
    kept = list(tmp_path.glob("outbox.sqlite.corrupt-*"))
    assert kept and all(p.stat().st_size > 0 for p in kept)
    assert box.add_event("shift.late", {}).seq == 401
    assert [e.seq for e in box.pending()] == [400, 401]
    box.close()


def test_budget_below_minimum_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="budget_bytes"):
        Outbox(tmp_path / "o.db", TOPIC, budget_bytes=10000)


def test_token_bucket_paces_after_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert TokenBucket(None, 1, 0.0).take(0.0) == 0.0


def test_iso_utc_has_milliseconds_and_z() -> None:
    assert iso_utc(0.0015) == "1970-01-01T00:00:00.001Z"


WRITER = """
import sys
from edge.shell.outbox.store import Outbox
box = Outbox(sys.argv[1], "seatbox/v1/hq/s01/event")
print(box.boot_id, flush=True)
n = 0
while True:
    entry = box.add_event("hold.long", {"n": n})
    print(entry.seq, flush=True)  # printed only after add_event returned (committed)
    n += 1
"""


def test_every_event_reported_stored_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    boot = proc.stdout.readline().strip()
    confirmed = -1
    while confirmed < 50:
        confirmed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    confirmed = max([confirmed] + [int(line) for line in proc.stdout.read().split()])
    box = Outbox(db, TOPIC)
    seqs = [e.seq for e in box.pending(limit=100_000) if e.boot_id == boot]
    # Every confirmed event is there, in order, no holes; at most the one being written extra.
    assert seqs == list(range(len(seqs)))
    assert len(seqs) - 1 in (confirmed, confirmed + 1)


def _seqs_and_types(entries: list[OutboxEntry]) -> list[tuple[int, str]]:
    return [(e.seq, e.type) for e in entries]


def test_full_disk_holds_events_in_memory_numbered_and_writes_them_when_space_returns(
    tmp_path: Path,
) -> None:
    """Issue 12 fault 5: on a really full file system (ENOSPC, not the budget) every event
    was dropped with its seq taken, unreported. Now they are held in memory, in order, and
    written once space is back; the store says so while it lasts."""
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        mono = FakeClock(0.0)  # the retry interval passes without sleeping
        box = Outbox(disk / "outbox.sqlite", TOPIC, monotonic=mono)
        box.add_event("call.ringing", {"n": 0})
        filler = fill(disk)
        entries = [box.add_event("greeting.late", _pad("greeting.late")) for _ in range(30)]
        held = [e for e in entries if e.held]
        assert held, "the full disk took every event: fill() did not fill it"
        assert all(e.stored for e in entries)  # none dropped: memory has room
        health = box.health()
        assert health.state == "disk_full" and health.held == len(held)
        assert "full" in health.detail
        assert box.stats().held == len(held)
        pending = box.pending(limit=1000)
        assert [e.seq for e in pending] == list(range(31))  # no gap, held ones last
        assert [e.id for e in pending] == sorted(e.id for e in pending)
        filler.unlink()
        assert not box.retry()  # tried again at most every RETRY_S
        mono.now += RETRY_S
        assert box.retry()
        assert box.health().state == "ok" and box.stats().held == 0
        box.close()
        again = Outbox(disk / "outbox.sqlite", TOPIC)
        stored = again.pending(limit=1000)
        assert _seqs_and_types(stored) == [(0, "call.ringing")] + [
            (n, "greeting.late") for n in range(1, 31)
        ]
        assert not again.loss_pending
        again.close()


def test_full_disk_beyond_the_memory_bound_drops_info_first_and_reports_exact_ranges(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        mono = FakeClock(0.0)
        box = Outbox(disk / "outbox.sqlite", TOPIC, memory_bytes=32768, monotonic=mono)
        box.add_event("call.ringing", {})
        filler = fill(disk)
        kinds = ["call.ringing", "greeting.late", "mute.on"] * 12  # ~52 KiB: twice the memory
        entries = [box.add_event(kind, _pad(kind)) for kind in kinds]
        assert all(e.held or not e.stored for e in entries[1:])
        dropped = {e.seq for e in entries if not e.stored}
        kept = box.pending(limit=1000)
        lost_by_memory = set(range(1, 37)) - {e.seq for e in kept} - dropped
        lost = dropped | lost_by_memory
        assert lost and all(kinds[s - 1] != "greeting.late" for s in lost)
        loss = box.flush_loss()  # still no disk: the report is held too, never evicting one
        assert loss is not None and loss.held
        validate("event", body(loss.payload))
        data = body(loss.payload)["data"]
        assert data["reason"] == "disk_full" and data["memory_bytes"] == 32768
        assert data["total"] == len(lost) and data["ranges_exact"]
        reported = {s for r in data["ranges"] for s in range(r["from_seq"], r["to_seq"] + 1)}
        assert reported == lost
        held_seqs = [e.seq for e in box.pending(limit=1000)]
        assert sorted(set(held_seqs) | lost) == list(range(held_seqs[-1] + 1))
        filler.unlink()
        assert not box.retry()  # tried again at most every RETRY_S
        mono.now += RETRY_S
        assert box.retry()
        on_disk = [e.seq for e in box.pending(limit=1000)]
        assert on_disk == held_seqs
        box.close()


def test_acknowledgements_and_purges_on_a_full_disk_neither_raise_nor_get_lost(
    tmp_path: Path,
) -> None:
    """The pump acknowledges and purges every cycle; on a full disk that raised each time
    (a traceback per cycle). Acks wait in memory and are written with the held events."""
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        mono = FakeClock(0.0)
        box = Outbox(disk / "outbox.sqlite", TOPIC, keep_acked_s=0.0, monotonic=mono)
        on_disk = [box.add_event("hold.long", {"n": n}) for n in range(5)]
        filler = fill(disk)
        held = [box.add_event("hold.long", _pad("hold.long")) for _ in range(20)]
        assert any(e.held for e in held)
        box.ack([e.id for e in on_disk[:3]] + [e.id for e in held if e.held][:2])
        assert box.purge() == 0
        assert box.stats().pending == 25 - 5
        filler.unlink()
        assert not box.retry()  # tried again at most every RETRY_S
        mono.now += RETRY_S
        assert box.retry()
        assert box.stats().pending == 20
        acked_held = {e.seq for e in [x for x in held if x.held][:2]}
        assert {e.seq for e in box.pending(limit=100)} == set(range(25)) - {0, 1, 2} - acked_held
        box.close()
