"""The HID relay's translation (drivers/gadget/relay.py) and the hidg node's states
(drivers/gadget/hidg.py) on this machine; tests/test_gadget_guest.py runs both on a kernel.

Table-driven over every real telephony layout in tests/data/hid: each headset's own button
reports, read by drivers/hid/protocol.py, become the canonical input reports the PC gets; each
canonical LED state the softphone writes becomes that headset's own LED output reports. The
expected bytes come from the descriptors through the project's parser (the canonical one and
the headset's), not from the relay's tables.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hid_support import TELEPHONY, input_report, layout

from drivers.errors import ParseError
from drivers.gadget.descriptor import CANONICAL_DESCRIPTOR
from drivers.gadget.hidg import HidgDevice, find_hidg
from drivers.gadget.relay import (
    CanonicalLeds,
    OutputReportError,
    PcReports,
    headset_leds,
    output_report,
    parse_leds,
    parse_output_report,
)
from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    LedState,
    MuteLocked,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from drivers.hid.layout import INPUT_USAGES, PAGE_BUTTON, TelephonyLayout, layout_from_bytes
from drivers.hid.protocol import ProtocolSettings, TelephonyProtocol
from drivers.host.events import HostLeds

CANONICAL = layout_from_bytes(CANONICAL_DESCRIPTOR)
IN_ID = CANONICAL.inputs["hook_switch"].report_id
(OUT_ID,) = CANONICAL.output_reports
VOLUME_ID = CANONICAL.inputs["volume_up"].report_id
SETTINGS = ProtocolSettings()


def pc_input(hook: int, **pressed: int) -> bytes:
    """The canonical input report as the PC's hidraw reads it, from the parsed descriptor."""
    return input_report(CANONICAL, IN_ID, hook_switch=hook, **pressed)


def pc_volume(**pressed: int) -> bytes:
    """The canonical Consumer (volume) report as the PC's hidraw reads it, from the parsed
    descriptor: no button named is the release."""
    return input_report(CANONICAL, VOLUME_ID, **pressed)


def pc_output(**leds: bool) -> bytes:
    """The canonical LED report a softphone writes, from the parsed descriptor."""
    data = bytearray(CANONICAL.output_reports[OUT_ID].length)
    data[0] = OUT_ID
    for name, on in leds.items():
        if on:
            data[1 + CANONICAL.leds[name].bit // 8] |= 1 << CANONICAL.leds[name].bit % 8
    return bytes(data)


# --- PC -> box: the softphone's LED report ------------------------------------------------------


@pytest.mark.parametrize(
    ("leds", "host"),
    [
        ({}, HostLeds()),
        ({"ring": True}, HostLeds(ring=True)),
        ({"ringer": True}, HostLeds(ring=True)),
        ({"off_hook": True}, HostLeds(off_hook=True)),
        ({"off_hook": True, "mute": True}, HostLeds(off_hook=True, mute=True)),
        ({"off_hook": True, "microphone": True}, HostLeds(off_hook=True, mute=True)),
        ({"off_hook": True, "hold": True}, HostLeds(off_hook=True, hold=True)),
        (
            {name: True for name in CANONICAL.leds},
            HostLeds(off_hook=True, ring=True, hold=True, mute=True),
        ),
    ],
)
def test_the_softphones_led_report_becomes_the_host_led_state(
    leds: dict[str, bool], host: HostLeds
) -> None:
    report = pc_output(**leds)
    assert parse_output_report(report) == host
    assert parse_leds(report) == CanonicalLeds(**leds)
    assert output_report(CanonicalLeds(**leds)) == report


@pytest.mark.parametrize(
    ("report", "words"),
    [
        (b"", ["0 bytes", "expected 2"]),
        (bytes([OUT_ID]), ["1 bytes", "expected 2"]),
        (bytes([OUT_ID, 0, 0]), ["3 bytes", "expected 2"]),
        (bytes([IN_ID, 1]), [f"ID {IN_ID}", f"expected {OUT_ID}"]),
        (bytes([0, 1]), ["ID 0", f"expected {OUT_ID}"]),
    ],
)
def test_a_malformed_output_report_is_a_parse_error_naming_what_was_expected(
    report: bytes, words: list[str]
) -> None:
    with pytest.raises(OutputReportError) as caught:
        parse_output_report(report)
    assert isinstance(caught.value, ParseError)
    for word in words:
        assert word in str(caught.value)


# --- PC -> box -> headset: the LEDs in each headset's own layout -------------------------------

LED_STATES = {
    "ring": {"ring": True},
    "off_hook": {"off_hook": True},
    "mute": {"off_hook": True, "mute": True},
    "hold": {"off_hook": True, "hold": True},
    "idle": {},
}
# What each headset LED shows for a host state: the pairs protocol.py mirrors.
SHOWS = {
    "off_hook": lambda h: h.off_hook or h.hold,
    "on_line": lambda h: h.off_hook or h.hold,
    "ring": lambda h: h.ring,
    "ringer": lambda h: h.ring,
    "mute": lambda h: h.mute and (h.off_hook or h.hold),
    "microphone": lambda h: h.mute and (h.off_hook or h.hold),
    "hold": lambda h: h.hold,
}


def headset_reports(lay: TelephonyLayout, host: HostLeds) -> dict[int, bytes]:
    """Each LED output report of the headset, from its parsed descriptor."""
    reports: dict[int, bytes] = {}
    for rid, report in lay.output_reports.items():
        data = bytearray(report.length)
        data[0] = rid
        for name in report.leds:
            if SHOWS[name](host):
                bit = 8 + lay.leds[name].bit
                data[bit // 8] |= 1 << bit % 8
        reports[rid] = bytes(data)
    return reports


@pytest.mark.parametrize("name", TELEPHONY)
@pytest.mark.parametrize("state", sorted(LED_STATES))
def test_the_softphones_leds_show_on_each_headset_in_its_own_layout(name: str, state: str) -> None:
    lay = layout(name)
    host = parse_output_report(pc_output(**LED_STATES[state]))
    expected = headset_reports(lay, host)
    protocol = TelephonyProtocol(lay, SETTINGS)
    assert protocol.compose(headset_leds(host)) == expected
    written = protocol.led_reports(headset_leds(host), now=0.0)
    assert sorted(written) == sorted(expected.values())
    if state == "ring":  # a softphone's Ring reaches every headset that has a ring LED
        assert any(n in lay.leds for n in ("ring", "ringer")) == any(
            r != bytes([r[0]]) + bytes(len(r) - 1) for r in written
        )


def test_ring_reaches_a_jabra_a_poly_an_epos_and_a_yealink() -> None:
    ring = parse_output_report(pc_output(ring=True))
    for name in ("jabra_evolve_link_ms", "poly_bt700_dongle", "epos_impact_d1", "yealink_wh66"):
        lay = layout(name)
        assert "ring" in lay.leds or "ringer" in lay.leds, name
        composed = TelephonyProtocol(lay, SETTINGS).compose(headset_leds(ring))
        assert composed == headset_reports(lay, ring), name
        assert composed != headset_reports(lay, HostLeds()), name


# --- headset -> box -> PC: each headset's buttons as canonical input reports --------------------

# The relay's request for each headset control, and the canonical control it becomes.
BUTTONS = {"phone_mute": "phone_mute", "flash": "flash", "redial": "redial", "drop": "drop"}
BUTTONS["programmable_button"] = "drop"  # Yealink's reject


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


def relay_cases() -> list[tuple[str, str]]:
    return [
        (name, control)
        for name in TELEPHONY
        for control in ("hook_switch", *BUTTONS)
        if control in layout(name).inputs
    ]


# Levels the headset reports for two presses (or two changes of state), by encoding, and
# how many canonical changes they make: a switch's state changes four times, a button's twice.
LEVELS = {
    "toggle_switch": (1, 0, 1, 0),
    "toggle_button": (1, 0, 1, 0),
    "two_buttons": (1, 0, -1, 0),
}
CHANGES = {"toggle_switch": 4, "toggle_button": 2, "two_buttons": 2}


@pytest.mark.parametrize(("name", "control"), relay_cases())
def test_each_headsets_buttons_become_canonical_input_reports(name: str, control: str) -> None:
    lay = layout(name)
    protocol = TelephonyProtocol(lay, SETTINGS)
    pc = PcReports()
    item = lay.inputs[control]
    encoding = item.encoding.value if control in ("hook_switch", "phone_mute") else "toggle_button"
    sent: list[bytes] = []
    for step, level in enumerate(LEVELS[encoding]):
        now = 10.0 * step  # apart: no debounce, echo window or mute lock in the way
        value = pressed_value(lay, control) * level
        for event in protocol.on_input_report(
            input_report(lay, item.report_id, **{control: value}), now
        ):
            reports = pc.reports(event)
            sent += reports
            # The softphone answers, and the headset is told (its next toggle goes the other way).
            if isinstance(event, HookSwitch):
                protocol.led_reports(LedState(off_hook=event.off_hook), now=now)
            if isinstance(event, PhoneMute) and reports:
                pc.seen(HostLeds(mute=not pc.host_mute))
    if control == "hook_switch":
        # Absolute on the PC side whatever the headset's encoding: off-hook, on-hook, ...
        assert sent == [pc_input(1), pc_input(0)] * (CHANGES[encoding] // 2)
        return
    target = BUTTONS[control]
    press = [pc_input(0, **{target: 1}), pc_input(0)]
    # One press of the PC's button per press of the headset's (per change of a mute state).
    presses = CHANGES[encoding] if control == "phone_mute" else 2
    assert sent == press * presses


def test_presses_keep_the_hook_state_and_hook_is_absolute() -> None:
    pc = PcReports()
    assert pc.reports(HookSwitch(off_hook=True)) == [pc_input(1)]
    assert pc.reports(Flash()) == [pc_input(1, flash=1), pc_input(1)]
    assert pc.reports(Redial()) == [pc_input(1, redial=1), pc_input(1)]
    assert pc.reports(PhoneMute()) == [pc_input(1, phone_mute=1), pc_input(1)]
    assert pc.reports(Drop()) == [pc_input(1, drop=1), pc_input(1)]
    assert pc.reports(ProgrammableButton(button=1)) == [pc_input(1, drop=1), pc_input(1)]
    assert pc.reports(HookSwitch(off_hook=True)) == [pc_input(1)]  # the state, again
    assert pc.reports(HookSwitch(off_hook=False)) == [pc_input(0)]
    assert pc.reports(MuteLocked(requests=4, window=2.0)) == []


def volume_cases() -> list[tuple[str, str]]:
    cases = [
        (name, control)
        for name in TELEPHONY
        for control in ("volume_up", "volume_down")
        if control in layout(name).inputs
    ]
    assert len({name for name, _ in cases}) >= 10  # the real headsets with volume buttons
    return cases


@pytest.mark.parametrize(("name", "control"), volume_cases())
def test_each_headsets_volume_buttons_step_the_pcs_volume(name: str, control: str) -> None:
    """Two presses of a headset's volume button: each a Consumer press then its release."""
    lay = layout(name)
    protocol = TelephonyProtocol(lay, SETTINGS)
    pc = PcReports()
    item = lay.inputs[control]
    sent: list[bytes] = []
    for step, level in enumerate((1, 0, 1, 0)):
        value = pressed_value(lay, control) * level
        report = input_report(lay, item.report_id, **{control: value})
        for event in protocol.on_input_report(report, now=10.0 * step):
            sent += pc.reports(event)
    assert sent == [pc_volume(**{control: 1}), pc_volume()] * 2


def test_volume_goes_to_the_consumer_report_and_leaves_the_hook_alone() -> None:
    assert VOLUME_ID != IN_ID
    assert CANONICAL.inputs["volume_down"].report_id == VOLUME_ID
    pc = PcReports()
    assert pc.reports(HookSwitch(off_hook=True)) == [pc_input(1)]
    assert pc.reports(Volume(step=1)) == [pc_volume(volume_up=1), pc_volume()]
    assert pc.reports(Volume(step=-1)) == [pc_volume(volume_down=1), pc_volume()]
    assert pc_volume(volume_up=1) != pc_volume(volume_down=1)
    assert pc.reports(Volume(step=0)) == []  # not a step: nothing to press
    assert pc.reports(Flash()) == [pc_input(1, flash=1), pc_input(1)]  # the hook kept


def test_an_absolute_mute_toggles_the_pc_only_when_it_differs_from_the_pcs_mute() -> None:
    pc = PcReports()
    assert pc.reports(PhoneMute(muted=False)) == []
    assert pc.reports(PhoneMute(muted=True)) == [pc_input(0, phone_mute=1), pc_input(0)]
    pc.seen(parse_output_report(pc_output(off_hook=True, mute=True)))
    assert pc.reports(PhoneMute(muted=True)) == []
    # The softphone's Off-Hook LED is the hook the presses carry from now on.
    assert pc.reports(PhoneMute(muted=False)) == [pc_input(1, phone_mute=1), pc_input(1)]
    pc.seen(parse_output_report(pc_output()))
    assert pc.reports(Flash()) == [pc_input(0, flash=1), pc_input(0)]


# --- the hidg node's states ---------------------------------------------------------------------


def test_no_node_is_pc_not_connected_without_raising(tmp_path: Path) -> None:
    missing = HidgDevice(str(tmp_path / "hidg9"))
    assert missing.write_report(pc_input(1)) is False
    assert missing.read_report() is None
    assert missing.wait_report(0.01) is None
    assert missing.pc_connected is False and "hidg9" in missing.problem
    auto = HidgDevice("auto", root=tmp_path / "usb_gadget")
    assert auto.write_report(pc_input(1)) is False
    assert auto.pc_connected is False and "not built or not bound" in auto.problem
    assert find_hidg(root=tmp_path / "usb_gadget") is None


def test_reports_go_through_the_node_and_a_vanished_node_is_a_state(tmp_path: Path) -> None:
    fifo = tmp_path / "hidg0"  # one fd both ways, like the gadget node
    os.mkfifo(fifo)
    node = HidgDevice(str(fifo))
    assert node.read_report() is None  # nothing written yet: EAGAIN
    assert node.write_report(pc_output(ring=True)) is True and node.pc_connected
    assert node.wait_report(1.0) == pc_output(ring=True)
    fd = node.fileno()
    assert fd is not None
    os.close(fd)  # as if the node went away under us
    assert node.write_report(pc_input(1)) is False
    assert node.pc_connected is False and os.strerror(errno.EBADF) in node.problem
    assert node.write_report(pc_input(1)) is True  # reopened on the next call
