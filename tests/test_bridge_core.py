"""The seat core on a bridged seat (pure, time given): what the PC side's status means for
events and state, and who owns the call (the softphone once it drives the headset)."""

from __future__ import annotations

from seat_harness import Harness

from drivers.hid.events import Drop, Flash, HookSwitch, LedState, PhoneMute
from drivers.host.events import BridgeStatus, HostLeds
from edge.core.effects import SetLeds, SetMicMute
from edge.core.snapshot import snapshot

CONNECTED = BridgeStatus(True, "controller configured", "waiting", 60.0)
DRIVEN = BridgeStatus(True, "controller configured", "seen", 60.0)


def leds_written(h: Harness, since: float) -> list[LedState]:
    return [e.leds for t, e in h.of(SetLeds) if t >= since]


def test_the_pc_sides_changes_are_events_once_and_a_state_part() -> None:
    h = Harness()
    assert "bridge" not in snapshot(h.state, h.instant(0), "s", "a")  # not a bridged seat
    h.at(1, BridgeStatus(False, "no hidg node"))
    h.at(2, BridgeStatus(False, "no hidg node"))  # the same: nothing new
    h.at(3, CONNECTED)
    h.at(63, BridgeStatus(True, "controller configured", "missing", 60.0))
    h.at(70, BridgeStatus(True, "controller configured", "missing", 60.0, "report ID 3"))
    h.at(71, BridgeStatus(True, "controller configured", "seen", 60.0, "report ID 3"))
    h.at(80, BridgeStatus(False, "controller 'not attached'", "waiting", 60.0))
    assert h.events("bridge.") == [
        (1, "bridge.pc_disconnected", {"detail": "no hidg node"}),
        (3, "bridge.pc_connected", {"detail": "controller configured"}),
        (63, "bridge.no_led_writes", {"after_s": 60.0}),
        (70, "bridge.bad_report", {"detail": "report ID 3"}),
        (80, "bridge.pc_disconnected", {"detail": "controller 'not attached'"}),
    ]
    part = snapshot(h.state, h.instant(81), "s", "a")["bridge"]
    assert part == {
        "pc_connected": False,
        "since": h.instant(80).iso_utc(),
        "detail": "controller 'not attached'",
        "led_writes": "waiting",
        "bad_report": None,
    }


def test_once_the_softphone_drives_the_headset_its_leds_move_the_call() -> None:
    h = Harness()
    h.at(1, DRIVEN, HostLeds(ring=True))
    assert h.state.facts.call.state == "ringing"
    # The agent lifts: relayed to the PC; the box neither answers nor writes LEDs itself.
    h.at(2, HookSwitch(off_hook=True))
    assert h.state.facts.call.state == "ringing" and leds_written(h, 2) == []
    h.at(2.2, HostLeds(off_hook=True))
    assert h.state.facts.call.state == "active" and h.state.facts.hook.off_hook
    assert leds_written(h, 2.2) == [LedState(off_hook=True)]
    h.at(3, Flash())
    assert h.state.facts.call.state == "active" and leds_written(h, 3) == []
    h.at(3.1, HostLeds(off_hook=True, hold=True))  # the softphone holds: the box mutes
    assert leds_written(h, 3.1) == [LedState(off_hook=True, mute=True, hold=True)]
    assert [m.muted for t, m in h.of(SetMicMute) if t >= 3.1] == [True]
    h.at(4, HostLeds(off_hook=True))
    # Mute acts in the box at once (the gate), and goes to the PC too.
    h.at(5, PhoneMute())
    assert h.state.facts.mute.muted and leds_written(h, 5) == [LedState(off_hook=True, mute=True)]
    h.at(6, Drop())
    assert h.state.facts.call.state == "active"
    h.at(6.2, HostLeds())  # the softphone hangs up: the hook follows it
    assert h.state.facts.call.state == "idle" and not h.state.facts.hook.off_hook
    assert [(kind, data.get("source")) for _, kind, data in h.events("call.")] == [
        ("call.ringing", "host"),
        ("call.answered", "host"),
        ("call.hold", "host"),
        ("call.resumed", "host"),
        ("call.ended", "host"),
    ]


def test_without_the_pc_or_before_the_softphone_drives_the_headset_the_headset_acts_alone() -> None:
    for status in (BridgeStatus(False, "not configured"), CONNECTED):
        h = Harness()
        h.at(1, status)
        h.at(2, HookSwitch(off_hook=True))
        assert h.state.facts.call.state == "active"
        assert leds_written(h, 2) == [LedState(off_hook=True)]
        h.at(3, Flash())
        assert h.state.facts.call.state == "held"
        h.at(4, HookSwitch(off_hook=False))
        assert h.state.facts.call.state == "idle"
        assert [(kind, data["source"]) for _, kind, data in h.events("call.")] == [
            ("call.started", "headset"),
            ("call.hold", "headset"),
            ("call.ended", "headset"),
        ]
