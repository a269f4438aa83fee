"""`seatbox gadget up|down|status`: the box's USB gadget from the seat config's [bridge].

The configfs work is `drivers.gadget.configfs`; this maps the config onto it: the HID function
(canonical telephony descriptor), the audio function `[bridge] audio`, ids and the product
string from `[bridge]`, the serial number from the seat (`<site>-<id>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.gadget.configfs import CONFIGFS_ROOT, UDC_CLASS, Gadget, GadgetSpec
from edge.shell.config import SeatConfig

GADGET_NAME = "seatbox"


def gadget_for(
    config: SeatConfig, root: Path | None = None, udc_class: Path | None = None
) -> Gadget:
    bridge = config.bridge
    spec = GadgetSpec(
        name=GADGET_NAME,
        vendor_id=bridge.vendor_id,
        product_id=bridge.product_id,
        manufacturer="seatbox",
        product=bridge.product,
        serial=f"{config.seat.site}-{config.seat.id}",
        audio=bridge.audio,
    )
    # The module's paths are read at each call (tests point them at a fake tree).
    return Gadget(spec, root or CONFIGFS_ROOT, udc_class or UDC_CLASS)


def up(
    config: SeatConfig, root: Path | None = None, udc_class: Path | None = None
) -> dict[str, Any]:
    gadget = gadget_for(config, root, udc_class)
    changed = gadget.up(config.bridge.udc)
    return {"changed": changed, **status_of(gadget, config)}


def down(
    config: SeatConfig, root: Path | None = None, udc_class: Path | None = None
) -> dict[str, Any]:
    gadget = gadget_for(config, root, udc_class)
    changed = gadget.down()
    return {"changed": changed, **status_of(gadget, config)}


def status(
    config: SeatConfig, root: Path | None = None, udc_class: Path | None = None
) -> dict[str, Any]:
    return status_of(gadget_for(config, root, udc_class), config)


def status_of(gadget: Gadget, config: SeatConfig) -> dict[str, Any]:
    result = gadget.status()
    result["audio"] = config.bridge.audio
    wanted = config.bridge.hid_device
    # The relay (not built yet) will open this node: the configured one, or the gadget's own.
    result["hid_device_configured"] = wanted
    return result


def describe(result: dict[str, Any]) -> str:
    """The status as lines for a person."""
    name = result["gadget"]
    if not result["configfs"]:
        return f"gadget {name}: no USB gadget configfs (libcomposite not loaded or configfs not mounted)"
    if not result["present"]:
        controllers = ", ".join(result["controllers"]) or "none"
        return f"gadget {name}: absent (device controllers: {controllers})"
    lines = [f"gadget {name}: " + ("changed" if result.get("changed") else "present")]
    if result["bound"]:
        lines.append(f"  bound to {result['udc']}, state {result['state']}")
    else:
        lines.append("  not bound to a device controller")
    lines.append(
        f"  ids {result['vendor_id']}:{result['product_id']}, functions {', '.join(result['functions'])}"
    )
    lines.append(f"  HID device {result['hid_device'] or 'none'}")
    if not result["matches_config"]:
        lines.append("  differs from the config: seatbox gadget up rebuilds it")
    return "\n".join(lines)
