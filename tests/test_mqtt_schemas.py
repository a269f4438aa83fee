"""The MQTT API schemas (docs/schemas) against the code: every payload the seat makes validates,
every event type and violation the code can raise is in the schemas, and a wrong field is caught.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from schema_support import SCHEMAS, errors, schema, validate

from edge.api.payloads import event_payload
from edge.core.clock import Instant
from edge.core.effects import Levels
from edge.core.snapshot import key, snapshot
from edge.shell.scenario import load_scenario
from edge.sim import build as sim

REPO = Path(__file__).resolve().parent.parent
EDGE = REPO / "edge"
SCENARIOS = REPO / "config" / "scenarios"
# Long simulated days (hours of audio periods) take 10-20 s each in process; their payloads were
# checked once by hand over MQTT and their event types are covered by the source check below.
SLOW = {"attendance", "hearing"}


def edge_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(EDGE.rglob("*.py")))


def event_types() -> set[str]:
    return set(schema("event.json")["properties"]["type"]["enum"])


def test_every_schema_is_valid_draft_2020_12_with_its_own_id() -> None:
    for path in sorted(SCHEMAS.glob("*.json")):
        loaded = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(loaded)
        assert loaded["$id"].endswith(f"/schemas/v1/{path.name}"), path.name


def test_event_schema_lists_every_type_the_code_emits_and_no_other() -> None:
    source = edge_source()
    emitted = set(re.findall(r'Emit\(\s*"([a-z_]+\.[a-z_.]+)"', source))
    assert emitted, "no Emit(...) found: has the seat core moved?"
    missing = emitted - event_types()
    assert not missing, f"event types emitted in edge/ but not in event.json: {sorted(missing)}"
    # Types built at run time (mute.on/off, speech.*) appear as string literals in the source.
    unknown = {t for t in event_types() if f'"{t}"' not in source}
    assert not unknown, f"event.json lists types no code in edge/ emits: {sorted(unknown)}"
    with_data = {
        rule["if"]["properties"]["type"]["const"] for rule in schema("event.json")["allOf"]
    }
    assert with_data == event_types(), "every event type has its own data schema"


def test_violation_types_in_the_schema_are_the_flags_the_norms_raise() -> None:
    raised = set(re.findall(r'Flag\(\s*"([a-z_.]+)"', edge_source()))
    common = schema("common.json")["$defs"]
    assert raised == set(common["violation_type"]["enum"])
    assert raised <= event_types()


def _play(
    name: str,
) -> tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """A scenario in process: its events, its states as published, its levels, its info."""
    out = io.StringIO()
    runtime, _ = sim.build(load_scenario(SCENARIOS / f"{name}.toml"), events_out=out)
    runtime.keep_effects = True
    states: list[dict[str, Any]] = []
    seen: list[Any] = [None]

    def on_step(at: Instant) -> None:
        snap = snapshot(runtime.state, at, runtime.site, runtime.seat)
        if key(snap) != seen[0]:
            seen[0] = key(snap)
            states.append(snap)

    runtime.progress_hooks.append(on_step)
    runtime.run()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    levels = [{"ts": e.ts, **e.data} for e in runtime.effects_seen if isinstance(e, Levels)]
    return events, states, levels, runtime.info()


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in SCENARIOS.glob("*.toml") if p.stem not in SLOW)
)
def test_every_payload_of_a_scenario_validates(name: str) -> None:
    events, states, levels, info = _play(name)
    assert events and states
    for event in events:
        validate("event", event)
    for state in states:
        validate("state", state)
    for level in levels:
        validate("levels", level)
    validate("info", info)


# --- a wrong field is caught ------------------------------------------------------------------


@pytest.fixture(scope="module")
def played() -> dict[str, Any]:
    events, states, levels, info = _play("hold_mute")
    by_type = {e["type"]: e for e in events}
    return {"events": by_type, "state": states[-1], "levels": levels[0], "info": info}


def broken(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy with `a.b.c` set to value (`...` deletes it)."""
    out = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("call.ended", "data.talk_s", ...),  # a hangup carries its talk time
        ("call.ended", "data.reason", "dropped"),
        ("call.ended", "data.colour", "red"),
        ("call.answered", "data.source", "phone"),
        ("mute.on", "data.by", "supervisor"),
        ("call.ringing", "type", "call.ring"),
        ("call.ringing", "seq", -1),
        ("call.ringing", "boot_id", "not-hex"),
        ("call.ringing", "ts", "2026-11-23 08:44:02"),
        ("call.ringing", "extra", 1),
        ("headset.connected", "data.vendor_id", "0b0e"),
    ],
)
def test_event_schema_catches_a_wrong_field(
    played: dict[str, Any], kind: str, path: str, value: Any
) -> None:
    good = played["events"][kind]
    validate("event", good)
    assert errors("event", broken(good, path, value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("call.state", "talking"),
        ("call.since", "2026-11-23T08:44:02.000+08:00"),  # `since` is UTC
        ("mute.by", "nobody"),
        ("presence.mood", "happy"),
        ("violations", [{"type": "hold.long", "since": "2026-11-23T00:44:02.000Z"}]),
        ("today.answer.late", -1),
        ("rx_cap_db", ...),
        ("colour", "red"),
    ],
)
def test_state_schema_catches_a_wrong_field(played: dict[str, Any], path: str, value: Any) -> None:
    validate("state", played["state"])
    assert errors("state", broken(played["state"], path, value))


def test_other_schemas_catch_a_wrong_field(played: dict[str, Any]) -> None:
    assert errors("levels", broken(played["levels"], "tx.activity_pct", 140))
    assert errors("levels", broken(played["levels"], "rx.rms", -20))
    assert errors("info", broken(played["info"], "headset.vendor_id", 2830))
    assert errors("info", broken(played["info"], "devices.printer", "x"))
    assert errors("availability", b"ONLINE") and errors("availability", b'"online"')
    assert not errors("availability", b"offline")
    assert errors("cmd/call/reply", {"id": "r1", "ok": False})  # no error text
    assert errors("cmd/call/reply", {"id": "r1", "ok": True, "error": "x"})
    assert errors("cmd/call/reply", {"id": "r1", "ok": True, "data": {"call": "busy"}})
    assert errors("cmd/call", {"id": "r1", "action": "ring", "callid": "x"})
    assert errors("cmd/call", {"id": "r1"})
    assert errors("cmd/identify", {"id": 5})
    assert not errors("cmd/rebirth", {})


def test_event_payload_on_the_wire_is_the_envelope_of_the_schema(played: dict[str, Any]) -> None:
    from edge.core.effects import Event

    wire = event_payload(
        "12-89abcdef", Event(seq=0, ts="2026-11-23T08:44:00.000Z", type="seat.identify")
    )
    assert validate("event", wire) == {
        "boot_id": "12-89abcdef",
        "seq": 0,
        "ts": "2026-11-23T08:44:00.000Z",
        "type": "seat.identify",
        "data": {},
    }
