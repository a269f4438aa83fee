"""A bridged seat on this machine: the softphone's LEDs -> the seat -> the real headset's own
LED reports, the headset's buttons -> the seat -> the PC's canonical input reports.

This machine's kernel has no USB gadget (no configfs, no /dev/hidgN), so the PC's end of
/dev/hidgN is a SOCK_SEQPACKET socket pair handed to the real `HidgDevice` through its
`opener` (it keeps report boundaries as f_hid does: one report per read and write), and the
gadget's controller state is a plain directory standing in for configfs and
/sys/class/udc. Everything else is the real code path: `build_seat` wiring the relay tap, the
`GadgetBridge` thread, the seat core, the real hidraw headset driver (its node another socket
pair, tests/hid_support.py) and a real Mosquitto the test reads state and events from. The
authoritative end-to-end run is the kernel tier (tests/guest/: uhid headsets and the gadget on
dummy_hcd), which plays the same scenario (tests/bridge_script.py).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bridge_script import MODELS, Model, MqttSeat, Script
from hid_support import FakeBus, input_report, layout, recv
from schema_support import validate
from support import Mosquitto, mosquitto, wait_until

from drivers.gadget.bridge import STATUS_FILE_NAME, BridgeMonitor, GadgetBridge
from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR
from drivers.hid.hidraw import HidrawHeadset
from drivers.hid.layout import layout_from_bytes
from drivers.hid.protocol import ProtocolSettings
from drivers.host.events import BridgeStatus
from edge.api.models import parse_event, parse_state
from edge.cli.headset_cmd import BridgedWatch
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
from edge.shell.runtime import Devices, Runtime
from edge.shell.wiring import build_devices, build_seat

SITE, SEAT = "itest", "seat-bridge"
WAIT = 10.0
UDC = "dummy_udc.0"


class PcNodes:
    """Opens "/dev/hidg0": each open a new SOCK_SEQPACKET pair, the seat's end non-blocking as
    the relay opens the node; the test keeps the softphone's end. `present` False: ENOENT."""

    def __init__(self) -> None:
        self.present = True
        self.ends: queue.Queue[socket.socket] = queue.Queue()
        self.opened = 0

    def open(self, path: str) -> int:
        if not self.present:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        seat, softphone = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        seat.setblocking(False)
        self.ends.put(softphone)
        self.opened += 1
        return seat.detach()


class SocketEnd:
    """`bridge_script.Endpoint` over one socket end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def recv(self, timeout: float) -> bytes:
        return recv(self.sock, timeout)


class FakeGadget:
    """configfs and /sys/class/udc as plain directories: the gadget bound to UDC, whose
    `state` the test sets (configured: the PC uses it)."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "usb_gadget"
        self.udc_class = tmp / "udc"
        (self.root / "seatbox").mkdir(parents=True)
        (self.root / "seatbox" / "UDC").write_text(f"{UDC}\n")
        (self.udc_class / UDC).mkdir(parents=True)
        self.set_state("configured")

    def set_state(self, state: str) -> None:
        # Replaced whole, as sysfs shows it: the bridge never reads a half-written file.
        tmp = self.udc_class / "state.tmp"
        tmp.write_text(f"{state}\n")
        os.replace(tmp, self.udc_class / UDC / "state")


@dataclass
class Bridged:
    runtime: Runtime
    bridge: GadgetBridge
    nodes: PcNodes
    gadget: FakeGadget
    bus: FakeBus
    watcher: MqttSeat
    pc: SocketEnd
    headset: SocketEnd


def seat_config(
    tmp: Path, headset: str = "/dev/hidraw7", hid_device: str = "/dev/hidg0"
) -> SeatConfig:
    return SeatConfig(
        seat=SeatSection(site=SITE, id=SEAT),
        headset=HeadsetSection(device=headset, echo_window=0.0, debounce_window=0.0),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
        call=CallSection(sources=["bridge"]),
        bridge=BridgeSection(hid_device=hid_device),
        storage=StorageSection(state_dir=str(tmp)),
    )


@contextmanager
def running(runtime: Runtime) -> Iterator[None]:
    thread = threading.Thread(target=runtime.run, name="seat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        runtime.stop()
        runtime.sink(Tick())
        thread.join(10)
        assert not thread.is_alive()


@contextmanager
def bridged_seat(tmp: Path, model: Model, led_wait_s: float = 60.0) -> Iterator[Bridged]:
    with mosquitto(tmp) as broker:
        yield from _bridged(tmp, broker, model, led_wait_s)


def _bridged(tmp: Path, broker: Mosquitto, model: Model, led_wait_s: float) -> Iterator[Bridged]:
    config = seat_config(tmp)
    gadget = FakeGadget(tmp)
    nodes = PcNodes()
    bridge = GadgetBridge(
        config.bridge.hid_device,
        root=gadget.root,
        udc_class=gadget.udc_class,
        opener=nodes.open,
        led_wait_s=led_wait_s,
        poll=0.05,
        status_file=tmp / STATUS_FILE_NAME,
    )
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
    watcher = MqttSeat("127.0.0.1", broker.port, SITE, SEAT)
    runtime = build_seat(
        config,
        load_profile("default"),
        devices=Devices(headset=headset, host=bridge),
        clock=Clock(),
        broker_url=broker.url,
    )
    try:
        with running(runtime):
            device = SocketEnd(bus.ends.get(timeout=WAIT))
            assert [device.recv(WAIT).hex() for _ in model.plug] == model.plug
            softphone = SocketEnd(nodes.ends.get(timeout=WAIT))
            yield Bridged(runtime, bridge, nodes, gadget, bus, watcher, softphone, device)
    finally:
        watcher.stop()


@pytest.mark.parametrize("model", MODELS, ids=[m.descriptor for m in MODELS])
def test_a_softphone_and_an_agent_through_the_bridge(tmp_path: Path, model: Model) -> None:
    with bridged_seat(tmp_path, model) as seat:
        wait_until(lambda: seat.watcher.types("bridge.") == ["bridge.pc_connected"], WAIT, "PC")
        assert f"{UDC} configured" in seat.watcher.of("bridge.pc_connected")[0]["detail"]
        wait_until(lambda: "bridge" in seat.watcher.state(), WAIT, "state.bridge")
        assert seat.watcher.state()["bridge"]["led_writes"] == "waiting"
        log = Script(model, seat.pc, seat.headset, seat.watcher, timeout=WAIT).run()
        assert len(log) > 20
        # Nothing stray either way: no more LED reports, no more input reports.
        seat.headset.sock.settimeout(0.2)
        seat.pc.sock.settimeout(0.2)
        for end in (seat.headset.sock, seat.pc.sock):
            with pytest.raises(TimeoutError):
                end.recv(64)
        status = json.loads((tmp_path / STATUS_FILE_NAME).read_text())
        assert status["pc_connected"] is True and status["led_writes"] == "seen"
        assert status["last_led"] is not None
        check_payloads(seat.watcher)


@pytest.mark.parametrize("model", MODELS, ids=[m.descriptor for m in MODELS])
def test_the_headsets_volume_buttons_reach_the_pc(tmp_path: Path, model: Model) -> None:
    """Volume up, flash, volume down on the headset: the PC reads the Consumer report's press
    and release for each volume button, in order with the telephony report's flash. The
    expected bytes come from the parsed descriptors (the headset's and the canonical one)."""
    lay = layout(model.descriptor)
    pc = layout_from_bytes(CANONICAL_DESCRIPTOR)
    volume_id = pc.inputs["volume_up"].report_id
    telephony_id = pc.inputs["flash"].report_id

    def headset(control: str, value: int) -> bytes:
        item = lay.inputs[control]
        assert item.array_usages is None  # these four declare one bit per button
        return input_report(lay, item.report_id, **{control: value})

    with bridged_seat(tmp_path, model) as seat:
        wait_until(lambda: "bridge.pc_connected" in seat.watcher.types("bridge."), WAIT, "PC")
        for control in ("volume_up", "flash", "volume_down"):
            seat.headset.send(headset(control, 1))
            seat.headset.send(headset(control, 0))
        expected = [
            input_report(pc, volume_id, volume_up=1),
            input_report(pc, volume_id),
            input_report(pc, telephony_id, flash=1),
            input_report(pc, telephony_id),
            input_report(pc, volume_id, volume_down=1),
            input_report(pc, volume_id),
        ]
        assert [seat.pc.recv(WAIT).hex() for _ in expected] == [r.hex() for r in expected]
        assert expected[0] != expected[4] and expected[0][0] != expected[2][0]
        # Nothing stray: no other report to the PC, no LED report to the headset.
        for end in (seat.headset.sock, seat.pc.sock):
            end.settimeout(0.2)
            with pytest.raises(TimeoutError):
                end.recv(64)


def check_payloads(watcher: MqttSeat) -> None:
    """What the bridged seat published is valid v1 (docs/schemas) and parses for the floor."""
    state = watcher.state()
    validate("state", state)
    assert parse_state(json.dumps(state).encode()).bridge is not None
    for event in watcher.events():
        validate("event", event)
        parse_event(json.dumps(event).encode())


def test_pc_states_silent_softphone_malformed_reports_and_replug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.gadget.bridge")
    model = MODELS[0]
    with bridged_seat(tmp_path, model, led_wait_s=0.3) as seat:
        w = seat.watcher

        def bridge_state() -> dict[str, Any]:
            return dict(w.state().get("bridge") or {})

        # Connected, and the softphone never writes an LED report.
        wait_until(lambda: "bridge.no_led_writes" in w.types(), WAIT, "no_led_writes")
        assert w.types("bridge.") == ["bridge.pc_connected", "bridge.no_led_writes"]
        assert w.of("bridge.no_led_writes") == [{"after_s": 0.3}]
        wait_until(lambda: bridge_state().get("led_writes") == "missing", WAIT, "missing")
        # A softphone that does not drive the headset: the headset acts alone (the box answers
        # it), and the PC still gets the requests.
        seat.headset.send(bytes.fromhex(model.hook_off))
        assert seat.headset.recv(WAIT).hex() == "020100"
        assert seat.pc.recv(WAIT).hex() == "0101"
        wait_until(lambda: w.types("call.") == ["call.started"], WAIT, "call.started")
        assert w.of("call.started")[-1]["source"] == "headset"
        seat.headset.send(bytes.fromhex(model.hook_on))
        assert seat.headset.recv(WAIT).hex() == "020000"
        assert seat.pc.recv(WAIT).hex() == "0100"
        wait_until(lambda: w.types("call.")[-1:] == ["call.ended"], WAIT, "call.ended")

        # Malformed output reports: ignored, logged once, one event, shown in state.
        seat.pc.send(bytes.fromhex("0301"))
        seat.pc.send(bytes.fromhex("030100"))
        seat.pc.send(bytes.fromhex("0301"))
        wait_until(lambda: "bridge.bad_report" in w.types(), WAIT, "bad_report")
        detail = w.of("bridge.bad_report")[0]["detail"]
        assert "output report of 1 bytes" not in detail and "report ID 3" in detail
        wait_until(lambda: bridge_state().get("bad_report") == detail, WAIT, "state bad_report")
        # A good report after them still works.
        seat.pc.send(bytes.fromhex("0202"))
        assert seat.headset.recv(WAIT).hex() == model.ring[0]
        wait_until(lambda: bridge_state().get("led_writes") == "seen", WAIT, "seen")
        warnings = [r for r in caplog.records if "output report ignored" in r.getMessage()]
        assert len(warnings) == 2  # one per kind (wrong ID, wrong length), not per report
        assert w.types("bridge.").count("bridge.bad_report") == 1
        seat.pc.send(bytes.fromhex("0200"))  # the softphone ends the ringing
        wait_until(lambda: w.state().get("call", {}).get("state") == "idle", WAIT, "idle")
        assert seat.headset.recv(WAIT).hex() == "020000"

        # The PC unplugged (controller not configured): the seat says so, the headset works alone.
        seat.gadget.set_state("not attached")
        wait_until(lambda: "bridge.pc_disconnected" in w.types(), WAIT, "pc_disconnected")
        assert "'not attached'" in w.of("bridge.pc_disconnected")[0]["detail"]
        wait_until(lambda: bridge_state().get("pc_connected") is False, WAIT, "state")
        seat.headset.send(bytes.fromhex(model.hook_off))
        assert seat.headset.recv(WAIT).hex() == "020100"  # the box answers the headset itself
        wait_until(lambda: "call.started" in w.types(), WAIT, "call.started")
        assert w.of("call.started")[-1]["source"] == "headset"
        seat.headset.send(bytes.fromhex(model.hook_on))
        assert seat.headset.recv(WAIT).hex() == "020000"
        wait_until(lambda: w.types("call.")[-1:] == ["call.ended"], WAIT, "call.ended")

        # Plugged in again: connected, waiting for LED writes again.
        seat.gadget.set_state("configured")
        wait_until(lambda: w.types("bridge.")[-1:] == ["bridge.pc_connected"], WAIT, "again")

        # The node goes away (gadget removed) and comes back (rebuilt): reopened.
        seat.nodes.present = False
        seat.gadget.set_state("not attached")
        seat.pc.sock.close()
        wait_until(lambda: w.types("bridge.")[-1:] == ["bridge.pc_disconnected"], WAIT, "gone")
        seat.nodes.present = True
        seat.gadget.set_state("configured")
        softphone = seat.nodes.ends.get(timeout=WAIT)
        wait_until(lambda: w.types("bridge.")[-1:] == ["bridge.pc_connected"], WAIT, "replug")
        assert seat.nodes.opened == 2
        softphone.send(bytes.fromhex("0202"))
        assert seat.headset.recv(WAIT).hex() == model.ring[0]
        wait_until(lambda: w.types("call.")[-1:] == ["call.ringing"], WAIT, "ringing")
        assert seat.runtime.state.facts.bridge is not None  # the seat never stopped

        # The headset unplugged mid-call and plugged back: it is told the whole state again,
        # and its requests reach the PC again.
        softphone.send(bytes.fromhex("0201"))
        assert seat.headset.recv(WAIT).hex() == "020100"
        wait_until(lambda: w.types("call.")[-1:] == ["call.answered"], WAIT, "answered")
        seat.headset.sock.close()
        seat.headset = SocketEnd(seat.bus.ends.get(timeout=WAIT))
        assert seat.headset.recv(WAIT).hex() == "020100"
        wait_until(
            lambda: w.types("headset.")[-2:] == ["headset.disconnected", "headset.connected"],
            WAIT,
            "replug",
        )
        seat.headset.send(bytes.fromhex(model.hook_off))  # its first report: hook 1
        assert recv(softphone, WAIT).hex() == "0101"
        seat.headset.send(bytes.fromhex(model.hook_on))  # the agent hangs up
        assert recv(softphone, WAIT).hex() == "0100"
        softphone.send(bytes.fromhex("0200"))
        assert seat.headset.recv(WAIT).hex() == "020000"
        wait_until(lambda: w.types("call.")[-1:] == ["call.ended"], WAIT, "ended")
        assert w.of("call.ended")[-1]["source"] == "host"
        check_payloads(w)


def test_a_pc_that_cannot_take_reports_is_a_state_not_a_crash(tmp_path: Path) -> None:
    """The softphone's end closed under a write: the press is dropped, the PC is disconnected."""
    model = MODELS[0]
    with bridged_seat(tmp_path, model) as seat:
        w = seat.watcher
        wait_until(lambda: w.types("bridge.") == ["bridge.pc_connected"], WAIT, "connected")
        seat.nodes.present = False
        seat.pc.sock.close()  # (the udc state file still says configured)
        seat.headset.send(bytes.fromhex(model.hook_off))
        wait_until(lambda: "bridge.pc_disconnected" in w.types(), WAIT, "pc_disconnected")
        assert w.of("bridge.pc_disconnected")[0]["detail"]
        assert seat.runtime.state.facts.bridge is not None
        assert not seat.runtime.state.facts.bridge.pc_connected


def test_build_seat_on_a_machine_without_a_gadget_runs_and_says_so(tmp_path: Path) -> None:
    """`[call] sources = ["bridge"]` from the config alone (real wiring, hid_device auto) on
    this machine, which has no gadget: the seat runs and publishes the PC as not connected."""
    config = seat_config(tmp_path, headset="none", hid_device="auto")
    devices = build_devices(config)
    assert isinstance(devices.host, GadgetBridge)
    assert devices.host.pc.hid_device == "auto"
    assert devices.host.status_file == tmp_path / STATUS_FILE_NAME
    with mosquitto(tmp_path) as broker:
        watcher = MqttSeat("127.0.0.1", broker.port, SITE, SEAT)
        runtime = build_seat(
            config, load_profile("default"), devices=devices, clock=Clock(), broker_url=broker.url
        )
        try:
            with running(runtime):
                wait_until(lambda: "bridge.pc_disconnected" in watcher.types(), WAIT, "event")
                detail = watcher.of("bridge.pc_disconnected")[0]["detail"]
                assert "not built or not bound" in detail or "no gadget" in detail
                wait_until(lambda: "bridge" in watcher.state(), WAIT, "state")
                part = watcher.state()["bridge"]
                assert part["pc_connected"] is False and part["led_writes"] == "waiting"
            status = json.loads((tmp_path / STATUS_FILE_NAME).read_text())
            assert status["pc_connected"] is False and status["detail"] == detail
        finally:
            watcher.stop()


def test_the_monitor_decides_by_time_given() -> None:
    monitor = BridgeMonitor(led_wait_s=60.0)
    first = monitor.changed(0.0)
    assert first == BridgeStatus(False, "not looked at yet", "waiting", 60.0, "")
    assert monitor.changed(1.0) is None
    monitor.connected(10.0, "configured")
    assert monitor.next_check() == 70.0
    assert monitor.changed(69.9) == BridgeStatus(True, "configured", "waiting", 60.0, "")
    assert monitor.changed(70.0) == BridgeStatus(True, "configured", "missing", 60.0, "")
    monitor.malformed(71.0, "report ID 3")
    monitor.malformed(72.0, "length 5")
    monitor.led_report(73.0)
    assert monitor.changed(73.0) == BridgeStatus(True, "configured", "seen", 60.0, "report ID 3")
    assert monitor.next_check() is None
    monitor.disconnected(80.0, "unplugged")
    monitor.connected(90.0, "configured")  # a new connection: waiting again, no bad report
    assert monitor.changed(90.0) == BridgeStatus(True, "configured", "waiting", 60.0, "")


class Lines(io.StringIO):
    """`watch`'s output, written by the bridge's and the headset's threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)

    def lines(self) -> list[str]:
        with self._lock:
            return [line.split(" ", 1)[1] for line in self.getvalue().splitlines()]


def test_headset_watch_shows_both_sides_of_a_bridged_seat(tmp_path: Path) -> None:
    """`seatbox headset watch --bridge` without a seat: the PC's LED reports shown on the
    headset, the headset's requests sent to the PC, every report printed."""
    model = MODELS[0]
    gadget = FakeGadget(tmp_path)
    nodes = PcNodes()
    bridge = GadgetBridge(
        "/dev/hidg0", root=gadget.root, udc_class=gadget.udc_class, opener=nodes.open, poll=0.05
    )
    bus = FakeBus(model.descriptor)
    headset = HidrawHeadset(
        bus.candidate.path,
        ProtocolSettings(echo_window=0.0, debounce_window=0.0),
        read_timeout=0.05,
        enumerate=bus.enumerate,
        opener=bus.open,
        hotplug=False,
    )
    out = Lines()
    watch = BridgedWatch(headset, bridge, out)
    watch.start()
    try:
        device = SocketEnd(bus.ends.get(timeout=WAIT))
        assert device.recv(WAIT).hex() == "020000"  # the whole (idle) state on plug
        softphone = SocketEnd(nodes.ends.get(timeout=WAIT))
        softphone.send(bytes.fromhex("0202"))
        assert device.recv(WAIT).hex() == model.ring[0]
        device.send(bytes.fromhex(model.hook_off))
        assert softphone.recv(WAIT).hex() == "0101"
        wait_until(lambda: any("input report" in line for line in out.lines()), WAIT, "printed")
    finally:
        watch.stop()
    lines = out.lines()
    assert (
        f"PC connected: controller {UDC} configured by the PC; softphone LED writes waiting"
        in lines
    )
    assert lines.index("PC -> output report 02 02") < lines.index("PC LEDs: ring")
    assert "headset <- LEDs 02 24 00" in lines
    assert "headset -> HookSwitch(off_hook=True)" in lines
    assert "PC <- input report 01 01 (sent)" in lines
