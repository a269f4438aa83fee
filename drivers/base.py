"""What every driver shares: the sink it feeds inputs to, and the driver lifecycle.

The runtime stamps each input with the seat clock when it is put on the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# A driver hands each typed input (a frozen dataclass of its own module) to the sink.
Sink = Callable[[object], None]


class Driver(Protocol):
    """Lifecycle shared by real backends and virtual twins (python-can BusABC style)."""

    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...
