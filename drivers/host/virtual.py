"""Virtual twin of the call host (the PC's softphone), for simulation and tests."""

from __future__ import annotations

from dataclasses import replace

from drivers.base import Sink
from drivers.host.events import HostLeds


class VirtualCallHost:
    """Virtual twin of a softphone: each action writes the whole LED state, as a real one does."""

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self.leds = HostLeds()

    def start(self, sink: Sink) -> None:
        self._sink = sink

    def stop(self) -> None:
        self._sink = None

    def _write(self, leds: HostLeds) -> None:
        self.leds = leds
        if self._sink is not None:
            self._sink(leds)

    def ring(self) -> None:
        self._write(replace(self.leds, ring=True))

    def ring_stop(self) -> None:
        self._write(replace(self.leds, ring=False))

    def answer(self) -> None:
        self._write(replace(self.leds, ring=False, off_hook=True))

    def hold(self) -> None:
        self._write(replace(self.leds, hold=True))

    def resume(self) -> None:
        self._write(replace(self.leds, hold=False))

    def end(self) -> None:
        self._write(HostLeds())

    def mute(self, on: bool) -> None:
        self._write(replace(self.leds, mute=on))

    def follow_headset(self, request: str) -> None:
        """What a softphone does with a headset request relayed by the box's bridge."""
        if request == "hook_off" and self.leds.ring:
            self.answer()
        elif request == "hook_on" and (self.leds.off_hook or self.leds.ring):
            self.end()
        elif request == "flash_press" and self.leds.off_hook:
            self.resume() if self.leds.hold else self.hold()
