"""The hidraw transport against a real fd pair framed like /dev/hidrawN (one report per read)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest
from hid_support import INFO, FakeBus, input_report, layout, recv
from support import wait_until

from drivers.hid.events import (
    HeadsetPlugged,
    HeadsetUnplugged,
    HookSwitch,
    LedState,
    PhoneMute,
)
from drivers.hid.hidraw import HidrawHeadset
from drivers.hid.protocol import ProtocolSettings


@pytest.fixture
def jabra() -> Iterator[tuple[HidrawHeadset, FakeBus, queue.Queue[object]]]:
    bus = FakeBus("jabra_evolve_link_ms")
    events: queue.Queue[object] = queue.Queue()
    headset = HidrawHeadset(
        "auto",
        ProtocolSettings(echo_window=0.0),
        read_timeout=0.05,
        reconnect_min=0.01,
        reconnect_max=0.05,
        enumerate=bus.enumerate,
        opener=bus.open,
        hotplug=False,
    )
    headset.start(events.put)
    yield headset, bus, events
    headset.stop()


def test_plug_answer_mute_and_disconnect_mid_read(
    jabra: tuple[HidrawHeadset, FakeBus, queue.Queue[object]],
) -> None:
    headset, bus, events = jabra
    lay = layout("jabra_evolve_link_ms")
    device = bus.ends.get(timeout=5)
    assert events.get(timeout=5) == HeadsetPlugged(INFO)
    assert headset.info() == INFO
    assert recv(device) == bytes.fromhex("020000")  # whole LED state on plug

    device.send(input_report(lay, 2, hook_switch=1))
    assert events.get(timeout=5) == HookSwitch(off_hook=True)
    headset.write_leds(LedState(off_hook=True))
    assert recv(device) == bytes.fromhex("020100")

    device.send(input_report(lay, 2, hook_switch=1, phone_mute=1))
    assert events.get(timeout=5) == PhoneMute()
    headset.write_leds(LedState(off_hook=True, mute=True))
    assert recv(device) == bytes.fromhex("021300")

    device.send(b"\x02")  # malformed: logged, the reader goes on
    device.send(bytes([0x04, 0x01, 0x00]))  # vendor report: ignored
    device.send(input_report(lay, 2, hook_switch=0))
    assert events.get(timeout=5) == HookSwitch(off_hook=False)

    bus.present = False
    device.close()  # unplugged while the reader waits in read()
    assert events.get(timeout=5) == HeadsetUnplugged(reason="read failed: device disconnected")
    assert headset.info() is None
    headset.write_leds(LedState())  # no device: kept for the next one, no error


def test_replug_reconnects_and_rewrites_the_whole_led_state(
    jabra: tuple[HidrawHeadset, FakeBus, queue.Queue[object]],
) -> None:
    headset, bus, events = jabra
    first = bus.ends.get(timeout=5)
    assert events.get(timeout=5) == HeadsetPlugged(INFO)
    recv(first)
    headset.write_leds(LedState(off_hook=True, mute=True))
    assert recv(first) == bytes.fromhex("021300")
    first.close()
    assert isinstance(events.get(timeout=5), HeadsetUnplugged)
    second = bus.ends.get(timeout=5)  # found again after back-off
    assert events.get(timeout=5) == HeadsetPlugged(INFO)
    assert recv(second) == bytes.fromhex("021300")
    assert bus.opened == 2


def test_per_led_device_gets_one_report_per_led_over_the_fd() -> None:
    bus = FakeBus("poly_bt700_dongle")
    events: queue.Queue[object] = queue.Queue()
    headset = HidrawHeadset(
        "/dev/hidraw7", enumerate=bus.enumerate, opener=bus.open, hotplug=False, read_timeout=0.05
    )
    headset.start(events.put)
    try:
        device = bus.ends.get(timeout=5)
        writes = [recv(device).hex() for _ in range(4)]
        assert writes == ["2100", "2300", "2500", "2400"]
        device.send(bytes([0x20, 0x01]))
        assert events.get(timeout=5) == HeadsetPlugged(INFO)
        wait_until(lambda: not events.empty(), what="hook event")
        assert events.get() == HookSwitch(off_hook=True)
    finally:
        headset.stop()


def test_no_device_means_no_plug_and_stop_returns() -> None:
    bus = FakeBus("logitech_g535_wireless")  # no Telephony collection: never chosen on auto
    events: queue.Queue[object] = queue.Queue()
    headset = HidrawHeadset(
        enumerate=bus.enumerate,
        opener=bus.open,
        hotplug=False,
        reconnect_min=0.01,
        reconnect_max=0.02,
    )
    headset.start(events.put)
    headset.notify_hotplug()
    headset.stop()
    assert bus.opened == 0 and events.empty() and headset.info() is None
