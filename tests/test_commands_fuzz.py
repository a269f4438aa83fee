"""Property tests of `edge.shell.mqtt.commands.parse`, the parser of everything arriving on `cmd/<name>`:
any bytes, any JSON, lone surrogates and deep nesting give a Command or a CommandError, never
another exception, and quickly. A short budget here; bench/fuzz.py runs the long one.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.core.inputs import CALL_ACTIONS, CtiCommand
from edge.shell.mqtt.commands import (
    BOOT_ID,
    COMMANDS,
    MAX_DEPTH,
    MAX_ID,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    Command,
    CommandError,
    nested_deeper,
    parse,
)

# A parse takes under 2 ms; the deadline leaves room for a busy 2-core machine.
FAST = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

# Text including lone surrogates: json.dumps escapes them as `\ud800`, the trigger.
CHARS = st.characters() | st.characters(categories=["Cs"])
TEXT = st.text(CHARS, max_size=24)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**53 - 2, max_value=2**64)
    | st.floats()
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
NAMES = st.sampled_from(COMMANDS) | st.text(max_size=12)
# Objects shaped like commands, so the checks past the envelope are reached too.
COMMANDLIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": TEXT | JSON,
        "action": st.sampled_from(CALL_ACTIONS) | JSON,
        "call_id": TEXT | JSON,
        "boot_id": st.from_regex(BOOT_ID, fullmatch=True) | TEXT | JSON,
        "from_seq": st.integers(min_value=-2, max_value=2**64) | JSON,
        "to_seq": st.integers(min_value=-2, max_value=2**64) | JSON,
    },
)


def check(name: str, payload: bytes) -> None:
    """The property: a Command whose fields can be sent, or a CommandError that can be."""
    started = time.perf_counter()
    try:
        command = parse(name, payload)
    except CommandError as exc:
        # The reply must encode (no surrogate), carry a valid id and name a field first.
        reply = json.dumps(
            {"id": exc.request_id, "ok": False, "error": str(exc)}, ensure_ascii=False
        )
        reply.encode("utf-8")
        assert len(exc.request_id) <= MAX_ID
        assert ":" in str(exc) and len(str(exc)) < 400
    else:
        assert isinstance(command, Command) and command.name in COMMANDS
        json.dumps({"id": command.request_id}, ensure_ascii=False).encode("utf-8")
        assert len(command.request_id) <= MAX_ID
        if isinstance(command.input, CtiCommand):
            assert command.input.action in CALL_ACTIONS
            command.input.call_id.encode("utf-8")
        if command.name == "resend":
            assert command.args is not None
            assert BOOT_ID.fullmatch(command.args["boot_id"])
            assert 0 <= command.args["from_seq"] <= command.args["to_seq"] <= MAX_SEQ
    assert time.perf_counter() - started < 0.5


@FAST
@given(NAMES, st.binary(max_size=512))
def test_any_bytes_give_a_command_or_a_command_error(name: str, payload: bytes) -> None:
    check(name, payload)


@FAST
@given(NAMES, JSON, st.booleans())
def test_any_json_gives_a_command_or_a_command_error(name: str, body: Any, ascii: bool) -> None:
    check(name, json.dumps(body, ensure_ascii=ascii).encode("utf-8", "surrogatepass"))


@FAST
@given(st.sampled_from(COMMANDS), COMMANDLIKE, st.booleans())
def test_commandlike_json_gives_a_command_or_a_command_error(
    name: str, body: dict[str, Any], ascii: bool
) -> None:
    check(name, json.dumps(body, ensure_ascii=ascii).encode("utf-8", "surrogatepass"))


@FAST
@given(
    st.sampled_from(COMMANDS),
    st.integers(min_value=0, max_value=MAX_PAYLOAD_BYTES // 2),
    st.sampled_from([b"[", b"{", b'{"a":', b'["x",']),
    st.booleans(),
)
def test_deep_nesting_up_to_the_size_limit_is_refused_quickly(
    name: str, depth: int, opener: bytes, closed: bool
) -> None:
    body = opener * depth + ((b"]" if opener[0:1] == b"[" else b"}") * depth if closed else b"")
    check(name, body[:MAX_PAYLOAD_BYTES])


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@FAST
@given(JSON, st.integers(min_value=0, max_value=6), st.booleans())
def test_nesting_is_measured_on_brackets_outside_strings_only(
    value: Any, limit: int, ascii: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    assert nested_deeper(text, limit) == (depth_of(value) > limit)


def test_every_limit_is_reached_by_a_payload_just_over_it() -> None:
    """The bounds of the property tests above, each just over: refused, field named."""
    deep = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    cases = {
        b" " * (MAX_PAYLOAD_BYTES + 1): "payload: expected at most",
        deep: "payload: expected JSON nested at most",
        json.dumps({"id": "x" * (MAX_ID + 1)}).encode(): "id: expected a string",
        b'{"boot_id":"1-0a0b0c0d","from_seq":0,"to_seq":%d}' % (MAX_SEQ + 1): "to_seq:",
    }
    for payload, error in cases.items():
        try:
            parse("resend", payload)
        except CommandError as exc:
            assert str(exc).startswith(error), (payload[:40], str(exc))
        else:
            raise AssertionError(f"accepted {payload[:40]!r}")
    # ... and just within: accepted.
    ok = b'{"boot_id":"1-0a0b0c0d","from_seq":0,"to_seq":%d}' % MAX_SEQ
    assert parse("resend", ok).args == {"boot_id": "1-0a0b0c0d", "from_seq": 0, "to_seq": MAX_SEQ}
    within = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert parse("identify", within).name == "identify"
