"""Wiring a seat from its config: which device backends, which broker, which call sources.

`simulate` devices are the virtual twins; hardware backends are chosen by name from config.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.audio import VirtualAudio
from drivers.hid import VirtualHeadset
from drivers.host import VirtualCallHost
from drivers.radar import VirtualRadar
from edge.clock import Clock
from edge.config import ConfigError, SeatConfig
from edge.embedded import EmbeddedBroker
from edge.runtime import Devices

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
    return Clock(tz)  # type: ignore[arg-type]


def build_devices(config: SeatConfig) -> Devices:
    """Device backends by name; a seat without a device keeps working without it."""
    devices = Devices()
    headset = config.headset.device
    if headset == "virtual":
        devices.headset = VirtualHeadset()
    elif headset != "none":
        raise ConfigError(
            f"[headset] device: {headset!r}: this build has only the virtual headset (virtual | none)"
        )
    if config.audio.backend == "virtual":
        devices.audio = VirtualAudio(period_s=1.0 / config.audio.levels_hz)
    elif config.audio.backend != "none":
        raise ConfigError(f"[audio] backend: {config.audio.backend!r} is not available in this build")
    if config.radar.backend == "virtual":
        devices.radar = VirtualRadar()
    elif config.radar.backend != "none":
        raise ConfigError(f"[radar] backend: {config.radar.backend!r} is not available in this build")
    if "simulate" in config.call.sources:
        devices.host = VirtualCallHost()
    return devices


def start_broker(config: SeatConfig) -> tuple[str | None, EmbeddedBroker | None]:
    """The broker URL to use, starting the embedded broker when the config says `embedded`."""
    if config.broker.url != "embedded":
        return config.broker.url, None
    broker = EmbeddedBroker(port=config.broker.embedded_port)
    broker.start()
    return broker.url, broker


def state_dir(config: SeatConfig) -> Path:
    return Path(config.storage.state_dir)
