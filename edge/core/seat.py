"""The seat core: `step(state, input, now) -> (state, effects)`, pure and deterministic.

Inputs change the facts (call, hook, mute, presence, audio); norms see facts before and
after and return requests; the core derives device writes and numbered events from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from drivers.audio.events import AudioLevels, AudioStatus, MixerStatus
from drivers.hid.events import (
    Drop,
    Flash,
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
from edge.core import presence
from edge.core.clock import Instant
from edge.core.effects import (
    CapRx,
    Effect,
    Emit,
    Event,
    Flag,
    ForceMute,
    IdentifyHeadset,
    Levels,
    Reply,
    Request,
    ScreenLock,
    SetLeds,
    SetMicMute,
    SetRxCap,
)
from edge.core.inputs import CtiCommand, Identify, Input, RestoreDay, RestoreDose, Tick
from edge.core.norms import NORMS
from edge.core.norms.base import Ctx, Norm, earliest
from edge.core.profile import Profile
from edge.core.shift import next_boundary, phase_at
from edge.core.state import (
    BridgePart,
    CallPart,
    DevicePart,
    Facts,
    HeadsetPart,
    HookPart,
    LevelsWindow,
    RadarPart,
    SeatState,
    ShiftPart,
    SpeechPart,
    initial_facts,
)

IDENTIFY_SECONDS = 10.0


def new_seat(profile: Profile, now: Instant) -> SeatState:
    phase = phase_at(profile["attendance"], now.wall)
    facts = initial_facts(now, phase)
    norms = {norm.name: norm.initial(now) for norm in NORMS}
    return SeatState(profile=profile, facts=facts, norms=norms, seq=0, started=now)


# --- call transitions ---------------------------------------------------------------------


class _Calls:
    """Call-state transitions shared by the headset, the call host and CTI commands."""

    @staticmethod
    def ring(
        f: Facts, now: Instant, source: str, call_id: str = ""
    ) -> tuple[Facts, list[Emit], str]:
        if f.call.state != "idle":
            return f, [], f"the seat is already in a call (call is {f.call.state})"
        call = CallPart(
            state="ringing",
            since=now,
            source=source,
            direction="inbound",
            call_id=call_id,
            number=f.call.number + 1,
            ring_start=now,
        )
        data = {"source": source, "call": call.number, **({"call_id": call_id} if call_id else {})}
        return replace(f, call=call), [Emit("call.ringing", data)], ""

    @staticmethod
    def answer(f: Facts, now: Instant, source: str, dial: bool) -> tuple[Facts, list[Emit], str]:
        call = f.call
        if call.state == "ringing" and call.ring_start is not None:
            answer_s = round(now.mono - call.ring_start.mono, 3)
            new = replace(call, state="active", since=now, answered_at=now)
            data = {"source": source, "call": call.number, "answer_s": answer_s}
            return replace(f, call=new), [Emit("call.answered", data)], ""
        if call.state == "idle" and dial:
            new = CallPart(
                state="active",
                since=now,
                source=source,
                direction="outbound",
                number=call.number + 1,
                answered_at=now,
            )
            data = {"source": source, "call": new.number, "direction": "outbound"}
            return replace(f, call=new), [Emit("call.started", data)], ""
        if call.in_call:
            return f, [], ""  # already answered: the same news from another source
        return f, [], "no call is ringing (call is idle)"

    @staticmethod
    def hold(f: Facts, now: Instant, source: str) -> tuple[Facts, list[Emit], str]:
        if f.call.state == "held":
            return f, [], ""
        if f.call.state != "active":
            return f, [], f"no active call to hold (call is {f.call.state})"
        new = replace(f.call, state="held", since=now)
        return replace(f, call=new), [Emit("call.hold", {"source": source, "call": new.number})], ""

    @staticmethod
    def resume(f: Facts, now: Instant, source: str) -> tuple[Facts, list[Emit], str]:
        if f.call.state == "active":
            return f, [], ""
        if f.call.state != "held":
            return f, [], f"no held call to resume (call is {f.call.state})"
        hold_s = now.mono - f.call.since.mono
        new = replace(f.call, state="active", since=now, held_s=f.call.held_s + hold_s)
        data = {"source": source, "call": new.number, "hold_s": round(hold_s, 3)}
        return replace(f, call=new), [Emit("call.resumed", data)], ""

    @staticmethod
    def end(f: Facts, now: Instant, source: str) -> tuple[Facts, list[Emit], str]:
        call = f.call
        if call.state == "idle":
            return f, [], "no call to end (call is idle)"
        data: dict[str, Any] = {"source": source, "call": call.number}
        if call.state == "ringing":
            data["reason"] = "missed"
            data["ring_s"] = round(now.mono - call.since.mono, 3)
        else:
            held = call.held_s + (now.mono - call.since.mono if call.state == "held" else 0.0)
            start = call.answered_at or call.since
            data.update(
                reason="hangup",
                direction=call.direction,
                duration_s=round(now.mono - start.mono, 3),
                hold_s=round(held, 3),
                talk_s=round(call.talk_s, 3),
                listen_s=round(call.listen_s, 3),
                overtalk_s=round(call.overtalk_s, 3),
            )
        idle = CallPart(state="idle", since=now, number=call.number)
        # Mute exists only off-hook: a new call starts unmuted.
        mute = f.mute
        if mute.agent:
            mute = replace(mute, agent=False, by=source if source != "headset" else "agent")
        return replace(f, call=idle, mute=mute), [Emit("call.ended", data)], ""


CTI_VERBS = {
    "ring": lambda f, now, cmd: _Calls.ring(f, now, "cti", cmd.call_id),
    "answer": lambda f, now, cmd: _Calls.answer(f, now, "cti", dial=False),
    "hold": lambda f, now, cmd: _Calls.hold(f, now, "cti"),
    "resume": lambda f, now, cmd: _Calls.resume(f, now, "cti"),
    "end": lambda f, now, cmd: _Calls.end(f, now, "cti"),
}


# --- inputs to facts ------------------------------------------------------------------------


def _set_agent_mute(f: Facts, muted: bool, by: str, now: Instant) -> Facts:
    if f.mute.agent == muted:
        return f
    return replace(f, mute=replace(f.mute, agent=muted, by=by))


def _host_owns_calls(f: Facts) -> bool:
    """On a bridged seat whose PC is connected and whose softphone drives the headset (it has
    written LEDs on this connection) the softphone's LEDs are the call state: the headset's
    hook, flash and drop go to the PC (the bridge relays them) and change the call when the
    softphone answers with its LEDs. Otherwise the headset acts on its own, as unbridged."""
    return f.bridge is not None and f.bridge.pc_connected and f.bridge.led_writes == "seen"


def _host_leds(f: Facts, leds: HostLeds, now: Instant) -> tuple[Facts, list[Emit]]:
    old = f.host
    f = replace(f, host=leds)
    if f.bridge is not None and leds.off_hook != f.hook.off_hook:
        # The headset is told the softphone's hook: its next hook press toggles from there.
        f = replace(f, hook=HookPart(off_hook=leds.off_hook, since=now))
    out: list[Emit] = []
    Transition = Callable[[Facts], tuple[Facts, list[Emit], str]]
    steps: list[Transition] = []
    if leds.ring and not old.ring:
        steps.append(lambda g: _Calls.ring(g, now, "host"))
    if leds.off_hook and not old.off_hook:
        steps.append(lambda g: _Calls.answer(g, now, "host", dial=True))
    if leds.hold and not old.hold:
        steps.append(lambda g: _Calls.hold(g, now, "host"))
    if old.hold and not leds.hold and leds.off_hook:
        steps.append(lambda g: _Calls.resume(g, now, "host"))
    if old.off_hook and not leds.off_hook:
        steps.append(lambda g: _Calls.end(g, now, "host"))
    if old.ring and not leds.ring and not leds.off_hook and f.call.state == "ringing":
        steps.append(lambda g: _Calls.end(g, now, "host"))
    for transition in steps:
        f, emits, _ = transition(f)
        out += emits
    if leds.mute != old.mute and f.call.in_call:
        f = _set_agent_mute(f, leds.mute, "host", now)
    return f, out


def _bridge_status(f: Facts, status: BridgeStatus, now: Instant) -> tuple[Facts, list[Emit]]:
    old = f.bridge
    emits: list[Emit] = []
    changed = old is None or old.pc_connected != status.pc_connected
    if changed:
        kind = "bridge.pc_connected" if status.pc_connected else "bridge.pc_disconnected"
        emits.append(Emit(kind, {"detail": status.detail}))
    if status.led_writes == "missing" and (old is None or old.led_writes != "missing"):
        emits.append(Emit("bridge.no_led_writes", {"after_s": status.led_wait_s}))
    if status.bad_report and (old is None or old.bad_report != status.bad_report):
        emits.append(Emit("bridge.bad_report", {"detail": status.bad_report}))
    part = BridgePart(
        pc_connected=status.pc_connected,
        since=now if changed or old is None else old.since,
        detail=status.detail,
        led_writes=status.led_writes,
        bad_report=status.bad_report,
    )
    return replace(f, bridge=part), emits


def _speech(part: SpeechPart, speaking: bool, now: Instant) -> SpeechPart:
    return part if part.speaking == speaking else SpeechPart(speaking=speaking, since=now)


def apply_input(f: Facts, inp: Input, now: Instant) -> tuple[Facts, list[Request], list[Effect]]:
    """The input's direct meaning for the facts; returns requests (events) and replies."""
    emits: list[Emit] = []
    replies: list[Effect] = []
    match inp:
        case HookSwitch(off_hook=off_hook):
            if _host_owns_calls(f):
                pass  # relayed to the softphone: its LEDs move the hook and the call
            else:
                if off_hook != f.hook.off_hook:
                    f = replace(f, hook=HookPart(off_hook=off_hook, since=now))
                if off_hook:
                    f, emits, _ = _Calls.answer(f, now, "headset", dial=True)
                elif f.call.in_call:
                    f, emits, _ = _Calls.end(f, now, "headset")
        case PhoneMute(muted=muted):
            off_hook = f.hook.off_hook or f.call.in_call
            if off_hook and not f.mute.forced_by:
                wanted = (not f.mute.agent) if muted is None else muted
                f = _set_agent_mute(f, wanted, "agent", now)
        case Flash():
            if _host_owns_calls(f):
                pass
            elif f.call.state == "active":
                f, emits, _ = _Calls.hold(f, now, "headset")
            elif f.call.state == "held":
                f, emits, _ = _Calls.resume(f, now, "headset")
        case Drop():
            if f.call.state != "idle" and not _host_owns_calls(f):
                f, emits, _ = _Calls.end(f, now, "headset")
        case MuteLocked(requests=requests, window=window):
            # The headset holds its own mute and refuses to let go: believe it, say so.
            f = _set_agent_mute(f, True, "headset", now)
            emits.append(Emit("headset.mute_locked", {"requests": requests, "window_s": window}))
        case Volume() | Redial() | ProgrammableButton():
            pass
        case HeadsetPlugged(info=info):
            f = replace(f, headset=HeadsetPart(connected=True, since=now, info=info))
            data = {
                "product": info.product,
                "vendor_id": info.vendor_id,
                "product_id": info.product_id,
            }
            emits.append(Emit("headset.connected", data))
        case HeadsetUnplugged(reason=reason):
            if f.headset.connected:
                f = replace(f, headset=HeadsetPart(connected=False, since=now))
                emits.append(Emit("headset.disconnected", {"reason": reason}))
        case HostLeds():
            f, emits = _host_leds(f, inp, now)
        case BridgeStatus():
            f, emits = _bridge_status(f, inp, now)
        case CtiCommand(action=action, request_id=request_id):
            f, emits, error = CTI_VERBS[action](f, now, inp)
            replies.append(
                Reply("call", request_id, ok=not error, error=error, data={"call": f.call.state})
            )
        case Identify(request_id=request_id):
            emits.append(Emit("seat.identify", {}))
            replies += [IdentifyHeadset(IDENTIFY_SECONDS), Reply("identify", request_id, ok=True)]
        case RadarReport(target=target, moving_energy=moving, still_energy=still):
            since = now if target != f.radar.target else f.radar.since
            radar = RadarPart(target=target, since=since, moving_energy=moving, still_energy=still)
            if radar != f.radar:
                f = replace(f, radar=radar)
            if f.radar_link.ok is None:  # a report is proof of a working radar
                f = replace(f, radar_link=DevicePart(ok=True, since=now))
        case RadarStatus(ok=ok, detail=detail):
            if ok != f.radar_link.ok:
                if ok is False:
                    emits.append(Emit("radar.lost", {"detail": detail}))
                elif f.radar_link.ok is False:
                    emits.append(Emit("radar.restored", {"detail": detail}))
                f = replace(f, radar_link=DevicePart(ok=ok, since=now, detail=detail))
        case AudioStatus(ok=ok, detail=detail):
            if ok != f.audio_link.ok:
                if ok is False:
                    emits.append(Emit("headset.audio_lost", {"detail": detail}))
                elif f.audio_link.ok is False:
                    emits.append(Emit("headset.audio_restored", {"detail": detail}))
                f = replace(f, audio_link=DevicePart(ok=ok, since=now, detail=detail))
        case MixerStatus(ok=ok, detail=detail):
            # Mute or receive cap could not be carried out on the headset: say so each time.
            if not ok:
                emits.append(Emit("headset.mixer_failed", {"detail": detail}))
            elif f.mixer_ok is False:
                emits.append(Emit("headset.mixer_restored", {"detail": detail}))
            f = replace(f, mixer_ok=ok)
        case AudioLevels(tx=tx, rx=rx):
            f = replace(
                f,
                tx=_speech(f.tx, tx.speech, now),
                rx=_speech(f.rx, rx.speech, now),
                last_audio=inp,
            )
            if f.call.state == "active":
                both = tx.period_s if tx.speech and rx.speech else 0.0
                call = replace(
                    f.call,
                    talk_s=f.call.talk_s + tx.active_s,
                    listen_s=f.call.listen_s + rx.active_s,
                    overtalk_s=f.call.overtalk_s + both,
                )
                f = replace(f, call=call)
        case RestoreDose() | RestoreDay() | Tick():
            pass  # restored tallies are the norms' own; time is every norm's
    return f, list(emits), replies


# --- requests back into facts, and device outputs --------------------------------------------


def _apply_request(f: Facts, req: Request, now: Instant) -> Facts:
    match req:
        case Flag(type=kind, on=True):
            if kind not in f.violations:
                return replace(f, violations={**f.violations, kind: now})
        case Flag(type=kind, on=False):
            if kind in f.violations:
                return replace(f, violations={k: v for k, v in f.violations.items() if k != kind})
        case ForceMute(by=by, on=on):
            forced = f.mute.forced_by | {by} if on else f.mute.forced_by - {by}
            if forced != f.mute.forced_by:
                return replace(f, mute=replace(f.mute, forced_by=forced, by=by))
        case CapRx(by=by, max_gain_db=cap):
            caps = {k: v for k, v in f.rx_caps.items() if k != by}
            if cap is not None:
                caps[by] = cap
            return replace(f, rx_caps=caps)
    return f


def leds_for(f: Facts) -> LedState:
    off_hook = f.call.in_call or f.hook.off_hook
    return LedState(
        off_hook=off_hook,
        mute=f.mute.muted and off_hook,
        ring=f.call.state == "ringing",
        hold=f.call.state == "held",
    )


def _outputs(before: Facts, after: Facts, inp: Input, now: Instant) -> list[Effect]:
    effects: list[Effect] = []
    leds = leds_for(after)
    # The host owns the headset state: every request and every re-plug gets the whole state.
    answer_request = isinstance(inp, HookSwitch | PhoneMute | Flash | Drop | HeadsetPlugged)
    if _host_owns_calls(after) and isinstance(inp, HookSwitch | Flash | Drop):
        answer_request = False  # the softphone answers these with its LEDs, mirrored then
    if leds != leds_for(before) or answer_request:
        effects.append(SetLeds(leds))
    if after.mute.muted != before.mute.muted:
        effects.append(SetMicMute(after.mute.muted))
    if after.rx_cap != before.rx_cap:
        effects.append(SetRxCap(after.rx_cap))
    return effects


def _mute_events(before: Facts, after: Facts) -> list[Emit]:
    if after.mute.muted == before.mute.muted:
        return []
    kind = "mute.on" if after.mute.muted else "mute.off"
    return [Emit(kind, {"by": after.mute.by or "agent"})]


# --- the step ------------------------------------------------------------------------------


def _shift(f: Facts, state: SeatState, now: Instant) -> tuple[Facts, bool]:
    """The shift phase at `now`; True when the shift has just ended (time for the summary)."""
    phase = phase_at(state.profile["attendance"], now.wall)
    if phase == f.shift.phase:
        return f, False
    ended = phase == "after" and f.shift.phase in ("on", "lunch")
    return replace(f, shift=ShiftPart(phase=phase, since=now)), ended


def summary(state: SeatState, now: Instant) -> dict[str, Any]:
    out: dict[str, Any] = {"day": now.wall.date().isoformat()}
    for norm in NORMS:
        public = norm.public(state.norms[norm.name], now)
        if public is not None:
            out[norm.name] = public
    return out


def _restore_day(
    norm: Norm[Any, Any], state: Any, saved: RestoreDay
) -> tuple[Any, Sequence[Request]]:
    """A norm's tally from before a restart, when the norm keeps one and is counting that day."""
    tally = saved.tallies.get(norm.name)
    if norm.day is None or tally is None or getattr(state, "day", None) != saved.day:
        return state, ()
    return norm.day.restore(state, tally)


def step(state: SeatState, inp: Input, now: Instant) -> tuple[SeatState, list[Effect]]:
    """One input at one instant: the new state and what the shell must do, in order."""
    before = state.facts
    facts, requests, replies = apply_input(before, inp, now)
    facts, shift_ended = _shift(facts, state, now)
    facts, presence_emits = presence.update(facts, inp, now, state.profile["presence"])
    requests += presence_emits
    norms = dict(state.norms)
    mid = facts
    for norm in NORMS:
        if isinstance(inp, RestoreDay):
            norms[norm.name], asked = _restore_day(norm, norms[norm.name], inp)
            for req in asked:
                facts = _apply_request(facts, req, now)
            requests += asked
        ctx = Ctx(before=before, after=mid, input=inp, now=now, settings=state.profile[norm.name])
        norms[norm.name], asked = norm.step(ctx, norms[norm.name])
        for req in asked:
            facts = _apply_request(facts, req, now)
        requests += asked
    requests += _mute_events(before, facts)
    if shift_ended:
        requests.append(Emit("shift.summary", summary(replace(state, norms=norms), now)))
    if facts.mute.muted != before.mute.muted:
        facts = replace(facts, mute=replace(facts.mute, since=now))

    effects: list[Effect] = _outputs(before, facts, inp, now)
    seq = state.seq
    for req in requests:
        if isinstance(req, Emit):
            effects.append(Event(seq=seq, ts=now.iso(), type=req.type, data=req.data))
            seq += 1
        elif isinstance(req, ScreenLock):
            effects.append(req)
    effects += replies
    new_state = replace(state, facts=facts, norms=norms, seq=seq)
    new_state, level_effects = _levels(new_state, inp, now)
    return new_state, effects + level_effects


def _levels(state: SeatState, inp: Input, now: Instant) -> tuple[SeatState, list[Effect]]:
    """During a call, summarise audio levels once per `[levels] publish_every`."""
    if not isinstance(inp, AudioLevels) or not state.facts.call.in_call:
        return state, []
    tx, rx = state.levels.tx.add(inp.tx), state.levels.rx.add(inp.rx)
    if tx.period_s + 1e-9 < state.profile["levels"].publish_every:
        return replace(state, levels=LevelsWindow(tx, rx)), []
    data: dict[str, Any] = {"call": state.facts.call.number, "tx": tx.report(), "rx": rx.report()}
    return replace(state, levels=LevelsWindow()), [Levels(ts=now.iso(), data=data)]


def next_deadline(state: SeatState, now: Instant) -> float | None:
    """The earliest monotonic time at which the core needs a Tick even if nothing happens."""
    facts, profile = state.facts, state.profile
    times = [
        norm.deadline(state.norms[norm.name], facts, profile[norm.name], now) for norm in NORMS
    ]
    times.append(presence.deadline(facts, profile["presence"]))
    times.append(now.mono_at(next_boundary(profile["attendance"], now.wall)))
    return earliest(*times)


__all__: Sequence[str] = ("new_seat", "step", "next_deadline", "summary", "leds_for")
