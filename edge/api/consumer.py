"""Trusting what seats publish: every payload checked against the v1 schemas (docs/schemas/),
de-duplication by `(seat, boot_id, seq)`, gap detection and the `cmd/resend` request that asks
the seat's outbox for the missing range.

Pure: no I/O, time is an argument. The floor view and reports feed it what they receive. The
parse functions raise only `StreamError`, whatever the bytes (a fuzz test holds them to it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.base.errors import ParseError
from edge.base.schema import ID_PATTERN

TOPIC_BASE = "seatbox/v1"
_TOPIC_RE = re.compile(r"^seatbox/v1/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})/(.+)$")
_ID_RE = re.compile(ID_PATTERN)
# One resend asks for at most this many events; the seat answers a larger range in parts.
MAX_RESEND_SPAN = 1000
# A gap is asked for in at most this many requests per round (the first seqs first): one
# event with a huge seq must not make a consumer build millions of requests.
MAX_REQUESTS_PER_GAP = 10


class StreamError(ParseError):
    """A payload or command does not match the v1 wire format; the message names the field.

    `field` is the dotted path of the first bad field (`call.state`), "" for the whole payload.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SeatTopic:
    site: str
    seat: str
    kind: str  # `event`, `state`, `cmd/resend`, ...


def parse_topic(topic: str) -> SeatTopic | None:
    match = _TOPIC_RE.fullmatch(topic)
    return SeatTopic(match[1], match[2], match[3]) if match else None


def seat_topic(site: str, seat: str, kind: str) -> str:
    """The topic of one seat; ids are checked so `+ # / .` never reach a topic or an ACL."""
    for what, value in (("site", site), ("seat", seat)):
        if not _ID_RE.fullmatch(value):  # fullmatch: `$` would accept a final newline
            raise StreamError(f"{what} id {value!r}: expected 1-64 of A-Z a-z 0-9 _ -")
    return f"{TOPIC_BASE}/{site}/{seat}/{kind}"


@dataclass(frozen=True)
class StreamEvent:
    boot_id: str
    seq: int
    ts: str
    type: str
    data: dict[str, Any]


def _field(raw: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StreamError(f"{where} `{name}`: expected {kind.__name__}, got {value!r}", name)
    return value


def parse_event(payload: bytes) -> StreamEvent:
    """A seat's `event`: the envelope of docs/schemas/event.json, and for `outbox.loss` the
    parts a consumer reads (`total`, `ranges`)."""
    envelope = _validated(_Envelope, "event", payload)
    if envelope.type == "outbox.loss":
        _loss_data(envelope.data)
    return StreamEvent(
        boot_id=envelope.boot_id,
        seq=envelope.seq,
        ts=envelope.ts,
        type=envelope.type,
        data=envelope.data,
    )


def _loss_data(data: dict[str, Any]) -> None:
    """The parts of `outbox.loss` a consumer reads: `total`, `ranges[].{boot_id,from_seq,to_seq}`."""

    def count(value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
            shown = repr(value)[:40]
            raise StreamError(f"event `{where}`: expected an int 0..2^63-1, got {shown}", where)

    count(data.get("total"), "data.total")
    ranges = data.get("ranges", [])
    if not isinstance(ranges, list):
        raise StreamError(
            f"event `data.ranges`: expected a list, got {ranges!r:.40}", "data.ranges"
        )
    for i, item in enumerate(ranges):
        where = f"data.ranges.{i}"
        if not isinstance(item, dict):
            raise StreamError(f"event `{where}`: expected an object, got {item!r:.40}", where)
        count(item.get("from_seq"), f"{where}.from_seq")
        count(item.get("to_seq"), f"{where}.to_seq")
        if not isinstance(item.get("boot_id"), str):
            raise StreamError(f"event `{where}.boot_id`: expected a string", f"{where}.boot_id")


# --- payloads seats publish (docs/schemas/): state, info, availability, the event envelope ---

# Larger than anything a seat sends (bench/payload_sizes.py: info is about 2 kB, 15 kB at the
# schema's limits; the site broker refuses packets over 32 KiB); checked before parsing.
MAX_PAYLOAD_BYTES = 256 * 1024
# seq is a 64-bit counter in the seat's outbox: anything larger is not a seat's.
MAX_SEQ = 2**63 - 1


def _timestamp(value: str) -> str:
    datetime.fromisoformat(value)  # the pattern admits month 13; the schema's format does not
    return value


_SINCE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z$"
_WALL = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2})$"
)
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Since = Annotated[str, Field(pattern=_SINCE), AfterValidator(_timestamp)]
Wall = Annotated[str, Field(pattern=_WALL), AfterValidator(_timestamp)]
BootId = Annotated[str, Field(pattern=r"^[0-9]{1,12}-[0-9a-f]{8}$")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")]
UsbId = Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
Count = Annotated[int, Field(ge=0, le=MAX_SEQ)]  # counters are 64-bit on the seat
Amount = Annotated[float, Field(ge=0)]
CallState = Literal["idle", "ringing", "active", "held"]
ViolationType = Literal[
    "away.long", "away.too_long", "call.dead_air", "floor.loud", "hold.too_long", "shift.absent"
]


class _Payload(BaseModel):
    """Strict as the schemas: no extra keys, no `true` for a number, no `"1"` for an int, no
    NaN or infinity; keys the schema makes optional but not nullable are listed in
    `_not_null` (pydantic would take `null` for an absent-able field)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)
    _not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _no_null_for_optional(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls._not_null:
                if name in data and data[name] is None:
                    raise ValueError(f"`{name}` may be absent but not null")
        return data


_M = TypeVar("_M", bound=_Payload)


class CallPart(_Payload):
    state: CallState
    since: Since
    source: Literal["headset", "host", "cti"] | None
    direction: Literal["inbound", "outbound"] | None
    number: Count


class HookPart(_Payload):
    off_hook: bool
    since: Since


class MutePart(_Payload):
    muted: bool
    by: Literal["agent", "host", "cti", "headset", "hold_policy"] | None
    since: Since


class PresencePart(_Payload):
    state: Literal["unknown", "present", "away"]
    since: Since
    last_seen: Since | None


class HeadsetPart(_Payload):
    _not_null = ("product",)
    connected: bool
    since: Since
    product: str | None = None


class RadarPart(_Payload):
    ok: bool | None
    target: Literal["none", "moving", "still", "both"]
    since: Since


class AudioPart(_Payload):
    ok: bool | None
    since: Since


class ShiftPart(_Payload):
    phase: Literal["off_day", "before", "on", "lunch", "after"]
    since: Since


class Violation(_Payload):
    type: ViolationType
    since: Since


class AnswerToday(_Payload):
    answered: Count
    late: Count
    mean_answer_s: Amount | None


class AttendanceToday(_Payload):
    _not_null = ("arrival_seen",)
    arrived: Wall | None
    late_min: Amount
    absent: bool
    early_leave_min: Amount
    arrival_seen: Literal[False] | None = None


class AwayToday(_Payload):
    away_count: Count
    away_min: Amount


class HearingToday(_Payload):
    _not_null = ("dose_pct",)
    lex_8h_dba: float | None
    dose_pct: Amount | None = None


class Today(_Payload):
    _not_null = ("answer", "attendance", "away", "hearing")
    answer: AnswerToday | None = None
    attendance: AttendanceToday | None = None
    away: AwayToday | None = None
    hearing: HearingToday | None = None


class StoragePart(_Payload):
    outbox: Literal["ok", "disk_full", "disk_error", "off"]
    held: Count
    since: Since


class SeatState(_Payload):
    """The retained `state` (docs/schemas/state.json)."""

    _not_null = ("storage",)

    site: Id
    seat: Id
    ts: Wall
    call: CallPart
    hook: HookPart
    mute: MutePart
    presence: PresencePart
    headset: HeadsetPart
    radar: RadarPart
    audio: AudioPart
    shift: ShiftPart
    rx_cap_db: float | None
    violations: list[Violation]
    today: Today
    storage: StoragePart | None = None  # absent from seats older than issue 12


class InfoHeadset(_Payload):
    manufacturer: str
    product: str
    serial: str
    firmware: str
    vendor_id: UsbId
    product_id: UsbId
    usb_path: str
    telephony: bool


class InfoDevices(_Payload):
    radar: str | None
    audio: str | None
    host: str | None


class InfoCheck(_Payload):
    name: str
    status: Literal["OK", "WARN", "FAIL"]
    detail: str
    fix: str


class SeatInfo(_Payload):
    """The retained `info` (docs/schemas/info.json)."""

    _not_null = ("checks",)
    version: str
    boot_id: BootId
    site: Id
    seat: Id
    profile: str
    profile_digest: Digest
    config_digest: Digest
    headset: InfoHeadset | None
    devices: InfoDevices
    checks: list[InfoCheck] = []


class _Envelope(_Payload):
    """The event envelope (docs/schemas/event.json). `type` is any dotted name: a consumer
    shows types newer than itself rather than dropping them; `data` is checked where read."""

    boot_id: BootId
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ)]
    ts: Wall
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)*$", max_length=64)]
    data: dict[str, Any]


def _validated(model: type[_M], what: str, payload: bytes) -> _M:
    """One payload as `model`; StreamError names the first bad field and what was expected."""
    if not isinstance(payload, bytes | bytearray):
        raise StreamError(f"{what}: expected bytes, got {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise StreamError(f"{what}: {len(payload)} bytes, expected at most {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        # Keys come from the payload: escape control characters (no terminal escapes reach a
        # log or the floor view) and keep it short.
        where = ".".join(str(part) for part in first["loc"])
        where = where.encode("unicode_escape").decode("ascii")
        where = where if len(where) <= 60 else where[:57] + "..."
        message = _plain(first["msg"])
        if first["type"] == "json_invalid":
            raise StreamError(f"{what}: not JSON ({message})") from None
        if first["type"] == "model_type" and not where:
            raise StreamError(f"{what}: expected a JSON object", "") from None
        shown = repr(first.get("input"))
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        got = "" if first["type"] == "missing" else f", got {shown}"
        raise StreamError(f"{what} `{where or '.'}`: {message}{got}", where) from None


_PHRASES = (
    ("Value error, ", ""),
    ("Input should be ", "expected "),
    ("String should match pattern ", "expected a string matching "),
    ("String should have at most", "expected at most"),
    ("Field required", "missing"),
    ("Extra inputs are not permitted", "not in the schema"),
)


def _plain(message: str) -> str:
    for theirs, ours in _PHRASES:
        message = message.replace(theirs, ours)
    return message


def parse_state(payload: bytes) -> SeatState:
    """A seat's retained `state`, checked against docs/schemas/state.json."""
    return _validated(SeatState, "state", payload)


def parse_info(payload: bytes) -> SeatInfo:
    """A seat's retained `info`, checked against docs/schemas/info.json."""
    return _validated(SeatInfo, "info", payload)


def parse_availability(payload: bytes) -> bool:
    """`online` -> True, `offline` -> False (plain bytes, not JSON)."""
    if payload == b"online":
        return True
    if payload == b"offline":
        return False
    shown = repr(bytes(payload[:20])) + ("..." if len(payload) > 20 else "")
    raise StreamError(f"availability: expected b'online' or b'offline', got {shown}")


# --- resend command ------------------------------------------------------------------------


@dataclass(frozen=True)
class ResendRequest:
    """`cmd/resend` payload `{"id", "boot_id", "from_seq", "to_seq"}` (inclusive range)."""

    site: str
    seat: str
    id: str
    boot_id: str
    from_seq: int
    to_seq: int

    @property
    def topic(self) -> str:
        return seat_topic(self.site, self.seat, "cmd/resend")

    def payload(self) -> bytes:
        body = {
            "id": self.id,
            "boot_id": self.boot_id,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
        }
        return json.dumps(body, separators=(",", ":")).encode()


# --- the tracker ---------------------------------------------------------------------------


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Accepted:
    verdict: Verdict
    event: StreamEvent
    gap_opened: tuple[int, int] | None = None  # missing seqs this event revealed (inclusive)


@dataclass
class _Gap:
    first: int
    last: int
    detected: float
    attempts: int = 0
    last_request: float | None = None


@dataclass
class _Stream:
    max_seen: int
    gaps: list[_Gap] = field(default_factory=list)
    reported_lost: list[tuple[int, int]] = field(default_factory=list)

    def missing(self, seq: int) -> _Gap | None:
        for gap in self.gaps:
            if gap.first <= seq <= gap.last:
                return gap
        return None

    def fill(self, seq: int) -> None:
        self.cut(seq, seq)

    def cut(self, first: int, last: int) -> None:
        """Remove `first..last` from the gaps, splitting a gap that spans it."""
        kept: list[_Gap] = []
        for gap in self.gaps:
            for a, b in (
                (gap.first, min(gap.last, first - 1)),
                (max(gap.first, last + 1), gap.last),
            ):
                if a <= b:
                    kept.append(_Gap(a, b, gap.detected, gap.attempts, gap.last_request))
        self.gaps = kept


@dataclass(frozen=True)
class GapInfo:
    site: str
    seat: str
    boot_id: str
    first: int
    last: int
    detected: float
    attempts: int


class StreamTracker:
    """Per `(site, seat, boot_id)`: which seqs arrived, which are missing, what to ask again.

    A stream first seen mid-way starts at its first seq (history before the subscriber joined
    is not a gap) unless the seat is already known from an earlier boot or `from_zero` is set.
    Gaps wait `reorder_s` (a broker may reorder across reconnects) before a resend is asked;
    unanswered requests are repeated every `retry_s`, at most `max_attempts` times, then the
    gap is given up and reported by `given_up()`.
    """

    def __init__(
        self,
        *,
        reorder_s: float = 2.0,
        retry_s: float = 10.0,
        max_attempts: int = 3,
        from_zero: bool = False,
    ) -> None:
        self.reorder_s = reorder_s
        self.retry_s = retry_s
        self.max_attempts = max_attempts
        self.from_zero = from_zero
        self._streams: dict[tuple[str, str, str], _Stream] = {}
        self._seats: set[tuple[str, str]] = set()
        self._given_up: list[GapInfo] = []
        self._request_counter = 0
        self.duplicates = 0

    def accept(self, site: str, seat: str, event: StreamEvent, now: float) -> Accepted:
        key = (site, seat, event.boot_id)
        stream = self._streams.get(key)
        gap_opened: tuple[int, int] | None = None
        if stream is None:
            known = self.from_zero or (site, seat) in self._seats
            start = 0 if known else event.seq
            stream = _Stream(max_seen=start - 1)
            self._streams[key] = stream
            self._seats.add((site, seat))
        seq = event.seq
        if seq > stream.max_seen:
            if seq > stream.max_seen + 1:
                gap_opened = (stream.max_seen + 1, seq - 1)
                stream.gaps.append(_Gap(gap_opened[0], gap_opened[1], now))
            stream.max_seen = seq
        elif stream.missing(seq) is not None:
            stream.fill(seq)
        elif any(a <= seq <= b for a, b in stream.reported_lost):
            stream.reported_lost = _without(stream.reported_lost, seq)
        else:
            self.duplicates += 1
            return Accepted(Verdict.DUPLICATE, event)
        if event.type == "outbox.loss":
            self._apply_loss(site, seat, event)
        return Accepted(Verdict.NEW, event, gap_opened)

    def _apply_loss(self, site: str, seat: str, event: StreamEvent) -> None:
        """The seat says these were dropped from its outbox: stop asking for them."""
        for item in event.data.get("ranges", []):
            if not isinstance(item, dict):
                continue
            boot, first, last = item.get("boot_id"), item.get("from_seq"), item.get("to_seq")
            if not (isinstance(boot, str) and isinstance(first, int) and isinstance(last, int)):
                continue
            stream = self._streams.get((site, seat, boot))
            if stream is None:
                continue
            for gap in list(stream.gaps):
                a, b = max(gap.first, first), min(gap.last, last)
                if a > b:
                    continue
                stream.reported_lost.append((a, b))
                stream.cut(a, b)

    def gaps(self) -> list[GapInfo]:
        return [
            GapInfo(site, seat, boot, g.first, g.last, g.detected, g.attempts)
            for (site, seat, boot), stream in sorted(self._streams.items())
            for g in stream.gaps
        ]

    def due_resends(self, now: float) -> list[ResendRequest]:
        """Requests to send now (on each request's `topic`), and gaps given up on."""
        requests: list[ResendRequest] = []
        for (site, seat, boot), stream in sorted(self._streams.items()):
            for gap in list(stream.gaps):
                if now - gap.detected < self.reorder_s:
                    continue
                if gap.last_request is not None and now - gap.last_request < self.retry_s:
                    continue
                if gap.attempts >= self.max_attempts:
                    stream.gaps.remove(gap)
                    self._given_up.append(
                        GapInfo(site, seat, boot, gap.first, gap.last, gap.detected, gap.attempts)
                    )
                    continue
                gap.attempts += 1
                gap.last_request = now
                first = gap.first
                for _ in range(MAX_REQUESTS_PER_GAP):
                    if first > gap.last:
                        break
                    last = min(gap.last, first + MAX_RESEND_SPAN - 1)
                    self._request_counter += 1
                    requests.append(
                        ResendRequest(
                            site, seat, f"resend-{self._request_counter}", boot, first, last
                        )
                    )
                    first = last + 1
        return requests

    def given_up(self) -> list[GapInfo]:
        """Gaps no resend filled: events lost for good (or dropped without a loss report)."""
        return list(self._given_up)


def _without(ranges: list[tuple[int, int]], seq: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if a <= seq <= b:
            out.extend(r for r in ((a, seq - 1), (seq + 1, b)) if r[0] <= r[1])
        else:
            out.append((a, b))
    return out
