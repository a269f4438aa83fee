"""A seat's colour on the floor (floor.severity): from what the seat publishes and the numbers
of its own profile (`info.thresholds`), at a wall time given as an argument."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from payload_samples import valid_info, valid_state

from edge.api.models import parse_info
from edge.api.payloads import info_thresholds
from edge.shell.config import load_profile
from floor.model import FloorModel, SeatView
from floor.severity import RANK, Thresholds, severity

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state(**parts: Any) -> dict[str, Any]:
    """A valid retained state, idle and present at T0, with `parts` replaced."""
    body = copy.deepcopy(valid_state())
    since = iso(T0)
    body["call"] = {
        "state": "idle",
        "since": since,
        "source": None,
        "direction": None,
        "number": 3,
    }
    body["mute"] = {"muted": False, "by": None, "since": since}
    body["violations"] = []
    for key, value in parts.items():
        body[key] = value
    return body


def view_of(body: dict[str, Any], *, online: bool = True, info: Any = None) -> SeatView:
    """The seat as the floor model keeps it after these messages."""
    model = FloorModel(site="hq")
    model.apply("seatbox/v1/hq/A-01/availability", b"online" if online else b"offline", 0.0)
    if info is not None:
        model.apply("seatbox/v1/hq/A-01/info", json.dumps(info).encode(), 0.0)
    model.apply("seatbox/v1/hq/A-01/state", json.dumps(body).encode(), 0.0)
    return model.seats["A-01"]


def held_since(moment: datetime) -> dict[str, Any]:
    return {
        "state": "held",
        "since": iso(moment),
        "source": "headset",
        "direction": "inbound",
        "number": 3,
    }


def test_thresholds_come_from_the_seats_info() -> None:
    profile = load_profile("lenient")
    info = {**valid_info(), "thresholds": info_thresholds(profile.to_dict())}
    limits = Thresholds.from_info(parse_info(json.dumps(info).encode()))
    assert limits.published
    assert limits.hold_warn_s == profile["hold_time"].warn_after
    assert limits.hold_violation_s == profile["hold_time"].violation_after
    assert limits.away_violation_s == profile["away"].too_long_after
    answer = profile["answer"]
    assert limits.answer_limit_s == answer.ring_limit * answer.ring_period
    # An older seat (no thresholds) is judged by the documented defaults, marked as such.
    old = Thresholds.from_info(parse_info(json.dumps(valid_info()).encode()))
    assert not old.published and old.hold_warn_s == 120.0 and old.hold_violation_s == 180.0


def test_a_hold_turns_warn_then_violation_as_time_passes() -> None:
    view = view_of(state(call=held_since(T0)))
    limits = Thresholds()
    assert severity(view, limits, T0 + timedelta(seconds=119)).level == "ok"
    warn = severity(view, limits, T0 + timedelta(seconds=121))
    assert (warn.level, warn.reasons, warn.since) == ("warn", ["hold.warn"], iso(T0))
    red = severity(view, limits, T0 + timedelta(seconds=181))
    assert (red.level, red.reasons, red.since) == ("violation", ["hold.violation"], iso(T0))


def test_the_seats_own_profile_sets_the_hold_limits() -> None:
    info = {**valid_info(), "thresholds": info_thresholds(load_profile("default").to_dict())}
    info["thresholds"]["hold_time"] = {"warn_after_s": 30.0, "violation_after_s": 60.0}
    view = view_of(state(call=held_since(T0)), info=info)
    assert view.info is not None
    limits = Thresholds.from_info(view.info)
    assert severity(view, limits, T0 + timedelta(seconds=45)).level == "warn"
    assert severity(view, limits, T0 + timedelta(seconds=61)).level == "violation"
    assert severity(view, Thresholds(), T0 + timedelta(seconds=61)).level == "ok"
    # The info itself, or its thresholds part as a dict, will do as well.
    assert severity(view, view.info, T0 + timedelta(seconds=61)).level == "violation"
    assert severity(view, info["thresholds"], T0 + timedelta(seconds=45)).level == "warn"


def test_ringing_past_the_answer_limit() -> None:
    ringing = {**held_since(T0), "state": "ringing"}
    view = view_of(state(call=ringing))
    assert severity(view, None, T0 + timedelta(seconds=14)).level == "ok"
    late = severity(view, None, T0 + timedelta(seconds=15))
    assert (late.level, late.reasons) == ("violation", ["ring.late"])


def test_away_5_and_15_minutes_in_working_time_only() -> None:
    away = {"state": "away", "since": iso(T0), "last_seen": iso(T0)}
    view = view_of(state(presence=away))
    assert severity(view, None, T0 + timedelta(minutes=4)).level == "ok"
    assert severity(view, None, T0 + timedelta(minutes=6)).reasons == ["away.5min"]
    red = severity(view, None, T0 + timedelta(minutes=16))
    assert (red.level, red.reasons) == ("violation", ["away.15min"])
    lunch = view_of(state(presence=away, shift={"phase": "lunch", "since": iso(T0)}))
    assert severity(lunch, None, T0 + timedelta(minutes=40)).level == "ok"


def test_offline_wins_and_shows_no_stale_state() -> None:
    view = view_of(state(call=held_since(T0)), online=False)
    result = severity(view, None, T0 + timedelta(minutes=10))
    assert (result.level, result.reasons) == ("offline", ["offline"])
    assert RANK["offline"] > RANK["violation"] > RANK["fault"] > RANK["warn"] > RANK["ok"]


def test_radar_lost_is_a_fault_and_a_violation_outranks_it() -> None:
    lost_at = T0 + timedelta(minutes=1)
    radar = {"ok": False, "target": "none", "since": iso(lost_at)}
    view = view_of(state(radar=radar))
    fault = severity(view, None, T0 + timedelta(minutes=2))
    assert (fault.level, fault.reasons, fault.since) == ("fault", ["radar.lost"], iso(lost_at))
    both = view_of(state(radar=radar, call=held_since(T0)))
    result = severity(both, None, T0 + timedelta(minutes=4))
    assert (result.level, result.reasons) == ("violation", ["hold.violation", "radar.lost"])
    headset = {"connected": False, "since": iso(T0)}
    assert severity(view_of(state(headset=headset)), None, T0).reasons == ["headset.lost"]


def test_violations_the_seat_flags_and_speech_on_hold() -> None:
    flagged = [{"type": "call.dead_air", "since": iso(T0)}]
    view = view_of(state(violations=flagged, call={**held_since(T0), "state": "active"}))
    result = severity(view, None, T0 + timedelta(seconds=20))
    assert (result.level, result.reasons) == ("violation", ["call.dead_air"])
    held = view_of(state(call=held_since(T0)))
    event = {
        "boot_id": "3-0a0b0c0d",
        "seq": 0,
        "ts": iso(T0 + timedelta(seconds=5)),
        "type": "hold.unmuted_speech",
        "data": {},
    }
    model = FloorModel(site="hq")
    model.seats["A-01"] = held
    model.apply("seatbox/v1/hq/A-01/event", json.dumps(event).encode(), 0.0)
    spoke = severity(held, None, T0 + timedelta(seconds=10))
    assert (spoke.level, spoke.reasons) == ("violation", ["speech_on_hold"])


def test_a_bad_state_is_a_fault_not_a_crash() -> None:
    model = FloorModel(site="hq")
    model.apply("seatbox/v1/hq/A-01/availability", b"online", 0.0)
    model.apply("seatbox/v1/hq/A-01/state", b'{"call": 5}', 0.0)
    result = severity(model.seats["A-01"], None, T0)
    assert (result.level, result.reasons) == ("fault", ["state.bad"])
