"""The gadget on a real kernel: Debian's, in a QEMU guest, on dummy_hcd (issue 14, part 1).

One boot: the builder (`python -m drivers.gadget.configfs`, stdlib only) refuses without
configfs and without a device controller; brought up, the gadget enumerates on the same kernel
(usbhid binds a new hidraw whose report descriptor is the canonical one); `status` says bound;
`up` again changes nothing; another gadget cannot take the busy controller; with two
controllers `auto` refuses and the bound gadget cannot move; `down` removes it and the hidraw
node goes; `down` again is fine. HID only: UAC functions do not bind on dummy_hcd.

Marked `guest` (about 30 s on a quiet machine): `pytest -m "not guest"` leaves it out.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from guest import Guest, GuestImage, GuestSpec, GuestUnavailable, build_image, qemu_binary
from guest.build import DEFAULT_PYTHON_IMPORTS, python_sources

from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR

pytestmark = [pytest.mark.guest, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
# dummy_hcd is loaded at boot and unloaded by the job first (to see the "no controller" error):
# it must be in the image, and busybox modprobe finds it again through the image's modules.dep.
SPEC = GuestSpec(
    modules=("configfs", "libcomposite", "usb_f_hid", "dummy_hcd", "usbhid", "hid_generic"),
    python_imports=(*DEFAULT_PYTHON_IMPORTS, "shutil", "errno"),
)
CASE = re.compile(r"^CASE (\S+) rc=(\d+) ?(.*)$")

JOB = r"""
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
echo "JOB-START $(cut -d' ' -f1 /proc/uptime)"
check no_configfs $G up --json
mount -t configfs none /sys/kernel/config
rmmod dummy_hcd
check no_udc $G up --json
modprobe dummy_hcd || echo "MODPROBE-FAIL dummy_hcd"
echo "HIDRAW-BEFORE $(hidraws)"
check up $G up --json
wait_hidraw some
sleep 1
for h in /sys/class/hidraw/*; do
    echo "RDESC $(basename $h) $(od -An -tx1 -v $h/device/report_descriptor | tr -d ' \n')"
done
check status $G status --json
check up_again $G up --json
check busy $G up --json --name other
check down $G down --json
wait_hidraw none
echo "HIDRAW-AFTER-DOWN $(hidraws)"
check down_again $G down --json
rmmod dummy_hcd
modprobe dummy_hcd num=2 || echo "MODPROBE-FAIL dummy_hcd num=2"
check two_auto $G up --json
check up_udc0 $G up --json --udc dummy_udc.0
check moved $G up --json --udc dummy_udc.1
check down_two $G down --json
echo "JOB-END $(cut -d' ' -f1 /proc/uptime)"
"""


@pytest.fixture(scope="module")
def image() -> GuestImage:
    try:
        qemu_binary()
        return build_image(SPEC)
    except GuestUnavailable as err:
        pytest.skip(f"no QEMU guest: {err}")


def test_gadget_enumerates_on_dummy_hcd_and_goes(image: GuestImage) -> None:
    files = python_sources({"/opt/app/drivers": REPO / "drivers"})
    started = time.monotonic()
    with Guest(image, JOB, files) as vm:
        code = vm.exit_code(240)
        console = vm.text()
        ready = vm.line_time(re.compile(r"^GUEST-READY"))
    elapsed = time.monotonic() - started
    cases = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in map(CASE.match, console.splitlines())
        if m
    }
    where = f"\n--- console (boot to power-off {elapsed:.1f} s, ready at {ready}) ---\n{console[-6000:]}"
    assert code == 0, where
    assert "MODPROBE-FAIL" not in console, where

    def ok(name: str) -> dict[str, object]:
        rc, out = cases[name]
        assert rc == 0, f"{name}: {out}{where}"
        result: dict[str, object] = json.loads(out)
        return result

    def refused(name: str, *words: str) -> None:
        rc, out = cases[name]
        assert rc == 1, f"{name} should fail: {out}{where}"
        for word in words:
            assert word in out, f"{name}: {word!r} not in {out!r}{where}"

    refused("no_configfs", "no USB gadget configfs", "mount -t configfs")
    refused("no_udc", "no USB device controller", "dtoverlay=dwc2")
    up = ok("up")
    assert up["changed"] is True and up["bound"] is True and up["udc"] == "dummy_udc.0", where
    assert str(up["hid_device"]).startswith("/dev/hidg"), where

    before = re.search(r"^HIDRAW-BEFORE (.*)$", console, re.M)
    assert before is not None and before.group(1).strip() == "", where
    rdescs = dict(re.findall(r"^RDESC (\S+) ([0-9a-f]*)$", console, re.M))
    assert len(rdescs) == 1, where
    assert bytes.fromhex(next(iter(rdescs.values()))) == CANONICAL_DESCRIPTOR, where

    status = ok("status")
    assert status["bound"] is True and status["state"] == "configured", where
    assert status["matches_config"] is True and status["functions"] == ["hid.usb0"], where
    assert ok("up_again")["changed"] is False, where
    refused("busy", "dummy_udc.0 is busy", "seatbox")
    down = ok("down")
    assert down["changed"] is True and down["present"] is False, where
    after = re.search(r"^HIDRAW-AFTER-DOWN (.*)$", console, re.M)
    assert after is not None and after.group(1).strip() == "", where
    assert ok("down_again")["changed"] is False, where

    refused("two_auto", "2 USB device controllers", "[bridge] udc")
    assert ok("up_udc0")["udc"] == "dummy_udc.0", where
    refused("moved", "already bound to dummy_udc.0")
    assert ok("down_two")["present"] is False, where
    job = [float(t) for t in re.findall(r"^JOB-(?:START|END) ([0-9.]+)$", console, re.M)]
    print(
        f"gadget guest: QEMU start to power-off {elapsed:.1f} s, GUEST-READY at {ready:.1f} s, "
        f"the job {job[-1] - job[0]:.1f} s of guest uptime"
    )
