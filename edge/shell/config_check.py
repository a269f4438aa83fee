"""What `seatbox run` validates before it starts, and `seatbox config check` with it: `load_seat`.

Kept free of device and signal-processing imports, so a refused config exits within a second.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge.base.errors import ConfigError
from edge.core.profile import Profile
from edge.shell.config import SeatConfig, load_config_and_profile

if TYPE_CHECKING:
    from edge.shell.scenario import Scenario


@dataclass(frozen=True)
class SeatSetup:
    """A seat config that passed every check `seatbox run` makes before it opens a device."""

    config: SeatConfig
    profile: Profile
    path: Path
    scenario: Scenario | None = None  # the `simulate` call source's, read once here


def load_seat(path: str | os.PathLike[str]) -> SeatSetup:
    """The one validation of `seatbox run` and `seatbox config check` (so they cannot drift):
    the file (size, encoding, TOML, schema, keys that need each other, the profile), then what
    it names on this box: the broker's password and TLS files, the state folder, the scenario.
    Every failure is one ConfigError, a line per problem naming the file and the key."""
    file = Path(path)
    config, profile = load_config_and_profile(file)
    scenario, scenario_problems = _scenario(config, file)
    problems = [
        *_device_problems(config),
        *_broker_file_problems(config),
        *_state_dir_problems(config.storage.state_dir),
        *scenario_problems,
    ]
    if problems:
        raise ConfigError("\n".join(f"{file}: {problem}" for problem in problems))
    return SeatSetup(config, profile, file, scenario)


def _device_problems(config: SeatConfig) -> list[str]:
    """What the device backends need to open. Not in load_config: `seatbox provision` writes a
    real seat's config before anyone knows its capture device name (doctor lists them)."""
    problems = []
    device = config.headset.device
    if device not in ("auto", "virtual", "none") and not device.startswith("/dev/"):
        problems.append(
            f"[headset] device: expected auto, virtual, none or a /dev/hidrawN path, got {device[:80]!r}"
        )
    if "bridge" in config.call.sources and "simulate" in config.call.sources:
        problems.append(
            '[call] sources: "bridge" (the PC\'s softphone) and "simulate" (a scenario) both '
            "drive the call host; expected one of them"
        )
    if config.radar.backend == "ld2410" and not config.radar.port:
        problems.append("[radar] port: required for backend ld2410 (e.g. /dev/seatbox-radar)")
    if config.audio.backend == "sounddevice" and not config.audio.tx_device:
        problems.append(
            "[audio] tx_device: required for backend sounddevice (seatbox doctor lists the "
            "capture devices)"
        )
    return problems


def _broker_file_problems(config: SeatConfig) -> list[str]:
    from edge.api.broker import read_secret_file, tls_context

    broker = config.broker
    problems = []
    if broker.password_file:
        try:
            read_secret_file(broker.password_file, "password_file")
        except ConfigError as exc:
            problems.append(str(exc))
    # Files named are checked even for a plain mqtt:// URL: a named file that is not there is
    # a mistake, and provision refuses TLS files with a non-TLS URL anyway.
    if broker.ca_file or broker.cert_file or broker.key_file:
        try:
            tls_context(broker)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _state_dir_problems(state_dir: str) -> list[str]:
    """The outbox, the day's tallies and the hearing dose live there: a folder, or a path
    where the service can make one (systemd-tmpfiles does on a box)."""
    try:
        info = os.stat(state_dir)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return [f"[storage] state_dir: a part of {state_dir} is a file; expected a folder"]
    except OSError as exc:
        return [f"[storage] state_dir: cannot use {state_dir} ({exc.strerror}); expected a folder"]
    if not stat.S_ISDIR(info.st_mode):
        return [f"[storage] state_dir: {state_dir} is a file; expected a folder"]
    return []


def _scenario(config: SeatConfig, file: Path) -> tuple[Scenario | None, list[str]]:
    if "simulate" not in config.call.sources or not config.call.scenario:
        return None, []
    from edge.shell.scenario import load_scenario

    try:
        return load_scenario(file.parent / config.call.scenario), []
    except ConfigError as exc:
        return None, [f"[call] scenario: {line}" for line in str(exc).splitlines()]
