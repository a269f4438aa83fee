"""Typed inputs a headset produces and the LED state it is told to show.

Names follow the HID Usage Tables (Telephony page 0x0B, LED page 0x08).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HookSwitch:
    """Hook Switch (0x0B:0x20) request: the agent lifted (off_hook) or dropped the call."""

    off_hook: bool


@dataclass(frozen=True, slots=True)
class PhoneMute:
    """Phone Mute (0x0B:0x2F) request: a toggle press, or the absolute state when known."""

    muted: bool | None = None  # None: toggle request (Relative+Preferred); else absolute state


@dataclass(frozen=True, slots=True)
class Flash:
    """Flash (0x0B:0x21): hold / resume on the call host."""


@dataclass(frozen=True, slots=True)
class Redial:
    """Redial (0x0B:0x24) press."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop (0x0B:0x26) press: the agent asks to end the call."""


@dataclass(frozen=True, slots=True)
class ProgrammableButton:
    """Programmable Button (0x0B:0x07) press; `button` is the Button-page number (1 when the
    device declares a single bit). Yealink uses it as "reject"."""

    button: int = 1


@dataclass(frozen=True, slots=True)
class MuteLocked:
    """The headset keeps asking to toggle mute faster than a person presses (mute-lock):
    the driver stopped forwarding its mute requests for `window` seconds."""

    requests: int
    window: float


@dataclass(frozen=True, slots=True)
class Volume:
    """Consumer Volume Increment / Decrement (0x0C:0xE9 / 0xEA)."""

    step: int  # +1 or -1


@dataclass(frozen=True, slots=True)
class HeadsetInfo:
    """Inventory of a headset as published in `info`."""

    vendor_id: int = 0
    product_id: int = 0
    manufacturer: str = ""
    product: str = ""
    serial: str = ""
    firmware: str = ""
    usb_path: str = ""
    telephony: bool = True
    model: str = ""  # key into the profile's per-model calibration (hearing sensitivity)


@dataclass(frozen=True, slots=True)
class HeadsetPlugged:
    info: HeadsetInfo = field(default_factory=HeadsetInfo)


@dataclass(frozen=True, slots=True)
class HeadsetUnplugged:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LedState:
    """The whole LED state the host believes in; always written as one composed state."""

    off_hook: bool = False
    mute: bool = False
    ring: bool = False
    hold: bool = False
