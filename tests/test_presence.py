"""Presence fusion through the seat core with a fake clock: radar, headset and voice together.

Radar reports arrive as the driver sends them: on a target change and about once a second.
"""

from __future__ import annotations

from seat_harness import Harness, profile_with

from drivers.audio.events import AudioLevels
from drivers.hid.events import HeadsetInfo, HeadsetPlugged, HookSwitch
from drivers.radar.events import RadarReport, RadarStatus
from dsp.types import ChannelLevels
from edge.core.effects import Event

PERIOD = 0.1
HEADSET = HeadsetPlugged(HeadsetInfo(product="Test", model="virtual"))
AGENT = RadarReport(target="still", still_cm=60, still_energy=70)  # seated, within a metre
# The neighbour, 2.5 m away, seen faintly through the seat's range.
NEIGHBOUR_STILL = RadarReport(target="still", still_cm=250, still_energy=18)
NEIGHBOUR_MOVING = RadarReport(target="moving", moving_cm=240, moving_energy=22)
FLOOR = {"min_moving_energy": 30, "min_still_energy": 25}


def quiet() -> ChannelLevels:
    """A microphone on the desk hears the room, not a voice."""
    return ChannelLevels(period_s=PERIOD, rms_dbov=-62.0, peak_dbfs=-50.0, laeq_dbfs=-62.0)


def voice() -> ChannelLevels:
    return ChannelLevels(
        period_s=PERIOD,
        speech=True,
        active_s=PERIOD,
        active_level_dbov=-26.0,
        rms_dbov=-26.0,
        peak_dbfs=-11.0,
        laeq_dbfs=-26.0,
    )


def every_second(h: Harness, start: float, end: float, report: RadarReport) -> None:
    """The driver's steady reports (report_interval 1 s) from `start` up to `end`."""
    t = start
    while t < end:
        h.at(t, report)
        t += 1.0


def audio(h: Harness, start: float, end: float, tx: ChannelLevels) -> None:
    for i in range(round((end - start) / PERIOD)):
        h.at(round(start + i * PERIOD, 6), AudioLevels(tx=tx, rx=quiet()))


def presence(h: Harness) -> list[tuple[float, str]]:
    return [(t, kind) for t, kind, _ in h.events("presence.")]


def test_a_still_agent_on_a_call_stays_present_while_the_radar_sees_nobody() -> None:
    h = Harness()
    h.at(0.0, HEADSET, AGENT)
    h.at(30.0, HookSwitch(off_hook=True))
    every_second(h, 40.0, 1300.0, RadarReport(target="none"))  # the still agent is dropped
    assert presence(h) == [(0.0, "presence.present")]
    assert h.state.facts.presence.state == "present" and h.state.facts.call.state == "active"

    h.at(1300.0, HookSwitch(off_hook=False))  # the call ends: now the empty radar counts
    every_second(h, 1301.0, 1320.0, RadarReport(target="none"))
    assert presence(h) == [(0.0, "presence.present"), (1310.0, "presence.away")]


def test_an_empty_chair_with_the_headset_on_the_desk_is_away() -> None:
    h = Harness()
    h.at(0.0, HEADSET, AGENT)
    h.at(100.0, RadarReport(target="none"))  # 08:45:40: the agent gets up
    audio(h, 100.0, 140.0, quiet())  # the headset stays plugged in, its mic hears the room
    assert presence(h) == [(0.0, "presence.present"), (110.0, "presence.away")]
    assert h.state.facts.headset.connected
    away = h.events("presence.away")[0][2]
    assert away == {"last_seen": h.instant(100.0).iso()}

    h.until(401.0)  # on shift: the away norm counts from when the agent was last seen
    assert [(t, k) for t, k, _ in h.events("away.")] == [(400.0, "away.long")]


def test_a_weak_target_from_the_next_seat_is_not_presence() -> None:
    h = Harness(profile=profile_with(presence=FLOOR))
    h.at(0.0, HEADSET, AGENT)
    # The agent leaves; the same "still" target state stays, now with the neighbour's energy.
    every_second(h, 100.0, 160.0, NEIGHBOUR_STILL)
    every_second(h, 160.0, 200.0, NEIGHBOUR_MOVING)
    assert presence(h) == [(0.0, "presence.present"), (110.0, "presence.away")]

    # Back: a strong still part counts even when the moving part is weak.
    back = RadarReport("both", moving_cm=70, moving_energy=12, still_cm=60, still_energy=55)
    h.at(200.0, back)
    assert presence(h)[-1] == (200.0, "presence.present")
    assert h.events("presence.present")[-1][2] == {"away_s": 100.0}


def test_without_an_energy_floor_the_neighbour_keeps_the_seat_present() -> None:
    h = Harness()  # default profile: every target the module reports counts
    h.at(0.0, HEADSET, AGENT)
    every_second(h, 100.0, 200.0, NEIGHBOUR_STILL)
    assert presence(h) == [(0.0, "presence.present")]


def test_a_strong_moving_target_counts_and_the_floor_is_per_part() -> None:
    h = Harness(profile=profile_with(presence=FLOOR))
    h.at(0.0, HEADSET, RadarReport(target="moving", moving_cm=80, moving_energy=30))
    assert presence(h) == [(0.0, "presence.present")]
    # A moving target's still energy does not count: the target-state byte says "moving".
    every_second(h, 10.0, 40.0, RadarReport("moving", moving_energy=5, still_energy=90))
    assert presence(h) == [(0.0, "presence.present"), (20.0, "presence.away")]


def test_a_seat_without_a_radar_works_from_headset_and_voice() -> None:
    h = Harness()
    h.at(0.0, HEADSET)
    assert presence(h) == []  # a plugged headset alone says nothing
    h.at(60.0, HookSwitch(off_hook=True))
    assert presence(h) == [(60.0, "presence.present")]
    h.at(300.0, HookSwitch(off_hook=False))
    h.until(419.9)
    assert presence(h) == [(60.0, "presence.present")]  # no radar: the long hysteresis
    h.until(430.0)
    assert presence(h)[-1] == (420.0, "presence.away")

    audio(h, 600.0, 603.0, voice())  # the agent is back and talks to a colleague
    assert presence(h)[-1] == (600.0, "presence.present")
    assert h.events("presence.present")[-1][2] == {"away_s": 300.0}
    audio(h, 603.0, 700.0, quiet())
    h.until(900.0)
    # Away 2 min after the voice stopped, not after the last audio period.
    assert presence(h)[-1] == (723.0, "presence.away")


def test_a_lost_radar_is_no_evidence_and_the_long_hysteresis_applies() -> None:
    h = Harness(profile=profile_with(presence=FLOOR))
    h.at(0.0, HEADSET, AGENT)
    h.at(50.0, RadarStatus(ok=False, detail="no valid frame for 2 s"))
    h.until(169.9)
    assert presence(h) == [(0.0, "presence.present")]
    h.until(171.0)
    assert presence(h)[-1] == (170.0, "presence.away")
    assert [e.type for _, e in h.of(Event) if e.type.startswith("radar.")] == ["radar.lost"]
