"""The retained `state` payload: the seat's facts with every part's `since`, small and flat.

`key()` leaves out what changes every second so the shell republishes only on real change.
"""

from __future__ import annotations

from typing import Any

from edge.core.clock import Instant
from edge.core.seat import leds_for, summary
from edge.core.state import BridgePart, SeatState


def snapshot(
    state: SeatState,
    now: Instant,
    site: str,
    seat: str,
    storage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`storage` is the shell's view of its outbox (`Runtime._storage`), when it has one."""
    f = state.facts
    headset: dict[str, Any] = {"connected": f.headset.connected, "since": f.headset.since.iso_utc()}
    if f.headset.info is not None and f.headset.connected:
        headset["product"] = f.headset.info.product
    leds = leds_for(f)
    attendance_public = summary(state, now)
    return {
        "site": site,
        "seat": seat,
        "ts": now.iso(),
        "call": {
            "state": f.call.state,
            "since": f.call.since.iso_utc(),
            "source": f.call.source or None,
            "direction": f.call.direction or None,
            "number": f.call.number,
        },
        "hook": {"off_hook": leds.off_hook, "since": f.hook.since.iso_utc()},
        "mute": {
            "muted": f.mute.muted,
            "by": (f.mute.by or "agent") if f.mute.muted else None,
            "since": f.mute.since.iso_utc(),
        },
        "presence": {
            "state": f.presence.state,
            "since": f.presence.since.iso_utc(),
            "last_seen": f.presence.last_seen.iso_utc() if f.presence.last_seen else None,
        },
        "headset": headset,
        "radar": {
            "ok": f.radar_link.ok,
            "target": f.radar.target,
            "since": f.radar_link.since.iso_utc(),
        },
        "audio": {"ok": f.audio_link.ok, "since": f.audio_link.since.iso_utc()},
        "shift": {"phase": f.shift.phase, "since": f.shift.since.iso_utc()},
        "rx_cap_db": f.rx_cap,
        "violations": [
            {"type": kind, "since": since.iso_utc()} for kind, since in sorted(f.violations.items())
        ],
        "today": {k: v for k, v in attendance_public.items() if k != "day"},
        **({"storage": storage} if storage is not None else {}),
        **({"bridge": _bridge(f.bridge)} if f.bridge is not None else {}),
    }


def _bridge(part: BridgePart) -> dict[str, Any]:
    return {
        "pc_connected": part.pc_connected,
        "since": part.since.iso_utc(),
        "detail": part.detail,
        "led_writes": part.led_writes,
        "bad_report": part.bad_report or None,
    }


def key(snap: dict[str, Any]) -> tuple[Any, ...]:
    """What must change for the retained state to be republished.

    `presence.last_seen` moves with every piece of evidence (each audio period in a call), so it
    rides along with real changes instead of republishing the retained state ten times a second;
    so does `storage.held`, which moves with every event while the disk is full.
    """
    quiet = {
        "presence": {k: v for k, v in snap["presence"].items() if k != "last_seen"},
        "storage": {k: v for k, v in snap.get("storage", {}).items() if k != "held"},
    }
    return tuple(
        (name, repr(quiet.get(name, value)))
        for name, value in snap.items()
        if name not in ("ts", "today")
    )
