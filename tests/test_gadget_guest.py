"""The gadget on a real kernel: Debian's, in a QEMU guest, on dummy_hcd (issue 14, part 1).

One boot: the builder (`python -m drivers.gadget.configfs`, stdlib only) refuses without
configfs and without a device controller; brought up, the gadget enumerates on the same kernel
(usbhid binds a new hidraw whose report descriptor is the canonical one); `status` says bound;
`up` again changes nothing; another gadget cannot take the busy controller; with two
controllers `auto` refuses and the bound gadget cannot move; `down` removes it and the hidraw
node goes; `down` again is fine. HID only: UAC functions do not bind on dummy_hcd.

The relay's PC side in the same boot (tests/gadget_relay_probe.py, drivers/gadget/hidg.py and
relay.py): no node before `up` and after `down` is `pc_connected` False; LED reports written
on the PC's hidraw are read on hidg and translated; input reports written on hidg arrive on
hidraw byte-exact; a write after a soft disconnect (ESHUTDOWN) is `pc_connected` False.

Marked `guest` (about 46 s here): `pytest -m "not guest"` leaves it out.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from guest import Guest, GuestImage, GuestSpec, GuestUnavailable, build_image, qemu_binary
from guest.build import DEFAULT_PYTHON_IMPORTS, python_sources
from hid_support import input_report

from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR
from drivers.hid.layout import layout_from_bytes
from drivers.host.events import HostLeds

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
python3 -u relay_probe.py unbound unbound
check up $G up --json
wait_hidraw some
sleep 1
for h in /sys/class/hidraw/*; do
    echo "RDESC $(basename $h) $(od -An -tx1 -v $h/device/report_descriptor | tr -d ' \n')"
done
check status $G status --json
check up_again $G up --json
check busy $G up --json --name other
echo "RELAY-START $(cut -d' ' -f1 /proc/uptime)"
python3 -u relay_probe.py relay dummy_udc.0
echo "RELAY-END $(cut -d' ' -f1 /proc/uptime)"
check down $G down --json
wait_hidraw none
echo "HIDRAW-AFTER-DOWN $(hidraws)"
python3 -u relay_probe.py unbound after_down
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
    files = python_sources(
        {
            "/opt/app/drivers": REPO / "drivers",
            "/opt/app/relay_probe.py": REPO / "tests" / "gadget_relay_probe.py",
        }
    )
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
    check_relay(console, where)
    job = [float(t) for t in re.findall(r"^JOB-(?:START|END) ([0-9.]+)$", console, re.M)]
    print(
        f"gadget guest: QEMU start to power-off {elapsed:.1f} s, GUEST-READY at {ready:.1f} s, "
        f"the job {job[-1] - job[0]:.1f} s of guest uptime"
    )


# --- the relay's PC side (drivers/gadget/hidg.py + relay.py) on the same boot -------------------

CANONICAL = layout_from_bytes(CANONICAL_DESCRIPTOR)


def pc_input(hook: int, **pressed: int) -> str:
    """A canonical input report, from the parsed descriptor (as the PC's hidraw reads it)."""
    return input_report(
        CANONICAL, CANONICAL.inputs["hook_switch"].report_id, hook_switch=hook, **pressed
    ).hex()


def check_relay(console: str, where: str) -> None:
    relays = {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^RELAY (\S+) (.*)$", console, re.M)
    }
    assert set(relays) == {"unbound", "relay", "after_down"}, where
    # (c) no node before the gadget is bound and after down: a state, not an exception.
    for label in ("unbound", "after_down"):
        state = relays[label]["unbound"]
        assert state["written"] is False and state["pc_connected"] is False, (label, where)
        assert "not built or not bound" in state["problem"], (label, where)
        assert relays[label]["read"] is None, where
    relay = relays["relay"]
    assert "error" not in relay, where
    assert str(relay["hidg"]).startswith("/dev/hidg"), where
    # (a) the softphone's LED reports on hidraw, read on hidg byte-exact and translated.
    expected = [
        HostLeds(ring=True),
        HostLeds(off_hook=True),
        HostLeds(off_hook=True, mute=True),
        HostLeds(off_hook=True, hold=True),
        HostLeds(),
    ]
    assert [item["read"] for item in relay["leds"]] == [i["wrote"] for i in relay["leds"]], where
    assert [HostLeds(**item["host"]) for item in relay["leds"]] == expected, where
    # (b) the agent's requests as canonical input reports, on the PC's hidraw byte-exact.
    sent = [pc_input(1)]
    for button in ("flash", "phone_mute", "redial", "drop"):
        sent += [pc_input(1, **{button: 1}), pc_input(1)]
    sent += [pc_input(0)]
    assert [item["wrote"] for item in relay["inputs"]] == sent, where
    assert [item["read"] for item in relay["inputs"]] == sent, where
    assert all(item["ok"] for item in relay["inputs"]), where
    assert relay["connected_after_writes"]["pc_connected"] is True, where
    # (c) the PC unplugged (soft disconnect): ESHUTDOWN is pc_connected False, no exception.
    assert relay["hidraw_gone"] is True, where
    assert relay["unplugged"]["written"] is False, where
    assert relay["unplugged"]["pc_connected"] is False, where
    assert "not configured" in relay["unplugged"]["problem"], where
    assert relay["read_unplugged"] is None, where
    led_ms = [item["ms"] for item in relay["leds"]]
    spans = [float(t) for t in re.findall(r"^RELAY-(?:START|END) ([0-9.]+)$", console, re.M)]
    print(
        f"relay: LED report hidraw -> hidg {min(led_ms)}-{max(led_ms)} ms, the relay probe "
        f"{spans[-1] - spans[0]:.1f} s of guest uptime (emulation figures)"
    )
