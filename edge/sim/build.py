"""A simulated seat: virtual headset, call host, CTI, radar and audio playing a scenario.

The same runtime and core as a real seat; only the devices and the clock are twins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from drivers.audio.interface import Audio
from drivers.audio.virtual import VirtualAudio, VirtualChannel
from drivers.audio.wavfile import AudioFileError
from drivers.base import Sink
from drivers.hid.virtual import VirtualHeadset
from drivers.host.virtual import VirtualCallHost
from drivers.radar.virtual import VirtualRadar
from edge.api.broker import BrokerSection
from edge.core.clock import SimClock
from edge.core.inputs import CtiCommand
from edge.core.profile import Profile
from edge.shell.config import SeatConfig, SeatSection, load_profile
from edge.shell.runtime import Devices, Runtime
from edge.shell.scenario import Scenario, Step
from edge.shell.wiring import build_seat

if TYPE_CHECKING:
    from drivers.audio.wav import WavChannel  # numpy and scipy: only when a file plays

log = logging.getLogger(__name__)


class VirtualCti:
    """Twin of the contact-center platform: call commands as they would arrive on `cmd/call`."""

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self._count = 0

    def start(self, sink: Sink) -> None:
        self._sink = sink

    def stop(self) -> None:
        self._sink = None

    def command(self, action: str, call_id: str = "") -> None:
        if self._sink is not None:
            self._count += 1
            self._sink(CtiCommand(action=action, request_id=f"cti-{self._count}", call_id=call_id))  # type: ignore[arg-type]


@dataclass
class VirtualSeat:
    headset: VirtualHeadset
    host: VirtualCallHost
    radar: VirtualRadar
    audio: Audio | None  # the virtual twin; a real capture when `seatbox run` simulates calls
    cti: VirtualCti

    def devices(self) -> Devices:
        return Devices(
            headset=self.headset,
            host=self.host,
            radar=self.radar,
            audio=self.audio,
            extra=[self.cti],
        )


def _channel(current: VirtualChannel | WavChannel, args: dict[str, Any]) -> VirtualChannel:
    """Generated levels after a step; a step without `file` ends a file the channel played."""
    if not isinstance(current, VirtualChannel):  # a WavChannel
        current = VirtualChannel()
    if args.get("silence"):
        return VirtualChannel(speech=False, noise_dbfs=args.get("noise_dbfs", current.noise_dbfs))
    if "level_dbov" in args:
        return VirtualChannel(
            speech=True,
            level_dbov=float(args["level_dbov"]),
            noise_dbfs=float(args.get("noise_dbfs", current.noise_dbfs)),
            clipping_pct=float(args.get("clipping_pct", 0.0)),
        )
    return VirtualChannel(
        speech=current.speech,
        level_dbov=current.level_dbov,
        noise_dbfs=float(args.get("noise_dbfs", current.noise_dbfs)),
        clipping_pct=float(args.get("clipping_pct", current.clipping_pct)),
    )


def _audio(audio: Audio | None, step: Step) -> None:
    """An `audio.*` step on the virtual audio path: generated levels or a WAV file."""
    if not isinstance(audio, VirtualAudio):
        # A seat capturing real audio (`seatbox run` with simulated calls): the microphone
        # is the audio; the scenario's audio steps have nothing to drive.
        log.debug("%s at %.1f s: the seat captures real audio; step ignored", step.do, step.t)
        return
    args = step.args
    if step.do == "audio.impact":
        audio.impact()
        return
    channel = step.do.partition(".")[2]
    if "file" in args:
        try:
            audio.play(
                channel,
                args["file"],
                gain_db=float(args.get("gain_db", 0.0)),
                loop=bool(args.get("loop", False)),
            )
        except AudioFileError as exc:  # checked at load; gone or changed since: keep running
            log.error("%s at %.1f s: %s; the channel plays silence", step.do, step.t, exc)
            audio.silence(channel)
    else:
        setattr(audio, channel, _channel(getattr(audio, channel), args))


def act(seat: VirtualSeat, step: Step, stop: Callable[[], None]) -> None:
    """What a scenario step does to the virtual devices (or, for `cti.*`, to the platform)."""
    device, _, verb = step.do.partition(".")
    args = step.args
    if step.do == "end":
        stop()
    elif device == "headset":
        getattr(seat.headset, verb)()
        seat.host.follow_headset(verb)  # the bridge relays the request to the softphone
    elif device == "host":
        getattr(seat.host, verb)()
    elif device == "cti":
        seat.cti.command(verb, str(args.get("call_id", "")))
    elif step.do == "radar.present":
        seat.radar.present(moving=bool(args.get("moving", False)))
    elif step.do == "radar.absent":
        seat.radar.absent()
    elif step.do == "radar.lost":
        seat.radar.lose()
    elif device == "audio":
        _audio(seat.audio, step)


def scenario_config(
    scenario: Scenario, broker_url: str | None = None, keepalive: float = 30.0
) -> SeatConfig:
    return SeatConfig(
        seat=SeatSection(site=scenario.site, id=scenario.seat, profile=scenario.profile),
        broker=BrokerSection(url=broker_url or "embedded", keepalive=keepalive),
    )


def build(
    scenario: Scenario,
    *,
    fast: bool = True,
    broker_url: str | None = None,
    events_out: IO[str] | None = None,
    tape_path: str | None = None,
    profile: Profile | None = None,
    start: datetime | None = None,
    loop: bool = False,
    levels_hz: float = 10.0,
    delay: float = 0.0,
    state_dir: str | None = None,
    keepalive: float = 30.0,
) -> tuple[Runtime, VirtualSeat]:
    """A runtime playing `scenario`; run it with `runtime.run(until=...)` or in a thread."""
    from pathlib import Path

    profile = profile or load_profile(scenario.profile, base_dir=Path(scenario.path).parent)
    clock = SimClock(start or scenario.start, realtime=not fast)
    audio = VirtualAudio(period_s=1.0 / levels_hz)
    seat = VirtualSeat(
        headset=VirtualHeadset(),
        host=VirtualCallHost(),
        radar=VirtualRadar(),
        audio=audio,
        cti=VirtualCti(),
    )
    runtime = build_seat(
        scenario_config(scenario, broker_url, keepalive),
        profile,
        devices=seat.devices(),
        clock=clock,
        broker_url=broker_url,
        state_dir=state_dir,
        events_out=events_out,
        tape_path=tape_path,
        heartbeat=False,
        play=lambda runtime: schedule(runtime, seat, scenario, offset=delay, loop=loop),
    )
    return runtime, seat


def play_on_devices(scenario: Scenario) -> Callable[[Runtime], None]:
    """`seatbox run` with `[call] sources = ["simulate"]`: the scenario plays in a loop from
    now on the seat's own devices (virtual twins, or a real audio capture), with a CTI twin."""

    def play(runtime: Runtime) -> None:
        devices = runtime.devices
        seat = VirtualSeat(
            headset=devices.headset,  # type: ignore[arg-type]
            host=devices.host,  # type: ignore[arg-type]
            radar=devices.radar,  # type: ignore[arg-type]
            audio=devices.audio,
            cti=VirtualCti(),
        )
        devices.extra.append(seat.cti)
        schedule(runtime, seat, scenario, offset=runtime.clock.now().mono, loop=True)

    return play


def schedule(
    runtime: Runtime, seat: VirtualSeat, scenario: Scenario, offset: float, loop: bool
) -> None:
    length = scenario.end
    for step in scenario.steps:
        if step.t > length:
            break
        if step.do == "end":
            if loop:
                runtime.at(
                    offset + step.t,
                    lambda: schedule(runtime, seat, scenario, offset + length, loop),
                )
            else:
                runtime.at(offset + step.t, runtime.stop)
            continue
        runtime.at(offset + step.t, lambda step=step: act(seat, step, runtime.stop))  # type: ignore[misc]
    if not any(step.do == "end" for step in scenario.steps):
        if loop and length > 0:
            runtime.at(
                offset + length, lambda: schedule(runtime, seat, scenario, offset + length, loop)
            )
        elif not loop:
            runtime.at(offset + length, runtime.stop)
