"""Seat payloads for consumer tests: a valid `state` and `info` (checked against the JSON
Schemas by the tests that use them) and malformed `state` payloads a seat could publish on its
own topic: wrong types, missing parts, huge numbers, nested garbage, not JSON, not UTF-8.
"""

from __future__ import annotations

import copy
import json
from typing import Any

SINCE = "2026-11-23T08:40:00.000Z"


def valid_state(seat: str = "A-01") -> dict[str, Any]:
    return {
        "site": "hq",
        "seat": seat,
        "ts": "2026-11-23T09:45:00.000+01:00",
        "call": {
            "state": "active",
            "since": SINCE,
            "source": "headset",
            "direction": "inbound",
            "number": 3,
        },
        "hook": {"off_hook": True, "since": SINCE},
        "mute": {"muted": True, "by": "hold_policy", "since": SINCE},
        "presence": {"state": "present", "since": SINCE, "last_seen": SINCE},
        "headset": {"connected": True, "since": SINCE, "product": "Jabra Evolve2 40"},
        "radar": {"ok": True, "target": "still", "since": SINCE},
        "audio": {"ok": None, "since": SINCE},
        "shift": {"phase": "on", "since": SINCE},
        "rx_cap_db": -6.0,
        "violations": [{"type": "hold.too_long", "since": SINCE}],
        "today": {
            "answer": {"answered": 4, "late": 1, "mean_answer_s": 7.5},
            "attendance": {
                "arrived": "2026-11-23T08:58:00.000+01:00",
                "late_min": 0,
                "absent": False,
                "early_leave_min": 0,
            },
            "away": {"away_count": 1, "away_min": 4.2},
            "hearing": {"lex_8h_dba": 71.2, "dose_pct": 12.5},
        },
    }


def valid_info(seat: str = "A-01", digest: str = "cc444f490f3d") -> dict[str, Any]:
    return {
        "version": "0.9.0",
        "boot_id": "3-0a0b0c0d",
        "site": "hq",
        "seat": seat,
        "profile": "default",
        "profile_digest": digest,
        "config_digest": "0123456789ab",
        "headset": None,
        "devices": {"radar": "VirtualRadar", "audio": None, "host": None},
        "checks": [{"name": "broker", "status": "OK", "detail": "connected", "fix": ""}],
    }


def _with(path: str, value: Any) -> bytes:
    """valid_state() with `a.b` set to value (`...` deletes it), as JSON bytes."""
    state = copy.deepcopy(valid_state())
    *parents, last = path.split(".")
    node: Any = state
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(state).encode()


def _raw(text: str) -> bytes:
    """valid_state() as JSON with `"rx_cap_db": -6.0` replaced by raw JSON text."""
    return json.dumps(valid_state()).replace('"rx_cap_db": -6.0', f'"rx_cap_db": {text}').encode()


# (what, payload, the field a consumer names: "" for the payload as a whole)
MALFORMED_STATES: list[tuple[str, bytes, str]] = [
    ("call a list", _with("call", []), "call"),
    ("call a string", _with("call", "idle"), "call"),
    ("call.state a number", _with("call.state", 5), "call.state"),
    ("call.state unknown", _with("call.state", "dancing"), "call.state"),
    ("call missing", _with("call", ...), "call"),
    ("presence null", _with("presence", None), "presence"),
    ("violations a string", _with("violations", "hold.too_long"), "violations"),
    ("violations of numbers", _with("violations", [1, 2]), "violations.0"),
    ("violation type a number", _with("violations.0.type", 3), "violations.0.type"),
    ("violation without since", _with("violations.0.since", ...), "violations.0.since"),
    ("mute.by an object", _with("mute.by", {"a": 1}), "mute.by"),
    ("call.since a number", _with("call.since", 12), "call.since"),
    ("presence.since words", _with("presence.since", "yesterday"), "presence.since"),
    ("month 13", _with("call.since", "2026-13-45T99:00:00.000Z"), "call.since"),
    ("call.number huge", _with("call.number", 10**400), "call.number"),
    ("call.number negative", _with("call.number", -1), "call.number"),
    ("call.number a bool", _with("call.number", True), "call.number"),
    ("rx_cap_db infinite", _raw("1e999"), "rx_cap_db"),
    ("rx_cap_db NaN", _raw("NaN"), "rx_cap_db"),
    ("today a list", _with("today", []), "today"),
    ("today.answer.answered negative", _with("today.answer.answered", -1), "today.answer.answered"),
    ("hearing null", _with("today.hearing", None), "today"),
    ("headset.product null", _with("headset.product", None), "headset"),
    ("an extra key", _with("evil", {"x": [1, {"y": None}]}), "evil"),
    ("nested garbage", _with("call", {"state": {"state": {"state": [[[{}]]]}}}), "call.state"),
    ("seat id with a slash", _with("seat", "a/b"), "seat"),
    ("a list", b"[1, 2, 3]", ""),
    ("a string", b'"online"', ""),
    ("a number", b"42", ""),
    ("null", b"null", ""),
    ("empty", b"", ""),
    ("truncated JSON", b'{"call": {"state": "idle"', ""),
    ("not UTF-8", b'{"seat": "\xff\xfe"}', ""),
    ("UTF-16", json.dumps(valid_state()).encode("utf-16"), ""),
    ("nested 5000 deep", b"[" * 5000 + b"]" * 5000, ""),
    ("a lone surrogate", _with("headset.product", "\ud800"), ""),
]
