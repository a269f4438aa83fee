"""Wiring a seat from its config: which device backends, which broker, which call sources.

`simulate` devices are the virtual twins; hardware backends are chosen by name from config.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.audio.virtual import VirtualAudio
from drivers.hid.interface import Headset
from drivers.hid.virtual import VirtualHeadset
from drivers.host.virtual import VirtualCallHost
from drivers.radar.virtual import VirtualRadar
from edge.base.errors import ConfigError
from edge.core.clock import Clock
from edge.shell.config import SeatConfig
from edge.shell.runtime import Devices

if TYPE_CHECKING:  # asyncio and amqtt: only a seat on the embedded broker loads them
    from edge.shell.mqtt.embedded import EmbeddedBroker

log = logging.getLogger(__name__)


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
    return devices


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
