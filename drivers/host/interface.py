"""The call host interface edge/ holds; the virtual twin implements it."""

from __future__ import annotations

from typing import Protocol

from drivers.base import Sink


class CallHost(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...
