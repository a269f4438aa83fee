"""Presence fusion: radar targets, headset use and voice become `present` / `away`.

Present at once on any evidence; away only after the profile's hysteresis without evidence.
"""

from __future__ import annotations

from dataclasses import replace

from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from edge.clock import Instant
from edge.config import Duration, Section
from edge.effects import Emit
from edge.inputs import Input
from edge.state import Facts, PresencePart


class PresenceSettings(Section):
    away_after: Duration  # no evidence for this long (radar working) → away
    away_after_without_radar: Duration  # the same when no radar reports


def continuous_evidence(facts: Facts) -> bool:
    """Someone is there for as long as this holds: radar target, a call, the hook, a voice."""
    radar_sees = facts.radar_link.ok is not False and facts.radar.target != "none"
    return radar_sees or facts.call.in_call or facts.hook.off_hook or facts.tx.speaking


def momentary_evidence(inp: Input) -> bool:
    """A button press: someone was there at this instant."""
    return isinstance(
        inp, HookSwitch | PhoneMute | Flash | Volume | Redial | Drop | ProgrammableButton
    )


def hysteresis(facts: Facts, settings: PresenceSettings) -> float:
    return settings.away_after if facts.radar_link.ok else settings.away_after_without_radar


def update(
    facts: Facts, inp: Input, now: Instant, settings: PresenceSettings
) -> tuple[Facts, list[Emit]]:
    part = facts.presence
    seeing = continuous_evidence(facts)
    if seeing or momentary_evidence(inp):
        last_seen = None if seeing else now
        if part.state == "present":
            new = replace(part, seeing=seeing, last_seen=last_seen or part.last_seen)
            return replace(facts, presence=new), []
        away_s = now.mono - part.since.mono if part.state == "away" else None
        data = {"away_s": round(away_s, 3)} if away_s is not None else {}
        new = PresencePart(state="present", since=now, last_seen=last_seen, seeing=seeing)
        return replace(facts, presence=new), [Emit("presence.present", data)]
    if part.seeing:
        # The evidence ended at this instant: the agent was last seen now.
        part = replace(part, seeing=False, last_seen=now)
        facts = replace(facts, presence=part)
    if part.state == "away":
        return facts, []
    seen = part.last_seen or part.since
    if now.mono - seen.mono >= hysteresis(facts, settings) - 1e-9:
        # Away since the agent was last seen, not since the hysteresis ran out.
        new = PresencePart(state="away", since=seen, last_seen=seen)
        return replace(facts, presence=new), [Emit("presence.away", {"last_seen": seen.iso()})]
    return facts, []


def deadline(facts: Facts, settings: PresenceSettings) -> float | None:
    part = facts.presence
    if part.state == "away" or part.seeing:
        return None
    seen = part.last_seen or part.since
    return seen.mono + hysteresis(facts, settings)
