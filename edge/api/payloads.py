"""The payloads a seat and a consumer put on the wire, built in one place (docs/mqtt-api.md).

The seat's shell publishes through these (the link, the outbox, the runtime's event log); the
floor asks for resends through them. Parsing what arrives is `edge.api.models`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

# `availability`, retained; `offline` is also the seat's will.
ONLINE = b"online"
OFFLINE = b"offline"


class EventLike(Protocol):
    """What the envelope needs of an event (the core's `Event`; the API does not import it)."""

    @property
    def seq(self) -> int: ...

    @property
    def ts(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as every JSON payload of the API is sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_payload(boot_id: str, event: EventLike) -> dict[str, Any]:
    """The `event` envelope of docs/schemas/event.json: `{boot_id, seq, ts, type, data}`."""
    return {
        "boot_id": boot_id,
        "seq": event.seq,
        "ts": event.ts,
        "type": event.type,
        "data": event.data,
    }


def event_bytes(boot_id: str, seq: int, ts: str, event_type: str, data_json: str) -> bytes:
    """The same envelope on the wire, with `data` already encoded as compact JSON text (the
    outbox stores that text): byte for byte `dumps(event_payload(...))`."""
    head = dumps({"boot_id": boot_id, "seq": seq, "ts": ts, "type": event_type}).decode()
    return (head[:-1] + ',"data":' + data_json + "}").encode()


def resend_request(request_id: str, boot_id: str, from_seq: int, to_seq: int) -> bytes:
    """`cmd/resend`: ask a seat's outbox for `from_seq..to_seq` (inclusive) of one boot."""
    return dumps({"id": request_id, "boot_id": boot_id, "from_seq": from_seq, "to_seq": to_seq})


# profile section -> (key in `info.thresholds`, key in the profile section); `_s` keys are
# durations in seconds, as the profile holds them once validated.
THRESHOLDS: dict[str, tuple[tuple[str, str], ...]] = {
    "answer": (("ring_limit", "ring_limit"), ("ring_period_s", "ring_period")),
    "hold_time": (("warn_after_s", "warn_after"), ("violation_after_s", "violation_after")),
    "away": (("long_after_s", "long_after"), ("too_long_after_s", "too_long_after")),
    "dead_air": (("notice_after_s", "notice_after"), ("violation_after_s", "violation_after")),
    "attendance": (
        ("start", "start"),
        ("end", "end"),
        ("lunch_start", "lunch_start"),
        ("lunch_end", "lunch_end"),
        ("ready_before_s", "ready_before"),
        ("absent_after_s", "absent_after"),
        ("workdays", "workdays"),
    ),
}


def _time_of_day(value: Any) -> str:
    text = str(value)  # "08:45:00" from a validated profile
    return text[:5] if text.endswith(":00") and len(text) == 8 else text


def info_thresholds(profile: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`info.thresholds` from a profile's values (`Profile.to_dict()`): the numbers a floor
    colours seats and computes reports by, so it never has to guess the seat's profile."""
    out: dict[str, Any] = {}
    for section, keys in THRESHOLDS.items():
        values = profile[section]
        part: dict[str, Any] = {}
        for ours, theirs in keys:
            value = values[theirs]
            if ours in ("start", "end", "lunch_start", "lunch_end"):
                value = _time_of_day(value)
            elif ours.endswith("_s"):
                value = float(value)
            elif ours == "workdays":
                value = sorted(int(day) for day in value)
            part[ours] = value
        out[section] = part
    return out
