"""The consumer's payload parsing under arbitrary input (hypothesis): whatever a seat, or
anyone who can publish, puts on `state`, `info`, `event` or `availability`, the parse functions
raise nothing but `StreamError`, the floor view neither raises nor stops rendering, and the
consumer's models agree with the JSON Schemas in docs/schemas/ on mutated seat payloads.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payload_samples import MALFORMED_STATES, valid_info, valid_state
from rich.console import Console
from schema_support import errors

from edge.api.models import (
    StreamError,
    parse_availability,
    parse_event,
    parse_info,
    parse_state,
)
from floor.model import FloorModel
from floor.view import render

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "state": parse_state,
    "info": parse_info,
    "event": parse_event,
    "availability": parse_availability,
}

# JSON as a seat could send it: leaves a strict JSON parser and the schemas both take (finite
# numbers within 64 bits, text without lone surrogates), nested objects and arrays.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | st.sampled_from(["idle", "active", "away", "hold.too_long", "2026-11-23T08:40:00.000Z"])
)
JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _call(parse: Callable[[bytes], Any], payload: bytes) -> None:
    with contextlib.suppress(StreamError):  # anything else fails the test
        parse(payload)


@pytest.mark.parametrize("leaf", sorted(PARSERS))
@FAST
@given(payload=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_stream_error(leaf: str, payload: bytes) -> None:
    _call(PARSERS[leaf], payload)


@pytest.mark.parametrize("leaf", sorted(PARSERS))
@FAST
@given(value=JSON)
def test_arbitrary_json_raises_only_stream_error(leaf: str, value: Any) -> None:
    _call(PARSERS[leaf], json.dumps(value).encode())


@FAST
@given(
    value=JSON,
    depth=st.integers(min_value=1, max_value=3000),
    number=st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "1" * 5000, "-0.0e-400"]),
)
def test_deep_nesting_and_extreme_numbers_raise_only_stream_error(
    value: Any, depth: int, number: str
) -> None:
    text = json.dumps(value)
    for payload in (
        ("[" * depth + text + "]" * depth).encode(),
        ('{"a":' * depth + text + "}" * depth).encode(),
        json.dumps(valid_state()).replace("-6.0", number).encode(),
        b'{"boot_id":"3-0a0b0c0d","seq":' + number.encode() + b',"ts":"x"}',
    ):
        for parse in PARSERS.values():
            _call(parse, payload)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _mutated(payload: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    out = copy.deepcopy(payload)
    node = out
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("leaf", "valid"), [("state", valid_state()), ("info", valid_info())], ids=["state", "info"]
)
@FAST
@given(data=st.data())
def test_the_consumer_and_the_schema_agree_on_mutated_payloads(
    leaf: str, valid: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(valid)))
    payload = _mutated(valid, path, data.draw(JSON), data.draw(st.booleans()))
    raw = json.dumps(payload).encode()
    try:
        PARSERS[leaf](raw)
        accepted = True
    except StreamError:
        accepted = False
    schema_errors = errors(leaf, raw)
    assert accepted == (not schema_errors), (path, payload, schema_errors)


def test_the_malformed_states_are_refused_by_the_consumer_and_but_few_by_the_schema() -> None:
    """Where the consumer is stricter than the schema checker, on purpose: numbers JSON
    cannot carry between programs (RFC 8259 §6: NaN, infinity, beyond 64 bits), a lone
    surrogate (not Unicode), a date the schema's `format` forbids (not checked by jsonschema
    without an extra package)."""
    stricter = {
        "month 13",
        "call.number huge",
        "rx_cap_db infinite",
        "rx_cap_db NaN",
        "a lone surrogate",
    }
    for what, payload, _ in MALFORMED_STATES:
        with pytest.raises(StreamError):
            parse_state(payload)
        if what not in stricter and what != "nested 5000 deep":  # RecursionError in jsonschema
            assert errors("state", payload), what


@SLOWER
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(["A-01", "A-02", "alice@supervisors", "a+b", "B"]),
            st.sampled_from(["state", "info", "event", "availability", "levels", "cmd/x"]),
            st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
        ),
        max_size=12,
    )
)
def test_the_floor_view_takes_any_message_and_still_renders(
    messages: list[tuple[str, str, bytes]],
) -> None:
    model = FloorModel(site="hq")
    model.apply("seatbox/v1/hq/A-01/state", json.dumps(valid_state()).encode(), now=0.0)
    for seat, leaf, payload in messages:
        model.apply(f"seatbox/v1/hq/{seat}/{leaf}", payload, now=1.0)
    model.resends(now=100.0)
    console = Console(width=110, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(model, now=datetime(2026, 11, 23, 8, 46, tzinfo=UTC)))
    assert set(model.seats) <= {"A-01", "A-02", "B"}
