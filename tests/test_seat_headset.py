"""The seat and a real headset driver end to end: input reports in, events and LED reports out.

A Runtime (real clock, no broker) holds a `HidrawHeadset` whose hidraw node is a SOCK_SEQPACKET
pair (tests/hid_support.py FakeBus). The test plays the device: it sends the device's own input
reports and reads the exact LED output reports the seat answers with. Every expected byte
below is worked out by hand from tests/data/hid/LAYOUTS.txt (the comment of each model says
how), never from our own report composer.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hid_support import FakeBus, recv
from support import wait_until

from drivers.hid.hidraw import HidrawHeadset
from drivers.hid.protocol import ProtocolSettings
from edge.core.clock import Clock
from edge.core.inputs import CtiCommand, Tick
from edge.shell.config import (
    AudioSection,
    HeadsetSection,
    RadarSection,
    SeatConfig,
    SeatSection,
    load_profile,
)
from edge.shell.runtime import Devices, Runtime
from edge.shell.wiring import build_seat


@dataclass(frozen=True)
class Model:
    """One headset: its input reports and the LED output reports (hex) for each host state.

    LED lists are in write order: a device with one report per LED gets Off-Hook first when it
    is set and last when it is cleared, the other reports by report ID.
    """

    descriptor: str
    hook_off: str  # Hook Switch = 1, nothing else pressed
    mute: str  # Hook Switch = 1 and Phone Mute pressed
    flash: str  # Hook Switch = 1 and Flash pressed
    hook_on: str  # everything 0
    plug: list[str]  # idle: every LED report, all off
    off_hook: list[str]
    muted: list[str]  # off-hook + mute
    held_muted: list[str]  # off-hook + mute + hold (from off-hook + mute)
    resumed_muted: list[str]  # back to off-hook + mute
    unmuted: list[str]  # back to off-hook
    on_hook: list[str]  # from off-hook back to idle
    ring: list[str]  # idle -> ringing
    answered: list[str]  # ringing -> off-hook
    hold_forced: list[str]  # off-hook -> off-hook + mute + hold (the box mutes on hold)
    mute_refused: list[str]  # the answer to a mute press while the box holds mute on hold
    resume_unforced: list[str]  # off-hook + mute + hold -> off-hook
    replug_muted: list[str]  # off-hook + mute, the whole state after a re-plug
    replug_hook: list[str]  # the answer to the re-plugged device reporting Hook Switch = 1
    hang_up_muted: list[str]  # off-hook + mute -> idle (mute ends with the call)


# Jabra EVOLVE LINK MS: report 2 both ways.
# IN 2 (2 data bytes): bit0 Hook Switch (Abs), bit2 Phone Mute (Rel), bit3 Flash (Rel).
# OUT 2 (2 data bytes): bit0 Off-Hook, bit1 Mute, bit2 Ring, bit3 Hold, bit4 Microphone,
# bit5 Ringer (0x0B:0x9E). Microphone shows with Mute, Ringer with Ring.
JABRA = Model(
    descriptor="jabra_evolve_link_ms",
    hook_off="020100",
    mute="020500",
    flash="020900",
    hook_on="020000",
    plug=["020000"],
    off_hook=["020100"],
    muted=["021300"],  # 0x01 | 0x02 | 0x10
    held_muted=["021b00"],  # + Hold 0x08
    resumed_muted=["021300"],
    unmuted=["020100"],
    on_hook=["020000"],
    ring=["022400"],  # Ring 0x04 | Ringer 0x20
    answered=["020100"],
    hold_forced=["021b00"],
    mute_refused=["021b00"],  # answered with the unchanged whole report
    resume_unforced=["020100"],
    replug_muted=["021300"],
    replug_hook=["021300"],  # the whole shared report, unchanged
    hang_up_muted=["020000"],
)

# Poly Blackwire C5220: one output report per LED, 1 data byte each.
# IN 8: bit0 Phone Mute (Rel), bit1 Hook Switch (Abs), bit2 Flash (Abs).
# OUT 9 Mute, 23 (0x17) Off-Hook, 24 (0x18) Ring, 26 Speaker (not driven), 32 (0x20) Hold,
# 42 (0x2a) On-Line (shows with Off-Hook).
C5220 = Model(
    descriptor="poly_blackwire_c5220",
    hook_off="0802",
    mute="0803",
    flash="0806",
    hook_on="0800",
    plug=["0900", "1800", "2000", "2a00", "1700"],
    off_hook=["1701", "2a01"],
    muted=["0901"],
    held_muted=["2001"],
    resumed_muted=["2000"],
    unmuted=["0900"],
    on_hook=["2a00", "1700"],
    ring=["1801"],
    answered=["1701", "1800", "2a01"],
    hold_forced=["0901", "2001"],
    mute_refused=["0901"],  # only the Mute report answers a mute press
    resume_unforced=["0900", "2000"],
    replug_muted=["1701", "0901", "1800", "2000", "2a01"],
    replug_hook=["1701"],  # only the Off-Hook report answers a hook request
    hang_up_muted=["0900", "2a00", "1700"],
)

# Poly BT700 dongle: one output report per LED, 1 data byte each.
# IN 32 (0x20): bit0 Hook Switch (Abs), bit1 Phone Mute (Rel), bit2 Flash (Abs).
# OUT 33 (0x21) Ring, 34 Speaker (not driven), 35 (0x23) Mute, 36 (0x24) Off-Hook, 37 (0x25) Hold.
BT700 = Model(
    descriptor="poly_bt700_dongle",
    hook_off="2001",
    mute="2003",
    flash="2005",
    hook_on="2000",
    plug=["2100", "2300", "2500", "2400"],
    off_hook=["2401"],
    muted=["2301"],
    held_muted=["2501"],
    resumed_muted=["2500"],
    unmuted=["2300"],
    on_hook=["2400"],
    ring=["2101"],
    answered=["2401", "2100"],
    hold_forced=["2301", "2501"],
    mute_refused=["2301"],
    resume_unforced=["2300", "2500"],
    replug_muted=["2401", "2100", "2301", "2500"],
    replug_hook=["2401"],
    hang_up_muted=["2300", "2400"],
)

# EPOS IMPACT DW: IN 2 / OUT 3, 1 data byte each.
# IN 2: bit0/1 Volume, bit2 Hook Switch (Abs), bit3 Flash (Rel), bit4 Redial, bit5 Phone Mute
# (Rel), bit6 Drop. OUT 3: bit0 Ringer, bit1 Off-Hook, bit2 Microphone, bit3 Ring, bit4 Mute,
# bit5 On-Line, bit6 Hold.
EPOS = Model(
    descriptor="epos_impact_dw",
    hook_off="0204",
    mute="0224",
    flash="020c",
    hook_on="0200",
    plug=["0300"],
    off_hook=["0322"],  # Off-Hook 0x02 | On-Line 0x20
    muted=["0336"],  # + Microphone 0x04 | Mute 0x10
    held_muted=["0376"],  # + Hold 0x40
    resumed_muted=["0336"],
    unmuted=["0322"],
    on_hook=["0300"],
    ring=["0309"],  # Ringer 0x01 | Ring 0x08
    answered=["0322"],
    hold_forced=["0376"],
    mute_refused=["0376"],
    resume_unforced=["0322"],
    replug_muted=["0336"],
    replug_hook=["0336"],
    hang_up_muted=["0300"],
)

MODELS = [JABRA, C5220, BT700, EPOS]
IDS = [m.descriptor for m in MODELS]


class EventLines:
    """`events_out` of the runtime: JSON lines written by the core thread, read by the test."""

    def __init__(self) -> None:
        self._text = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._text += text
        return len(text)

    def flush(self) -> None:
        pass

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            lines = self._text.splitlines()
        return [json.loads(line) for line in lines]

    def types(self, *prefixes: str) -> list[str]:
        return [e["type"] for e in self.all() if e["type"].startswith(prefixes)]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.all() if e["type"] == kind]


@dataclass
class Seat:
    runtime: Runtime
    bus: FakeBus
    device: socket.socket
    events: EventLines
    model: Model

    def send(self, *reports: str) -> None:
        for report in reports:
            self.device.send(bytes.fromhex(report))

    def leds(self, count: int) -> list[str]:
        """The next `count` output reports the device receives, as hex."""
        return [recv(self.device).hex() for _ in range(count)]

    def expect(self, reports: list[str]) -> None:
        assert self.leds(len(reports)) == reports

    def wait_events(self, *types: str) -> None:
        """Until the seat has produced these call/mute/headset events, in this order."""
        prefixes = ("call.", "mute.", "headset.")
        wait_until(
            lambda: self.events.types(*prefixes)[-len(types) :] == list(types),
            5,
            f"events {types}; have {self.events.types(*prefixes)}",
        )

    def press(self, report: str, release: str) -> None:
        self.send(report, release)


@contextmanager
def seat_with(model: Model) -> Iterator[Seat]:
    bus = FakeBus(model.descriptor)
    settings = ProtocolSettings(echo_window=0.0, debounce_window=0.0)
    headset = HidrawHeadset(
        bus.candidate.path,
        settings,
        read_timeout=0.05,
        reconnect_min=0.01,
        reconnect_max=0.05,
        enumerate=bus.enumerate,
        opener=bus.open,
        hotplug=False,
    )
    config = SeatConfig(
        seat=SeatSection(site="site1", id="seat-07"),
        headset=HeadsetSection(device=bus.candidate.path),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
    )
    events = EventLines()
    runtime = build_seat(
        config,
        load_profile("default"),
        devices=Devices(headset=headset),
        clock=Clock(),
        events_out=events,  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=runtime.run, name="seat", daemon=True)
    thread.start()
    device = bus.ends.get(timeout=5)
    seat = Seat(runtime, bus, device, events, model)
    try:
        seat.expect(model.plug)  # the whole LED state on plug, all off
        seat.wait_events("headset.connected")
        yield seat
    finally:
        runtime.stop()
        runtime.sink(Tick())  # wake the loop now rather than at its next timeout
        thread.join(10)
        device.close()
        assert not thread.is_alive()


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_agent_call_with_mute_and_hold_from_the_headset_buttons(model: Model) -> None:
    with seat_with(model) as seat:
        facts = lambda: seat.runtime.state.facts  # noqa: E731
        seat.send(model.hook_off)
        seat.expect(model.off_hook)
        seat.wait_events("call.started")
        assert seat.events.of("call.started")[-1] == {
            "source": "headset",
            "call": 1,
            "direction": "outbound",
        }

        seat.press(model.mute, model.hook_off)
        seat.expect(model.muted)
        seat.wait_events("call.started", "mute.on")
        assert seat.events.of("mute.on")[-1] == {"by": "agent"}

        seat.press(model.flash, model.hook_off)
        seat.expect(model.held_muted)
        seat.wait_events("mute.on", "call.hold")
        assert facts().call.state == "held" and facts().mute.muted

        seat.press(model.flash, model.hook_off)
        seat.expect(model.resumed_muted)
        seat.wait_events("call.hold", "call.resumed")
        assert facts().mute.agent  # the agent's own mute survives the hold

        seat.press(model.mute, model.hook_off)
        seat.expect(model.unmuted)
        seat.wait_events("call.resumed", "mute.off")
        assert seat.events.of("mute.off")[-1] == {"by": "agent"}

        seat.send(model.hook_on)
        seat.expect(model.on_hook)
        seat.wait_events("mute.off", "call.ended")
        ended = seat.events.of("call.ended")[-1]
        assert (ended["source"], ended["reason"], ended["direction"]) == (
            "headset",
            "hangup",
            "outbound",
        )
        assert ended["hold_s"] <= ended["duration_s"]  # presses may be a millisecond apart
        assert facts().call.state == "idle" and not facts().mute.muted

        # Nothing else was written in between: the next write is the answer to a CTI ring.
        seat.runtime.sink(CtiCommand("ring"))
        seat.expect(model.ring)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_a_cti_ring_lights_ring_and_the_hook_answers_it(model: Model) -> None:
    with seat_with(model) as seat:
        seat.runtime.sink(CtiCommand("ring", call_id="c-1"))
        seat.expect(model.ring)
        seat.wait_events("call.ringing")
        assert seat.events.of("call.ringing")[-1] == {"source": "cti", "call": 1, "call_id": "c-1"}

        seat.send(model.hook_off)
        seat.expect(model.answered)
        seat.wait_events("call.ringing", "call.answered")
        assert seat.events.of("call.answered")[-1]["source"] == "headset"

        seat.send(model.hook_on)
        seat.expect(model.on_hook)
        seat.wait_events("call.answered", "call.ended")


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_hold_enforced_by_the_box_shows_mute_and_hold_with_off_hook_still_set(
    model: Model,
) -> None:
    with seat_with(model) as seat:
        facts = lambda: seat.runtime.state.facts  # noqa: E731
        seat.send(model.hook_off)
        seat.expect(model.off_hook)
        seat.wait_events("call.started")

        seat.press(model.flash, model.hook_off)
        seat.expect(model.hold_forced)  # Off-Hook is not touched (no report clears it)
        seat.wait_events("call.hold", "mute.on")
        assert seat.events.of("mute.on")[-1] == {"by": "hold_policy"}
        assert facts().mute.forced_by == {"hold_policy"} and not facts().mute.agent

        # The agent cannot unmute while on hold: the press is answered with the same state.
        seat.press(model.mute, model.hook_off)
        seat.expect(model.mute_refused)
        assert facts().mute.muted and seat.events.types("mute.") == ["mute.on"]

        seat.press(model.flash, model.hook_off)
        seat.expect(model.resume_unforced)
        seat.wait_events("call.resumed", "mute.off")
        assert seat.events.of("mute.off")[-1] == {"by": "hold_policy"}
        assert not facts().mute.muted


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_replug_mid_call_rewrites_the_whole_led_state(model: Model) -> None:
    with seat_with(model) as seat:
        seat.send(model.hook_off)
        seat.expect(model.off_hook)
        seat.press(model.mute, model.hook_off)
        seat.expect(model.muted)
        seat.wait_events("call.started", "mute.on")

        seat.device.close()  # unplugged
        seat.device = seat.bus.ends.get(timeout=5)  # found again after back-off
        seat.expect(model.replug_muted)
        seat.wait_events("headset.disconnected", "headset.connected")
        facts = seat.runtime.state.facts
        assert facts.call.state == "active" and facts.mute.muted and facts.headset.connected
        assert seat.bus.opened == 2

        # A re-plugged headset told Off-Hook follows the host and reports Hook Switch = 1 (its
        # input baseline starts from nothing); the request is answered, the call goes on.
        seat.send(model.hook_off)
        seat.expect(model.replug_hook)
        # The new device is live: its hook ends the call.
        seat.send(model.hook_on)
        seat.expect(model.hang_up_muted)
        seat.wait_events("call.ended", "mute.off")
