"""What every probe returns: a named verdict, OK / WARN / FAIL, and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["OK", "WARN", "FAIL"]


# The probes in the order doctor prints them and `info` lists them.
CHECK_NAMES = (
    "config",
    "broker",
    "headset",
    "audio",
    "microphone",
    "radar",
    "bridge",
    "clock",
    "disk",
    "outbox",
    "permissions",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def checks_json(checks: Iterable[Check]) -> dict[str, list[dict[str, str]]]:
    """The `doctor --json` document and the `checks` part of `info`."""
    return {"checks": [check.to_dict() for check in checks]}


def worst(checks: Iterable[Check]) -> Status:
    statuses = {check.status for check in checks}
    return "FAIL" if "FAIL" in statuses else "WARN" if "WARN" in statuses else "OK"
