"""The doctor's checks when `seatbox run` starts, published in `info`.

Only the radar probe opens a device the seat then holds (the serial port), so it runs before
the seat opens it. Every other check runs beside the running seat, the broker's with them,
and `info` is published again when they are done: the core and READY=1 do not wait for
PortAudio's device list, a broker's timeout or a second of audio. The microphone is judged on
the seat's own capture (`SeatMicrophone`: the levels it measures in its first seconds) rather
than by opening the device a second time, so the filters load once, in the audio worker.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.ops.doctor.check import CHECK_NAMES, Check
from edge.ops.doctor.machine import Machine, MicListener, MicReading
from edge.shell.config import AudioSection, SeatConfig

BEING_CHECKED = "being checked (the seat runs meanwhile)"


def before_devices(config: SeatConfig) -> list[Check]:
    """The checks that must run before the seat opens its devices: the radar's serial probe
    when the radar is a real LD2410 (the seat's driver would hold the port)."""
    if config.radar.backend != "ld2410":
        return []
    from edge.ops.doctor.radar import check_radar

    return [check_radar(config, Machine())]


def pending(done: list[Check]) -> list[Check]:
    """What `info` shows until the rest are done: each in the doctor's order."""
    have = {c.name: c for c in done}
    return [have.get(name) or Check(name, "WARN", BEING_CHECKED) for name in CHECK_NAMES[1:]]


def beside_the_seat(
    config: SeatConfig, done: list[Check], microphone: Callable[[AudioSection, float], MicReading]
) -> list[Check]:
    """Every other check (the broker's too), with the microphone read by `microphone`; all in
    the doctor's order."""
    from edge.ops.doctor.runner import run_checks_for

    have = {c.name: c for c in done}
    fresh = run_checks_for(config, Machine(mic_probe=microphone), skip=frozenset(have))
    have.update((c.name, c) for c in fresh)
    return [have[name] for name in CHECK_NAMES[1:] if name in have]


class SeatMicrophone:
    """A microphone probe that listens to the running seat's own capture: a tap on its input
    queue (`Runtime.taps`) collects the agent channel's levels until enough have come."""

    def __init__(self, taps: list[Callable[[object], None]]) -> None:
        self._taps = taps

    def __call__(self, audio: AudioSection, seconds: float) -> MicReading:
        listener = MicListener(audio, seconds)
        self._taps.append(listener.feed)
        try:
            return listener.reading()
        finally:
            self._taps.remove(listener.feed)
