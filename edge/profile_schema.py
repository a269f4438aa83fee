"""The sections of a norm profile: one per norm module, plus presence and levels.

A profile file is validated against these; `default.toml` must fill every key.
"""

from __future__ import annotations

from typing import Any

from edge.config import Duration, Section
from edge.norms import NORMS
from edge.presence import PresenceSettings


class LevelsSettings(Section):
    publish_every: Duration  # the `levels` topic during calls


SECTIONS: dict[str, type[Any]] = {
    "presence": PresenceSettings,
    "levels": LevelsSettings,
    **{norm.name: norm.settings for norm in NORMS},
}
