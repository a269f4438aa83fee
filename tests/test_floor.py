"""The floor view's model as a supervisor sees it: each event once, gaps shown and asked for
again with `cmd/resend`, losses the seat reported counted, garbage ignored. Time is an argument."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from edge.floor import FloorModel, render

SITE = "hq"


def event(seq: int, kind: str = "call.ringing", boot: str = "3-0a0b0c0d", **data: Any) -> bytes:
    return json.dumps(
        {"boot_id": boot, "seq": seq, "ts": "2026-11-23T08:45:00.000Z", "type": kind, "data": data}
    ).encode()


def topic(seat: str, leaf: str = "event") -> str:
    return f"seatbox/v1/{SITE}/{seat}/{leaf}"


def screen(model: FloorModel) -> str:
    console = Console(width=110, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(model, now=datetime(2026, 11, 23, 8, 46, tzinfo=UTC)))
    return console.export_text()


def test_a_duplicate_counts_once_and_a_gap_is_shown_then_asked_for() -> None:
    model = FloorModel(site=SITE)
    model.apply(topic("A-01"), event(0), now=100.0)
    model.apply(topic("A-01"), event(0), now=100.1)  # QoS 1 delivered it twice
    model.apply(topic("A-01"), event(3, "answer.late"), now=100.2)  # 1 and 2 never came
    view = model.seats["A-01"]
    assert view.events == 2 and view.missing == 2
    assert "2 missing" in screen(model)
    assert model.resends(now=100.5) == []  # a broker may reorder: wait before asking
    (request,) = model.resends(now=103.0)
    assert request[0] == "seatbox/v1/hq/A-01/cmd/resend"
    body = json.loads(request[1])
    assert (body["boot_id"], body["from_seq"], body["to_seq"]) == ("3-0a0b0c0d", 1, 2)
    model.apply(topic("A-01"), event(1), now=103.1)
    model.apply(topic("A-01"), event(2), now=103.2)
    assert view.missing == 0 and view.events == 4
    assert "missing" not in screen(model)


def test_a_loss_the_seat_reports_is_shown_as_lost_and_not_chased() -> None:
    model = FloorModel(site=SITE)
    model.apply(topic("A-02"), event(0), now=10.0)
    ranges = [{"boot_id": "3-0a0b0c0d", "from_seq": 1, "to_seq": 4}]
    model.apply(topic("A-02"), event(5, "outbox.loss", total=4, ranges=ranges), now=10.1)
    view = model.seats["A-02"]
    assert view.lost == 4 and view.missing == 0
    assert model.resends(now=60.0) == []
    assert "4 lost" in screen(model)


def test_garbage_on_an_event_topic_is_ignored_and_the_floor_keeps_going() -> None:
    model = FloorModel(site=SITE)
    model.apply(topic("A-03"), b"not json", now=1.0)
    model.apply(topic("A-03"), b'{"boot_id": "x", "seq": -1}', now=1.0)
    model.apply(topic("A-03"), event(0, "away.long"), now=1.1)
    assert model.invalid == 2
    assert model.seats["A-03"].events == 1 and model.seats["A-03"].last_event == "away.long"
    assert "A-03 away.long" in "\n".join(model.log)


def info(profile: str, digest: str) -> bytes:
    return json.dumps({"profile": profile, "profile_digest": digest}).encode()


def test_a_seat_enforcing_another_profile_than_the_floor_is_marked() -> None:
    model = FloorModel(site=SITE)
    for seat in ("A-01", "A-02", "A-03"):
        model.apply(topic(seat, "state"), json.dumps({"call": {"state": "idle"}}).encode())
    model.apply(topic("A-01", "info"), info("default", "cc444f490f3d"))
    model.apply(topic("A-02", "info"), info("default", "cc444f490f3d"))
    assert "other profile" not in screen(model)
    model.apply(topic("A-03", "info"), info("default", "0d1e2f3a4b5c"))  # edited in place
    text = screen(model)
    assert "other profile 1" in text
    assert text.count("≠ 0d1e2f default") == 1 and "cc444f" not in text
    model.apply(topic("A-03", "info"), b"not json")  # garbage changes nothing
    assert "≠ 0d1e2f default" in screen(model)
