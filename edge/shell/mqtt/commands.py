"""Commands arriving on `cmd/<name>`: parsed and validated before they reach the seat.

A bad command gets an error reply naming the field and what was expected; the seat never sees it.
Parsing is defensive: payload size, nesting depth, text that cannot be encoded and integer
bounds are checked here, so no payload can raise anything but `CommandError` on paho's thread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.base.errors import ParseError
from edge.core.inputs import CALL_ACTIONS, CtiCommand, Identify, Input

if TYPE_CHECKING:
    from edge.shell.outbox.store import ResendResult

COMMANDS = ("call", "identify", "rebirth", "resend")
MAX_ID = 128
# A command is a flat object of a few short fields (a resend is ~100 bytes); anything much
# larger is a mistake or an attack and is refused before it is parsed.
MAX_PAYLOAD_BYTES = 16 * 1024
# Commands are flat: the object itself is depth 1. json.loads recurses per level and raises
# RecursionError near 1,000, so depth is checked on the raw bytes before parsing.
MAX_DEPTH = 8
# Sequence numbers: every JSON reader keeps integers up to 2^53 - 1 exact (RFC 8259 §6), and
# SQLite's INTEGER (2^63 - 1) holds them; 2^63 overflowed it and stopped the link.
MAX_SEQ = 2**53 - 1
# docs/schemas/common.json#/$defs/boot_id: the outbox's boot counter, '-', 8 hex digits.
BOOT_ID = re.compile(r"[0-9]{1,12}-[0-9a-f]{8}")
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = b"[{", b"]}", 0x22, 0x5C


class CommandError(ParseError):
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


def reply_payload(
    request_id: str, ok: bool, error: str = "", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `cmd/<name>/reply` payload: every reply the seat sends is built here."""
    payload: dict[str, Any] = {"id": request_id, "ok": ok, **({"error": error} if error else {})}
    if data:
        payload["data"] = data
    return payload


def resend_reply(request_id: str, result: ResendResult) -> dict[str, Any]:
    """The `cmd/resend/reply` payload for a looked-up resend."""
    if result.refused:
        return reply_payload(request_id, False, f"resend: {result.refused}")
    missing = [
        {"boot_id": r.boot_id, "from_seq": r.from_seq, "to_seq": r.to_seq} for r in result.missing
    ]
    return reply_payload(request_id, True, data={"queued": result.queued, "missing": missing})


def parse(name: str, payload: bytes) -> Command:
    """A valid command, or `CommandError` (and nothing else) naming the field at fault."""
    body = _object(payload)
    request_id = body.get("id", "")
    if not isinstance(request_id, str) or len(request_id) > MAX_ID:
        raise CommandError("", f"id: expected a string of at most {MAX_ID} characters")
    if (problem := _bad_text(request_id)) is not None:
        raise CommandError("", f"id: expected Unicode text, got {problem}")
    if name not in COMMANDS:
        raise CommandError(
            request_id, f"command: unknown {_show(name)} (expected one of {list(COMMANDS)})"
        )
    if name == "call":
        action = body.get("action")
        if not isinstance(action, str) or action not in CALL_ACTIONS:
            raise CommandError(
                request_id, f"action: expected one of {list(CALL_ACTIONS)}, got {_show(action)}"
            )
        call_id = body.get("call_id", "")
        if not isinstance(call_id, str) or len(call_id) > MAX_ID:
            raise CommandError(
                request_id, f"call_id: expected a string of at most {MAX_ID} characters"
            )
        if (problem := _bad_text(call_id)) is not None:
            raise CommandError(request_id, f"call_id: expected Unicode text, got {problem}")
        return Command(
            name,
            request_id,
            CtiCommand(action=action, request_id=request_id, call_id=call_id),  # type: ignore[arg-type]
        )
    if name == "identify":
        return Command(name, request_id, Identify(request_id=request_id))
    if name == "resend":
        boot_id = body.get("boot_id")
        if not isinstance(boot_id, str) or not BOOT_ID.fullmatch(boot_id):
            raise CommandError(
                request_id,
                "boot_id: expected the boot id whose events to resend (digits, '-', 8 hex "
                f"digits, e.g. 3-0a1b2c3d), got {_show(boot_id)}",
            )
        seqs: dict[str, int] = {}
        for key in ("from_seq", "to_seq"):
            value = body.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
                raise CommandError(
                    request_id,
                    f"{key}: expected an integer from 0 to {MAX_SEQ}, got {_show(value)}",
                )
            seqs[key] = value
        if seqs["to_seq"] < seqs["from_seq"]:
            raise CommandError(request_id, "to_seq: expected >= from_seq")
        return Command(name, request_id, None, {"boot_id": boot_id, **seqs})
    return Command(name, request_id)


def _object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, checked for size and depth before it is parsed."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(
            "", f"payload: expected at most {MAX_PAYLOAD_BYTES} bytes, got {len(payload)}"
        )
    if not payload.strip():
        return {}
    if nested_deeper(payload):
        raise CommandError("", f"payload: expected JSON nested at most {MAX_DEPTH} deep")
    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(
            "", f"payload: expected UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise CommandError("", f"payload: expected a JSON object ({exc})") from None
    except ValueError:  # int() of more than sys.get_int_max_str_digits() digits
        raise CommandError("", "payload: expected a JSON object with shorter numbers") from None
    except RecursionError:  # not reached after nested_deeper; kept so nothing escapes
        raise CommandError("", f"payload: expected JSON nested at most {MAX_DEPTH} deep") from None
    if not isinstance(body, dict):
        raise CommandError("", f"payload: expected a JSON object, got {type(body).__name__}")
    return body


def nested_deeper(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in JSON text nest more than `limit` deep (brackets inside
    strings do not count). Linear and without recursion, so it is safe before json.loads."""
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False  # the common case: too few brackets to be that deep
    depth = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def _bad_text(value: str) -> str | None:
    """None for text that can be sent as UTF-8; else what is wrong (JSON's `\\ud800` escape
    gives a lone surrogate, which no reply, event or database can encode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate ({value[exc.start]!r}) at character {exc.start}"
    return None


def _show(value: Any, limit: int = 40) -> str:
    """A value for an error message: repr (escapes surrogates), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
