"""The MQTT API's JSON Schemas (docs/schemas/) for tests: load them, validate a payload by topic.

`validate(leaf, payload)` raises AssertionError naming the topic leaf, the path and the problem.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"

# Topic leaf (what follows `seatbox/v1/<site>/<seat>/`) -> schema file.
_FIXED = {
    "availability": "availability.json",
    "state": "state.json",
    "event": "event.json",
    "levels": "levels.json",
    "info": "info.json",
}
_REPLY = re.compile(r"^cmd/[^/]+/reply$")
_COMMAND = re.compile(r"^cmd/([^/]+)$")


@cache
def registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


@cache
def validator(name: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema(name))
    return Draft202012Validator(schema(name), registry=registry(), format_checker=FormatChecker())


def schema_for(leaf: str) -> str:
    if leaf in _FIXED:
        return _FIXED[leaf]
    if _REPLY.match(leaf):
        return "cmd-reply.json"
    match = _COMMAND.match(leaf)
    if match and (SCHEMAS / f"cmd-{match.group(1)}.json").exists():
        return f"cmd-{match.group(1)}.json"
    raise AssertionError(f"no schema for topic leaf {leaf!r}")


def decode(leaf: str, payload: bytes | str | Any) -> Any:
    """The payload as the schema sees it: availability is plain text, everything else JSON."""
    if isinstance(payload, bytes | str):
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        return text if leaf == "availability" else json.loads(text)
    return payload


def errors(leaf: str, payload: bytes | str | Any) -> list[str]:
    """Every schema violation of one payload, as `path: message` lines (empty: valid)."""
    try:
        value = decode(leaf, payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"(payload): not JSON: {exc}"]
    found = validator(schema_for(leaf)).iter_errors(value)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def validate(leaf: str, payload: bytes | str | Any) -> Any:
    """Validate one payload published on `leaf`; returns it decoded. AssertionError if invalid."""
    problems = errors(leaf, payload)
    if problems:
        raise AssertionError(
            f"{leaf} payload does not match {schema_for(leaf)}:\n  "
            + "\n  ".join(problems)
            + f"\n  payload: {payload!r}"
        )
    return decode(leaf, payload)
