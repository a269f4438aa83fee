"""What seats publish, as checked models: every payload against the v1 schemas (docs/schemas/).

`parse_state`, `parse_info`, `parse_event` and `parse_availability` raise only `StreamError`,
whatever the bytes (a fuzz test holds them to it); the message names the first bad field.
Pure: no I/O. The floor and reports feed them what they receive; `edge.api.stream` then
de-duplicates the events and finds the gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.base.errors import ParseError
from edge.base.schema import ID_PATTERN

# Larger than anything a seat sends (bench/payload_sizes.py: info is about 2 kB, 15 kB at the
# schema's limits; the site broker refuses packets over 32 KiB); checked before parsing.
MAX_PAYLOAD_BYTES = 256 * 1024
# seq is a 64-bit counter in the seat's outbox: anything larger is not a seat's.
MAX_SEQ = 2**63 - 1


class StreamError(ParseError):
    """A payload or command does not match the v1 wire format; the message names the field.

    `field` is the dotted path of the first bad field (`call.state`), "" for the whole payload.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StreamEvent:
    boot_id: str
    seq: int
    ts: str
    type: str
    data: dict[str, Any]


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


_TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
TimeOfDay = Annotated[str, Field(pattern=_TIME_OF_DAY)]
Seconds = Annotated[float, Field(ge=0, le=366 * 86400)]


class AnswerThresholds(_Payload):
    ring_limit: Annotated[int, Field(ge=1, le=1000)]
    ring_period_s: Seconds


class HoldThresholds(_Payload):
    warn_after_s: Seconds
    violation_after_s: Seconds


class AwayThresholds(_Payload):
    long_after_s: Seconds
    too_long_after_s: Seconds


class DeadAirThresholds(_Payload):
    notice_after_s: Seconds
    violation_after_s: Seconds


class AttendanceThresholds(_Payload):
    start: TimeOfDay
    end: TimeOfDay
    lunch_start: TimeOfDay
    lunch_end: TimeOfDay
    ready_before_s: Seconds
    absent_after_s: Seconds
    workdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(max_length=7)]


class InfoThresholds(_Payload):
    """The numbers of the seat's profile a floor colours and reports by (section names and
    keys as in the profile; durations in seconds)."""

    answer: AnswerThresholds
    hold_time: HoldThresholds
    away: AwayThresholds
    dead_air: DeadAirThresholds
    attendance: AttendanceThresholds


class SeatInfo(_Payload):
    """The retained `info` (docs/schemas/info.json)."""

    _not_null = ("checks", "thresholds")
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
    # Absent from seats older than issue 15: a floor then uses the documented defaults.
    thresholds: InfoThresholds | None = None


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
