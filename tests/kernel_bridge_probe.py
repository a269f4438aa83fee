"""Run in the QEMU guest by tests/test_gadget_guest.py: the bridged seat on one kernel.

The gadget is up on dummy_hcd (the job brought it up: HID only, audio none), so the PC's side
is the gadget's hidraw node on the same kernel; the real headset is a uhid device from a real
descriptor (tests/uhid_headset.py); the seat is the project's own (`build_devices` +
`build_seat` from a `[call] sources = ["bridge"]` config, `[headset] device` the uhid node),
publishing to the Mosquitto the job started in the guest. The scenario is
tests/bridge_script.py: a scripted softphone on the PC's hidraw, an agent pressing the
headset's buttons, each step asserted (LED bytes at the headset, input reports at the PC, the
seat's events and state). Then, for the headsets with one LED report, the headset unplugged
mid-call and plugged back (`replug_mid_call`).

    python3 bridge_probe.py [--rounds N] [MODEL...]   # descriptor names of bridge_script.MODELS

Prints `BRIDGE <model> <json>` per model: ok or the failed step, the script's log, what the
headset got on plug, the seat's events and last state, and the timings of every report.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge_script import (
    IN_HOOK_OFF,
    IN_HOOK_ON,
    MODELS,
    PC_IDLE,
    PC_OFF_HOOK,
    PC_RING,
    Model,
    MqttSeat,
    Script,
)
from uhid_headset import UhidHeadset, wait_hidraw

from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR
from edge.core.clock import Clock
from edge.core.inputs import Tick
from edge.shell.config import (
    AudioSection,
    BridgeSection,
    CallSection,
    HeadsetSection,
    RadarSection,
    SeatConfig,
    SeatSection,
    StorageSection,
    load_profile,
)
from edge.shell.wiring import build_devices, build_seat

BROKER_PORT = 1883
SITE = "kernel"
WAIT = 10.0
HID_DATA = Path(__file__).resolve().parent / "hid"


def wait_broker(timeout: float) -> None:
    """Until the Mosquitto the job started just before this process takes connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", BROKER_PORT), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class PcEnd:
    """The softphone's end: the gadget's hidraw node on the PC side (report ID first)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.trace: list[tuple[float, str, str]] = []  # (time, "sent"|"got", hex)

    def send(self, data: bytes) -> None:
        self.trace.append((time.monotonic(), "sent", data.hex()))
        os.write(self.fd, data)

    def recv(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no input report on the PC's hidraw within {timeout} s")
        data = os.read(self.fd, 64)
        self.trace.append((time.monotonic(), "got", data.hex()))
        return data

    def stray(self, timeout: float) -> list[str]:
        got: list[str] = []
        while self.fd >= 0 and select.select([self.fd], [], [], timeout)[0]:
            got.append(os.read(self.fd, 64).hex())
        return got

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HeadsetEnd:
    """The headset's end: input reports in, LED reports out, through /dev/uhid."""

    def __init__(self, device: UhidHeadset) -> None:
        self.device = device
        self.taken = 0
        self.trace: list[tuple[float, str, str]] = []

    def send(self, data: bytes) -> None:
        self.trace.append((self.device.send_input(data), "sent", data.hex()))

    def recv(self, timeout: float) -> bytes:
        writes = self.device.wait_writes(self.taken + 1, timeout)
        if len(writes) <= self.taken:
            raise TimeoutError(f"no LED report at the headset within {timeout} s")
        write = writes[self.taken]
        self.taken += 1
        self.trace.append((write.at, "got", write.data.hex()))
        return write.data

    def stray(self, timeout: float) -> list[str]:
        self.device.pump(timeout)
        return [w.data.hex() for w in self.device.writes[self.taken :]]


def pc_hidraw() -> str:
    """The gadget's node on the PC side: the hidraw whose descriptor is the canonical one."""
    for entry in sorted(Path("/sys/class/hidraw").glob("hidraw*")):
        if (entry / "device" / "report_descriptor").read_bytes() == CANONICAL_DESCRIPTOR:
            return f"/dev/{entry.name}"
    raise RuntimeError("no hidraw node with the gadget's descriptor: is the gadget up?")


def wait_pc_hidraw(timeout: float = WAIT) -> str:
    """The gadget's PC-side node once the PC has enumerated it (after a re-plug it takes a
    moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pc_hidraw()
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling sysfs for the node, not waiting for a timer


def ids_of(name: str) -> tuple[int, int]:
    found = re.search(
        r"VID:PID ([0-9A-F]{4}):([0-9A-F]{4})", (HID_DATA / f"{name}.txt").read_text()
    )
    return (int(found.group(1), 16), int(found.group(2), 16)) if found else (0, 0)


def latencies(pc: PcEnd, headset: HeadsetEnd) -> dict[str, list[float]]:
    """ms from a softphone's LED write to the first LED report at the headset after it (none
    counted when the agent acts first), and from the agent's press (the first of the reports
    the agent sends back to back) to the first input report the PC reads after it."""
    timeline = sorted(
        [(t, "pc_" + kind) for t, kind, _ in pc.trace]
        + [(t, "headset_" + kind) for t, kind, _ in headset.trace]
    )
    led: list[float] = []
    button: list[float] = []
    led_from: float | None = None
    press_from: float | None = None
    for at, what in timeline:
        if what == "pc_sent":
            led_from = at
        elif what == "headset_got" and led_from is not None:
            led.append(round((at - led_from) * 1e3, 2))
            led_from = None
        elif what == "headset_sent":
            led_from = None
            if press_from is None:
                press_from = at
        elif what == "pc_got" and press_from is not None:
            button.append(round((at - press_from) * 1e3, 2))
            press_from = None
    return {"led_to_headset_ms": led, "button_to_pc_ms": button}


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {WAIT} s")
        time.sleep(0.01)  # polling what the subscriber received, not waiting for a timer


def replug_mid_call(script: Script, device: UhidHeadset, seat: MqttSeat) -> None:
    """After the script (for a headset with one LED report): a call answered by the
    softphone, the headset unplugged (UHID_DESTROY) and plugged back (UHID_CREATE2 on the same
    node): the seat says so, tells the headset the live call again, its hook reaches the PC
    again, and the softphone ends the call."""
    m = script.model

    def headset_events() -> list[str]:
        return [e["type"] for e in seat.events() if e["type"].startswith("headset.")]

    def last_call() -> dict[str, Any]:
        calls = [e for e in seat.events() if e["type"].startswith("call.")]
        return calls[-1] if calls else {"type": None, "data": {}}

    script.softphone(PC_RING)
    script.headset_gets(m.ring, "replug: PC rings")
    script.softphone(PC_OFF_HOOK)
    script.headset_gets(m.answered, "replug: PC answers")
    _wait(lambda: last_call()["type"] == "call.answered", "replug: no call.answered")
    device.destroy()
    _wait(lambda: headset_events()[-1:] == ["headset.disconnected"], "no headset.disconnected")
    script.log.append("replug: headset.disconnected")
    device.create()
    script.headset_gets(m.answered, "replug: the headset back, told the live call")
    _wait(
        lambda: headset_events()[-2:] == ["headset.disconnected", "headset.connected"],
        "no headset.connected after headset.disconnected",
    )
    script.agent(m.hook_off)  # its first report after the plug: hook 1, as the call is
    script.pc_gets([IN_HOOK_OFF], "replug: the headset's hook")
    script.agent(m.hook_on)
    script.pc_gets([IN_HOOK_ON], "replug: the agent hangs up")
    script.softphone(PC_IDLE)
    script.headset_gets(m.on_hook, "replug: PC ends the call")
    _wait(
        lambda: last_call()["type"] == "call.ended" and last_call()["data"]["source"] == "host",
        "replug: no call.ended from the host",
    )
    script.state("replug: PC ends the call", "idle", False)


GADGET_UDC = Path("/sys/kernel/config/usb_gadget/seatbox/UDC")
PC_REPLUG_MODEL = MODELS[0]  # one PC re-plug is enough: the PC's side is the same for all


def pc_nodes() -> list[str]:
    try:
        return [pc_hidraw()]
    except RuntimeError:
        return []


def plug_back(udc: str, attempts: int = 3) -> str:
    """Bind the gadget to `udc` again and return the PC's new node. Under emulation the PC's
    hub sometimes gives the port up (descriptor reads fail with -71, as after a soft
    disconnect); a person would pull the cable and plug it in again, and so does this, up to
    `attempts` times."""
    for attempt in range(attempts):
        GADGET_UDC.write_text(udc + "\n")
        try:
            return wait_pc_hidraw()
        except RuntimeError:
            if attempt + 1 == attempts:
                raise
            GADGET_UDC.write_text("\n")
    raise AssertionError("unreachable")


def pc_replug_mid_call(script: Script, seat: MqttSeat) -> None:
    """After the headset's re-plug (one model): a call answered by the softphone, then the
    PC's end unplugged and plugged back. The gadget is unbound from its controller and bound
    again, which the PC sees as the device leaving and coming back, as with the cable
    (dummy_hcd does not enumerate again after a soft disconnect: its port gives up). The seat
    says so, the call stays as it was, the softphone finds the box on a new node and re-syncs
    it, the agent's hang-up reaches the PC there, and the softphone ends the call."""
    m = script.model

    def bridge_events() -> list[str]:
        return [e["type"] for e in seat.events() if e["type"].startswith("bridge.")]

    def last_call() -> str | None:
        calls = [e["type"] for e in seat.events() if e["type"].startswith("call.")]
        return calls[-1] if calls else None

    script.softphone(PC_RING)
    script.headset_gets(m.ring, "pc replug: PC rings")
    script.softphone(PC_OFF_HOOK)
    script.headset_gets(m.answered, "pc replug: PC answers")
    _wait(lambda: last_call() == "call.answered", "pc replug: no call.answered")
    before = len(bridge_events())
    udc = GADGET_UDC.read_text().strip()
    GADGET_UDC.write_text("\n")  # the PC's end unplugged
    _wait(
        lambda: bridge_events()[before:] == ["bridge.pc_disconnected"],
        "pc replug: no bridge.pc_disconnected",
    )
    script.pc.close()  # type: ignore[attr-defined]
    script.log.append("pc replug: bridge.pc_disconnected")
    assert last_call() == "call.answered", "pc replug: the call did not stay as it was"
    script.state(
        "pc replug: the call stays while the PC is away", "active", False, pc_connected=False
    )
    _wait(lambda: not pc_nodes(), "pc replug: the PC did not see the box leave")
    node = plug_back(udc)
    _wait(
        lambda: bridge_events()[before:] == ["bridge.pc_disconnected", "bridge.pc_connected"],
        "pc replug: no bridge.pc_connected after the re-plug",
    )
    script.pc = PcEnd(node)
    script.log.append(f"pc replug: bridge.pc_connected, the PC's node {node}")
    script.softphone(PC_OFF_HOOK)  # a softphone re-syncs a headset that arrives mid-call
    # The LEDs it re-sends are the call's as the box kept it: nothing new either way.
    strays = script.headset.stray(0.3), script.pc.stray(0.3)  # type: ignore[attr-defined]
    assert strays == ([], []), f"pc replug: after the re-sync, headset/PC got {strays}"
    script.log.append("pc replug: the softphone re-syncs: nothing new either way")
    script.agent(m.hook_off)
    script.pc_gets([IN_HOOK_OFF], "pc replug: the agent's hook, on the new node")
    script.agent(m.hook_on)
    script.pc_gets([IN_HOOK_ON], "pc replug: the agent hangs up")
    script.softphone(PC_IDLE)
    script.headset_gets(m.on_hook, "pc replug: PC ends the call")
    _wait(lambda: last_call() == "call.ended", "pc replug: no call.ended")
    script.state("pc replug: PC ends the call", "idle", False)


def run_model(model: Model, index: int) -> dict[str, Any]:
    name = f"uhid {model.descriptor}"
    vendor, product = ids_of(model.descriptor)
    descriptor = bytes.fromhex((HID_DATA / f"{model.descriptor}.hex").read_text().strip())
    device = UhidHeadset(descriptor, name=name, vendor=vendor, product=product)
    out: dict[str, Any] = {}
    started = time.monotonic()
    device.create()
    node = wait_hidraw(name, True, WAIT)
    if node is None:
        raise RuntimeError(f"no hidraw node for {name}")
    seat_id = f"bridge-{index}"
    state_dir = tempfile.mkdtemp(prefix="seat-")
    config = SeatConfig(
        seat=SeatSection(site=SITE, id=seat_id),
        # The script presses faster than a person: no echo or debounce window.
        headset=HeadsetSection(device=node, echo_window=0.0, debounce_window=0.0),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
        call=CallSection(sources=["bridge"]),
        bridge=BridgeSection(hid_device="auto"),
        storage=StorageSection(state_dir=state_dir),
    )
    watcher = MqttSeat("127.0.0.1", BROKER_PORT, SITE, seat_id, timeout=WAIT)
    pc = PcEnd(wait_pc_hidraw())
    out["pc_stale"] = pc.stray(0.0)
    headset = HeadsetEnd(device)
    runtime = build_seat(
        config,
        load_profile("default"),
        devices=build_devices(config),
        clock=Clock(),
        broker_url=f"mqtt://127.0.0.1:{BROKER_PORT}",
    )
    thread = threading.Thread(target=runtime.run, name="seat", daemon=True)
    script = Script(model, pc, headset, watcher, timeout=WAIT)
    try:
        thread.start()
        out["plug"] = [headset.recv(WAIT).hex() for _ in model.plug]
        out["seat_ready_s"] = round(time.monotonic() - started, 2)
        t0 = time.monotonic()
        try:
            script.run()
            out["ok"] = True
        except (AssertionError, TimeoutError, OSError) as err:
            out["ok"] = False
            out["failed"] = f"{type(err).__name__}: {err}"
        out["script_s"] = round(time.monotonic() - t0, 2)
        out.update(latencies(pc, headset))
        if out["ok"] and len(model.plug) == 1:
            try:
                replug_mid_call(script, device, watcher)
                out["replug"] = "ok"
            except (AssertionError, TimeoutError, OSError) as err:
                out["ok"] = False
                out["replug"] = out["failed"] = f"{type(err).__name__}: {err}"
        if out["ok"] and model is PC_REPLUG_MODEL:
            try:
                pc_replug_mid_call(script, watcher)
                out["pc_replug"] = "ok"
            except (AssertionError, TimeoutError, OSError, RuntimeError) as err:
                out["ok"] = False
                out["pc_replug"] = out["failed"] = f"{type(err).__name__}: {err}"
                if not GADGET_UDC.read_text().strip():  # leave the next model a bound gadget
                    GADGET_UDC.write_text("dummy_udc.0\n")
            pc = script.pc  # the new node's, for the stray check and the close
        out["log"] = script.log
        out["stray_headset"] = headset.stray(0.2)
        out["stray_pc"] = pc.stray(0.2)
    finally:
        runtime.stop()
        runtime.sink(Tick())
        thread.join(10)
        out["seat_stopped"] = not thread.is_alive()
        out["events"] = watcher.events()
        out["state"] = watcher.state()
        watcher.stop()
        pc.close()
        device.close()
    return out


def main() -> int:
    print(f"BRIDGE-IMPORTED {Path('/proc/uptime').read_text().split()[0]}", flush=True)
    wait_broker(WAIT)
    args = sys.argv[1:]
    rounds = 1
    if args[:1] == ["--rounds"]:
        rounds, args = int(args[1]), args[2:]
    chosen = [m for m in MODELS if not args or m.descriptor in args]
    failed = 0
    index = 0
    for _ in range(rounds):
        for model in chosen:
            started = time.monotonic()
            try:
                result = run_model(model, index)
            except Exception as err:  # the guest's console must show what went wrong
                result = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            failed += not result.get("ok")
            result["seconds"] = round(time.monotonic() - started, 2)
            print(f"BRIDGE {model.descriptor} {json.dumps(result)}", flush=True)
            index += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
