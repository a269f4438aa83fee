"""The headset probe: a telephony HID headset is there, readable by the service user, and has
the controls the seat uses (the layout from drivers.hid, the parser the seat itself uses)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from drivers.hid.descriptor import DescriptorError
from drivers.hid.hidraw import enumerate_sysfs
from drivers.hid.layout import LED_USAGES, TelephonyLayout, layout_from_bytes
from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine, can_access, group_name, service_identity
from edge.shell.config import SeatConfig


def is_telephony_headset(descriptor: bytes) -> bool:
    """True when the descriptor has a Telephony collection with a Hook Switch or Phone Mute
    (drivers.hid.layout, the parser the seat itself uses)."""
    try:
        return layout_from_bytes(descriptor).telephony
    except DescriptorError:
        return False


@dataclass(frozen=True)
class HidNode:
    name: str  # hidraw0
    path: Path  # /dev/hidraw0
    product: str
    usb_id: str  # 0b0e:2453
    layout: TelephonyLayout | None  # None: the descriptor could not be parsed
    problem: str = ""  # why not

    @property
    def telephony(self) -> bool:
        return self.layout is not None and self.layout.telephony


def hid_nodes(machine: Machine) -> list[HidNode]:
    """The hidraw nodes from sysfs (as the kernel lists them), laid out by drivers.hid."""
    nodes = []
    for candidate in enumerate_sysfs(machine.sys_root, machine.dev_root):
        info = candidate.info
        product = info.product or "unknown"
        if info.manufacturer and not product.startswith(info.manufacturer):
            product = f"{info.manufacturer} {product}"
        layout: TelephonyLayout | None = None
        problem = ""
        try:
            layout = layout_from_bytes(candidate.descriptor)
        except DescriptorError as exc:
            problem = str(exc)
        path = Path(candidate.path)
        usb_id = f"{info.vendor_id:04x}:{info.product_id:04x}"
        nodes.append(HidNode(path.name, path, product, usb_id, layout, problem))
    return nodes


def missing_controls(layout: TelephonyLayout) -> list[str]:
    """What the seat uses of a headset and this one lacks, each with what it costs."""
    missing = []
    if "hook_switch" not in layout.inputs:
        missing.append("no hook switch: answering and ending calls on the headset is not seen")
    if "phone_mute" not in layout.inputs and "consumer_mute" not in layout.inputs:
        missing.append("no mute button: the agent has to mute in the softphone")
    if "off_hook" not in layout.leds:
        missing.append("no off-hook LED: the headset cannot show the call")
    if "mute" not in layout.leds and "microphone" not in layout.leds:
        missing.append("no mute LED: the headset cannot show that the mic is muted")
    return missing


def _open_error(path: Path) -> str:
    """Open the node read+write and close it again: "" or why it failed (a stale node, a
    security module); hidraw allows many openers, so a running seat is not disturbed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    return ""


def check_headset(config: SeatConfig, machine: Machine) -> Check:
    device = config.headset.device
    if device == "virtual":
        return Check("headset", "OK", "virtual headset (simulated seat)")
    if device == "none":
        return Check(
            "headset", "WARN", "no headset configured ([headset] device = none)",
            "set [headset] device = auto to use the seat's USB headset",
        )  # fmt: skip
    nodes = hid_nodes(machine)
    telephony = [n for n in nodes if n.telephony]
    if device != "auto":
        match = [n for n in nodes if str(n.path) == device or n.name == Path(device).name]
        if not match:
            return Check(
                "headset", "FAIL", f"{device} not present",
                "plug in the headset, or set [headset] device = auto",
            )  # fmt: skip
        if match[0].layout is None:
            return Check(
                "headset", "FAIL",
                f"{device} ({match[0].product}, {match[0].usb_id}): its report descriptor "
                f"cannot be read ({match[0].problem})",
                "send the descriptor (docs/headsets.md: how to save it) with this message",
            )  # fmt: skip
        if not match[0].telephony:
            return Check(
                "headset", "FAIL",
                f"{device} ({match[0].product}, {match[0].usb_id}) has no telephony controls",
                "use a headset with call controls (HID Telephony page), or set device = auto",
            )  # fmt: skip
        telephony = match
    if not telephony:
        others = ", ".join(f"{n.name} {n.product} ({n.usb_id})" for n in nodes) or "none"
        return Check(
            "headset", "FAIL", f"no telephony headset found (HID devices: {others})",
            "plug the headset's USB cable into the box; a gaming or plain audio headset has no "
            "call buttons and cannot be used",
        )  # fmt: skip
    first = telephony[0]
    assert first.layout is not None  # telephony
    more = f" (+{len(telephony) - 1} more)" if len(telephony) > 1 else ""
    found = f"{first.product} ({first.usb_id}) at {first.path}{more}"
    if not first.path.exists():
        return Check(
            "headset", "FAIL", f"{found}: the kernel lists {first.name} but {first.path} is missing",
            "udevadm trigger, or replug the headset",
        )  # fmt: skip
    who = service_identity(machine)
    if not can_access(first.path, who, os.R_OK | os.W_OK):
        info = first.path.stat()
        return Check(
            "headset", "FAIL",
            f"{found}: {who.name} cannot read and write it ({stat.filemode(info.st_mode)} "
            f"group {group_name(info.st_gid)}): no buttons, no LEDs",
            "install the udev rules (sudo make install), then replug the headset or run "
            "udevadm trigger",
        )  # fmt: skip
    if os.geteuid() in (0, who.uid):  # we can speak for the service user: try it for real
        problem = _open_error(first.path)
        if problem:
            return Check("headset", "FAIL", f"{found}: cannot open it: {problem}",
                         "replug the headset; if it stays, reboot the box")  # fmt: skip
    missing = missing_controls(first.layout)
    if missing:
        return Check(
            "headset", "WARN", f"{found}: {'; '.join(missing)}",
            "a headset with full call control works best (docs/headsets.md); "
            "seatbox headset list shows what this one has",
        )  # fmt: skip
    leds = "/".join(name for name in LED_USAGES if name in first.layout.leds)
    return Check(
        "headset",
        "OK",
        f"{found}: hook switch, mute, LEDs {leds}; {who.name} can read and write it",
    )
