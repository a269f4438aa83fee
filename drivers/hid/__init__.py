"""The USB telephony headset: its button requests in, its LEDs out.

`Headset` is what edge/ holds; the hidraw backend and the virtual twin implement it.
"""

from drivers.hid.events import (
    Flash,
    HeadsetInfo,
    HeadsetPlugged,
    HeadsetUnplugged,
    HookSwitch,
    LedState,
    PhoneMute,
    Volume,
)
from drivers.hid.virtual import Headset, VirtualHeadset

__all__ = [
    "Flash",
    "Headset",
    "HeadsetInfo",
    "HeadsetPlugged",
    "HeadsetUnplugged",
    "HookSwitch",
    "LedState",
    "PhoneMute",
    "VirtualHeadset",
    "Volume",
]
