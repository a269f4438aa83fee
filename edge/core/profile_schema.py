"""The sections of a norm profile: one per norm module, plus presence and levels.

A profile file is validated against these; `default.toml` must fill every key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from edge.base.errors import ConfigError
from edge.base.schema import Duration, Section, format_validation_error
from edge.core.norm_settings import NORM_SETTINGS, PresenceSettings
from edge.core.profile import Profile


class LevelsSettings(Section):
    publish_every: Duration  # the `levels` topic during calls


SECTIONS: dict[str, type[Any]] = {
    "presence": PresenceSettings,
    "levels": LevelsSettings,
    **NORM_SETTINGS,
}


def profile_from_dict(name: str, data: Mapping[str, Any], source: str = "") -> Profile:
    """Validate a complete profile (default merged with overrides) against the norm schemas."""
    errors = []
    sections: dict[str, Any] = {}
    meta = {"name", "description", "extends"}
    for key in data:
        if key not in SECTIONS and key not in meta:
            errors.append(
                f"{source}: [{key}]: unknown section (expected one of {sorted(SECTIONS)})"
            )
    for key, model in SECTIONS.items():
        raw = data.get(key)
        if raw is None:
            errors.append(f"{source}: [{key}]: missing section")
            continue
        if not isinstance(raw, Mapping):
            errors.append(f"{source}: [{key}]: expected a table")
            continue
        try:
            sections[key] = model.model_validate(raw)
        except ValidationError as exc:
            errors.append(format_validation_error(source, exc, prefix=(key,)))
    if errors:
        raise ConfigError("\n".join(errors))
    return Profile(name=name, sections=sections, source=source)
