"""The floor view's model as a supervisor sees it: each event once, gaps shown and asked for
again with `cmd/resend`, losses the seat reported counted, garbage ignored. Time is an argument."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
from payload_samples import MALFORMED_STATES, valid_info, valid_state
from rich.console import Console
from schema_support import validate
from support import Mosquitto

from floor.model import FloorModel
from floor.view import render

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


def info(profile: str, digest: str, seat: str = "A-01") -> bytes:
    return json.dumps({**valid_info(seat, digest), "profile": profile}).encode()


def state(seat: str) -> bytes:
    return json.dumps(validate("state", valid_state(seat))).encode()


def test_a_seat_enforcing_another_profile_than_the_floor_is_marked() -> None:
    model = FloorModel(site=SITE)
    for seat in ("A-01", "A-02", "A-03"):
        model.apply(topic(seat, "state"), state(seat))
    model.apply(topic("A-01", "info"), info("default", "cc444f490f3d", "A-01"))
    model.apply(topic("A-02", "info"), info("default", "cc444f490f3d", "A-02"))
    assert "other profile" not in screen(model)
    model.apply(topic("A-03", "info"), info("default", "0d1e2f3a4b5c", "A-03"))  # edited
    text = screen(model)
    assert "other profile 1" in text
    assert text.count("≠ 0d1e2f default") == 1 and "cc444f" not in text
    model.apply(topic("A-03", "info"), b"not json")  # garbage is marked, the profile kept
    text = screen(model)
    assert "≠ 0d1e2f default" in text and "bad info: payload" in text


# --- fault 13: a malformed payload marks its seat, never the view ----------------------------


def test_every_malformed_state_marks_its_seat_and_the_floor_still_renders() -> None:
    model = FloorModel(site=SITE)
    model.apply(topic("OK-1", "state"), state("OK-1"))
    for i, (_, payload, _) in enumerate(MALFORMED_STATES):
        model.apply(topic(f"B-{i:02d}", "state"), payload)
    text = screen(model)
    for i, (what, _, field) in enumerate(MALFORMED_STATES):
        view = model.seats[f"B-{i:02d}"]
        assert view.problems == {"state": f"bad state: {field or 'payload'}"}, what
        assert view.state is None, what
    assert text.count("bad state") == len(MALFORMED_STATES)
    assert "on call 1" in text and "bad payloads " + str(len(MALFORMED_STATES)) in text
    # The seat fixes itself: its next good state clears the mark.
    model.apply(topic("B-00", "state"), state("B-00"))
    assert model.seats["B-00"].problems == {} and "on call 2" in screen(model)


def test_bad_info_availability_and_events_mark_their_seat() -> None:
    model = FloorModel(site=SITE)
    model.apply(topic("A-01", "info"), json.dumps({**valid_info(), "profile_digest": 7}).encode())
    model.apply(topic("A-02", "availability"), b"maybe")
    model.apply(topic("A-03"), b'{"boot_id":"3-0a0b0c0d","seq":1e999}')
    assert model.seats["A-01"].problems == {"info": "bad info: profile_digest"}
    assert model.seats["A-02"].problems == {"availability": "bad availability: payload"}
    assert model.seats["A-03"].problems == {"event": "bad event: seq"}
    text = screen(model)
    assert "bad info" in text and "bad availability" in text and "bad event" in text
    model.apply(topic("A-03"), event(0))
    assert model.seats["A-03"].problems == {}


def test_topic_levels_that_are_not_seat_ids_are_not_seats() -> None:
    model = FloorModel(site=SITE)
    good = state("A-01")
    for seat in ("alice@supervisors", "floor@services", "a.b", "x" * 65, "s\u00e9"):
        model.apply(topic(seat, "state"), good)
        model.apply(topic(seat, "availability"), b"online")
        model.apply(topic(seat), event(0))
    model.apply("seatbox/v1/h q/A-01/state", good)
    assert model.seats == {}


def test_seatbox_floor_survives_malformed_retained_states_from_a_real_broker(
    broker: Mosquitto, tmp_path: Path
) -> None:
    site = "fuzz"  # retained messages stay on the module's broker: a site of its own
    messages: list[publish.MessageTuple] = [
        (f"seatbox/v1/{site}/OK-1/state", state("OK-1"), 1, True)
    ]
    # (an empty retained payload is not stored: MQTT deletes the retained message with it)
    malformed = [payload for _, payload, _ in MALFORMED_STATES if payload]
    messages += [
        (f"seatbox/v1/{site}/B-{i:02d}/state", payload, 1, True)
        for i, payload in enumerate(malformed)
    ]
    publish.multiple(messages, hostname="127.0.0.1", port=broker.port)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "seatbox"), "floor", "--broker", broker.url]
        + ["--site", site, "--duration", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.count("bad state") == len(malformed)
    assert f"seats {len(malformed) + 1}" in done.stdout and "on call 1" in done.stdout


def test_a_key_from_the_payload_reaches_the_screen_short_and_without_control_characters() -> None:
    model = FloorModel(site=SITE)
    evil = "\x1b[2J" + "k" * 5000
    model.apply(topic("A-01", "state"), json.dumps({**valid_state(), evil: 1}).encode())
    (problem,) = model.seats["A-01"].problems.values()
    assert problem.startswith("bad state: \\x1b[2Jkkk") and len(problem) <= 80
    assert "\x1b" not in screen(model)


def test_a_seat_whose_disk_is_full_says_so_on_the_floor() -> None:
    """The seat's `storage` part (issue 12, fault 5) passes the consumer's checks, and a
    supervisor sees that the seat's events are held in memory only."""
    model = FloorModel(site=SITE)
    state = valid_state("A-01")
    state["storage"] = {"outbox": "ok", "held": 0, "since": "2026-11-23T08:40:00.000Z"}
    validate("state", state)
    model.apply(topic("A-01", "state"), json.dumps(state).encode(), now=100.0)
    assert model.seats["A-01"].problems == {}
    assert "disk" not in screen(model)
    state["storage"] = {"outbox": "disk_full", "held": 42, "since": "2026-11-23T08:45:00.000Z"}
    validate("state", state)
    model.apply(topic("A-01", "state"), json.dumps(state).encode(), now=101.0)
    assert model.seats["A-01"].problems == {}
    assert "disk full, 42 held" in screen(model)
    state["storage"] = {"outbox": "on_fire", "held": -1, "since": "yesterday"}
    model.apply(topic("A-01", "state"), json.dumps(state).encode(), now=102.0)
    assert model.seats["A-01"].problems == {"state": "bad state: storage.outbox"}
    assert "bad payloads 1" in screen(model)
