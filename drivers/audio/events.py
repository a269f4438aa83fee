"""Typed inputs the audio path produces: per-period levels of both channels, and its health.

Stdlib only (with dsp.types, itself stdlib only): the seat's core imports these and nothing
else of the audio driver, so loading a config never loads numpy, scipy or PortAudio.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsp.types import ChannelLevels


@dataclass(frozen=True, slots=True)
class AudioLevels:
    """Both channels over one reporting period (10 Hz by default)."""

    tx: ChannelLevels  # microphone: the agent
    rx: ChannelLevels  # receive: the customer


@dataclass(frozen=True, slots=True)
class AudioStatus:
    """The audio path: `ok=False` when a capture device was lost (`headset.audio_lost`)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MixerStatus:
    """Enforcement on the headset's own mixer: `ok=False` when muting or capping failed.

    Reported once per distinct failure, and `ok=True` when it works again.
    """

    ok: bool
    detail: str = ""
