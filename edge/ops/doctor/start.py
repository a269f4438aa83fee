"""The doctor's checks when `seatbox run` starts, published in `info`.

Only the radar probe opens a device the seat then holds (the serial port), so it runs before
the seat opens it. Every other check runs beside the running seat, the broker's with them,
and `info` is published again when they are done: the core and READY=1 do not wait for
PortAudio's device list, a broker's timeout or a second of audio. The microphone is judged on
the seat's own capture (`SeatMicrophone`: the levels it measures in its first seconds) rather
than by opening the device a second time, so the filters load once, in the audio worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge.ops.doctor.check import CHECK_NAMES, Check
from edge.ops.doctor.machine import Machine, MicReading
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
        levels: list[float] = []
        failure: list[str] = []
        enough = threading.Event()
        wanted = max(1, int(seconds * audio.levels_hz))

        def tap(item: object) -> None:
            tx = getattr(item, "tx", None)
            if tx is not None and len(levels) < wanted:  # the first second, as doctor's probe
                levels.append(float(tx.rms_dbov))
                if len(levels) >= wanted:
                    enough.set()
            elif type(item).__name__ == "AudioStatus" and getattr(item, "ok", True) is False:
                failure.append(str(getattr(item, "detail", "capture failed")))
                enough.set()

        self._taps.append(tap)
        try:
            enough.wait(seconds + 5.0)  # the seat's device start-up plus the capture itself
        finally:
            self._taps.remove(tap)
        if failure and not levels:
            return MicReading(False, detail=failure[0])
        if not levels:
            return MicReading(
                False, detail=f"no audio from {audio.tx_device!r} within {seconds + 5:g} s"
            )
        return MicReading(True, rms_dbov=max(levels))
