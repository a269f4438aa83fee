"""The seat's state: facts about headset, call, mute, presence and audio, each with its `since`.

Immutable values; only `edge.core.seat.step` makes a new one. `snapshot()` is the retained `state`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.audio.events import AudioLevels
from drivers.hid.events import HeadsetInfo
from drivers.host.events import HostLeds
from dsp.types import SILENCE_DB, ChannelLevels
from edge.core.clock import Instant
from edge.core.profile import Profile

CallState = Literal["idle", "ringing", "active", "held"]
PresenceState = Literal["unknown", "present", "away"]


@dataclass(frozen=True, slots=True)
class HeadsetPart:
    connected: bool
    since: Instant
    info: HeadsetInfo | None = None


@dataclass(frozen=True, slots=True)
class HookPart:
    off_hook: bool
    since: Instant


@dataclass(frozen=True, slots=True)
class CallPart:
    state: CallState
    since: Instant
    source: str = ""  # headset | host | cti
    direction: str = ""  # inbound | outbound
    call_id: str = ""
    number: int = 0  # calls of this boot, 1-based
    ring_start: Instant | None = None
    answered_at: Instant | None = None
    held_s: float = 0.0  # completed hold time of this call
    talk_s: float = 0.0  # agent active speech in this call
    listen_s: float = 0.0  # customer active speech in this call
    overtalk_s: float = 0.0  # both speaking

    @property
    def in_call(self) -> bool:
        return self.state in ("active", "held")


@dataclass(frozen=True, slots=True)
class MutePart:
    agent: bool  # the agent's own choice (headset button, softphone)
    since: Instant
    forced_by: frozenset[str] = frozenset()  # policies muting the mic (hold_policy)
    by: str = ""  # who made the last change: agent | host | hold_policy

    @property
    def muted(self) -> bool:
        return self.agent or bool(self.forced_by)


@dataclass(frozen=True, slots=True)
class PresencePart:
    state: PresenceState
    since: Instant
    last_seen: Instant | None = None  # when the evidence last ended (None while seeing)
    seeing: bool = False  # continuous evidence (radar target, call, voice) right now


@dataclass(frozen=True, slots=True)
class DevicePart:
    """Health of a device link (radar, audio): None until it first reports."""

    ok: bool | None
    since: Instant
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BridgePart:
    """The PC side of a bridged seat (`drivers.host.events.BridgeStatus`); `since`: when
    `pc_connected` last changed."""

    pc_connected: bool
    since: Instant
    detail: str = ""
    led_writes: str = "waiting"  # waiting | seen | missing
    bad_report: str = ""


@dataclass(frozen=True, slots=True)
class RadarPart:
    target: str
    since: Instant  # when `target` last changed
    moving_energy: int = 0  # of the latest report (0..100), for presence's weak-target floor
    still_energy: int = 0


@dataclass(frozen=True, slots=True)
class SpeechPart:
    """Voice activity on one channel and since when it has been so."""

    speaking: bool
    since: Instant


@dataclass(frozen=True, slots=True)
class ShiftPart:
    phase: str  # off_day | before | on | lunch | after (edge.core.shift.Phase)
    since: Instant


@dataclass(frozen=True, slots=True)
class Facts:
    headset: HeadsetPart
    hook: HookPart
    call: CallPart
    mute: MutePart
    presence: PresencePart
    radar: RadarPart
    radar_link: DevicePart
    audio_link: DevicePart
    tx: SpeechPart
    rx: SpeechPart
    shift: ShiftPart
    host: HostLeds = HostLeds()
    bridge: BridgePart | None = None  # None: not a bridged seat (no status yet)
    last_audio: AudioLevels | None = None
    rx_caps: Mapping[str, float] = field(default_factory=dict)  # policy -> max gain dB
    mixer_ok: bool | None = None  # enforcement on the headset's mixer; None until it reports
    violations: Mapping[str, Instant] = field(default_factory=dict)  # type -> since

    @property
    def rx_cap(self) -> float | None:
        return min(self.rx_caps.values()) if self.rx_caps else None


@dataclass(frozen=True, slots=True)
class LevelSums:
    """Running sums of one channel's levels for the periodic `levels` message."""

    energy: float = 0.0  # sum of 10^(L/10) * active seconds
    active_s: float = 0.0
    period_s: float = 0.0
    peak_dbfs: float = SILENCE_DB

    def add(self, levels: ChannelLevels) -> LevelSums:
        active = levels.active_s if levels.speech else 0.0
        return LevelSums(
            energy=self.energy
            + (10 ** (levels.active_level_dbov / 10) * active if active else 0.0),
            active_s=self.active_s + active,
            period_s=self.period_s + levels.period_s,
            peak_dbfs=max(self.peak_dbfs, levels.peak_dbfs),
        )

    def report(self) -> dict[str, float | None]:
        level = 10 * math.log10(self.energy / self.active_s) if self.active_s > 0 else None
        return {
            "active_level_dbov": round(level, 1) if level is not None else None,
            "activity_pct": round(100 * self.active_s / self.period_s, 1) if self.period_s else 0.0,
            "peak_dbfs": round(self.peak_dbfs, 1),
        }


@dataclass(frozen=True, slots=True)
class LevelsWindow:
    tx: LevelSums = LevelSums()
    rx: LevelSums = LevelSums()


@dataclass(frozen=True)
class SeatState:
    """Everything `step` needs: the facts, each norm's own state, the event counter."""

    profile: Profile
    facts: Facts
    norms: Mapping[str, Any]
    seq: int = 0  # next event sequence number of this boot
    started: Instant | None = None
    levels: LevelsWindow = LevelsWindow()


def initial_facts(now: Instant, phase: str) -> Facts:
    return Facts(
        headset=HeadsetPart(connected=False, since=now),
        hook=HookPart(off_hook=False, since=now),
        call=CallPart(state="idle", since=now),
        mute=MutePart(agent=False, since=now),
        presence=PresencePart(state="unknown", since=now),
        radar=RadarPart(target="none", since=now),
        radar_link=DevicePart(ok=None, since=now),
        audio_link=DevicePart(ok=None, since=now),
        tx=SpeechPart(speaking=False, since=now),
        rx=SpeechPart(speaking=False, since=now),
        shift=ShiftPart(phase=phase, since=now),
    )
