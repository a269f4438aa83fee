"""Typed inputs the presence radar produces: what a data frame means, and the link's health.

Stdlib only: the seat's core imports these and nothing else of the radar driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Target = Literal["none", "moving", "still", "both"]


@dataclass(frozen=True, slots=True)
class RadarReport:
    """One data frame's meaning: presence comes from `target`, never from distances alone."""

    target: Target
    moving_cm: int = 0
    moving_energy: int = 0
    still_cm: int = 0
    still_energy: int = 0
    detection_cm: int = 0  # 0 on older firmware (V1.07.22091516 fills only moving_cm)
    moving_gates: tuple[int, ...] = ()  # engineering mode: energy per gate 0..8, else empty
    still_gates: tuple[int, ...] = ()

    @property
    def present(self) -> bool:
        return self.target != "none"


@dataclass(frozen=True, slots=True)
class RadarStatus:
    """The radar link: `ok=False` when no valid frame arrived for the watchdog period."""

    ok: bool
    detail: str = ""
