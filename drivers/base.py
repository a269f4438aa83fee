"""What every driver shares: the sink it feeds inputs to, and the driver lifecycle.

The runtime stamps each input with the seat clock when it is put on the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# A driver hands each typed input (a frozen dataclass of its own module) to the sink.
Sink = Callable[[object], None]


class Driver(Protocol):
    """Lifecycle shared by real backends and virtual twins (python-can BusABC style)."""

    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Backoff:
    """Delays between reopen attempts: initial, doubled per failure, capped; reset by data."""

    initial: float = 0.5
    maximum: float = 30.0
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial
