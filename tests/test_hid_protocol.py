"""Scripted input reports of each real device give the right seat inputs; LED writes are exact."""

from __future__ import annotations

import pytest
from hid_support import TELEPHONY, input_report, layout

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
from drivers.hid.protocol import ProtocolSettings, ReportError, TelephonyProtocol

SETTINGS = ProtocolSettings(
    echo_window=0.5, debounce_window=0.1, mute_lock_window=2.0, mute_lock_count=4
)


def protocol(name: str) -> TelephonyProtocol:
    return TelephonyProtocol(layout(name), SETTINGS)


def hook_mute_report(name: str, hook: int, mute: int = 0) -> bytes:
    lay = layout(name)
    rid = lay.inputs["hook_switch"].report_id
    return input_report(lay, rid, hook_switch=hook, phone_mute=mute)


@pytest.mark.parametrize("name", TELEPHONY)
def test_answer_mute_unmute_and_hang_up(name: str) -> None:
    p = protocol(name)
    toggle = p.layout.inputs["phone_mute"].encoding.value == "toggle_button"
    p.led_reports(LedState(), now=0.0)
    assert p.on_input_report(hook_mute_report(name, 1), now=1.0) == [HookSwitch(off_hook=True)]
    p.led_reports(LedState(off_hook=True), now=1.0)
    # Duplicate hook reports (Jabra Engage 50) are one state, not two requests.
    assert p.on_input_report(hook_mute_report(name, 1), now=3.0) == []
    pressed = p.on_input_report(hook_mute_report(name, 1, 1), now=4.0)
    released = p.on_input_report(hook_mute_report(name, 1, 0), now=4.2)
    if toggle:
        assert (pressed, released) == ([PhoneMute(muted=None)], [])
    else:  # old Plantronics: Phone Mute is absolute, the bit is the state
        assert (pressed, released) == ([PhoneMute(muted=True)], [PhoneMute(muted=False)])
    assert p.on_input_report(hook_mute_report(name, 0), now=6.0) == [HookSwitch(off_hook=False)]


# Byte-exact LED writes: (state, expected writes). Shared reports carry every LED at once;
# per-LED devices get one 2-byte report per LED that changed, Off-Hook first when set.
LED_CASES = {
    "jabra_evolve_link_ms": [
        (LedState(), ["020000"]),
        (LedState(off_hook=True), ["020100"]),
        (LedState(off_hook=True, mute=True), ["021300"]),  # Mute b1 + Microphone b4
        (LedState(off_hook=True, mute=True, hold=True), ["021b00"]),
        (LedState(ring=True), ["022400"]),  # Ring b2 + Ringer b5
    ],
    "sennheiser_sc660_anc_usb": [
        (LedState(), ["0900"]),
        (LedState(off_hook=True), ["0912"]),  # Off-Hook b1 + On-Line b4
        (LedState(off_hook=True, mute=True), ["091b"]),
    ],
    "epos_impact_dw": [
        (LedState(), ["0300"]),
        (LedState(off_hook=True, mute=True), ["0336"]),
        (LedState(ring=True), ["0309"]),  # Ringer b0 + Ring b3
    ],
    "poly_bt700_dongle": [
        (LedState(), ["2100", "2300", "2500", "2400"]),
        (LedState(off_hook=True, mute=True), ["2401", "2301"]),
        (LedState(off_hook=True, mute=True, hold=True), ["2501"]),
        (LedState(), ["2300", "2500", "2400"]),  # Off-Hook cleared last
    ],
    "poly_voyager_base_cd": [
        (LedState(ring=True), ["0101", "0300", "0500", "0400"]),  # output 1 = Ring
        (LedState(off_hook=True), ["0401", "0100"]),
    ],
    "poly_blackwire_c5220": [
        (LedState(), ["0900", "1800", "2000", "2a00", "1700"]),
        (LedState(off_hook=True), ["1701", "2a01"]),
    ],
}


@pytest.mark.parametrize("name", sorted(LED_CASES))
def test_led_reports_are_byte_exact(name: str) -> None:
    p = protocol(name)
    for t, (state, expected) in enumerate(LED_CASES[name]):
        assert [r.hex() for r in p.led_reports(state, now=float(t))] == expected, state


def test_mute_is_not_shown_without_off_hook() -> None:
    p = protocol("jabra_evolve_link_ms")
    assert [r.hex() for r in p.led_reports(LedState(mute=True), now=0.0)] == ["020000"]


def test_every_hook_or_mute_request_is_answered_even_when_nothing_changed() -> None:
    name = "jabra_evolve_link_ms"
    p = protocol(name)
    state = LedState(off_hook=True)
    p.led_reports(state, now=0.0)
    assert p.led_reports(state, now=1.0) == []  # no request: nothing to write
    assert p.on_input_report(hook_mute_report(name, 1, 1), now=2.0)[-1] == PhoneMute()
    assert [r.hex() for r in p.led_reports(state, now=2.0)] == ["020100"]  # seat refused


def test_per_led_device_answers_a_mute_request_with_its_mute_report() -> None:
    name = "poly_bt700_dongle"
    p = protocol(name)
    assert p.on_input_report(hook_mute_report(name, 1), now=0.0) == [HookSwitch(off_hook=True)]
    p.led_reports(LedState(off_hook=True), now=0.0)
    assert p.on_input_report(hook_mute_report(name, 1, 1), now=1.0) == [PhoneMute()]
    assert [r.hex() for r in p.led_reports(LedState(off_hook=True), now=1.0)] == ["2300"]


def test_hook_echo_after_off_hook_write_is_ignored_for_the_window() -> None:
    name = "jabra_evolve_link_ms"
    p = protocol(name)
    p.led_reports(LedState(), now=0.0)
    p.led_reports(LedState(off_hook=True), now=10.0)  # the seat answered a CTI call
    assert p.on_input_report(hook_mute_report(name, 1), now=10.2) == []  # echo
    assert p.on_input_report(hook_mute_report(name, 0), now=11.0) == [HookSwitch(off_hook=False)]


def test_duplicate_button_reports_are_debounced() -> None:
    name = "poly_blackwire_c5220"  # Plantronics: duplicates <= 50 ms apart
    p = protocol(name)
    p.on_input_report(hook_mute_report(name, 1), now=0.0)
    events = []
    for t, mute in [(1.0, 1), (1.01, 0), (1.03, 1), (1.05, 0), (1.5, 1), (1.6, 0)]:
        events += p.on_input_report(hook_mute_report(name, 1, mute), now=t)
    assert events == [PhoneMute(), PhoneMute()]


def test_mute_lock_is_reported_once_instead_of_looping() -> None:
    name = "jabra_evolve_link_ms"
    p = protocol(name)
    p.on_input_report(hook_mute_report(name, 1), now=0.0)
    events: list[object] = []
    t = 1.0
    for _ in range(8):  # the headset re-requests mute every 300 ms as we answer
        events += p.on_input_report(hook_mute_report(name, 1, 1), now=t)
        events += p.on_input_report(hook_mute_report(name, 1, 0), now=t + 0.15)
        t += 0.3
    assert events == [PhoneMute()] * 3 + [MuteLocked(requests=4, window=2.0)]
    assert p.mute_locked(now=t)
    # Once it has been quiet for the window, a person's press counts again.
    assert p.on_input_report(hook_mute_report(name, 1, 1), now=t + 5) == [PhoneMute()]


def test_replug_writes_the_whole_led_state_again() -> None:
    p = protocol("poly_bt700_dongle")
    state = LedState(off_hook=True, mute=True)
    p.led_reports(state, now=0.0)
    assert p.led_reports(state, now=1.0) == []
    p.replug()
    assert [r.hex() for r in p.led_reports(state, now=2.0)] == ["2401", "2100", "2301", "2500"]


@pytest.mark.parametrize(
    ("name", "control", "event"),
    [
        ("sennheiser_sc660_anc_usb", "flash", Flash()),
        ("sennheiser_sc660_anc_usb", "redial", Redial()),
        ("sennheiser_sc660_anc_usb", "drop", Drop()),
        ("poly_bt700_dongle", "programmable_button", ProgrammableButton(button=1)),
        ("epos_impact_d1", "drop", Drop()),
        ("jabra_biz2400_ii", "volume_up", Volume(step=1)),
        ("jabra_biz2400_ii", "volume_down", Volume(step=-1)),
        ("epos_impact_dw", "volume_up", Volume(step=1)),
    ],
)
def test_buttons_act_once_per_press(name: str, control: str, event: object) -> None:
    p = protocol(name)
    rid = p.layout.inputs[control].report_id
    assert p.on_input_report(input_report(p.layout, rid, **{control: 1}), now=1.0) == [event]
    assert p.on_input_report(input_report(p.layout, rid, **{control: 1}), now=1.5) == []
    assert p.on_input_report(input_report(p.layout, rid, **{control: 0}), now=2.0) == []


def test_epos_programmable_button_array_selects_button_1() -> None:
    p = protocol("epos_impact_d1")
    lay = p.layout
    assert p.on_input_report(input_report(lay, 2, programmable_button=1), now=1.0) == [
        ProgrammableButton(button=1)
    ]
    assert p.on_input_report(input_report(lay, 2, programmable_button=0), now=2.0) == []


def test_consumer_mute_stands_in_for_phone_mute_only_without_one() -> None:
    h540 = protocol("logitech_h540_if3")
    assert h540.on_input_report(input_report(h540.layout, 1, consumer_mute=1), 1.0) == [PhoneMute()]
    jabra = protocol("jabra_biz2400_ii")
    assert jabra.on_input_report(input_report(jabra.layout, 1, consumer_mute=1), 1.0) == []


def test_vendor_reports_are_ignored_and_short_reports_are_errors() -> None:
    p = protocol("jabra_evolve_link_ms")
    assert p.on_input_report(bytes([0x04, 0xFF, 0xFF]), now=1.0) == []  # vendor 0xFF30
    with pytest.raises(ReportError, match="input report 2: 0 data bytes"):
        p.on_input_report(b"\x02", now=1.0)
    with pytest.raises(ReportError, match="empty"):
        p.on_input_report(b"", now=1.0)


def test_two_button_hook_reads_plus_one_as_on_and_minus_one_as_off() -> None:
    from drivers.hid.descriptor import parse_hex
    from drivers.hid.layout import layout_from_bytes

    lay = layout_from_bytes(
        parse_hex("05 0b 09 05 a1 01 15 ff 25 01 75 02 95 01 09 20 81 06 75 06 81 03 c0")
    )
    p = TelephonyProtocol(lay, SETTINGS)
    assert p.on_input_report(b"\x01", now=1.0) == [HookSwitch(off_hook=True)]
    assert p.on_input_report(b"\x00", now=2.0) == []
    assert p.on_input_report(b"\x03", now=3.0) == [HookSwitch(off_hook=False)]  # -1
