"""The presence radar (HLK-LD2410 family): its readings in, its configuration out.

`RadarReport` is the typed input; `VirtualRadar` is the twin used by simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from drivers.base import Sink

Target = Literal["none", "moving", "still", "both"]


@dataclass(frozen=True, slots=True)
class RadarReport:
    """One data frame's meaning: presence comes from `target`, never from distances alone."""

    target: Target
    moving_cm: int = 0
    moving_energy: int = 0
    still_cm: int = 0
    still_energy: int = 0

    @property
    def present(self) -> bool:
        return self.target != "none"


@dataclass(frozen=True, slots=True)
class RadarStatus:
    """The radar link: `ok=False` when no valid frame arrived for the watchdog period."""

    ok: bool
    detail: str = ""


class Radar(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...


class VirtualRadar:
    """Virtual twin: a scenario says someone is there (a still target) or not."""

    def __init__(self) -> None:
        self._sink: Sink | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        sink(RadarStatus(ok=True, detail="virtual"))

    def stop(self) -> None:
        self._sink = None

    def present(self, moving: bool = False) -> None:
        if self._sink is not None:
            target: Target = "moving" if moving else "still"
            self._sink(RadarReport(target=target, still_cm=60, still_energy=60))

    def absent(self) -> None:
        if self._sink is not None:
            self._sink(RadarReport(target="none"))
