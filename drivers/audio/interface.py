"""The audio interface edge/ holds: the capture backend and the virtual twin implement it."""

from __future__ import annotations

from typing import Protocol

from drivers.base import Sink


class Audio(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...

    def set_mic_mute(self, muted: bool) -> None: ...

    def set_rx_cap(self, max_gain_db: float | None) -> None: ...
