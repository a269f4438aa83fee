"""The headset's virtual twin for simulation and tests (the interface is `interface.Headset`).

The twin behaves like a well-mannered telephony headset: it sends requests, shows LEDs.
"""

from __future__ import annotations

import threading

from drivers.base import Sink
from drivers.hid.events import (
    Flash,
    HeadsetInfo,
    HeadsetPlugged,
    HeadsetUnplugged,
    HookSwitch,
    LedState,
    PhoneMute,
    Volume,
)

VIRTUAL_INFO = HeadsetInfo(
    vendor_id=0x0B0E,
    product_id=0x0307,
    manufacturer="seatbox",
    product="Virtual Telephony Headset",
    serial="VIRTUAL-0001",
    firmware="1.0",
    usb_path="virtual",
    model="virtual",
)


class VirtualHeadset:
    """Virtual twin: scenario steps press its buttons; it records the LEDs it was told."""

    def __init__(self, info: HeadsetInfo = VIRTUAL_INFO, plugged: bool = True) -> None:
        self._info = info
        self._plugged = plugged
        self._sink: Sink | None = None
        self._lock = threading.Lock()
        self.leds = LedState()
        self.led_writes: list[LedState] = []

    # Driver lifecycle
    def start(self, sink: Sink) -> None:
        self._sink = sink
        if self._plugged:
            sink(HeadsetPlugged(self._info))

    def stop(self) -> None:
        self._sink = None

    def info(self) -> HeadsetInfo | None:
        return self._info if self._plugged else None

    def write_leds(self, leds: LedState) -> None:
        with self._lock:
            self.leds = leds
            self.led_writes.append(leds)

    # What a person does with the headset
    def _send(self, item: object) -> None:
        if self._sink is not None and (self._plugged or isinstance(item, HeadsetPlugged)):
            self._sink(item)

    def hook_off(self) -> None:
        self._send(HookSwitch(off_hook=True))

    def hook_on(self) -> None:
        self._send(HookSwitch(off_hook=False))

    def mute_press(self) -> None:
        self._send(PhoneMute())

    def flash_press(self) -> None:
        self._send(Flash())

    def volume(self, step: int) -> None:
        self._send(Volume(step=step))

    def unplug(self) -> None:
        if self._plugged:
            self._send(HeadsetUnplugged(reason="unplugged"))
            self._plugged = False

    def plug(self) -> None:
        if not self._plugged:
            self._plugged = True
            self._send(HeadsetPlugged(self._info))
