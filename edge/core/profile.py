"""A validated norm profile: the numbers every norm enforces (shared/norms.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.base.schema import digest_of


@dataclass(frozen=True)
class Profile:
    """A validated norm profile: one settings object per section (one per norm)."""

    name: str
    sections: Mapping[str, Any]
    source: str = ""

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        return {k: v.model_dump(mode="json") for k, v in self.sections.items()}

    @property
    def digest(self) -> str:
        """12 hex digits of SHA-256 over every value in force (canonical JSON): seats showing
        the same digest enforce the same numbers, whatever the profile files are called."""
        return digest_of(self.to_dict())
