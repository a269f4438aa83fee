"""The box's self-check: one module per probe, each saying OK / WARN / FAIL and what to do.

`run_checks` is what `seatbox doctor` prints; `start` is what `seatbox run` checks and
publishes in `info`. The probes: config, broker, headset, audio (and microphone), radar,
bridge (a bridged seat's USB gadget and PC side), clock,
disk, outbox, permissions; `machine` is what they look at, `check` what they return, `runner`
the order. The names below load with their module on first use, so `seatbox run` imports only
the probes it runs before READY.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.ops.doctor.broker import broker_check
    from edge.ops.doctor.check import CHECK_NAMES, Check, Status, checks_json, worst
    from edge.ops.doctor.machine import ClockState, Machine, MicReading
    from edge.ops.doctor.runner import run_checks, run_checks_for

_HOME = {
    "CHECK_NAMES": "check",
    "Check": "check",
    "ClockState": "machine",
    "Machine": "machine",
    "MicReading": "machine",
    "Status": "check",
    "broker_check": "broker",
    "checks_json": "check",
    "run_checks": "runner",
    "run_checks_for": "runner",
    "worst": "check",
}

__all__ = [
    "CHECK_NAMES",
    "Check",
    "ClockState",
    "Machine",
    "MicReading",
    "Status",
    "broker_check",
    "checks_json",
    "run_checks",
    "run_checks_for",
    "worst",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
