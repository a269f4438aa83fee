"""The HID relay's translation between the PC and the seat, in the canonical layout (pure).

PC -> box: the softphone writes output report 2 (`descriptor.OUTPUT_REPORT_ID`, one LED byte:
Off-Hook, Ring, Mute, Hold, Microphone, Ringer); `parse_output_report` turns it into the
`HostLeds` the seat consumes (Ring or Ringer is ring, Mute or Microphone is mute: a softphone
may set either of a pair, and `drivers.hid.protocol` shows both of a pair on the headset).

Box -> PC: the headset's requests (`drivers.hid.events`) become input reports 1
(`descriptor.INPUT_REPORT_ID`). Hook Switch is absolute: every report carries the current hook
state. Phone Mute, Flash, Redial and Drop are relative: a press is one report with the bit set
and one with it cleared. Yealink's reject (Programmable Button) is Drop. Volume (step +1 or -1)
becomes Consumer report 3 (`descriptor.CONSUMER_REPORT_ID`): Volume Increment or Decrement
set, then the release (both clear), so the PC steps its volume for the device once.

Stdlib only (the events modules are stdlib only): it runs in the QEMU guest.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import ParseError
from drivers.gadget.descriptor import (
    CONSUMER_BITS,
    CONSUMER_REPORT_ID,
    INPUT_BITS,
    INPUT_REPORT_ID,
    LED_BITS,
    OUTPUT_REPORT_ID,
    REPORT_LENGTH,
)
from drivers.hid.events import (
    Drop,
    Flash,
    HookSwitch,
    LedState,
    PhoneMute,
    ProgrammableButton,
    Redial,
    Volume,
)
from drivers.host.events import HostLeds


class OutputReportError(ParseError):
    """An output report from the PC is not the canonical LED report."""


@dataclass(frozen=True, slots=True)
class CanonicalLeds:
    """Every LED bit of the canonical output report, as the softphone wrote it."""

    off_hook: bool = False
    ring: bool = False
    mute: bool = False
    hold: bool = False
    microphone: bool = False
    ringer: bool = False

    def host(self) -> HostLeds:
        """The state the seat consumes."""
        return HostLeds(
            off_hook=self.off_hook,
            ring=self.ring or self.ringer,
            hold=self.hold,
            mute=self.mute or self.microphone,
        )


def parse_leds(data: bytes) -> CanonicalLeds:
    """The LED bits of one output report as read from /dev/hidgN (report ID first).

    OutputReportError names what was expected for any other length or report ID."""
    if len(data) != REPORT_LENGTH:
        raise OutputReportError(
            f"output report of {len(data)} bytes, expected {REPORT_LENGTH} "
            f"(report ID {OUTPUT_REPORT_ID} and the LED byte)"
        )
    if data[0] != OUTPUT_REPORT_ID:
        raise OutputReportError(
            f"output report ID {data[0]}, expected {OUTPUT_REPORT_ID} (the LED report)"
        )
    byte = data[1]
    return CanonicalLeds(**{name: bool(byte >> bit & 1) for name, bit in LED_BITS.items()})


def parse_output_report(data: bytes) -> HostLeds:
    """The host LED state of one canonical output report (OutputReportError if malformed)."""
    return parse_leds(data).host()


def output_report(leds: CanonicalLeds) -> bytes:
    """The canonical output report for these LEDs (what a softphone writes on hidraw)."""
    byte = 0
    for name, bit in LED_BITS.items():
        if getattr(leds, name):
            byte |= 1 << bit
    return bytes([OUTPUT_REPORT_ID, byte])


def headset_leds(host: HostLeds) -> LedState:
    """The LED state to mirror on the real headset (composed by `drivers.hid.protocol`)."""
    return LedState(off_hook=host.off_hook, mute=host.mute, ring=host.ring, hold=host.hold)


def input_report(off_hook: bool, *pressed: str) -> bytes:
    """Canonical input report 1: the hook state and the named relative buttons held."""
    byte = 1 << INPUT_BITS["hook_switch"] if off_hook else 0
    for name in pressed:
        if name == "hook_switch" or name not in INPUT_BITS:
            raise ValueError(f"{name!r} is not a relative button of the canonical report")
        byte |= 1 << INPUT_BITS[name]
    return bytes([INPUT_REPORT_ID, byte])


def consumer_report(*pressed: str) -> bytes:
    """Canonical Consumer input report 3 with the named volume buttons held (none: released)."""
    byte = 0
    for name in pressed:
        if name not in CONSUMER_BITS:
            raise ValueError(f"{name!r} is not a button of the canonical Consumer report")
        byte |= 1 << CONSUMER_BITS[name]
    return bytes([CONSUMER_REPORT_ID, byte])


class PcReports:
    """The headset's requests as canonical input reports, keeping the hook state (every report
    carries it): the last one sent, or the softphone's Off-Hook LED when that came later. `host_mute` is the PC's mute as its LEDs last said
    (`seen`): a headset reporting mute as a state toggles the PC's only when it differs."""

    def __init__(self) -> None:
        self.off_hook = False
        self.host_mute = False

    def seen(self, host: HostLeds) -> None:
        """The softphone's LEDs: its mute, and its hook, which the box's hook follows as a
        headset's does (the next report carries it; hanging up from the headset after the
        softphone answered is then a change from 1 to 0 for the PC)."""
        self.host_mute = host.mute
        self.off_hook = host.off_hook

    def reports(self, event: object) -> list[bytes]:
        """The reports to write for one headset event, in order ([] for other events)."""
        match event:
            case HookSwitch(off_hook=off_hook):
                self.off_hook = off_hook
                return [input_report(off_hook)]
            case PhoneMute(muted=muted):
                if muted is not None and muted == self.host_mute:
                    return []
                return self._press("phone_mute")
            case Flash():
                return self._press("flash")
            case Redial():
                return self._press("redial")
            case Drop() | ProgrammableButton():
                return self._press("drop")
            case Volume(step=step) if step in (1, -1):
                button = "volume_up" if step > 0 else "volume_down"
                return [consumer_report(button), consumer_report()]
        return []

    def _press(self, name: str) -> list[bytes]:
        return [input_report(self.off_hook, name), input_report(self.off_hook)]
