"""The seat norms of shared/norms.md, one module each, all of the shape in `base.Norm`.

NORMS is the order in which they see each input; their settings form the norm profile.
"""

from __future__ import annotations

from typing import Any

from edge.core.norms import (
    answer,
    attendance,
    away,
    dead_air,
    greet,
    hearing,
    hold_mute,
    hold_time,
    overtalk,
    quiet_floor,
    speech_level,
)
from edge.core.norms.base import Norm

NORMS: tuple[Norm[Any, Any], ...] = (
    answer.NORM,
    greet.NORM,
    hold_mute.NORM,
    hold_time.NORM,
    speech_level.NORM,
    overtalk.NORM,
    dead_air.NORM,
    quiet_floor.NORM,
    hearing.NORM,
    away.NORM,
    attendance.NORM,
)
