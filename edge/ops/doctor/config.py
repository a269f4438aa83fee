"""The config probe: the verdict of `seatbox config check` and `seatbox run` (one validation)."""

from __future__ import annotations

import os

from edge.base.errors import ConfigError
from edge.ops.doctor.check import Check
from edge.shell.config import SeatConfig, load_config
from edge.shell.config_check import load_seat

FIX = "correct the config (seatbox config check FILE)"


def check_config(config_path: str | os.PathLike[str]) -> tuple[Check, SeatConfig | None]:
    """The `config` check, and the config the other checks read: None when not even the file
    itself is sound. A sound file whose values do not fit the box (a missing capture device)
    is a FAIL, yet comes back so the other checks can say what those values should be."""
    try:
        config = load_seat(config_path).config
        first = Check(
            "config", "OK", f"{config_path}: seat {config.seat.site}/{config.seat.id}, "
            f"profile {config.seat.profile}",
        )  # fmt: skip
    except ConfigError as exc:
        first = Check("config", "FAIL", str(exc), FIX)
        try:
            config = load_config(config_path)
        except ConfigError:
            return first, None
    return first, config
