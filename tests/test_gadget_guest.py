"""The gadget and the bridge on a real kernel: Debian's, in a QEMU guest (issue 14).

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

The kernel tier in the same boot (docs/bridge.md, "The kernel tier"):
- real headsets through /dev/uhid from real descriptors (tests/uhid_headset.py), driven by the
  hidraw driver as the seat wires it (tests/kernel_headset_probe.py): buttons to requests, LED
  states to the headset's own bytes, hot-plug by uhid destroy and create;
- the bridged seat (tests/kernel_bridge_probe.py): the gadget's PC-side hidraw, a uhid
  headset, the seat from a `bridge` config, a Mosquitto in the guest, tests/bridge_script.py.

Marked `guest` (75 s to 3 min here with the machine's load, one boot; guest plumbing in tests/kernel_support.py):
`pytest -m "not guest"` leaves it out; without QEMU or the kernel the module skips saying why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bridge_script import FOLLOWED, MODELS, Model
from guest import Guest, GuestImage, GuestUnavailable
from hid_support import descriptor, input_report, layout
from kernel_bridge_probe import PC_REPLUG_MODEL
from kernel_support import BRIDGE_JOB, HID_DATA, JOB_PRELUDE, guest_files, kernel_image
from schema_support import validate

from drivers.gadget.configfs import GadgetSpec
from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR
from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    LedState,
    PhoneMute,
    ProgrammableButton,
    Redial,
)
from drivers.hid.layout import (
    INPUT_USAGES,
    PAGE_BUTTON,
    Encoding,
    TelephonyLayout,
    layout_from_bytes,
)
from drivers.host.events import HostLeds
from edge.api.models import parse_event, parse_state

pytestmark = [pytest.mark.guest, pytest.mark.timeout(600)]

CASE = re.compile(r"^CASE (\S+) rc=(\d+) ?(.*)$")

JOB = (
    JOB_PRELUDE
    + r"""
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
for kind in uac2 uac1; do
    check ${kind}_up $G up --json --udc dummy_udc.0 --audio $kind
    f=/sys/kernel/config/usb_gadget/seatbox/functions/$kind.usb0
    echo "UAC-ATTRS $kind $(for a in c_chmask c_srate c_ssize p_chmask p_srate p_ssize function_name; do [ -e $f/$a ] && printf '%s=%s;' $a "$(cat $f/$a)"; done)"
    echo "UAC-CARDS $kind $(cat /proc/asound/cards 2>/dev/null | tr '\n' '|')"
    check ${kind}_down $G down --json
    echo "UAC-GONE $kind $(ls /sys/kernel/config/usb_gadget 2>&1 | tr '\n' ' ')"
done
echo "HEADSETS-START $(cut -d' ' -f1 /proc/uptime)"
PYTHONPATH=/opt/site python3 -u headset_probe.py headsets.json || echo "HEADSETS-FAILED"
echo "HEADSETS-END $(cut -d' ' -f1 /proc/uptime)"
"""
    + BRIDGE_JOB.format(probe_args="")
    + r"""
echo "JOB-END $(cut -d' ' -f1 /proc/uptime)"
"""
)


@pytest.fixture(scope="module")
def image() -> GuestImage:
    try:
        return kernel_image()
    except GuestUnavailable as err:
        pytest.skip(f"no QEMU guest: {err}")


@dataclass(frozen=True)
class Boot:
    """What the one boot of this module printed."""

    code: int
    console: str
    elapsed: float  # QEMU start to power-off, host seconds
    ready: float | None  # GUEST-READY, seconds after QEMU's start

    @property
    def where(self) -> str:
        return (
            f"\n--- console (boot to power-off {self.elapsed:.1f} s, ready at {self.ready}) ---\n"
            f"{self.console[-6000:]}"
        )


@pytest.fixture(scope="module")
def boot(image: GuestImage) -> Boot:
    """The tier's one boot: the gadget, its relay, the uhid headsets, the bridged seat."""
    try:
        files = guest_files()
    except GuestUnavailable as err:
        pytest.skip(f"no QEMU guest: {err}")
    files["/opt/app/headsets.json"] = json.dumps(
        [headset_script(name) for name in KERNEL_HEADSETS]
    ).encode()
    started = time.monotonic()
    with Guest(image, JOB, files) as vm:
        code = vm.exit_code(540)
        console = vm.text()
        ready = vm.line_time(re.compile(r"^GUEST-READY"))
    if os.environ.get("SEATBOX_GUEST_CONSOLE"):  # the whole console, for a failure's reader
        Path(os.environ["SEATBOX_GUEST_CONSOLE"]).write_text(console)
    return Boot(code, console, time.monotonic() - started, ready)


def test_gadget_enumerates_on_dummy_hcd_and_goes(boot: Boot) -> None:
    console, code, elapsed, ready, where = (
        boot.console,
        boot.code,
        boot.elapsed,
        boot.ready,
        boot.where,
    )
    cases = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in map(CASE.match, console.splitlines())
        if m
    }
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


@pytest.mark.parametrize("kind", ["uac2", "uac1"])
def test_the_audio_functions_take_our_attributes_and_say_why_dummy_hcd_refuses_them(
    boot: Boot, kind: str
) -> None:
    """The UAC functions cannot run here (dummy_hcd has no isochronous endpoints), but the real
    kernel's configfs takes every attribute the builder writes (a wrong name or value would be
    refused on write), the bind failure is told as what it is, and `down` leaves nothing."""
    console, where = boot.console, boot.where
    cases = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in map(CASE.match, console.splitlines())
        if m
    }
    rc, out = cases[f"{kind}_up"]
    assert rc == 1, f"{kind} bound on dummy_hcd? {out}{where}"
    assert f"the {kind} audio function did not bind" in out, out
    assert "isochronous" in out and 'audio = "none"' in out, out
    attrs = re.search(rf"^UAC-ATTRS {kind} (.*)$", console, re.M)
    assert attrs is not None, where
    read_back = dict(pair.split("=", 1) for pair in attrs.group(1).split(";") if pair)
    spec = GadgetSpec(audio=kind)
    written = {
        key.rsplit("/", 1)[1]: value.decode().strip()
        for key, value in spec.attributes().items()
        if key.startswith(f"functions/{kind}.usb0/")
    }
    assert written and read_back == written, (read_back, written)
    assert cases[f"{kind}_down"][0] == 0, where
    gone = re.search(rf"^UAC-GONE {kind} (.*)$", console, re.M)
    assert gone is not None and gone.group(1).strip() == "", where


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
    volume_id = CANONICAL.inputs["volume_up"].report_id  # the Consumer report
    for button in ("volume_up", "volume_down"):
        sent += [
            input_report(CANONICAL, volume_id, **{button: 1}).hex(),
            input_report(CANONICAL, volume_id).hex(),
        ]
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


# --- real headsets through /dev/uhid, driven by the hidraw driver (tests/kernel_headset_probe.py)

# A Jabra, two Polys (one report per LED; Telephony the last of five collections), an EPOS, a
# Yealink and a Sennheiser: the layouts of tests/data/hid with the real ids of each file.
KERNEL_HEADSETS = (
    "jabra_evolve_link_ms",
    "poly_bt700_dongle",
    "poly_blackwire_c5220",
    "epos_impact_d1",
    "yealink_wh66",
    "sennheiser_sc660_anc_usb",
)
HID_NAMES = {
    "jabra_evolve_link_ms": "Jabra EVOLVE LINK MS",
    "poly_bt700_dongle": "Poly BT700",
    "poly_blackwire_c5220": "Plantronics Blackwire C5220",
    "epos_impact_d1": "EPOS IMPACT D1",
    "yealink_wh66": "Yealink WH66",
    "sennheiser_sc660_anc_usb": "Sennheiser SC 660 ANC USB",
}
# What each headset LED shows for a host state (the pairs protocol.py mirrors; the same
# table as tests/test_gadget_relay.py).
SHOWS = {
    "off_hook": lambda h: h.off_hook or h.hold,
    "on_line": lambda h: h.off_hook or h.hold,
    "ring": lambda h: h.ring,
    "ringer": lambda h: h.ring,
    "mute": lambda h: h.mute and (h.off_hook or h.hold),
    "microphone": lambda h: h.mute and (h.off_hook or h.hold),
    "hold": lambda h: h.hold,
}
# A call as the seat shows it: ring, answer, mute, hold (muted on hold), resume, hang up.
LED_STEPS = (
    ("ring", LedState(ring=True)),
    ("answer", LedState(off_hook=True)),
    ("mute", LedState(off_hook=True, mute=True)),
    ("hold", LedState(off_hook=True, hold=True, mute=True)),
    ("resume", LedState(off_hook=True)),
    ("hang_up", LedState()),
)
LIVE_CALL = LedState(off_hook=True, mute=True)
BUTTONS = ("hook_switch", "phone_mute", "flash", "redial", "drop", "programmable_button")
PRESS_EVENTS = {"flash": Flash(), "redial": Redial(), "drop": Drop()}


def ids_of(name: str) -> tuple[int, int]:
    """VID:PID from the descriptor's provenance file (0:0 when unknown)."""
    found = re.search(
        r"VID:PID ([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})", (HID_DATA / f"{name}.txt").read_text()
    )
    return (int(found.group(1), 16), int(found.group(2), 16)) if found else (0, 0)


def headset_reports(lay: TelephonyLayout, leds: LedState) -> dict[int, bytes]:
    """Each LED output report of the headset for a host state, from its parsed descriptor."""
    reports: dict[int, bytes] = {}
    for rid, report in lay.output_reports.items():
        data = bytearray(report.length)
        data[0] = rid
        for name in report.leds:
            if SHOWS[name](leds):
                bit = 8 + lay.leds[name].bit
                data[bit // 8] |= 1 << bit % 8
        reports[rid] = bytes(data)
    return reports


def pressed_value(lay: TelephonyLayout, control: str) -> int:
    """The field value that presses `control`: 1, or an array's index of its usage."""
    item = lay.inputs[control]
    if item.array_usages is None:
        return 1
    if control == "programmable_button":
        index = next(i for i, u in enumerate(item.array_usages) if u >> 16 == PAGE_BUTTON)
    else:
        index = item.array_usages.index(INPUT_USAGES[control])
    return item.logical_min + index


def expected_events(lay: TelephonyLayout, control: str) -> tuple[list[object], list[object]]:
    """What the driver should hand the seat for a press and for the release after it, from
    the control's encoding in the descriptor (HUT §3.4.1.2), not from the driver's code."""
    encoding = lay.inputs[control].encoding
    if control == "hook_switch":
        if encoding is Encoding.TOGGLE_SWITCH:
            return [HookSwitch(off_hook=True)], [HookSwitch(off_hook=False)]
        return [HookSwitch(off_hook=True)], []
    if control == "phone_mute":
        if encoding is Encoding.TOGGLE_SWITCH:
            return [PhoneMute(muted=True)], [PhoneMute(muted=False)]
        if encoding is Encoding.TWO_BUTTONS:
            return [PhoneMute(muted=True)], []
        return [PhoneMute()], []
    if control == "programmable_button":
        item = lay.inputs[control]
        button = 1
        if item.array_usages is not None:
            button = item.array_usages[pressed_value(lay, control) - item.logical_min] & 0xFFFF
        return [ProgrammableButton(button=button)], []
    return [PRESS_EVENTS[control]], []


def as_json(item: object) -> dict[str, object]:
    return {"type": type(item).__name__, **dataclasses.asdict(item)}  # type: ignore[call-overload]


def hexes(reports: dict[int, bytes]) -> dict[str, str]:
    return {str(rid): data.hex() for rid, data in reports.items()}


def changed(before: dict[int, bytes], after: dict[int, bytes]) -> dict[str, str]:
    """The reports whose bytes differ: those the driver must write (the probe waits for
    them; the driver may write others, which the test checks against `expect`)."""
    return {str(rid): data.hex() for rid, data in after.items() if before[rid] != data}


def headset_script(name: str) -> dict[str, object]:
    """What the guest's probe does with one headset, computed here from its descriptor."""
    lay = layout(name)
    vendor, product = ids_of(name)
    presses = []
    for control in BUTTONS:
        if control not in lay.inputs:
            continue
        rid = lay.inputs[control].report_id
        press, release = expected_events(lay, control)
        value = pressed_value(lay, control)
        presses.append(
            {
                "control": control,
                "report": input_report(lay, rid, **{control: value}).hex(),
                "expect": len(press),
                "events": [as_json(e) for e in press],
            }
        )
        presses.append(
            {
                "control": f"{control} release",
                "report": input_report(lay, rid).hex(),
                "expect": len(release),
                "events": [as_json(e) for e in release],
            }
        )
    leds = []
    before = headset_reports(lay, LedState())
    for label, state in LED_STEPS:
        now = headset_reports(lay, state)
        leds.append(
            {
                "label": label,
                "state": dataclasses.asdict(state),
                "expect": hexes(now),
                "changed": changed(before, now),
            }
        )
        before = now
    # After the re-plug the call is live (Off-Hook just written: hook reports in the echo
    # window are ignored), so the press that proves the reader is back is not the hook.
    again = next(c for c in ("flash", "redial", "drop", "phone_mute") if c in lay.inputs)
    rid = lay.inputs[again].report_id
    return {
        "name": name,
        "hid_name": HID_NAMES[name],
        "vendor": vendor,
        "product": product,
        "descriptor": descriptor(name).hex(),
        "on_plug": hexes(headset_reports(lay, LedState())),
        "presses": presses,
        "leds": leds,
        "replug": {
            "state": dataclasses.asdict(LIVE_CALL),
            "expect": hexes(headset_reports(lay, LIVE_CALL)),
            "changed": changed(headset_reports(lay, LedState()), headset_reports(lay, LIVE_CALL)),
            "press": {
                "control": again,
                "report": input_report(lay, rid, **{again: pressed_value(lay, again)}).hex(),
                "release": input_report(lay, rid).hex(),
                "events": [as_json(e) for e in expected_events(lay, again)[0]],
            },
        },
    }


def headset_results(boot: Boot) -> dict[str, dict[str, Any]]:
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^HEADSET (\S+) (.*)$", boot.console, re.M)
    }


def latest(writes: list[dict[str, Any]]) -> dict[str, str]:
    """The last report written per report ID."""
    return {str(int(w["data"][:2], 16)): w["data"] for w in writes}


@pytest.mark.parametrize("name", KERNEL_HEADSETS)
def test_a_real_headset_on_uhid_is_driven_by_the_hidraw_driver(boot: Boot, name: str) -> None:
    """The headset's button reports reach the seat as requests; the seat's LED states arrive
    at the headset as UHID_OUTPUT events with its own report bytes."""
    where = boot.where
    results = headset_results(boot)
    assert name in results, where
    got = results[name]
    assert "error" not in got, f"{got}{where}"
    script = headset_script(name)
    lay = layout(name)
    # A real hidraw node, found and opened by the driver, with the headset's inventory.
    assert re.fullmatch(r"/dev/hidraw\d+", str(got["node"])), where
    info = got["plugged"]["info"]
    assert (info["vendor_id"], info["product_id"]) == ids_of(name), got["plugged"]
    assert info["product"] == HID_NAMES[name] and info["telephony"] is True, got["plugged"]
    assert f"headset {HID_NAMES[name]} on {got['node']}" in got["log"], got["log"]
    # On plug the driver writes the whole (idle) LED state, every report of the layout.
    assert all(w["via"] == "output" and w["rtype"] == 1 for w in got["on_plug"]), got["on_plug"]
    assert latest(got["on_plug"]) == script["on_plug"], got["on_plug"]
    # The agent's presses, in order, each becoming the request its encoding says.
    wanted = [e for p in script["presses"] for e in p["events"]]
    seen = [e for p in got["presses"] for e in p["events"]]
    assert seen == wanted, (got["presses"], where)
    assert {"hook_switch", "phone_mute"} & {p["control"] for p in got["presses"]}, where
    # Each LED state: every report written is the expected one for its ID, and every report
    # whose bytes change is written.
    previous = script["on_plug"]
    for step, written in zip(script["leds"], got["leds"], strict=True):
        assert written["writes"], (step["label"], got["leds"])
        for write in written["writes"]:
            rid = str(int(write["data"][:2], 16))
            assert write["data"] == step["expect"][rid], (step["label"], write, step["expect"])
        changed = {rid for rid, data in step["expect"].items() if previous[rid] != data}
        assert changed <= set(latest(written["writes"])), (step["label"], written)
        previous = step["expect"]
    # Mute on hold shows on the headset (a Mute or Microphone LED is lit in the hold step).
    hold = dict(zip([s[0] for s in LED_STEPS], script["leds"], strict=True))["hold"]
    mute_leds = [lay.leds[n] for n in ("mute", "microphone") if n in lay.leds]
    assert mute_leds, name
    for led in mute_leds:
        data = bytes.fromhex(hold["expect"][str(led.report_id)])
        assert data[1 + led.bit // 8] >> (led.bit % 8) & 1, (name, hold)


@pytest.mark.parametrize("name", KERNEL_HEADSETS)
def test_the_hidraw_driver_follows_uhid_destroy_and_create(boot: Boot, name: str) -> None:
    """Unplugged mid-call (UHID_DESTROY): the driver says the headset went; created again:
    it finds the new node, says so, shows the live call again and reads the buttons."""
    got = headset_results(boot).get(name)
    assert got is not None and "error" not in got, f"{got}{boot.where}"
    script = headset_script(name)
    assert got["unplugged"] is not None and got["unplugged"]["reason"], got
    assert got["node_after_destroy"] is None, got
    assert got["replugged"] is not None, got
    assert got["replugged"]["info"] == got["plugged"]["info"], got
    # The whole live-call state goes to the new device, in its own bytes.
    assert latest(got["on_replug"]) == script["replug"]["expect"], got["on_replug"]
    assert got["press_after_replug"] == script["replug"]["press"]["events"], got
    said = [line for line in got["log"] if "headset" in line]
    assert any(" gone: " in line for line in said), said
    opened = re.compile(rf"headset {re.escape(HID_NAMES[name])} on /dev/hidraw\d+")
    assert sum(opened.fullmatch(line) is not None for line in said) == 2, said
    assert got["node_after_close"] is None, got


# --- the bridged seat: gadget + uhid headset + the seat + Mosquitto, all in the guest ----------


def bridge_results(boot: Boot) -> dict[str, dict[str, Any]]:
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^BRIDGE (\S+) (.*)$", boot.console, re.M)
    }


@pytest.mark.parametrize("model", MODELS, ids=[m.descriptor for m in MODELS])
def test_a_softphone_and_an_agent_through_the_bridged_seat_on_one_kernel(
    boot: Boot, model: Model
) -> None:
    """tests/bridge_script.py on the real kernel: the softphone on the gadget's PC-side hidraw
    (dummy_hcd), the headset on /dev/uhid, the seat built from a `bridge` config publishing to
    a Mosquitto in the guest. The script asserts each step in the guest (LED bytes at the
    headset, input reports at the PC, events and state over MQTT, mute on hold); here: it
    passed, nothing stray either way, and what the seat published is valid v1. Headsets with
    one LED report are also unplugged mid-call and plugged back; for the first model the PC's
    end is too."""
    got = bridge_results(boot).get(model.descriptor)
    assert got is not None, boot.where
    assert got.get("ok") is True, (
        f"{got.get('failed') or got.get('error')}\nlog: {got.get('log')}{boot.where}"
    )
    assert got["plug"] == model.plug, got["plug"]
    assert got["stray_headset"] == [] and got["stray_pc"] == [], got
    assert got["seat_stopped"] is True
    steps = [line.split(":")[0] for line in got["log"]]
    for step in ("PC rings", "agent lifts", "PC holds", "PC resumes", "PC mutes", "PC hangs up"):
        assert step in steps, steps
    events = got["events"]
    # The call, mute and bridge events in order (others, e.g. greeting.late, interleave).
    kinds = [(e["type"], e["data"].get("by")) for e in events if e["type"].startswith(FOLLOWED)]
    # Mute on hold, and the agent's own mute back on resume, as the floor sees them.
    held = kinds.index(("call.hold", None))
    assert kinds[held + 1] == ("mute.on", "hold_policy"), kinds
    assert ("mute.off", "hold_policy") in kinds[held + 2 :], kinds
    connected = [e["data"] for e in events if e["type"] == "bridge.pc_connected"]
    assert connected and "dummy_udc.0 configured" in connected[0]["detail"], connected
    headset = [e["type"] for e in events if e["type"].startswith("headset.")]
    if len(model.plug) == 1:
        # Unplugged mid-call and back (uhid destroy and create): told the live call again,
        # its hook reaches the PC again (the probe's replug_mid_call asserts each step).
        assert got["replug"] == "ok", got["replug"]
        assert headset == ["headset.connected", "headset.disconnected", "headset.connected"]
        assert any(line.startswith("replug: the headset back") for line in got["log"])
    else:
        assert headset == ["headset.connected"], headset
    bridge = [e["type"] for e in events if e["type"].startswith("bridge.")]
    if model is PC_REPLUG_MODEL:
        # The PC's end unplugged mid-call and back (the gadget unbound and bound again): the
        # call stayed, the softphone on the new node ended it (the probe asserts each step).
        assert got["pc_replug"] == "ok", got["pc_replug"]
        assert bridge == ["bridge.pc_connected", "bridge.pc_disconnected", "bridge.pc_connected"]
        assert any(line.startswith("pc replug: the agent hangs up: PC") for line in got["log"])
    else:
        assert bridge == ["bridge.pc_connected"], bridge
    state = got["state"]
    assert state["call"]["state"] == "idle" and state["mute"]["muted"] is False, state
    assert state["bridge"]["pc_connected"] is True and state["bridge"]["led_writes"] == "seen"
    validate("state", state)
    assert parse_state(json.dumps(state).encode()).bridge is not None
    for event in events:
        validate("event", event)
        parse_event(json.dumps(event).encode())
    print(
        f"bridged {model.descriptor}: seat ready {got['seat_ready_s']} s, script "
        f"{got['script_s']} s; LED -> headset {summary(got['led_to_headset_ms'])}, "
        f"button -> PC {summary(got['button_to_pc_ms'])} (emulation figures)"
    )


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"median {ordered[len(ordered) // 2]} ms, max {ordered[-1]} ms (n={len(ordered)})"
