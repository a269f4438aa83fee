"""Build, bind, inspect and remove the box's USB gadget in configfs (stdlib only).

    gadget = Gadget(GadgetSpec(product="Seatbox Headset"))
    gadget.up("auto")      # True when something changed; again: False
    gadget.status()        # {"present": ..., "udc": ..., "state": ..., "hid_device": ...}
    gadget.down()          # True when something was removed; absent: False

Layout written under `<root>/<name>` (root: /sys/kernel/config/usb_gadget, from libcomposite):
idVendor/idProduct/bcdDevice/bcdUSB, strings/0x409/{manufacturer,product,serialnumber},
functions/hid.usb0 (protocol 0, subclass 0, report_length, report_desc, no_out_endpoint 1),
for `audio` uac2 or uac1 functions/uac2.usb0 or uac1.usb0 (mono, 48 kHz, 16 bit both ways;
untested: dummy_hcd has no isochronous endpoints, see shared/reference/bridge.md section 4),
configs/c.1 (MaxPower, its string) linking the functions, and UDC.

Errors are DeviceError with the fix in the message. Also a command for the QEMU guest test
(which has no pydantic): `python -m drivers.gadget.configfs up|down|status [--json] ...`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import DeviceError
from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR, REPORT_LENGTH

CONFIGFS_ROOT = Path("/sys/kernel/config/usb_gadget")
UDC_CLASS = Path("/sys/class/udc")
# The Linux Foundation's "Multifunction Composite Gadget" id (drivers/usb/gadget/legacy/
# multi.c: MULTI_VENDOR_NUM 0x1d6b, MULTI_PRODUCT_NUM 0x0104), used by most configfs examples:
# a test id, not a headset maker's. A deployment sets its own in [bridge].
TEST_VENDOR_ID = 0x1D6B
TEST_PRODUCT_ID = 0x0104
AUDIO_KINDS = ("uac2", "uac1", "none")
HID_FUNCTION = "hid.usb0"
CONFIG = "c.1"
LANG = "0x409"
# Audio function attributes (both f_uac2 and f_uac1 in Debian's 6.1 kernel): mono, 48 kHz,
# 16-bit, capture (c_, the PC's speaker) and playback (p_, the PC's microphone).
AUDIO_ATTRS = {
    "c_chmask": "1",
    "c_srate": "48000",
    "c_ssize": "2",
    "p_chmask": "1",
    "p_srate": "48000",
    "p_ssize": "2",
}


@dataclass(frozen=True)
class GadgetSpec:
    name: str = "seatbox"
    vendor_id: int = TEST_VENDOR_ID
    product_id: int = TEST_PRODUCT_ID
    manufacturer: str = "seatbox"
    product: str = "Seatbox Headset"  # shared by the HID and the audio function
    serial: str = "0001"
    audio: str = "none"  # uac2 | uac1 | none
    max_power_ma: int = 100
    report_desc: bytes = CANONICAL_DESCRIPTOR
    report_length: int = REPORT_LENGTH

    def __post_init__(self) -> None:
        if self.audio not in AUDIO_KINDS:
            raise ValueError(f"audio must be one of {', '.join(AUDIO_KINDS)}, got {self.audio!r}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"gadget name must be one path component, got {self.name!r}")

    @property
    def audio_function(self) -> str | None:
        return None if self.audio == "none" else f"{self.audio}.usb0"

    def attributes(self) -> dict[str, bytes]:
        """Every attribute this gadget writes, by path relative to the gadget directory,
        in writing order (function attributes before the config links them)."""
        attrs: dict[str, bytes] = {
            "idVendor": f"0x{self.vendor_id:04x}\n".encode(),
            "idProduct": f"0x{self.product_id:04x}\n".encode(),
            "bcdDevice": b"0x0100\n",
            "bcdUSB": b"0x0200\n",
            f"strings/{LANG}/manufacturer": f"{self.manufacturer}\n".encode(),
            f"strings/{LANG}/product": f"{self.product}\n".encode(),
            f"strings/{LANG}/serialnumber": f"{self.serial}\n".encode(),
            f"functions/{HID_FUNCTION}/protocol": b"0\n",
            f"functions/{HID_FUNCTION}/subclass": b"0\n",
            f"functions/{HID_FUNCTION}/report_length": f"{self.report_length}\n".encode(),
            f"functions/{HID_FUNCTION}/no_out_endpoint": b"1\n",
            f"functions/{HID_FUNCTION}/report_desc": self.report_desc,
        }
        audio = self.audio_function
        if audio is not None:
            for key, value in AUDIO_ATTRS.items():
                attrs[f"functions/{audio}/{key}"] = f"{value}\n".encode()
            attrs[f"functions/{audio}/function_name"] = f"{self.product}\n".encode()
        attrs[f"configs/{CONFIG}/MaxPower"] = f"{self.max_power_ma}\n".encode()
        attrs[f"configs/{CONFIG}/strings/{LANG}/configuration"] = b"seatbox\n"
        return attrs

    def functions(self) -> list[str]:
        audio = self.audio_function
        return [HID_FUNCTION] if audio is None else [audio, HID_FUNCTION]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _same(current: bytes, wanted: bytes, binary: bool) -> bool:
    if binary:
        return current == wanted
    # configfs prints numbers its own way (idVendor "0x1d6b", MaxPower "100").
    a, b = current.decode(errors="replace").strip(), wanted.decode().strip()
    if a == b:
        return True
    try:
        return int(a, 0) == int(b, 0)
    except ValueError:
        return False


class Gadget:
    def __init__(
        self, spec: GadgetSpec, root: Path = CONFIGFS_ROOT, udc_class: Path = UDC_CLASS
    ) -> None:
        self.spec = spec
        self.root = Path(root)
        self.udc_class = Path(udc_class)
        self.path = self.root / spec.name

    # --- checks -------------------------------------------------------------------------

    def _check_configfs(self) -> None:
        if not self.root.is_dir():
            raise DeviceError(
                f"no USB gadget configfs at {self.root}: load libcomposite and mount configfs "
                "(modprobe libcomposite; mount -t configfs none /sys/kernel/config)"
            )
        if not os.access(self.root, os.W_OK):
            raise DeviceError(f"cannot write {self.root}: run as root (sudo seatbox gadget up)")

    def controllers(self) -> list[str]:
        try:
            return sorted(p.name for p in self.udc_class.iterdir())
        except OSError:
            return []

    def choose_udc(self, udc: str) -> str:
        found = self.controllers()
        if udc != "auto":
            if udc not in found:
                listed = ", ".join(found) or "none"
                raise DeviceError(
                    f"no USB device controller {udc!r} in {self.udc_class} (found: {listed})"
                )
            return udc
        if not found:
            raise DeviceError(
                f"no USB device controller in {self.udc_class}: on a Raspberry Pi 4/5 add "
                "dtoverlay=dwc2,dr_mode=peripheral to /boot/firmware/config.txt and reboot "
                "(docs/bridge.md)"
            )
        if len(found) > 1:
            raise DeviceError(
                f"{len(found)} USB device controllers ({', '.join(found)}): name one in "
                "[bridge] udc"
            )
        return found[0]

    def bound_udc(self) -> str:
        return _read(self.path / "UDC")

    def _user_of(self, udc: str) -> str | None:
        """The other gadget bound to `udc`, if any."""
        try:
            others = sorted(p for p in self.root.iterdir() if p.name != self.spec.name)
        except OSError:
            return None
        return next((p.name for p in others if _read(p / "UDC") == udc), None)

    # --- operations ---------------------------------------------------------------------

    def _write(self, relative: str, data: bytes) -> None:
        path = self.path / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb", buffering=0) as f:
                f.write(data)
        except OSError as err:
            raise DeviceError(f"cannot write {path}: {err.strerror or err}") from None

    def _matches(self) -> bool:
        for relative, wanted in self.spec.attributes().items():
            try:
                current = (self.path / relative).read_bytes()
            except OSError:
                return False
            if not _same(current, wanted, relative.endswith("report_desc")):
                return False
        config = self.path / "configs" / CONFIG
        linked = (
            sorted(p.name for p in config.iterdir() if p.is_symlink()) if config.is_dir() else []
        )
        return linked == sorted(self.spec.functions())

    def _unbind(self) -> None:
        self._write("UDC", b"\n")

    def _unlink_functions(self) -> None:
        config = self.path / "configs" / CONFIG
        if config.is_dir():
            for link in config.iterdir():
                if link.is_symlink():
                    link.unlink()

    def up(self, udc: str = "auto") -> bool:
        """Build and bind; True when anything changed (False: already up as asked)."""
        self._check_configfs()
        target = self.choose_udc(udc)
        bound = self.bound_udc()
        if bound and bound != target:
            raise DeviceError(
                f"gadget {self.spec.name} is already bound to {bound}, not {target}: "
                "seatbox gadget down first"
            )
        if bound == target and self._matches():
            return False
        user = self._user_of(target)
        if user is not None:
            raise DeviceError(
                f"USB device controller {target} is busy: gadget {user} is bound to it"
            )
        if bound:
            self._unbind()
        self._unlink_functions()  # function attributes are read-only while linked
        # Functions no longer wanted (audio changed) go before the new ones are made.
        functions = self.path / "functions"
        if functions.is_dir():
            for old in functions.iterdir():
                if old.name not in self.spec.functions():
                    _rmdir(old)
        for relative, data in self.spec.attributes().items():
            self._write(relative, data)
        config = self.path / "configs" / CONFIG
        for function in self.spec.functions():
            try:
                (config / function).symlink_to(self.path / "functions" / function)
            except OSError as err:
                raise DeviceError(f"cannot link {function} into {config}: {err.strerror}") from None
        try:
            with (self.path / "UDC").open("wb", buffering=0) as f:
                f.write(f"{target}\n".encode())
        except OSError as err:
            if err.errno == errno.EBUSY and self.spec.audio != "none":
                # Linux 6.x answers EBUSY both for a busy controller and for a function that
                # failed to bind ("couldn't find an available UDC or it's busy"); no other
                # gadget is on it (checked above), so it is the function: seen with UAC on
                # dummy_hcd, which has no isochronous endpoints.
                raise DeviceError(
                    f"{target} did not take the gadget (EBUSY with no other gadget on it): "
                    f"the {self.spec.audio} audio function did not bind; it needs a controller "
                    f'with isochronous endpoints (dmesg says more); [bridge] audio = "none" '
                    "runs the HID function alone"
                ) from None
            if err.errno == errno.EBUSY:
                raise DeviceError(
                    f"USB device controller {target} is busy (another gadget?)"
                ) from None
            if err.errno == errno.ENODEV:
                raise DeviceError(
                    f"{target} refused the gadget (ENODEV: a function did not bind; "
                    f"audio {self.spec.audio} needs a controller with isochronous endpoints)"
                ) from None
            raise DeviceError(f"cannot bind to {target}: {err.strerror or err}") from None
        return True

    def down(self) -> bool:
        """Unbind and remove; True when anything was removed (absent: False)."""
        self._check_configfs()
        if not self.path.exists():
            return False
        if self.bound_udc():
            self._unbind()
        self._unlink_functions()
        try:
            _remove_gadget(self.path)
        except OSError as err:
            raise DeviceError(f"cannot remove {self.path}: {err.strerror or err}") from None
        return True

    def hid_device(self) -> str | None:
        """/dev/hidgN of the HID function (from its major:minor), or None."""
        number = _read(self.path / "functions" / HID_FUNCTION / "dev")
        if not number:
            return None
        uevent = _read(Path("/sys/dev/char") / number / "uevent")
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                return "/dev/" + line.removeprefix("DEVNAME=")
        return None

    def status(self) -> dict[str, Any]:
        present = self.path.is_dir()
        udc = self.bound_udc() if present else ""
        functions = (
            sorted(p.name for p in (self.path / "functions").iterdir())
            if present and (self.path / "functions").is_dir()
            else []
        )
        return {
            "gadget": self.spec.name,
            "configfs": self.root.is_dir(),
            "present": present,
            "matches_config": present and self._matches(),
            "bound": bool(udc),
            "udc": udc or None,
            # not attached / default / addressed / configured (configured: the PC uses it)
            "state": _read(self.udc_class / udc / "state") or None if udc else None,
            "controllers": self.controllers(),
            "functions": functions,
            "hid_device": self.hid_device() if present else None,
            "vendor_id": _read(self.path / "idVendor") or None if present else None,
            "product_id": _read(self.path / "idProduct") or None if present else None,
        }


def _rmdir(path: Path) -> None:
    """rmdir; in configfs that removes a directory with its attributes (which cannot be
    unlinked). A plain directory still holding files (the tests' fake tree) goes whole."""
    try:
        path.rmdir()
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(path)


def _children(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def _remove_gadget(path: Path) -> None:
    """configfs order: links, configs' strings, configs, functions, strings, the gadget (its
    default groups configs/functions/strings/os_desc go with it)."""
    for config in _children(path / "configs"):
        for link in config.iterdir():
            if link.is_symlink():
                link.unlink()
        for strings in _children(config / "strings"):
            _rmdir(strings)
        _rmdir(config)
    for function in _children(path / "functions"):
        _rmdir(function)
    for strings in _children(path / "strings"):
        _rmdir(strings)
    _rmdir(path)


def _int(text: str) -> int:
    return int(text, 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.gadget.configfs")
    parser.add_argument("verb", choices=["up", "down", "status"])
    parser.add_argument("--root", type=Path, default=CONFIGFS_ROOT)
    parser.add_argument("--udc-class", type=Path, default=UDC_CLASS)
    parser.add_argument("--name", default="seatbox")
    parser.add_argument("--udc", default="auto")
    parser.add_argument("--vendor-id", type=_int, default=TEST_VENDOR_ID)
    parser.add_argument("--product-id", type=_int, default=TEST_PRODUCT_ID)
    parser.add_argument("--product", default="Seatbox Headset")
    parser.add_argument("--serial", default="0001")
    parser.add_argument("--audio", choices=AUDIO_KINDS, default="none")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    spec = GadgetSpec(
        name=args.name,
        vendor_id=args.vendor_id,
        product_id=args.product_id,
        product=args.product,
        serial=args.serial,
        audio=args.audio,
    )
    gadget = Gadget(spec, args.root, args.udc_class)
    try:
        if args.verb == "up":
            result: dict[str, Any] = {"changed": gadget.up(args.udc), **gadget.status()}
        elif args.verb == "down":
            result = {"changed": gadget.down(), **gadget.status()}
        else:
            result = gadget.status()
    except DeviceError as err:
        print(f"gadget {args.verb}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True) if args.json else _describe(result))
    return 0


def _describe(status: dict[str, Any]) -> str:
    if not status["present"]:
        return f"gadget {status['gadget']}: absent"
    where = f"bound to {status['udc']} ({status['state']})" if status["bound"] else "not bound"
    hid = status["hid_device"] or "no hidg device"
    return f"gadget {status['gadget']}: {where}, {hid}, functions {', '.join(status['functions'])}"


if __name__ == "__main__":
    sys.exit(main())
