"""The bridge probe (bridged seats): device controller present, gadget bound, PC configured,
softphone LED writes seen.

The first three are read from sysfs and configfs (`<sys_root>/class/udc`,
`<sys_root>/kernel/config/usb_gadget/seatbox`). The softphone's LED writes are what the
running seat last saw (`<state_dir>/bridge-status.json`, written by `drivers.gadget.bridge`):
the doctor must not read /dev/hidgN itself, a read takes the softphone's report from the seat.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from drivers.gadget.bridge import STATUS_FILE_NAME
from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine
from edge.ops.gadget import gadget_for
from edge.shell.config import SeatConfig

GADGET_FIX = "sudo seatbox gadget up (and systemctl enable --now seatbox-gadget); docs/bridge.md"


def check_bridge(config: SeatConfig, machine: Machine) -> Check:
    if "bridge" not in config.call.sources:
        return Check("bridge", "OK", 'not a bridged seat ([call] sources has no "bridge")')
    gadget = gadget_for(
        config, machine.sys_root / "kernel/config/usb_gadget", machine.sys_root / "class/udc"
    )
    controllers = gadget.controllers()
    if not controllers:
        return Check(
            "bridge", "FAIL", f"no USB device controller in {gadget.udc_class}: the box cannot "
            "be the PC's headset",
            "on a Raspberry Pi 4/5 add dtoverlay=dwc2,dr_mode=peripheral to "
            "/boot/firmware/config.txt and reboot (a Pi Zero 2 W cannot bridge; docs/bridge.md)",
        )  # fmt: skip
    found = f"controller {', '.join(controllers)}"
    if not gadget.path.is_dir():
        return Check(
            "bridge", "FAIL", f"{found}; the gadget {gadget.spec.name!r} is not built "
            f"({gadget.path} missing)", GADGET_FIX,
        )  # fmt: skip
    udc = gadget.bound_udc()
    if not udc:
        return Check("bridge", "FAIL", f"{found}; the gadget is not bound to it", GADGET_FIX)
    state = _read(gadget.udc_class / udc / "state") or "unknown"
    node = gadget.hid_device() or "no /dev/hidgN yet"
    bound = f"gadget bound to {udc} ({node})"
    if state != "configured":
        return Check(
            "bridge", "WARN", f"{bound}; the PC has not configured it (controller {state!r})",
            "plug the box's USB-C port into the PC with a data cable (not a charge-only one); "
            "the box needs its own power supply (docs/bridge.md)",
        )  # fmt: skip
    return _led_writes(config, f"{bound}; PC configured", machine)


def _led_writes(config: SeatConfig, found: str, machine: Machine) -> Check:
    path = Path(config.storage.state_dir) / STATUS_FILE_NAME
    try:
        status: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Check("bridge", "OK", f"{found}; softphone LED writes: not known (the seat "
                     f"has not run bridged: no {path})")  # fmt: skip
    leds = status.get("led_writes")
    last = status.get("last_led")
    if leds == "seen" or isinstance(last, int | float):
        when = ""
        if isinstance(last, int | float):
            ago = max(0.0, machine.wall_clock() - last)
            when = f", last {time.strftime('%Y-%m-%d %H:%M', time.localtime(last))}"
            when += f" ({ago / 60:.0f} min ago)"
        return Check("bridge", "OK", f"{found}; softphone LED writes seen{when}")
    if leds == "missing":
        wait = status.get("led_wait_s", 0)
        return Check(
            "bridge", "WARN", f"{found}; the softphone wrote no LED report in {wait:g} s "
            "connected: it does not drive the headset",
            f"in the softphone choose {config.bridge.product!r} as the headset (call-control) "
            "device; Genesys Cloud drives only named vendors (docs/bridge.md)",
        )  # fmt: skip
    return Check("bridge", "OK", f"{found}; softphone LED writes: none yet (a softphone "
                 "writes them at its first call)")  # fmt: skip


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
