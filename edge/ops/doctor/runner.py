"""Running the probes in order: what `seatbox doctor` prints and the service publishes in `info`."""

from __future__ import annotations

import os

from edge.ops.doctor.audio import check_audio, check_microphone
from edge.ops.doctor.bridge import check_bridge
from edge.ops.doctor.broker import broker_check
from edge.ops.doctor.check import CHECK_NAMES, Check
from edge.ops.doctor.clock import check_clock
from edge.ops.doctor.config import check_config
from edge.ops.doctor.disk import check_disk
from edge.ops.doctor.headset import check_headset
from edge.ops.doctor.machine import Machine
from edge.ops.doctor.outbox import check_outbox
from edge.ops.doctor.permissions import check_permissions
from edge.ops.doctor.radar import check_radar
from edge.shell.config import SeatConfig


def not_checked(name: str, why: str) -> Check:
    return Check(name, "WARN", f"not checked: {why}", "fix the config first")


def run_checks_for(
    config: SeatConfig,
    machine: Machine | None = None,
    *,
    broker: bool = True,
    skip: frozenset[str] = frozenset(),
) -> list[Check]:
    """Every check but `config` on an already-loaded config (the runtime's entry point);
    `broker=False` leaves out the broker check (it can take its whole timeout), `skip` the
    checks named (already run)."""
    machine = machine or Machine()
    checks = [broker_check(config, machine)] if broker and "broker" not in skip else []
    if "headset" not in skip:
        checks.append(check_headset(config, machine))
    audio = check_audio(config, machine) if "audio" not in skip else None
    if audio is not None:
        checks.append(audio)
    if "microphone" not in skip:
        audio_ok = audio is not None and audio.status == "OK"
        checks.append(check_microphone(config, machine, audio_ok))
    if "radar" not in skip:
        checks.append(check_radar(config, machine))
    if "bridge" not in skip:
        checks.append(check_bridge(config, machine))
    if "clock" not in skip:
        checks.append(check_clock(machine))
    if "disk" not in skip:
        checks.append(check_disk(config, machine))
    if "outbox" not in skip:
        checks.append(check_outbox(config, machine))
    if "permissions" not in skip:
        checks.append(check_permissions(config, machine))
    return checks


def run_checks(config_path: str | os.PathLike[str], machine: Machine | None = None) -> list[Check]:
    """All checks, in CHECK_NAMES order; a broken config is the first FAIL and names the problem."""
    machine = machine or Machine()
    first, config = check_config(config_path)
    if config is None:
        return [
            first,
            *(
                check_clock(machine)
                if name == "clock"
                else not_checked(name, "the config is invalid")
                for name in CHECK_NAMES[1:]
            ),
        ]
    return [first, *run_checks_for(config, machine)]
