"""Wiring a seat from its config: which device backends, which broker, which call sources.

`simulate` devices are the virtual twins; hardware backends are chosen by name from config.
`build_seat` is the one place a seat is put together, for `seatbox run`, `simulate` and `demo`.

The start-up path of `seatbox run`, top-down, each step calling only the ones below it:

    edge.cli.seat_cmd.run_cmd             arguments, exit codes, signals, sd_notify
      edge.shell.config_check.load_seat   the config and its profile, validated as `config check` does
      edge.sim.build.play_on_devices      only with [call] sources "simulate" and a scenario
      edge.shell.wiring.start_broker      the embedded broker, when the config says `embedded`
      edge.ops.doctor.run_checks_for      the doctor's checks, published in `info`
      edge.shell.wiring.build_seat        this module: the parts, top-down, handed to the runtime
        drivers.*                         device backends (build_devices), seat_clock
        edge.shell.outbox.store           the outbox in [storage] state_dir (open_outbox)
        edge.shell.mqtt.link              the MQTT link over that outbox
        edge.shell.tape                   the recorder (--record)
        edge.shell.runtime                Runtime(config, profile, devices, clock, Parts(...))
        edge.shell.dose_store, day_store  today's dose and tallies, restored
      Runtime.start, Runtime.loop         the link and devices started, the core thread until SIGTERM

The link reaches the runtime through two callables only: `on_command` (inputs for the core)
and `on_connected` (the birth). Simulations pass their virtual devices, their scenario clock
and a `play` that schedules the scenario's steps; `seatbox run` has its devices and clock built
from the config, and passes a `play` only when it simulates calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.audio.relay import AudioRelay, RelaySide
from drivers.audio.virtual import VirtualAudio
from drivers.hid.interface import Headset
from drivers.hid.virtual import VirtualHeadset
from drivers.host.interface import CallHost
from drivers.host.virtual import VirtualCallHost
from drivers.radar.virtual import VirtualRadar
from edge.api.topics import Topics
from edge.base.errors import ConfigError
from edge.core.clock import Clock, Instant
from edge.core.profile import Profile
from edge.shell.config import SeatConfig
from edge.shell.day_store import DayStore
from edge.shell.dose_store import DoseStore
from edge.shell.mqtt.link import SeatLink
from edge.shell.outbox.store import OUTBOX_FILE, Outbox, OutboxError, new_boot_id
from edge.shell.runtime import Devices, Parts, Runtime
from edge.shell.tape import Recorder

if TYPE_CHECKING:  # asyncio and amqtt: only a seat on the embedded broker loads them
    from edge.shell.mqtt.embedded import EmbeddedBroker

log = logging.getLogger(__name__)

# A real seat also ticks now and then, so wall-clock steps (NTP) reach the shift logic.
HEARTBEAT_S = 10.0
# How often the core thread looks whether paho's network thread is still running.
LINK_CHECK_S = 1.0


def build_seat(
    config: SeatConfig,
    profile: Profile,
    *,
    devices: Devices | None = None,
    clock: Clock | None = None,
    broker_url: str | None = None,
    state_dir: str | None = None,
    events_out: IO[str] | None = None,
    tape_path: str | None = None,
    heartbeat: bool = True,
    keep_day: bool = False,
    play: Callable[[Runtime], object] | None = None,
) -> Runtime:
    """A seat ready to `start()`: devices (from the config unless given), clock (the seat's
    zone unless given), outbox, MQTT link and recorder, handed to one `Runtime`.

    Without `broker_url` the seat has no link (nor outbox: events are durable only to be
    published); `keep_day` restores today's dose and tallies from the state directory
    (`seatbox run`); `play` schedules a scenario's steps before the virtual audio's periods.
    """
    devices = build_devices(config) if devices is None else devices
    clock = seat_clock(config) if clock is None else clock
    # Events are durable before they are published when the seat has a state directory.
    outbox = open_outbox(config, state_dir) if broker_url is not None and state_dir else None
    boot_id = outbox.boot_id if outbox else new_boot_id()
    link = None
    if broker_url is not None:
        link = SeatLink(config, boot_id, url=broker_url, outbox=outbox)
    start = clock.now()
    recorder = None
    if tape_path:
        recorder = Recorder(tape_path, profile, config.seat.site, config.seat.id, boot_id, start)
    parts = Parts(boot_id, outbox=outbox, link=link, recorder=recorder, events_out=events_out)
    runtime = Runtime(config, profile, devices, clock, parts, start)
    relay = getattr(devices.host, "relay", None)
    if callable(relay):
        # A bridged seat: the headset's requests the seat receives also go to the PC.
        runtime.taps.append(relay)
    if isinstance(devices.audio, AudioRelay):
        runtime.progress_hooks.append(RelayEnforcement(runtime, devices.audio, profile))
    if link is not None:
        link.on_command = runtime.on_command
        link.on_connected = runtime.birth
        # A link whose network thread died is started again (it would stay offline).
        runtime.every(LINK_CHECK_S, link.supervise)
    if outbox is not None:
        outbox.add_health_listener(runtime.on_storage)
    if heartbeat:
        runtime.every(HEARTBEAT_S, lambda: None)
    if keep_day:
        # Today's hearing dose, arrival and counts survive a restart of the service.
        DoseStore.for_config(config).attach(runtime)
        DayStore.for_config(config).attach(runtime)
    if play is not None:
        play(runtime)
    if isinstance(devices.audio, VirtualAudio):
        runtime.every(devices.audio.period_s, devices.audio.tick)
    return runtime


class RelayEnforcement:
    """What the bridge's audio relay enforces beyond the `Audio` protocol's `SetMicMute` and
    `SetRxCap`, from the core's state after each input (the core thread, so in the same step as
    those effects): the gate held closed while the call is held, whatever said so (the PC's Hold
    LED, the headset, a CTI command), and the receive path's per-sample ceiling from the
    profile's peak limit and the sensitivity of the headset model in use (docs/audio.md)."""

    def __init__(self, runtime: Runtime, relay: AudioRelay, profile: Profile) -> None:
        self.runtime, self.relay = runtime, relay
        self.hearing = profile["hearing"]
        self.held: bool | None = None
        self.ceiling: float | None = None
        self(runtime.clock.now())

    def __call__(self, at: Instant) -> None:
        from dsp.limiter import peak_ceiling_dbfs  # numpy: only a seat with a relay loads it

        facts = self.runtime.state.facts
        held = facts.call.state == "held"
        if held != self.held:
            self.held = held
            self.relay.set_hold(held)
        info = facts.headset.info
        sensitivity = self.hearing.sensitivity_db_spl.get(
            info.model if info else "", self.hearing.default_sensitivity_db_spl
        )
        ceiling = peak_ceiling_dbfs(self.hearing.peak_limit_db_spl, sensitivity)
        if ceiling != self.ceiling:
            self.ceiling = ceiling
            self.relay.set_peak_limit_dbfs(ceiling)


def open_outbox(config: SeatConfig, state_dir: str) -> Outbox | None:
    """The seat's outbox in `state_dir`. A damaged file is set aside and a new outbox started
    (its first event, `outbox.reset`, says so); a full disk holds events in memory until it
    takes them again. A seat whose outbox cannot be opened at all still runs (events then live
    in memory only until published, and the error says so)."""
    try:
        return Outbox(
            Path(state_dir) / OUTBOX_FILE,
            Topics(config.seat.site, config.seat.id).event,
            budget_bytes=int(config.storage.outbox_budget_mb * 1024 * 1024),
            keep_acked_s=config.storage.outbox_keep_acked,
        )
    except (OutboxError, OSError) as exc:
        log.error("%s; events are kept in memory only until published", exc)
        return None


def zone(config: SeatConfig) -> ZoneInfo | None:
    if not config.seat.timezone:
        return None
    try:
        return ZoneInfo(config.seat.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[seat] timezone: unknown time zone {config.seat.timezone!r} (expected e.g. Asia/Shanghai)"
        ) from None


def seat_clock(config: SeatConfig) -> Clock:
    tz = zone(config) or datetime.now().astimezone().tzinfo
    return Clock(tz)


def build_devices(config: SeatConfig) -> Devices:
    """Device backends by name; a seat without a device keeps working without it. The config
    has passed `edge.shell.config_check.load_seat`, which refuses what a backend needs and lacks."""
    devices = Devices()
    devices.headset = build_headset(config)
    audio = config.audio
    if audio.backend == "virtual":
        devices.audio = VirtualAudio(period_s=1.0 / audio.levels_hz)
    elif audio.backend == "sounddevice":
        from drivers.audio.alsa_mixer import RESTORE_FILE_NAME
        from drivers.audio.capture import SoundDeviceAudio

        devices.audio = SoundDeviceAudio(
            audio.tx_device,
            audio.rx_device,
            samplerate=audio.samplerate,
            block_s=audio.block,
            levels_hz=audio.levels_hz,
            vad_mode=audio.vad_mode,
            mixer=audio.mixer,
            mixer_capture_switch=audio.mixer_capture_switch,
            mixer_playback_volume=audio.mixer_playback_volume,
            mixer_recheck_s=audio.mixer_recheck,
            # What mute and cap replaced survives a crash: put back at the next start.
            mixer_restore_file=Path(config.storage.state_dir) / RESTORE_FILE_NAME,
        )
    relay = build_audio_relay(config)
    if relay is not None:
        devices.audio = relay  # the bridge's audio path replaces the plain capture
    if config.radar.backend == "virtual":
        devices.radar = VirtualRadar()
    elif config.radar.backend == "ld2410":
        from drivers.radar.uart import LD2410Radar

        radar = config.radar
        devices.radar = LD2410Radar(
            radar.port,
            radar.baudrate,
            watchdog=radar.watchdog,
            report_interval=radar.report_interval,
            engineering_mode=radar.engineering,
        )
    if "simulate" in config.call.sources:
        devices.host = VirtualCallHost()
    elif "bridge" in config.call.sources:
        devices.host = build_bridge(config)
    return devices


def build_bridge(config: SeatConfig) -> CallHost:
    """The HID relay to the PC: the gadget's node of [bridge] hid_device (docs/bridge.md);
    its status goes to <state_dir>/bridge-status.json for `seatbox doctor`."""
    from drivers.gadget.bridge import STATUS_FILE_NAME, GadgetBridge

    return GadgetBridge(
        config.bridge.hid_device,
        status_file=Path(config.storage.state_dir) / STATUS_FILE_NAME,
    )


def build_audio_relay(config: SeatConfig) -> AudioRelay | None:
    """The bridge's audio relay (docs/audio.md) when `[call] sources` has "bridge", `[bridge]
    audio` is not none and both cards are named (each name is one card's capture and playback)."""
    bridge = config.bridge
    if "bridge" not in config.call.sources or bridge.audio == "none":
        return None
    if not (bridge.audio_headset and bridge.audio_pc):
        return None
    return AudioRelay(
        RelaySide(bridge.audio_headset, bridge.audio_headset),
        RelaySide(bridge.audio_pc, bridge.audio_pc),
        samplerate=bridge.audio_rate,
        period_s=bridge.audio_period,
        latency_s=bridge.audio_latency,
        device_latency_s=bridge.audio_device_latency,
        levels_hz=config.audio.levels_hz,
        vad_mode=config.audio.vad_mode,
    )


def build_headset(config: SeatConfig) -> Headset | None:
    section = config.headset
    if section.device == "none":
        return None
    if section.device == "virtual":
        return VirtualHeadset()
    from drivers.hid.hidraw import HidrawHeadset
    from drivers.hid.protocol import ProtocolSettings

    settings = ProtocolSettings(
        echo_window=section.echo_window,
        debounce_window=section.debounce_window,
        mute_lock_window=section.mute_lock_window,
        mute_lock_count=section.mute_lock_count,
    )
    return HidrawHeadset(
        section.device,
        settings,
        read_timeout=section.read_timeout,
        reconnect_max=section.reconnect_max,
    )


def start_broker(config: SeatConfig) -> tuple[str | None, EmbeddedBroker | None]:
    """The broker URL to use, starting the embedded broker when the config says `embedded`."""
    if config.broker.url != "embedded":
        return config.broker.url, None
    from edge.shell.mqtt.embedded import EmbeddedBroker

    broker = EmbeddedBroker(port=config.broker.embedded_port)
    broker.start()
    return broker.url, broker
