"""The headset interface edge/ holds: the hidraw backend and the virtual twin implement it."""

from __future__ import annotations

from typing import Protocol

from drivers.base import Sink
from drivers.hid.events import HeadsetInfo, LedState


class Headset(Protocol):
    """A telephony headset as the seat sees it (real hidraw backend or virtual twin)."""

    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...

    def write_leds(self, leds: LedState) -> None: ...

    def info(self) -> HeadsetInfo | None: ...
