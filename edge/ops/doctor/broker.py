"""The broker probe: connect and authenticate as the seat would (edge.ops.provision)."""

from __future__ import annotations

from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine
from edge.ops.provision import check_broker
from edge.shell.config import SeatConfig


def broker_check(config: SeatConfig, machine: Machine | None = None) -> Check:
    machine = machine or Machine()
    broker = check_broker(config.broker, config.client_id, timeout=machine.broker_timeout)
    return Check("broker", "OK" if broker.ok else "FAIL", broker.detail, broker.fix)
