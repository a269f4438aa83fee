"""Virtual twin of the presence radar, for simulation and tests."""

from __future__ import annotations

from drivers.base import Sink
from drivers.radar.events import RadarReport, RadarStatus


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
            if moving:  # a moving target carries its energy in the moving fields
                self._sink(RadarReport(target="moving", moving_cm=80, moving_energy=60))
            else:
                self._sink(RadarReport(target="still", still_cm=60, still_energy=60))

    def absent(self) -> None:
        if self._sink is not None:
            self._sink(RadarReport(target="none"))

    def lose(self) -> None:
        """The sensor falls silent, as the real driver's watchdog would report it."""
        if self._sink is not None:
            self._sink(RadarStatus(ok=False, detail="simulated: no frames"))
