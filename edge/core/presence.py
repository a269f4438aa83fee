"""Presence fusion: radar targets, headset use and voice become `present` / `away`.

Present at once on any evidence; away only after the profile's hysteresis without evidence.
A radar target weaker than the profile's energy floor (a neighbour's faint target) is no evidence.
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
from edge.core.clock import Instant
from edge.core.effects import Emit
from edge.core.inputs import Input
from edge.core.norm_settings import PresenceSettings
from edge.core.state import Facts, PresencePart

# LD2410 target energies are 0..100 (presence-ld2410.md §4).


def radar_sees(facts: Facts, settings: PresenceSettings) -> bool:
    """A working radar reports a target strong enough to be the agent at this seat.

    The target-state byte says what the module detected; each part counts only at or above
    its energy floor, so `both` counts when either part does.
    """
    radar = facts.radar
    if facts.radar_link.ok is False:
        return False
    moving_ok = radar.moving_energy >= settings.min_moving_energy
    still_ok = radar.still_energy >= settings.min_still_energy
    moving = radar.target in ("moving", "both") and moving_ok
    still = radar.target in ("still", "both") and still_ok
    return moving or still


def continuous_evidence(facts: Facts, settings: PresenceSettings) -> bool:
    """Someone is there for as long as this holds: radar target, a call, the hook, a voice."""
    in_use = facts.call.in_call or facts.hook.off_hook or facts.tx.speaking
    return in_use or radar_sees(facts, settings)


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
    seeing = continuous_evidence(facts, settings)
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
