"""The telephony layout of a headset, read from its parsed report descriptor.

Owns which report and bit carries each standard control and LED (HID Usage Tables 1.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from drivers.hid.descriptor import (
    CollectionType,
    MainItem,
    ReportDescriptor,
    ReportKind,
    parse_descriptor,
)

# HUT 1.5 usage pages
PAGE_LED = 0x08
PAGE_BUTTON = 0x09
PAGE_TELEPHONY = 0x0B
PAGE_CONSUMER = 0x0C


def usage(page: int, usage_id: int) -> int:
    return (page << 16) | usage_id


# Inputs by the snake_case name the layout JSON uses. HUT §14 (Telephony), §15 (Consumer).
INPUT_USAGES: dict[str, int] = {
    "hook_switch": usage(PAGE_TELEPHONY, 0x20),  # OOC
    "phone_mute": usage(PAGE_TELEPHONY, 0x2F),  # OOC
    "flash": usage(PAGE_TELEPHONY, 0x21),  # MC
    "redial": usage(PAGE_TELEPHONY, 0x24),  # OSC
    "drop": usage(PAGE_TELEPHONY, 0x26),  # OSC
    "programmable_button": usage(PAGE_TELEPHONY, 0x07),  # NAry of Button usages
    "volume_up": usage(PAGE_CONSUMER, 0xE9),  # RTC Volume Increment
    "volume_down": usage(PAGE_CONSUMER, 0xEA),  # RTC Volume Decrement
    "consumer_mute": usage(PAGE_CONSUMER, 0xE2),  # OOC
}
CONSUMER_INPUTS = ("volume_up", "volume_down", "consumer_mute")

# LEDs (HUT §11 LED page; Ringer is Telephony 0x9E) by layout JSON name.
LED_USAGES: dict[str, int] = {
    "off_hook": usage(PAGE_LED, 0x17),
    "mute": usage(PAGE_LED, 0x09),
    "ring": usage(PAGE_LED, 0x18),
    "hold": usage(PAGE_LED, 0x20),
    "microphone": usage(PAGE_LED, 0x21),
    "on_line": usage(PAGE_LED, 0x2A),
    "ringer": usage(PAGE_TELEPHONY, 0x9E),
}


class Encoding(Enum):
    """How an On/Off control reports (HUT §3.4.1.2)."""

    TOGGLE_SWITCH = "toggle_switch"  # Absolute: the value is the state
    TOGGLE_BUTTON = "toggle_button"  # Relative, min >= 0: each 1 is one press
    TWO_BUTTONS = "two_buttons"  # Relative, min -1: +1 = on, -1 = off


def classify(item: MainItem) -> Encoding:
    """Absolute means state whatever the Preferred bit: EPOS IMPACT D1 declares its Hook
    Switch Absolute + Preferred (0x81 0x02), which a strict HUT reading calls undefined."""
    if not item.flags.relative:
        return Encoding.TOGGLE_SWITCH
    if item.logical_min < 0:
        return Encoding.TWO_BUTTONS
    return Encoding.TOGGLE_BUTTON


@dataclass(frozen=True, slots=True)
class InputControl:
    """Where one control sits in an input report and how to read it.

    For a variable item the control is `size` bits at `bit`. For an array item the control
    spans all `count` slots; it is on when a slot selects `array_usages[index]`.
    """

    name: str
    report_id: int
    bit: int
    size: int
    encoding: Encoding
    logical_min: int
    logical_max: int
    constant: bool = False
    array_usages: tuple[int, ...] | None = None  # set for array items (usage per index)
    slot_size: int = 0  # array slot width in bits

    def to_json(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "bit": self.bit,
            "size": self.size,
            "encoding": self.encoding.value,
        }


@dataclass(frozen=True, slots=True)
class LedControl:
    name: str
    report_id: int
    bit: int
    size: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"report_id": self.report_id, "bit": self.bit}


@dataclass(frozen=True, slots=True)
class OutputReport:
    report_id: int
    length: int  # bytes hidapi writes: the report-ID byte (0 if unnumbered) + data
    leds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TelephonyLayout:
    """Everything the host needs to read requests and write LEDs of one device."""

    telephony: bool
    uses_report_ids: bool
    inputs: Mapping[str, InputControl] = field(default_factory=dict)
    leds: Mapping[str, LedControl] = field(default_factory=dict)
    output_reports: Mapping[int, OutputReport] = field(default_factory=dict)
    input_lengths: Mapping[int, int] = field(default_factory=dict)
    collection_offset: int | None = None  # byte offset of the Telephony collection used

    @property
    def shared_led_report(self) -> bool:
        """True when several LEDs share one output report (Jabra, EPOS, Sennheiser...)."""
        return any(len(r.leds) > 1 for r in self.output_reports.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "telephony": self.telephony,
            "inputs": {name: c.to_json() for name, c in self.inputs.items()},
            "leds": {name: c.to_json() for name, c in self.leds.items()},
            "output_reports": {
                str(rid): {"length": r.length} for rid, r in sorted(self.output_reports.items())
            },
        }


def _telephony_collections(desc: ReportDescriptor) -> list[int]:
    """Top-level collections on the Telephony page, Application ones first (HUT §14:
    Phone 0x01, Headset 0x05...); they can be anywhere (Poly BT700: last of five)."""
    tops = [c for c in desc.top_level() if c.usage >> 16 == PAGE_TELEPHONY]
    tops.sort(key=lambda c: c.type is not CollectionType.APPLICATION)
    return [c.index for c in tops]


def _find_input(name: str, items: list[MainItem]) -> InputControl | None:
    wanted = INPUT_USAGES[name]
    for item in items:
        if item.kind is not ReportKind.INPUT or item.size == 0 or item.count == 0:
            continue
        # Constant items are kept: some devices (Anker PowerConf) mark real controls Constant.
        if item.is_array:
            index = item.index_of(wanted)
            if index is None:
                continue
            usages = tuple(item.usage_at(i) or 0 for i in range(min(item.usage_count(), 256)))
            return InputControl(
                name=name,
                report_id=item.report_id,
                bit=item.bit,
                size=item.size * item.count,
                encoding=classify(item),
                logical_min=item.logical_min,
                logical_max=item.logical_max,
                constant=item.flags.constant,
                array_usages=usages,
                slot_size=item.size,
            )
        index = item.index_of(wanted)
        if index is None or index >= item.count:
            continue
        return InputControl(
            name=name,
            report_id=item.report_id,
            bit=item.bit + index * item.size,
            size=item.size,
            encoding=classify(item),
            logical_min=item.logical_min,
            logical_max=item.logical_max,
            constant=item.flags.constant,
        )
    return None


def _find_led(name: str, items: list[MainItem]) -> LedControl | None:
    wanted = LED_USAGES[name]
    for item in items:
        if item.kind is not ReportKind.OUTPUT or item.is_array or item.size == 0:
            continue
        index = item.index_of(wanted)
        if index is None or index >= item.count:
            continue
        return LedControl(name, item.report_id, item.bit + index * item.size, item.size)
    return None


def telephony_layout(desc: ReportDescriptor) -> TelephonyLayout:
    """The layout of the first Telephony collection with a Hook Switch or Phone Mute.

    Consumer controls are taken from that collection first (EPOS IMPACT DW puts volume in the
    telephony report), then from Consumer collections. Without a usable Telephony collection
    the layout has `telephony` False and only the Consumer controls.
    """
    by_top: dict[int | None, list[MainItem]] = {}
    for item in desc.items:
        by_top.setdefault(desc.top_level_of(item), []).append(item)

    chosen: int | None = None
    inputs: dict[str, InputControl] = {}
    leds: dict[str, LedControl] = {}
    for top in _telephony_collections(desc):
        items = by_top.get(top, [])
        found = {n: _find_input(n, items) for n in INPUT_USAGES if n not in CONSUMER_INPUTS}
        if found["hook_switch"] or found["phone_mute"]:
            chosen = top
            inputs = {n: c for n, c in found.items() if c is not None}
            leds = {n: c for n in LED_USAGES if (c := _find_led(n, items)) is not None}
            break

    consumer_items: list[MainItem] = list(by_top.get(chosen, [])) if chosen is not None else []
    for collection in desc.top_level():
        if collection.usage >> 16 == PAGE_CONSUMER and collection.index != chosen:
            consumer_items += by_top.get(collection.index, [])
    for name in CONSUMER_INPUTS:
        control = _find_input(name, consumer_items)
        if control is not None:
            inputs[name] = control

    outputs: dict[int, OutputReport] = {}
    for led in leds.values():
        previous = outputs.get(led.report_id)
        names = (previous.leds if previous else ()) + (led.name,)
        outputs[led.report_id] = OutputReport(
            led.report_id, desc.report_length(ReportKind.OUTPUT, led.report_id), names
        )
    input_lengths = {
        rid: desc.report_length(kind, rid)
        for (kind, rid) in desc.report_bits
        if kind is ReportKind.INPUT
    }
    return TelephonyLayout(
        telephony=chosen is not None,
        uses_report_ids=desc.uses_report_ids,
        inputs=inputs,
        leds=leds,
        output_reports=outputs,
        input_lengths=input_lengths,
        collection_offset=desc.collections[chosen].offset if chosen is not None else None,
    )


def layout_from_bytes(data: bytes) -> TelephonyLayout:
    """Parse and lay out in one step (DescriptorError on a bad descriptor)."""
    return telephony_layout(parse_descriptor(data))
