"""Host side of the headset protocol: input reports to requests, LED state to output reports.

Pure and time-driven (`now` is an argument): no I/O, no threads, no clock of its own.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from drivers.errors import ParseError
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
from drivers.hid.layout import (
    INPUT_USAGES,
    PAGE_BUTTON,
    Encoding,
    InputControl,
    LedControl,
    TelephonyLayout,
)

log = logging.getLogger(__name__)


class ReportError(ParseError):
    """An input report does not match the layout (too short for its controls, empty)."""


@dataclass(frozen=True, slots=True)
class ProtocolSettings:
    """Device-handling windows (seconds); see shared/reference/hid-telephony.md §4."""

    # gonnect 2e7ef9af: hook reports within 500 ms of an Off-Hook write are echoes.
    echo_window: float = 0.5
    # WICG/webhid#61: Plantronics repeats keys <= 50 ms apart; a person's double press is
    # slower than 100 ms.
    debounce_window: float = 0.1
    # gonnect e8da2f82 (#505): a mute-locked headset re-requests mute as fast as the host
    # answers; this many mute requests inside the window is a lock, not a person.
    mute_lock_window: float = 2.0
    mute_lock_count: int = 4


# Buttons that act once per press (0 -> non-zero edge), and what each press produces.
_PRESS_EVENTS: dict[str, object] = {
    "flash": Flash(),
    "redial": Redial(),
    "drop": Drop(),
    "volume_up": Volume(step=+1),
    "volume_down": Volume(step=-1),
}


def _bits(payload: bytes) -> int:
    return int.from_bytes(payload, "little")


def _field(bits: int, bit: int, size: int, signed: bool) -> int:
    value = (bits >> bit) & ((1 << size) - 1)
    if signed and size and value & (1 << (size - 1)):
        value -= 1 << size
    return value


def _read(control: InputControl, bits: int) -> int:
    """The control's value: the field for a variable item; for an array item 1 when a slot
    selects its usage (Programmable Button: the Button number selected, 0 when none)."""
    if control.array_usages is None:
        return _field(bits, control.bit, control.size, control.logical_min < 0)
    wanted = INPUT_USAGES[control.name]
    slots = control.size // control.slot_size if control.slot_size else 0
    for slot in range(slots):
        start = control.bit + slot * control.slot_size
        raw = _field(bits, start, control.slot_size, control.logical_min < 0)
        if not control.logical_min <= raw <= control.logical_max:
            continue  # out of range: the array's "nothing selected" (HID 1.11 §6.2.2.5)
        index = raw - control.logical_min
        if index >= len(control.array_usages):
            continue
        usage = control.array_usages[index]
        if control.name == "programmable_button":
            # NAry: the Button usages under Programmable Button are the presses.
            if usage >> 16 == PAGE_BUTTON and usage & 0xFFFF:
                return usage & 0xFFFF
        elif usage == wanted:
            return 1
    return 0


class TelephonyProtocol:
    """The host state machine for one plugged device (rebuild or `replug()` on re-plug)."""

    def __init__(self, layout: TelephonyLayout, settings: ProtocolSettings | None = None) -> None:
        self.layout = layout
        self.settings = settings or ProtocolSettings()
        self._by_report: dict[int, list[InputControl]] = {}
        for name in INPUT_USAGES:  # hook before mute: the seat goes off-hook first
            control = layout.inputs.get(name)
            if control is not None:
                self._by_report.setdefault(control.report_id, []).append(control)
        self._needed = {
            rid: max((c.bit + c.size + 7) // 8 for c in controls)
            for rid, controls in self._by_report.items()
        }
        # Consumer Mute stands in for Phone Mute only when there is none (Logitech H540);
        # otherwise one press could arrive twice and toggle twice.
        self._consumer_mute_is_phone_mute = "phone_mute" not in layout.inputs
        self.replug()

    # --- state --------------------------------------------------------------------------

    def replug(self) -> None:
        """Forget everything the device was told and reported: the next `led_reports`
        writes every LED report, and the next input report sets new baselines."""
        self._values: dict[str, int] = {}
        self._last_press: dict[str, float] = {}
        self._written: dict[int, bytes] = {}
        self._written_off_hook: bool | None = None
        self._answer_owed: set[str] = set()
        self._host = LedState()
        self._echo_until = float("-inf")
        self._mute_requests: deque[float] = deque()
        self._mute_locked_until = float("-inf")

    def mute_locked(self, now: float) -> bool:
        """True while the driver ignores the mute requests of a mute-locked headset."""
        return now < self._mute_locked_until

    # --- input --------------------------------------------------------------------------

    def on_input_report(self, data: bytes, now: float) -> list[object]:
        """Typed requests in one input report (as read from hidraw: report ID first when
        the device numbers its reports). Reports of other IDs (vendor pages) give []."""
        if not data:
            raise ReportError("empty input report")
        if self.layout.uses_report_ids:
            report_id, payload = data[0], data[1:]
        else:
            report_id, payload = 0, data
        controls = self._by_report.get(report_id)
        if controls is None:
            return []
        if len(payload) < self._needed[report_id]:
            raise ReportError(
                f"input report {report_id}: {len(payload)} data bytes, its controls need "
                f"{self._needed[report_id]}"
            )
        bits = _bits(payload)
        events: list[object] = []
        for control in controls:
            value = _read(control, bits)
            previous = self._values.get(control.name, 0)
            self._values[control.name] = value
            events += self._decode(control, value, previous, now)
        return events

    def _decode(self, control: InputControl, value: int, previous: int, now: float) -> list[object]:
        name = control.name
        if name == "consumer_mute":
            if not self._consumer_mute_is_phone_mute:
                return []
            name = "phone_mute"
        if name == "hook_switch":
            request = self._on_off(control, name, value, previous, now)
            if request is None:
                return []
            if now < self._echo_until:
                log.debug("hook %s within the echo window after an Off-Hook write", request)
                return []
            off_hook = (not self._host.off_hook) if request == "toggle" else bool(request)
            self._answer_owed.add("off_hook")
            return [HookSwitch(off_hook=off_hook)]
        if name == "phone_mute":
            request = self._on_off(control, name, value, previous, now)
            if request is None:
                return []
            return self._mute_request(None if request == "toggle" else bool(request), now)
        if name == "programmable_button":
            if value and not previous and self._debounced(name, now):
                return [ProgrammableButton(button=value)]
            return []
        press = _PRESS_EVENTS.get(name)
        if press is not None and value and not previous and self._debounced(name, now):
            return [press]
        return []

    def _on_off(
        self, control: InputControl, name: str, value: int, previous: int, now: float
    ) -> bool | str | None:
        """HUT §3.4.1.2: True/False for a new state, "toggle" for a press, None for nothing."""
        if control.encoding is Encoding.TOGGLE_SWITCH:
            return bool(value) if bool(value) != bool(previous) else None
        if control.encoding is Encoding.TWO_BUTTONS:
            if value == previous or value == 0:
                return None
            return value > 0
        if value and not previous and self._debounced(name, now):
            return "toggle"
        return None

    def _debounced(self, name: str, now: float) -> bool:
        last = self._last_press.get(name)
        if last is not None and now - last < self.settings.debounce_window:
            log.debug("%s press %.3f s after the previous one: duplicate", name, now - last)
            return False
        self._last_press[name] = now
        return True

    def _mute_request(self, muted: bool | None, now: float) -> list[object]:
        window = self.settings.mute_lock_window
        if now < self._mute_locked_until:
            # Still fighting a locked headset: stay quiet until it stops asking.
            self._mute_locked_until = now + window
            return []
        requests = self._mute_requests
        requests.append(now)
        while requests and now - requests[0] > window:
            requests.popleft()
        if len(requests) >= self.settings.mute_lock_count:
            count = len(requests)
            requests.clear()
            self._mute_locked_until = now + window
            log.warning("headset mute-lock: %d mute requests within %.1f s", count, window)
            return [MuteLocked(requests=count, window=window)]
        self._answer_owed.add("mute")
        return [PhoneMute(muted=muted)]

    # --- output -------------------------------------------------------------------------

    def shown(self, leds: LedState) -> dict[str, bool]:
        """What each LED of the device shows for a host state.

        Off-Hook stays set on hold (Jabra ends the call when it is cleared: gonnect PR #52);
        Mute exists only while Off-Hook (jabra-browser-integration#49); Microphone mirrors
        Mute, Ringer mirrors Ring and On-Line mirrors Off-Hook where the device has them.
        """
        off_hook = leds.off_hook or leds.hold
        mute = leds.mute and off_hook
        wanted = {
            "off_hook": off_hook,
            "mute": mute,
            "microphone": mute,
            "ring": leds.ring,
            "ringer": leds.ring,
            "hold": leds.hold,
            "on_line": off_hook,
        }
        return {name: wanted[name] for name in self.layout.leds}

    def compose(self, leds: LedState) -> dict[int, bytes]:
        """Every LED output report for a host state, whole (other LEDs kept, never cleared)."""
        shown = self.shown(leds)
        reports: dict[int, bytes] = {}
        for rid, report in self.layout.output_reports.items():
            buffer = bytearray(report.length)
            buffer[0] = rid
            for name in report.leds:
                if shown[name]:
                    _set_led(buffer, self.layout.leds[name])
            reports[rid] = bytes(buffer)
        return reports

    def led_reports(self, leds: LedState, now: float) -> list[bytes]:
        """Output reports to write for this host state, in order: the changed ones, those
        that answer a pending hook/mute request (even unchanged), all after a re-plug.
        Off-Hook is written before the other LEDs when it is set and after them when it
        is cleared, so a per-LED device never sees Mute without Off-Hook."""
        reports = self.compose(leds)
        owed = set(self._answer_owed)
        if "mute" in owed:
            owed.add("microphone")
        off_hook_led = self.layout.leds.get("off_hook")
        off_hook_rid = off_hook_led.report_id if off_hook_led else None
        shown_off_hook = self.shown(leds).get("off_hook", False)

        chosen = [
            rid
            for rid, data in reports.items()
            if self._written.get(rid) != data
            or owed.intersection(self.layout.output_reports[rid].leds)
        ]

        def order(rid: int) -> tuple[int, int]:
            if rid == off_hook_rid:
                return (0 if shown_off_hook else 2, rid)
            return (1, rid)

        chosen.sort(key=order)
        if off_hook_led is not None and shown_off_hook and self._written_off_hook is not True:
            # Writing Off-Hook makes some headsets report Hook = 1 back ("involuntary hook
            # on", gonnect #138): not the agent's request.
            self._echo_until = now + self.settings.echo_window
        self._written.update({rid: reports[rid] for rid in chosen})
        self._written_off_hook = shown_off_hook
        self._answer_owed.clear()
        self._host = leds
        return [reports[rid] for rid in chosen]


def _set_led(buffer: bytearray, led: LedControl) -> None:
    # LED usages are On/Off controls: 1 = on (HUT §11). Bits count after the ID byte.
    position = 8 + led.bit
    buffer[position // 8] |= 1 << (position % 8)
