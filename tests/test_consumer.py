"""The consumer library: de-duplication, gaps, resend requests, loss reports, bad payloads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edge.api import topics
from edge.api.models import StreamError, StreamEvent, parse_event, parse_info, parse_state
from edge.api.payloads import dumps
from edge.api.stream import MAX_REQUESTS_PER_GAP, StreamTracker, Verdict, seat_topic
from edge.api.topics import parse_topic
from edge.core.snapshot import snapshot
from edge.shell.scenario import load_scenario
from edge.sim import build as sim


def ev(seq: int, boot: str = "1-aa", kind: str = "hold.long", **data: object) -> StreamEvent:
    return StreamEvent(boot, seq, "2026-11-23T08:00:00.000Z", kind, dict(data))


def feed(
    tracker: StreamTracker, seqs: list[int], now: float = 0.0, boot: str = "1-aa"
) -> list[str]:
    return [tracker.accept("hq", "s01", ev(s, boot), now).verdict.value for s in seqs]


def test_duplicates_are_recognised_by_seat_boot_and_seq() -> None:
    tracker = StreamTracker()
    assert feed(tracker, [0, 1, 2, 1, 2, 3]) == ["new"] * 3 + ["duplicate"] * 2 + ["new"]
    # Same seq on another seat or another boot is a different event.
    assert tracker.accept("hq", "s02", ev(1), 0.0).verdict is Verdict.NEW
    assert tracker.accept("hq", "s01", ev(0, boot="2-bb"), 0.0).verdict is Verdict.NEW
    assert tracker.duplicates == 2


def test_a_gap_is_reported_and_filled_by_late_arrivals_without_requests() -> None:
    tracker = StreamTracker(reorder_s=2.0)
    feed(tracker, [0, 1])
    accepted = tracker.accept("hq", "s01", ev(5), 0.0)
    assert accepted.gap_opened == (2, 4)
    assert [(g.first, g.last) for g in tracker.gaps()] == [(2, 4)]
    assert feed(tracker, [3], now=1.0) == ["new"]
    assert [(g.first, g.last) for g in tracker.gaps()] == [(2, 2), (4, 4)]
    assert tracker.due_resends(1.9) == []  # still inside the reorder window
    assert feed(tracker, [2, 4, 4], now=1.95) == ["new", "new", "duplicate"]
    assert tracker.gaps() == [] and tracker.due_resends(10.0) == []


def test_unfilled_gap_asks_for_a_resend_then_retries_then_gives_up() -> None:
    tracker = StreamTracker(reorder_s=2.0, retry_s=10.0, max_attempts=2)
    feed(tracker, [0, 1, 7])
    (request,) = tracker.due_resends(2.0)
    assert request.topic == "seatbox/v1/hq/s01/cmd/resend"
    assert json.loads(request.payload()) == {
        "id": request.id,
        "boot_id": "1-aa",
        "from_seq": 2,
        "to_seq": 6,
    }
    assert tracker.due_resends(5.0) == []
    feed(tracker, [2, 3], now=6.0)  # part of the answer arrives
    (again,) = tracker.due_resends(12.0)
    assert (again.from_seq, again.to_seq) == (4, 6) and again.id != request.id
    assert tracker.due_resends(30.0) == []
    assert [(g.first, g.last, g.attempts) for g in tracker.given_up()] == [(4, 6, 2)]
    assert tracker.gaps() == []


def test_late_joiner_starts_at_first_seen_seq_but_a_new_boot_of_a_known_seat_from_zero() -> None:
    tracker = StreamTracker()
    assert tracker.accept("hq", "s01", ev(40), 0.0).gap_opened is None
    assert tracker.accept("hq", "s01", ev(3, boot="2-bb"), 0.0).gap_opened == (0, 2)
    strict = StreamTracker(from_zero=True)
    assert strict.accept("hq", "s09", ev(2), 0.0).gap_opened == (0, 1)


def test_loss_report_stops_resend_requests_for_dropped_ranges() -> None:
    tracker = StreamTracker(reorder_s=0.0)
    feed(tracker, [0, 10])
    loss = ev(
        11,
        kind="outbox.loss",
        ranges=[{"boot_id": "1-aa", "from_seq": 1, "to_seq": 5}],
    )
    tracker.accept("hq", "s01", loss, 0.0)
    (request,) = tracker.due_resends(1.0)
    assert (request.from_seq, request.to_seq) == (6, 9)
    # An event reported lost that arrives after all (it was in flight) is still new once.
    assert feed(tracker, [3, 3], now=1.0) == ["new", "duplicate"]


def test_huge_gap_is_asked_for_in_bounded_requests() -> None:
    tracker = StreamTracker(reorder_s=0.0)
    feed(tracker, [0, 2501])
    spans = [(r.from_seq, r.to_seq) for r in tracker.due_resends(0.0)]
    assert spans == [(1, 1000), (1001, 2000), (2001, 2500)]


def test_parse_event_names_the_bad_field() -> None:
    good = (
        b'{"boot_id":"1-0a0b0c0d","seq":3,"ts":"2026-11-23T08:00:00.000Z","type":"hold.long",'
        b'"data":{}}'
    )
    assert parse_event(good).seq == 3
    ts = b'"ts":"2026-11-23T08:00:00.000Z"'
    with pytest.raises(StreamError, match="`seq`: expected a valid integer, got '3'"):
        parse_event(b'{"boot_id":"1-0a0b0c0d","seq":"3",' + ts + b',"type":"t","data":{}}')
    with pytest.raises(StreamError, match="`seq`: expected greater than or equal to 0"):
        parse_event(b'{"boot_id":"1-0a0b0c0d","seq":-1,' + ts + b',"type":"t","data":{}}')
    with pytest.raises(StreamError, match="not JSON"):
        parse_event(b"\xff\xfe")
    with pytest.raises(StreamError, match="`boot_id`: missing"):
        parse_event(b'{"seq":1,' + ts + b',"type":"t","data":{}}')
    with pytest.raises(StreamError, match="`ts`: expected a string matching"):
        parse_event(b'{"boot_id":"1-0a0b0c0d","seq":1,"ts":"x","type":"t","data":{}}')


@pytest.mark.parametrize("bad", ["a+b", "#", "a/b", "a.b", "", "x" * 65, "sé"])
def test_ids_that_would_break_topics_or_acls_are_refused(bad: str) -> None:
    with pytest.raises(StreamError, match="expected 1-64 of A-Z a-z 0-9 _ -"):
        seat_topic("hq", bad, "event")
    with pytest.raises(StreamError, match="site id"):
        seat_topic(bad, "s01", "event")


def test_parse_topic_splits_site_seat_and_kind() -> None:
    parts = parse_topic("seatbox/v1/hq/s-01/cmd/resend")
    assert parts is not None and (parts.site, parts.seat, parts.kind) == (
        "hq",
        "s-01",
        "cmd/resend",
    )
    assert parse_topic("seatbox/v1/hq/s.01/event") is None
    assert parse_topic("other/v1/hq/s01/event") is None


def test_a_seq_jump_asks_for_a_bounded_number_of_ranges_per_round() -> None:
    """One event with a huge seq must not make the floor build millions of requests."""
    for jump in (10**7, 2**63 - 1):
        tracker = StreamTracker(reorder_s=0.0, max_attempts=1)
        feed(tracker, [0, jump])
        requests = tracker.due_resends(0.0)
        spans = [(r.from_seq, r.to_seq) for r in requests]
        assert spans == [(1 + k * 1000, (k + 1) * 1000) for k in range(MAX_REQUESTS_PER_GAP)]
        assert tracker.due_resends(100.0) == []  # attempts used up: given up, counted
        (lost,) = tracker.given_up()
        assert (lost.first, lost.last) == (1, jump - 1)


def test_every_payload_a_simulated_seat_publishes_passes_the_consumers_checks() -> None:
    """The consumer is as strict as the schemas, not stricter than the seat: a played scenario's
    every state, event and info (as the seat serialises them) parse."""
    scenario = Path(__file__).parent.parent / "config" / "scenarios" / "hold_mute.toml"
    out = io.StringIO()
    runtime, _ = sim.build(load_scenario(scenario), events_out=out)
    states: list[bytes] = []
    runtime.progress_hooks.append(
        lambda at: states.append(dumps(snapshot(runtime.state, at, runtime.site, runtime.seat)))
    )
    runtime.run()
    events = [line.encode() for line in out.getvalue().splitlines()]
    assert len(states) > 10 and len(events) > 5
    for payload in states:
        parse_state(payload)
    for payload in events:
        parse_event(payload)
    assert parse_info(dumps(runtime.info())).seat == runtime.seat


@pytest.mark.parametrize("seat", ["alice@supervisors", "a.b", "a+b", "x" * 65, "", "sé"])
def test_a_topic_level_that_is_not_a_seat_id_is_no_seat(seat: str) -> None:
    assert parse_topic(f"seatbox/v1/hq/{seat}/state") is None
    assert topics.parse_topic(f"seatbox/v1/hq/{seat}/state") is None
    assert topics.parse_topic("seatbox/v1/hq/s-01/cmd/call/reply") == (
        "hq",
        "s-01",
        "cmd/call/reply",
    )
