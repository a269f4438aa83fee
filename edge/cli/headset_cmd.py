"""`seatbox headset list|watch|describe`: facilities tools to check a telephony headset.

describe reads a descriptor file (hex or raw bytes); list and watch use the real hidraw nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from drivers.hid.descriptor import (
    MAX_DESCRIPTOR_SIZE,
    MAX_HEX_TEXT,
    DescriptorError,
    parse_descriptor,
    parse_hex,
)
from drivers.hid.events import (
    HeadsetPlugged,
    HeadsetUnplugged,
    HookSwitch,
    LedState,
    MuteLocked,
    PhoneMute,
)
from drivers.hid.layout import TelephonyLayout, telephony_layout
from edge.base.errors import DeviceError, ParseError, UsageError
from edge.cli import EXIT_OK

if TYPE_CHECKING:
    from drivers.gadget.bridge import GadgetBridge
    from drivers.hid.hidraw import HidrawHeadset


def register(sub: Any) -> None:
    parser = sub.add_parser("headset", help="check a USB telephony headset")
    # The messages name the file, device or config they are about: printed as is.
    parser.set_defaults(error_prefix="")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    listing = verbs.add_parser("list", help="telephony headsets present, with their layout")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_cmd)
    watch = verbs.add_parser("watch", help="decoded button events and LED writes, live")
    watch.add_argument("--device", default="auto", help="auto or /dev/hidrawN")
    watch.add_argument(
        "--config", help="seat config whose [headset] settings (and [bridge], if bridged) to use"
    )
    watch.add_argument(
        "--bridge",
        action="store_true",
        help="both sides of a bridged seat: the PC's LED reports and the headset's requests "
        "(default when --config has [call] sources with bridge); stop the seat first",
    )
    watch.set_defaults(func=watch_cmd)
    describe = verbs.add_parser("describe", help="telephony layout of a descriptor file")
    describe.add_argument("file", help="descriptor as hex (spaces allowed) or raw bytes")
    describe.add_argument("--json", action="store_true")
    describe.set_defaults(func=describe_cmd)


# --- describe ---------------------------------------------------------------------------------


def read_descriptor_file(path: Path) -> bytes:
    """Hex text when the file is all hex digits and separators, else the raw bytes.

    Reads at most one byte more than the longest hex text of a descriptor, so a huge file
    (or /dev/zero) costs 64 KiB, not its size."""
    with path.open("rb") as file:
        data = file.read(MAX_HEX_TEXT + 1)
    if len(data) > MAX_HEX_TEXT:
        raise DescriptorError(
            MAX_DESCRIPTOR_SIZE,
            f"the file is longer than {MAX_HEX_TEXT // 1024} KiB: a report descriptor is at "
            f"most {MAX_DESCRIPTOR_SIZE} bytes (the kernel's HID_MAX_DESCRIPTOR_SIZE), "
            f"{MAX_HEX_TEXT // 1024} KiB as hex text",
        )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return data
    stripped = text.strip()
    if stripped and all(c in "0123456789abcdefABCDEFxX, \t\r\n" for c in stripped):
        return parse_hex(text)
    return data


def format_layout(layout: TelephonyLayout) -> list[str]:
    if not layout.telephony:
        lines = ["no Telephony collection with Hook Switch or Phone Mute: no call control"]
    else:
        shared = "shared report" if layout.shared_led_report else "one report per LED"
        lines = [f"telephony headset (LEDs: {shared})"]
    for name, control in layout.inputs.items():
        lines.append(
            f"  in   {name:<20} report {control.report_id:>3} bit {control.bit:>3} "
            f"size {control.size:>2} {control.encoding.value}"
        )
    for name, led in layout.leds.items():
        lines.append(f"  led  {name:<20} report {led.report_id:>3} bit {led.bit:>3}")
    for rid, report in sorted(layout.output_reports.items()):
        lines.append(f"  out  report {rid:>3}: {report.length} bytes ({', '.join(report.leds)})")
    return lines


def describe_cmd(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = read_descriptor_file(path)
        layout = telephony_layout(parse_descriptor(data))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except DescriptorError as exc:
        raise ParseError(f"{path}: not a valid report descriptor: {exc}") from exc
    if not data:
        raise ParseError(f"{path}: empty file: expected a report descriptor")
    if args.json:
        print(json.dumps(layout.to_json(), indent=2))
    else:
        print("\n".join(format_layout(layout)))
    return EXIT_OK


# --- list ---------------------------------------------------------------------------------------


def list_cmd(args: argparse.Namespace) -> int:
    from drivers.hid.hidraw import candidate_layout, enumerate_hidraw

    try:
        candidates = enumerate_hidraw()
    except (ImportError, OSError) as exc:
        raise DeviceError(f"cannot enumerate hidraw devices: {exc}") from exc
    found = []
    for candidate in candidates:
        layout = candidate_layout(candidate)
        if layout is not None and layout.telephony:
            found.append((candidate, layout))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "path": c.path,
                        "vendor_id": f"{c.info.vendor_id:04x}",
                        "product_id": f"{c.info.product_id:04x}",
                        "manufacturer": c.info.manufacturer,
                        "product": c.info.product,
                        "serial": c.info.serial,
                        "firmware": c.info.firmware,
                        "usb_path": c.info.usb_path,
                        "layout": layout.to_json(),
                    }
                    for c, layout in found
                ],
                indent=2,
            )
        )
    else:
        for c, layout in found:
            i = c.info
            print(
                f"{c.path}  {i.vendor_id:04x}:{i.product_id:04x}  {i.manufacturer} {i.product}"
                f"  serial {i.serial or '-'}  firmware {i.firmware}  usb {i.usb_path or '-'}"
            )
            print("\n".join(format_layout(layout)))
    if not found:
        raise DeviceError("no telephony headset found (is it plugged in? see docs/headsets.md)")
    return EXIT_OK


# --- watch --------------------------------------------------------------------------------------


class WatchHost:
    """A minimal host for `watch`: answers hook and mute requests like the seat does, so
    the headset behaves as in a call, and prints every event and LED write."""

    def __init__(self, headset: HidrawHeadset, out: TextIO) -> None:
        self.headset = headset
        self.out = out
        self.leds = LedState()
        self._lock = threading.Lock()
        headset.on_write = lambda report: self._print(f"led write {report.hex(' ')}")

    def _print(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=self.out, flush=True)

    def __call__(self, event: object) -> None:
        self._print(f"event {event}")
        with self._lock:
            leds = self.leds
            if isinstance(event, HookSwitch):
                leds = LedState(off_hook=event.off_hook)
            elif isinstance(event, PhoneMute) and leds.off_hook:
                muted = (not leds.mute) if event.muted is None else event.muted
                leds = LedState(off_hook=True, mute=muted, hold=leds.hold)
            elif isinstance(event, MuteLocked):
                leds = LedState(off_hook=leds.off_hook, mute=True, hold=leds.hold)
            elif isinstance(event, HeadsetPlugged | HeadsetUnplugged):
                return
            else:
                return
            self.leds = leds
        if isinstance(event, HookSwitch | PhoneMute | MuteLocked):
            self.headset.write_leds(leds)


def watch_cmd(args: argparse.Namespace) -> int:
    from drivers.hid.hidraw import HidrawHeadset
    from drivers.hid.protocol import ProtocolSettings

    settings = ProtocolSettings()
    read_timeout, reconnect_max = 0.2, 10.0
    from edge.shell.config import load_config

    if args.config:
        section = load_config(args.config).headset
        settings = ProtocolSettings(
            echo_window=section.echo_window,
            debounce_window=section.debounce_window,
            mute_lock_window=section.mute_lock_window,
            mute_lock_count=section.mute_lock_count,
        )
        read_timeout, reconnect_max = section.read_timeout, section.reconnect_max
    headset = HidrawHeadset(
        args.device, settings, read_timeout=read_timeout, reconnect_max=reconnect_max
    )
    hid_device, bridged = "auto", args.bridge
    if args.config:
        config = load_config(args.config)
        hid_device = config.bridge.hid_device
        bridged = bridged or "bridge" in config.call.sources
    if bridged:
        from drivers.gadget.bridge import GadgetBridge

        watch = BridgedWatch(headset, GadgetBridge(hid_device), sys.stdout)
        print("watching the headset and the PC (the gadget's HID node); Ctrl-C to stop",
              file=sys.stderr)  # fmt: skip
        watch.start()
        try:
            threading.Event().wait()
        finally:
            watch.stop()
        return EXIT_OK
    host = WatchHost(headset, sys.stdout)
    print("watching for a telephony headset; Ctrl-C to stop", file=sys.stderr)
    headset.start(host)
    try:
        threading.Event().wait()
    finally:
        headset.stop()
    return EXIT_OK


class BridgedWatch:
    """`watch` on a bridged seat, without the seat: the PC's LED reports are printed and
    shown on the headset (its own layout), the headset's requests printed and sent to the PC
    as canonical input reports. Both run as in the seat (`drivers.gadget.bridge`), so this is
    what the PC and the headset would see; the PC's answers come from its softphone."""

    def __init__(self, headset: HidrawHeadset, bridge: GadgetBridge, out: TextIO) -> None:
        self.headset, self.bridge, self.out = headset, bridge, out
        headset.on_write = lambda report: self._print(f"headset <- LEDs {report.hex(' ')}")
        bridge.on_pc_read = lambda report: self._print(f"PC -> output report {report.hex(' ')}")
        bridge.on_pc_write = self._pc_write

    def _print(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=self.out, flush=True)

    def _pc_write(self, report: bytes, ok: bool) -> None:
        how = "sent" if ok else f"not sent: {self.bridge.pc.problem}"
        self._print(f"PC <- input report {report.hex(' ')} ({how})")

    def on_headset(self, event: object) -> None:
        self._print(f"headset -> {event}")
        self.bridge.relay(event)

    def on_pc(self, item: object) -> None:
        from drivers.gadget.relay import headset_leds
        from drivers.host.events import BridgeStatus, HostLeds

        if isinstance(item, HostLeds):
            on = [name for name in ("off_hook", "ring", "hold", "mute") if getattr(item, name)]
            self._print(f"PC LEDs: {', '.join(on) or 'all off'}")
            self.headset.write_leds(headset_leds(item))
        elif isinstance(item, BridgeStatus):
            state = "connected" if item.pc_connected else "not connected"
            line = f"PC {state}: {item.detail}; softphone LED writes {item.led_writes}"
            self._print(line + (f"; bad report: {item.bad_report}" if item.bad_report else ""))

    def start(self) -> None:
        self.bridge.start(self.on_pc)
        self.headset.start(self.on_headset)

    def stop(self) -> None:
        self.headset.stop()
        self.bridge.stop()
