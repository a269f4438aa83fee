"""The permissions probe: the service user can open every device node the seat will use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.ops.doctor.check import Check
from edge.ops.doctor.headset import hid_nodes
from edge.ops.doctor.machine import Machine, can_access, group_name, service_identity
from edge.shell.config import SeatConfig


def device_nodes(config: SeatConfig, machine: Machine) -> list[Path]:
    nodes: list[Path] = []
    if config.headset.device == "auto":
        nodes += [n.path for n in hid_nodes(machine) if n.telephony]
    elif config.headset.device not in ("virtual", "none"):
        nodes.append(Path(config.headset.device))
    if config.radar.backend == "ld2410" and config.radar.port:
        nodes.append(Path(config.radar.port))
    if config.audio.backend == "sounddevice":
        snd = machine.dev_root / "snd"
        nodes += sorted(p for p in snd.glob("pcmC*c") if not p.is_dir())
    return nodes


def check_permissions(config: SeatConfig, machine: Machine) -> Check:
    nodes = [p for p in device_nodes(config, machine) if p.exists()]
    if not nodes:
        simulated = config.headset.device == "virtual" and config.radar.backend != "ld2410"
        detail = (
            "no device nodes to open (simulated seat)" if simulated else "no device nodes found"
        )
        return Check("permissions", "OK" if simulated else "WARN", detail,
                     "" if simulated else "see the headset, audio and radar checks")  # fmt: skip
    who = service_identity(machine)
    denied = []
    for node in nodes:
        if not can_access(node, who, os.R_OK | os.W_OK):
            info = node.stat()
            group = group_name(info.st_gid)
            denied.append(f"{node} ({stat.filemode(info.st_mode)} group {group})")
    if denied:
        return Check(
            "permissions", "FAIL", f"{who.name} cannot open: {', '.join(denied)}",
            "install the udev rules (sudo make install), then replug the device or run "
            "udevadm trigger; the service user needs groups seatbox, audio and dialout",
        )  # fmt: skip
    return Check("permissions", "OK", f"{who.name} can open {len(nodes)} device node(s)")
