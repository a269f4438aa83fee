"""Commands arriving on `cmd/<name>`: parsed and validated before they reach the seat.

A bad command gets an error reply naming the field and what was expected; the seat never sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edge.inputs import CALL_ACTIONS, CtiCommand, Identify, Input

COMMANDS = ("call", "identify", "rebirth", "resend")
MAX_ID = 128


class CommandError(ValueError):
    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Command:
    """A valid command: an input for the seat core, or a request for the shell (rebirth)."""

    name: str
    request_id: str
    input: Input | None = None
    args: dict[str, Any] | None = None


def parse(name: str, payload: bytes) -> Command:
    try:
        body = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError("", f"payload: expected a JSON object ({exc})") from None
    if not isinstance(body, dict):
        raise CommandError("", f"payload: expected a JSON object, got {type(body).__name__}")
    request_id = body.get("id", "")
    if not isinstance(request_id, str) or len(request_id) > MAX_ID:
        raise CommandError("", f"id: expected a string of at most {MAX_ID} characters")
    if name not in COMMANDS:
        raise CommandError(
            request_id, f"command: unknown {name!r} (expected one of {list(COMMANDS)})"
        )
    if name == "call":
        action = body.get("action")
        if action not in CALL_ACTIONS:
            raise CommandError(
                request_id, f"action: expected one of {list(CALL_ACTIONS)}, got {action!r}"
            )
        call_id = body.get("call_id", "")
        if not isinstance(call_id, str) or len(call_id) > MAX_ID:
            raise CommandError(
                request_id, f"call_id: expected a string of at most {MAX_ID} characters"
            )
        return Command(
            name, request_id, CtiCommand(action=action, request_id=request_id, call_id=call_id)
        )
    if name == "identify":
        return Command(name, request_id, Identify(request_id=request_id))
    if name == "resend":
        boot_id = body.get("boot_id")
        if not isinstance(boot_id, str) or not boot_id:
            raise CommandError(request_id, "boot_id: expected the boot id whose events to resend")
        seqs: dict[str, int] = {}
        for key in ("from_seq", "to_seq"):
            value = body.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise CommandError(request_id, f"{key}: expected an integer >= 0")
            seqs[key] = value
        if seqs["to_seq"] < seqs["from_seq"]:
            raise CommandError(request_id, "to_seq: expected >= from_seq")
        return Command(name, request_id, None, {"boot_id": boot_id, **seqs})
    return Command(name, request_id)
