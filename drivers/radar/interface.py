"""The radar interface edge/ holds: the LD2410 backend and the virtual twin implement it."""

from __future__ import annotations

from typing import Protocol

from drivers.base import Sink


class Radar(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...
