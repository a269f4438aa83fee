"""What the seat core asks the shell to do: device writes, events, replies.

Norms return requests (Emit, Flag, ForceMute, CapRx); the core turns them into these effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.hid.events import LedState
from edge.core.inputs import register

JsonDict = dict[str, Any]


# --- effects the shell carries out ---------------------------------------------------------


@register
@dataclass(frozen=True, slots=True)
class SetLeds:
    """Write the headset's whole LED state (the host owns it; every request gets an answer)."""

    leds: LedState


@register
@dataclass(frozen=True, slots=True)
class SetMicMute:
    """Gate the microphone in the box (hold-mute enforcement, agent mute)."""

    muted: bool


@register
@dataclass(frozen=True, slots=True)
class SetRxCap:
    """Cap the receive gain (hearing protection); None lifts the cap."""

    max_gain_db: float | None


@register
@dataclass(frozen=True, slots=True)
class Event:
    """An event to publish on `event`: consecutive `seq` per boot, `ts` the seat's wall clock."""

    seq: int
    ts: str
    type: str
    data: JsonDict = field(default_factory=dict)


@register
@dataclass(frozen=True, slots=True)
class Levels:
    """Periodic audio levels during a call (the `levels` topic, QoS 0)."""

    ts: str
    data: JsonDict


@register
@dataclass(frozen=True, slots=True)
class ScreenLock:
    """Ask the seat's PC to lock its screen (a site hook command; off by default)."""

    reason: str


@register
@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a command on `cmd/<name>/reply`, carrying the request's id."""

    name: str
    request_id: str
    ok: bool
    error: str = ""
    data: JsonDict = field(default_factory=dict)


@register
@dataclass(frozen=True, slots=True)
class IdentifyHeadset:
    """Make the headset findable (blink) for `seconds`."""

    seconds: float


Effect = SetLeds | SetMicMute | SetRxCap | Event | Levels | ScreenLock | Reply | IdentifyHeadset


# --- requests a norm returns to the core ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emit:
    """Publish an event (the core numbers it)."""

    type: str
    data: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Flag:
    """Raise or clear an active violation shown in `state.violations` until cleared."""

    type: str
    on: bool


@dataclass(frozen=True, slots=True)
class ForceMute:
    """A policy (e.g. `hold_policy`) forces the microphone muted, or releases it."""

    by: str
    on: bool


@dataclass(frozen=True, slots=True)
class CapRx:
    """A policy caps the receive gain at `max_gain_db` (None: no cap from this policy)."""

    by: str
    max_gain_db: float | None


Request = Emit | Flag | ForceMute | CapRx | ScreenLock
