"""Every input the seat core accepts, and their JSON encoding for record/replay tapes.

Device inputs are owned by the drivers that produce them; the rest (CTI, ticks) live here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from drivers.audio.events import AudioLevels, AudioStatus, MixerStatus
from drivers.hid.events import (
    Drop,
    Flash,
    HeadsetInfo,
    HeadsetPlugged,
    HeadsetUnplugged,
    HookSwitch,
    LedState,
    MuteLocked,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from drivers.host.events import BridgeStatus, HostLeds
from drivers.radar.events import RadarReport, RadarStatus
from dsp.types import ChannelLevels
from edge.base.errors import ParseError

CallAction = Literal["ring", "answer", "hold", "resume", "end"]
CALL_ACTIONS: tuple[str, ...] = ("ring", "answer", "hold", "resume", "end")


@dataclass(frozen=True, slots=True)
class CtiCommand:
    """A call-state command from the contact-center platform (MQTT `cmd/call`)."""

    action: CallAction
    request_id: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Identify:
    """`cmd/identify`: make the seat findable (LEDs blink, an event on the floor view)."""

    request_id: str = ""


@dataclass(frozen=True, slots=True)
class RestoreDose:
    """The day's noise dose saved before a restart (`edge/shell/dose_store.py`), given back once.

    An input rather than an argument of `new_seat`: a tape records it like any other input, so
    replay stays exact, and the core decides with its own `now` whether it belongs to today.
    Fields as `dsp.exposure.NoiseDose.to_dict()`: the local day (ISO date), the A-weighted
    exposure at the ear in Pa^2 s, and the seconds of receive audio it was measured over.
    """

    day: str
    exposure_pa2s: float
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreDay:
    """The day's tallies of the day-scoped norms saved before a restart (`edge/shell/day_store.py`).

    Given back once at start, like `RestoreDose`: the arrival, lateness, absence and early
    leave of `attendance`, the answer counts of `answer`, the away count and minutes of `away`,
    as each norm's `DayTally.save` wrote them (checked by its `DayTally.fields`). A norm takes
    its part only when `day` is the day it is counting.
    """

    day: str
    tallies: dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: the shell sends one at each deadline the core asked for, and once a second."""


Input = (
    HookSwitch
    | PhoneMute
    | Flash
    | Redial
    | Drop
    | ProgrammableButton
    | MuteLocked
    | Volume
    | HeadsetPlugged
    | HeadsetUnplugged
    | HostLeds
    | BridgeStatus
    | CtiCommand
    | Identify
    | RadarReport
    | RadarStatus
    | AudioLevels
    | AudioStatus
    | MixerStatus
    | RestoreDose
    | RestoreDay
    | Tick
)

INPUT_TYPES: tuple[type, ...] = (
    HookSwitch,
    PhoneMute,
    Flash,
    Redial,
    Drop,
    ProgrammableButton,
    MuteLocked,
    Volume,
    HeadsetPlugged,
    HeadsetUnplugged,
    HostLeds,
    BridgeStatus,
    CtiCommand,
    Identify,
    RadarReport,
    RadarStatus,
    AudioLevels,
    AudioStatus,
    MixerStatus,
    RestoreDose,
    RestoreDay,
    Tick,
)

# Dataclasses that may appear nested inside inputs or effects on a tape.
_NESTED: tuple[type, ...] = (HeadsetInfo, ChannelLevels, LedState)

TAG = "@"  # the key naming a dataclass on a tape ("type" is a field name of events)

_REGISTRY: dict[str, type] = {cls.__name__: cls for cls in (*INPUT_TYPES, *_NESTED)}


def register(cls: type) -> type:
    """Make a dataclass known to the tape codec (effects register themselves too)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def encode(obj: Any) -> Any:
    """A dataclass (possibly nested) as JSON-ready data: `{"@": name, field: value...}`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {TAG: type(obj).__name__}
        for field in dataclasses.fields(obj):
            out[field.name] = encode(getattr(obj, field.name))
        return out
    if isinstance(obj, tuple | list):
        return [encode(item) for item in obj]
    if isinstance(obj, dict):
        return {key: encode(value) for key, value in obj.items()}
    return obj


class DecodeError(ParseError):
    """A tape line is not a known input or effect."""


def decode(data: Any) -> Any:
    if isinstance(data, dict) and TAG in data:
        cls = _REGISTRY.get(data[TAG])
        if cls is None:
            raise DecodeError(f"unknown input or effect {data[TAG]!r}")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - names - {TAG}
        if unknown:
            raise DecodeError(f"{data[TAG]}: unknown fields {sorted(unknown)}")
        kwargs = {key: decode(value) for key, value in data.items() if key != TAG}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise DecodeError(f"{data[TAG]}: {exc}") from None
    if isinstance(data, list):
        return tuple(decode(item) for item in data)
    if isinstance(data, dict):
        return {key: decode(value) for key, value in data.items()}
    return data
