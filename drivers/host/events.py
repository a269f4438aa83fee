"""What the call host tells the box: the LED state its softphone wrote. Stdlib only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostLeds:
    """The full LED state the softphone last wrote to the (bridged) headset."""

    off_hook: bool = False
    ring: bool = False
    hold: bool = False
    mute: bool = False


@dataclass(frozen=True, slots=True)
class BridgeStatus:
    """The PC side of the bridge (`drivers.gadget.bridge`), sent when any part changes.

    `pc_connected`: the PC has configured the gadget (its controller says `configured`, an LED
    report came, or an input report was taken); `detail` says why not. `led_writes`: `waiting`
    for the softphone's first LED report since the PC connected, `seen`, or `missing` after
    `led_wait_s` seconds connected without one (a softphone that does not drive the headset).
    `bad_report`: why the first malformed output report of this connection was refused."""

    pc_connected: bool
    detail: str = ""
    led_writes: str = "waiting"  # waiting | seen | missing
    led_wait_s: float = 0.0
    bad_report: str = ""
