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
