"""The kernel tier's guest (tests/test_gadget_guest.py, bench/bridge_kernel.py): the image
spec, the files each boot lays over it, and the job fragments both run.

One image: Debian's kernel with configfs, dummy_hcd, the HID gadget function, usbhid, uhid and
the kernel's Jabra and Plantronics HID drivers; this machine's Python with the standard-library
modules the seat needs. Each boot brings the project's sources (drivers, edge, dsp; no numpy
is imported), the pure-Python packages the seat imports (paho, pydantic and its compiled core),
hidapi's hidraw module (the seat's own hidraw backend), this machine's Mosquitto with its
libraries, the real descriptors of tests/data/hid and the probes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from guest import GuestImage, GuestSpec, GuestUnavailable, build_image, qemu_binary
from guest.build import DEFAULT_PYTHON_IMPORTS, python_sources

REPO = Path(__file__).resolve().parent.parent
HID_DATA = REPO / "tests" / "data" / "hid"

# dummy_hcd is loaded at boot and unloaded by the gadget job first (to see the "no controller"
# error): it must be in the image, and busybox modprobe finds it again through modules.dep.
SPEC = GuestSpec(
    modules=(
        "configfs",
        "libcomposite",
        "usb_f_hid",
        "dummy_hcd",
        "usbhid",
        "hid_generic",
        "uhid",
        # The kernel's own drivers for Jabra and Plantronics/Poly devices: hid-generic does not
        # bind those vendors (hid-quirks.c's hid_have_special_driver table); on a real box
        # udev loads these when such a headset comes.
        "hid_jabra",
        "hid_plantronics",
        # The audio functions (and u_audio's ALSA card): their configfs attributes are checked
        # against this kernel, and their bind on dummy_hcd, which has no isochronous endpoints.
        "usb_f_uac2",
        "usb_f_uac1",
    ),
    python_imports=(*DEFAULT_PYTHON_IMPORTS, "shutil", "errno"),
)
# What the bridged seat imports in the guest (the seat's own modules, paho, pydantic; no
# numpy): their standard-library needs go into the image, the packages come with each boot.
SEAT_MODULES = (
    "edge.shell.wiring",
    "edge.shell.runtime",
    "edge.shell.config",
    "edge.core.clock",
    "drivers.gadget.bridge",
    "paho.mqtt.client",
)
SITE_PACKAGES = (
    "paho",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
)

# Shell helpers every job here starts with (busybox sh, in /opt/app).
JOB_PRELUDE = r"""
cd /opt/app
G="python3 -u -m drivers.gadget.configfs"
check() { name=$1; shift; out=$("$@" 2>&1); rc=$?; echo "CASE $name rc=$rc $(echo "$out" | tr '\n' ' ')"; }
hidraws() { ls /sys/class/hidraw 2>/dev/null | tr '\n' ' '; }
wait_hidraw() {  # $1: "some" or "none"; up to 20 s
    i=0
    while [ $i -lt 100 ]; do
        n=$(ls /sys/class/hidraw 2>/dev/null | wc -l)
        if [ "$1" = some ] && [ "$n" -gt 0 ]; then return 0; fi
        if [ "$1" = none ] && [ "$n" -eq 0 ]; then return 0; fi
        sleep 0.2; i=$((i + 1))
    done
}
"""

# The bridged seat (tests/kernel_bridge_probe.py): Mosquitto in the guest, the gadget up on
# dummy_udc.0 (HID only: audio none is the builder's default), the probe, the gadget down.
# `{probe_args}` go to the probe. Needs configfs mounted and dummy_hcd loaded.
BRIDGE_JOB = r"""
echo "BRIDGE-START $(cut -d' ' -f1 /proc/uptime)"
printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n' > /tmp/mosquitto.conf
mosquitto -c /tmp/mosquitto.conf > /tmp/mosquitto.log 2>&1 &
MQ=$!
check bridge_up $G up --json --udc dummy_udc.0
wait_hidraw some
echo "BRIDGE-PROBE $(cut -d' ' -f1 /proc/uptime)"
PYTHONPATH=/opt/site python3 -u bridge_probe.py {probe_args} || echo "BRIDGE-FAILED"
check bridge_down $G down --json
kill $MQ
echo "MOSQUITTO-LOG $(tr '\n' '|' < /tmp/mosquitto.log | tail -c 600)"
echo "BRIDGE-END $(cut -d' ' -f1 /proc/uptime)"
"""


def stdlib_needs(modules: tuple[str, ...]) -> tuple[str, ...]:
    """Every standard-library module `modules` load here, by name (so the image's digest
    changes when the seat starts needing another one)."""
    probe = (
        "import importlib, sys, sysconfig\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "std = sysconfig.get_paths()['stdlib'] + '/'\n"
        "for name, m in sorted(sys.modules.items()):\n"
        "    f = getattr(m, '__file__', None) or ''\n"
        "    if f.startswith(std) and 'site-packages' not in f: print(name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise GuestUnavailable(f"cannot import the seat here: {done.stderr[-500:]}")
    return tuple(done.stdout.split())


def kernel_image() -> GuestImage:
    """The tier's image, built once and cached; GuestUnavailable says why not."""
    qemu_binary()
    imports = {*SPEC.python_imports, *stdlib_needs(SEAT_MODULES)}
    return build_image(dataclasses.replace(SPEC, python_imports=tuple(sorted(imports))))


def _ldd(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    return re.findall(r"=>\s*(/\S+)\s+\(0x", out)


def hidapi_files(root: str) -> dict[str, bytes | Path]:
    """hidapi's hidraw module (the seat's hidraw backend, `drivers.hid.hidraw.HidapiDevice`)
    under `root`, with the libraries its wheel bundles (found through its RPATH,
    $ORIGIN/hidapi.libs) and the system libraries it loads at their own paths."""
    spec = importlib.util.find_spec("hidraw")
    if spec is None or spec.origin is None:
        raise GuestUnavailable("hidapi's hidraw module is not installed here (make venv)")
    module = Path(spec.origin)
    files: dict[str, bytes | Path] = {f"{root}/{module.name}": module}
    bundled = module.parent / "hidapi.libs"
    for lib in bundled.glob("*"):
        files[f"{root}/hidapi.libs/{lib.name}"] = lib
    for path in _ldd(module):
        if Path(path).parent != bundled:
            files[path] = Path(os.path.realpath(path))
    return files


def site_files(root: str, packages: tuple[str, ...]) -> dict[str, bytes | Path]:
    """Installed packages under `root`, as sources with bytecode plus their extension modules."""
    files: dict[str, bytes | Path] = {}
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise GuestUnavailable(f"{name} is not installed here (make venv)")
        origin = Path(spec.origin)
        if spec.submodule_search_locations:
            files.update(python_sources({f"{root}/{name}": origin.parent}))
            for extension in origin.parent.rglob("*.so"):
                files[f"{root}/{name}/{extension.relative_to(origin.parent)}"] = extension
        else:
            files.update(python_sources({f"{root}/{origin.name}": origin}))
    return files


def mosquitto_files() -> dict[str, bytes | Path]:
    """This machine's Mosquitto and the libraries it loads, at their own paths."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise GuestUnavailable("no mosquitto here: apt-get install mosquitto")
    files: dict[str, bytes | Path] = {"/usr/sbin/mosquitto": Path(binary)}
    for path in _ldd(Path(binary)):
        files[path] = Path(os.path.realpath(path))
    return files


def guest_files() -> dict[str, bytes | Path]:
    """What every boot of the tier lays over the image (about 30 MB, uncompressed)."""
    tests = REPO / "tests"
    return {
        **python_sources(
            {
                "/opt/app/drivers": REPO / "drivers",
                "/opt/app/edge": REPO / "edge",
                "/opt/app/dsp": REPO / "dsp",
                "/opt/app/relay_probe.py": tests / "gadget_relay_probe.py",
                "/opt/app/headset_probe.py": tests / "kernel_headset_probe.py",
                "/opt/app/bridge_probe.py": tests / "kernel_bridge_probe.py",
                "/opt/app/uhid_headset.py": tests / "uhid_headset.py",
                "/opt/app/bridge_script.py": tests / "bridge_script.py",
            }
        ),
        **{
            f"/opt/app/config/profiles/{p.name}": p
            for p in (REPO / "config" / "profiles").glob("*.toml")
        },
        **{f"/opt/app/hid/{p.name}": p for p in HID_DATA.glob("*.hex")},
        **{f"/opt/app/hid/{p.name}": p for p in HID_DATA.glob("*.txt")},
        **hidapi_files("/opt/site"),
        **site_files("/opt/site", SITE_PACKAGES),
        **mosquitto_files(),
    }
