"""The box's self-check: one module per probe, each saying OK / WARN / FAIL and what to do.

`run_checks` is what `seatbox doctor` prints and what the service publishes in `info` at start.
The probes: config, broker, headset, audio (and microphone), radar, clock, disk, outbox,
permissions; `machine` is what they look at, `check` what they return, `runner` the order.
"""

from __future__ import annotations

from edge.ops.doctor.broker import broker_check
from edge.ops.doctor.check import Check, Status, checks_json, worst
from edge.ops.doctor.machine import ClockState, Machine, MicReading
from edge.ops.doctor.runner import CHECK_NAMES, run_checks, run_checks_for

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
