"""The bridged seat's scenario, for the host test (tests/test_bridge_seat.py) and the kernel tier.

A scripted softphone on the PC side and an agent on the headset side, one call each way:

    PC rings -> agent lifts (the PC gets Hook Switch) -> PC answers -> PC holds (the box mutes
    on hold) -> PC resumes -> PC mutes -> agent presses mute (the PC gets a Phone Mute press)
    -> agent presses flash (the PC gets a Flash press) -> PC hangs up; then PC rings -> agent
    lifts -> PC answers -> agent hangs up (the PC gets Hook Switch 0) -> PC ends the call.

Asserted at each step: the exact LED output reports the headset receives (hand-worked from
tests/data/hid/LAYOUTS.txt for each model below, in write order, never from our composer),
the exact canonical input reports the PC receives (docs/bridge.md: report 1, bit 0 Hook
Switch, 1 Phone Mute, 2 Flash, 3 Redial, 4 Drop), the seat's events in order with their
`source` and `by`, and its state (call, mute, bridge).

The three sides are small protocols so the same script runs wherever the parts are:
- `pc`: the softphone's end: `send` writes an output report (report ID 2 first), `recv` reads
  an input report. On this machine a SOCK_SEQPACKET pair standing in for /dev/hidgN; in the
  guest the gadget's hidraw node on the PC side.
- `headset`: the device's end: `send` an input report in its own layout, `recv` an LED output
  report. A socket pair behind the hidraw driver here; /dev/uhid in the guest.
- `seat`: what the seat published: `events()` the event payloads in order, `state()` the last
  retained state (a Mosquitto subscriber in both places).

The seat must run with the headset's echo and debounce windows at 0 (`[headset]
echo_window = 0`, `debounce_window = 0`): the script presses faster than a person.

Stdlib and the project's stdlib-only parts: the QEMU guest imports it (keep it light).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# Canonical reports (drivers/gadget/descriptor.py; docs/bridge.md), as hex.
PC_RING = "0202"  # LED report 2: bit1 Ring
PC_OFF_HOOK = "0201"  # bit0 Off-Hook
PC_HOLD = "0209"  # Off-Hook | bit3 Hold
PC_MUTED = "0205"  # Off-Hook | bit2 Mute
PC_IDLE = "0200"
IN_HOOK_OFF = "0101"  # input report 1: bit0 Hook Switch
IN_HOOK_ON = "0100"
IN_MUTE = "0103"  # off-hook and bit1 Phone Mute held
IN_FLASH = "0105"  # off-hook and bit2 Flash held


class Endpoint(Protocol):
    """One end of a report pipe: one report per send and per recv."""

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float) -> bytes: ...  # raises TimeoutError (or OSError)


class SeatView(Protocol):
    def events(self) -> list[dict[str, Any]]: ...

    def state(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Model:
    """One headset: its input reports and the LED reports (hex, in write order) it receives."""

    descriptor: str  # tests/data/hid/<descriptor>.hex
    hook_off: str  # Hook Switch = 1, nothing else pressed
    mute: str  # Hook Switch = 1 and Phone Mute pressed
    flash: str  # Hook Switch = 1 and Flash pressed
    hook_on: str  # everything 0
    plug: list[str]  # idle: every LED report, all off
    ring: list[str]  # idle -> ringing
    answered: list[str]  # ringing -> off-hook
    hold_forced: list[str]  # off-hook -> off-hook + mute + hold (the box mutes on hold)
    resume_unforced: list[str]  # off-hook + mute + hold -> off-hook
    muted: list[str]  # off-hook -> off-hook + mute
    unmuted: list[str]  # off-hook + mute -> off-hook
    on_hook: list[str]  # off-hook -> idle
    # idle -> ringing after the headset's hook 0 went to the PC unanswered (the PC was idle):
    # the reports with Off-Hook are owed an answer and go out with the next change
    ring_owed: list[str]


# Jabra EVOLVE LINK MS: report 2 both ways. IN 2: bit0 Hook Switch (Abs), bit2 Phone Mute (Rel),
# bit3 Flash (Rel). OUT 2 (2 data bytes): bit0 Off-Hook, bit1 Mute, bit2 Ring, bit3 Hold,
# bit4 Microphone, bit5 Ringer. Microphone shows with Mute, Ringer with Ring.
JABRA = Model(
    descriptor="jabra_evolve_link_ms",
    hook_off="020100",
    mute="020500",
    flash="020900",
    hook_on="020000",
    plug=["020000"],
    ring=["022400"],  # Ring 0x04 | Ringer 0x20
    answered=["020100"],
    hold_forced=["021b00"],  # Off-Hook 0x01 | Mute 0x02 | Hold 0x08 | Microphone 0x10
    resume_unforced=["020100"],
    muted=["021300"],
    unmuted=["020100"],
    on_hook=["020000"],
    ring_owed=["022400"],
)

# Poly Blackwire C5220: one output report per LED, 1 data byte each. IN 8: bit0 Phone Mute
# (Rel), bit1 Hook Switch (Abs), bit2 Flash (Abs). OUT 9 Mute, 0x17 Off-Hook, 0x18 Ring,
# 0x20 Hold, 0x2a On-Line (shows with Off-Hook). Off-Hook goes first when set, last when
# cleared; the others by report ID; only the reports that change (or answer a request).
C5220 = Model(
    descriptor="poly_blackwire_c5220",
    hook_off="0802",
    mute="0803",
    flash="0806",
    hook_on="0800",
    plug=["0900", "1800", "2000", "2a00", "1700"],
    ring=["1801"],
    answered=["1701", "1800", "2a01"],
    hold_forced=["0901", "2001"],
    resume_unforced=["0900", "2000"],
    muted=["0901"],
    unmuted=["0900"],
    on_hook=["2a00", "1700"],
    ring_owed=["1801", "1700"],
)

# EPOS IMPACT DW: IN 2 / OUT 3, 1 data byte each. IN 2: bit2 Hook Switch (Abs), bit3 Flash
# (Rel), bit5 Phone Mute (Rel). OUT 3: bit0 Ringer, bit1 Off-Hook, bit2 Microphone, bit3 Ring,
# bit4 Mute, bit5 On-Line, bit6 Hold.
EPOS = Model(
    descriptor="epos_impact_dw",
    hook_off="0204",
    mute="0224",
    flash="020c",
    hook_on="0200",
    plug=["0300"],
    ring=["0309"],  # Ringer 0x01 | Ring 0x08
    answered=["0322"],  # Off-Hook 0x02 | On-Line 0x20
    hold_forced=["0376"],  # + Microphone 0x04 | Mute 0x10 | Hold 0x40
    resume_unforced=["0322"],
    muted=["0336"],
    unmuted=["0322"],
    on_hook=["0300"],
    ring_owed=["0309"],
)

# Yealink WH66: report 2 both ways, 2 data bytes. IN 2: bit0 Hook Switch (Abs), bit2 Phone
# Mute (Rel), bit3 Flash (Rel). OUT 2: bit0 Off-Hook, bit1 Mute, bit2 Ring, bit3 Hold,
# bit4 Microphone, bit5 Ringer.
YEALINK = Model(
    descriptor="yealink_wh66",
    hook_off="020100",
    mute="020500",
    flash="020900",
    hook_on="020000",
    plug=["020000"],
    ring=["022400"],
    answered=["020100"],
    hold_forced=["021b00"],
    resume_unforced=["020100"],
    muted=["021300"],
    unmuted=["020100"],
    on_hook=["020000"],
    ring_owed=["022400"],
)

MODELS = [JABRA, C5220, EPOS, YEALINK]
# What the script follows of the seat's events.
FOLLOWED = ("call.", "mute.", "bridge.")


class Script:
    """One run of the scenario; `log` lists what was checked, for the caller's report."""

    def __init__(
        self,
        model: Model,
        pc: Endpoint,
        headset: Endpoint,
        seat: SeatView,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model, self.pc, self.headset, self.seat = model, pc, headset, seat
        self.timeout = timeout
        self.clock = clock
        self.log: list[str] = []
        self._seen = 0  # followed events already checked

    # --- the checks ----------------------------------------------------------------------

    def headset_gets(self, expected: list[str], step: str) -> None:
        got = [self.headset.recv(self.timeout).hex() for _ in expected]
        assert got == expected, f"{step}: the headset got LED reports {got}, expected {expected}"
        self.log.append(f"{step}: headset {' '.join(got) or '-'}")

    def pc_gets(self, expected: list[str], step: str) -> None:
        got = [self.pc.recv(self.timeout).hex() for _ in expected]
        assert got == expected, f"{step}: the PC got input reports {got}, expected {expected}"
        self.log.append(f"{step}: PC {' '.join(got)}")

    def _followed(self) -> list[dict[str, Any]]:
        return [e for e in self.seat.events() if e["type"].startswith(FOLLOWED)]

    def events(self, step: str, *expected: tuple[str, dict[str, Any]]) -> None:
        """The next followed events are these types, each with at least these data fields."""
        want = len(expected)
        deadline = self.clock() + self.timeout
        new = self._followed()[self._seen :]
        while len(new) < want and self.clock() < deadline:
            time.sleep(0.01)  # polling the subscriber's list, not waiting for a timer
            new = self._followed()[self._seen :]
        types = [e["type"] for e in new]
        assert types[:want] == [kind for kind, _ in expected], (
            f"{step}: seat events {types}, expected {[kind for kind, _ in expected]}"
        )
        for event, (kind, fields) in zip(new, expected, strict=False):
            data = event["data"]
            assert {k: data.get(k) for k in fields} == fields, f"{step}: {kind} data {data}"
        self._seen += want
        self.log.append(f"{step}: events {' '.join(types[:want])}")

    def state(
        self, step: str, call: str, muted: bool, by: str | None = None, pc_connected: bool = True
    ) -> None:
        expected = (call, muted, by, pc_connected, "seen")
        deadline = self.clock() + self.timeout
        while True:
            snap = self.seat.state()
            bridge = snap.get("bridge") or {}
            now = (
                snap.get("call", {}).get("state"),
                snap.get("mute", {}).get("muted"),
                snap.get("mute", {}).get("by") if by is not None else None,
                bridge.get("pc_connected"),
                bridge.get("led_writes"),
            )
            if now == expected:
                break
            if self.clock() >= deadline:
                raise AssertionError(
                    f"{step}: state (call, muted, by, bridge.pc_connected, bridge.led_writes) "
                    f"{now}, expected {expected}"
                )
            time.sleep(0.01)

    # --- the two sides ---------------------------------------------------------------------

    def softphone(self, report: str) -> None:
        self.pc.send(bytes.fromhex(report))

    def agent(self, *reports: str) -> None:
        for report in reports:
            self.headset.send(bytes.fromhex(report))

    # --- the scenario -----------------------------------------------------------------------

    def begin(self) -> None:
        """Wait for the seat to see the PC (state `bridge.pc_connected`); the events until
        then are not the scenario's."""
        deadline = self.clock() + self.timeout
        while not (self.seat.state().get("bridge") or {}).get("pc_connected"):
            if self.clock() >= deadline:
                raise AssertionError(f"the seat never saw the PC: state {self.seat.state()}")
            time.sleep(0.01)
        self._seen = len(self._followed())
        self.log.append("begin: the seat sees the PC")

    def run(self) -> list[str]:
        m = self.model
        host = {"source": "host"}
        self.begin()

        self.softphone(PC_RING)
        self.headset_gets(m.ring, "PC rings")
        self.events("PC rings", ("call.ringing", {"source": "host", "call": 1}))
        self.state("PC rings", "ringing", False)

        self.agent(m.hook_off)
        self.pc_gets([IN_HOOK_OFF], "agent lifts")
        self.softphone(PC_OFF_HOOK)
        self.headset_gets(m.answered, "PC answers")
        self.events("PC answers", ("call.answered", host))
        self.state("PC answers", "active", False)

        self.softphone(PC_HOLD)
        self.headset_gets(m.hold_forced, "PC holds")
        self.events("PC holds", ("call.hold", host), ("mute.on", {"by": "hold_policy"}))
        self.state("PC holds", "held", True, "hold_policy")

        self.softphone(PC_OFF_HOOK)
        self.headset_gets(m.resume_unforced, "PC resumes")
        self.events("PC resumes", ("call.resumed", host), ("mute.off", {"by": "hold_policy"}))
        self.state("PC resumes", "active", False)

        self.softphone(PC_MUTED)
        self.headset_gets(m.muted, "PC mutes")
        self.events("PC mutes", ("mute.on", {"by": "host"}))
        self.state("PC mutes", "active", True, "host")

        self.agent(m.mute, m.hook_off)  # press and release
        self.pc_gets([IN_MUTE, IN_HOOK_OFF], "agent presses mute")
        self.headset_gets(m.unmuted, "agent presses mute")  # the box unmutes at once
        self.events("agent presses mute", ("mute.off", {"by": "agent"}))
        self.softphone(PC_OFF_HOOK)  # the softphone follows the press
        self.state("agent presses mute", "active", False)

        self.agent(m.flash, m.hook_off)
        self.pc_gets([IN_FLASH, IN_HOOK_OFF], "agent presses flash")

        self.softphone(PC_IDLE)
        self.headset_gets(m.on_hook, "PC hangs up")
        self.events("PC hangs up", ("call.ended", {"source": "host", "reason": "hangup"}))
        self.state("PC hangs up", "idle", False)
        self.agent(m.hook_on)  # the headset follows the LED: hook 0, passed on as a state
        self.pc_gets([IN_HOOK_ON], "the headset follows")

        self.softphone(PC_RING)
        self.headset_gets(m.ring_owed, "PC rings again")
        self.agent(m.hook_off)
        self.pc_gets([IN_HOOK_OFF], "agent lifts again")
        self.softphone(PC_OFF_HOOK)
        self.headset_gets(m.answered, "PC answers again")
        self.agent(m.hook_on)
        self.pc_gets([IN_HOOK_ON], "agent hangs up")
        self.softphone(PC_IDLE)
        self.headset_gets(m.on_hook, "PC ends the call")
        self.events(
            "second call",
            ("call.ringing", {"source": "host", "call": 2}),
            ("call.answered", host),
            ("call.ended", {"source": "host", "reason": "hangup"}),
        )
        self.state("second call", "idle", False)
        return self.log


class MqttSeat:
    """`SeatView` over MQTT: everything a seat publishes under `seatbox/v1/<site>/<seat>/`
    (events in order, the latest state). paho is imported here, not with the module."""

    def __init__(self, host: str, port: int, site: str, seat: str, timeout: float = 10.0) -> None:
        import json
        import threading

        import paho.mqtt.client as mqtt

        self.base = f"seatbox/v1/{site}/{seat}"
        self._json = json
        self._events: list[dict[str, Any]] = []
        self._state: dict[str, Any] = {}
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"script-{seat}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{self.base}/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not subscribed.wait(timeout):
            self.stop()
            raise AssertionError(f"could not subscribe to {self.base}/# on {host}:{port}")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        with self._lock:
            if msg.topic == f"{self.base}/event":
                self._events.append(self._json.loads(msg.payload))
            elif msg.topic == f"{self.base}/state":
                self._state = self._json.loads(msg.payload)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state

    def types(self, prefix: str = "") -> list[str]:
        return [e["type"] for e in self.events() if e["type"].startswith(prefix)]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events() if e["type"] == kind]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run(
    model: Model, pc: Endpoint, headset: Endpoint, seat: SeatView, timeout: float = 10.0
) -> list[str]:
    """The whole scenario; AssertionError names the step and what differed."""
    return Script(model, pc, headset, seat, timeout).run()
