"""Seat config (TOML) and norm profiles: typed schemas whose errors name file, key and need.

`load_config` and `load_profile` are the only ways in; both raise ConfigError on bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, ValidationError

from edge.api.broker import BrokerSection
from edge.base.errors import ConfigError
from edge.base.files import read_toml
from edge.base.schema import (
    Duration,
    Id,
    NonEmptyText,
    Section,
    Text,
    digest_of,
    format_validation_error,
)
from edge.core.profile import Profile
from edge.core.profile_schema import profile_from_dict

REPO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


SYSTEM_CONFIG_DIR = Path("/etc/seatbox")


def _timezone(value: str) -> str:
    if value == "":
        return value
    need = f"expected an IANA time zone such as Europe/Paris or Asia/Shanghai, got {value[:80]!r}"
    if len(value) > 64 or ".." in value or value.startswith("/"):
        raise ValueError(need)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(need) from None
    return value


def _command(value: list[str]) -> list[str]:
    if value and not value[0]:
        raise ValueError("expected a command (the program first); the program is empty")
    return value


class SeatSection(Section):
    site: Id
    id: Id
    profile: NonEmptyText = "default"
    # IANA name for shift times; empty: the box's local time zone
    timezone: Annotated[str, AfterValidator(_timezone)] = ""


class HeadsetSection(Section):
    device: Text = "auto"  # auto | virtual | none | /dev/hidrawN
    # Device handling (docs/headsets.md; shared/reference/hid-telephony.md §4), not norms:
    echo_window: Duration = 0.5  # ignore hook reports this long after an Off-Hook write
    debounce_window: Duration = 0.1  # repeated presses closer than this are one press
    mute_lock_window: Duration = 2.0  # this many mute requests within it = mute-lock
    mute_lock_count: int = Field(default=4, ge=2, le=1000)
    read_timeout: Annotated[Duration, Field(gt=0)] = 0.2  # reader wakes this often for stop()
    reconnect_max: Duration = 10.0  # back-off cap between looks for an absent headset


class AudioSection(Section):
    backend: Literal["virtual", "sounddevice", "none"] = "virtual"
    tx_device: Text = ""  # PortAudio device name of the microphone capture
    rx_device: Text = ""  # PortAudio device name of the receive (playback monitor) capture
    samplerate: int = Field(default=16000, ge=8000, le=48000)
    block: Annotated[Duration, Field(gt=0, le=1)] = 0.02
    levels_hz: float = Field(default=10.0, gt=0, le=50)
    vad_mode: int = Field(default=2, ge=0, le=3)  # webrtcvad aggressiveness, 3 = fewest false voice
    # Mute and receive-cap enforcement on the headset's ALSA mixer (sounddevice backend):
    # auto = the card of tx_device, none = off, or an ALSA control device (hw:CARD=J40).
    mixer: Text = "auto"
    mixer_capture_switch: Text = ""  # e.g. "Mic Capture Switch"; empty: the first found
    mixer_playback_volume: Text = ""  # e.g. "PCM Playback Volume"; empty: the first found
    mixer_recheck: Annotated[Duration, Field(gt=0)] = 5.0  # re-applied this often (buttons)


class RadarSection(Section):
    backend: Literal["virtual", "ld2410", "none"] = "virtual"
    port: Text = ""  # e.g. /dev/seatbox-radar (udev link, systemd/61-seatbox-radar.rules)
    baudrate: int = Field(default=256000, gt=0, le=4_000_000)
    watchdog: Annotated[Duration, Field(gt=0)] = 2.0  # no valid frame this long: radar lost
    report_interval: Duration = 1.0  # reports to the seat: on target change, else this often
    engineering: bool = False  # per-gate energies in every report (for tuning logs)


class CallSection(Section):
    sources: list[Literal["bridge", "cti", "simulate"]] = ["simulate", "cti"]
    scenario: Text = ""  # simulate: scenario file played at start


def _udc(value: str) -> str:
    if value != "auto" and (not value or "/" in value or value in (".", "..")):
        raise ValueError(f"expected auto or a name from /sys/class/udc, got {value[:80]!r}")
    return value


def _hidg(value: str) -> str:
    if value != "auto" and not re.fullmatch(r"/dev/hidg[0-9]+", value):
        raise ValueError(f"expected auto or /dev/hidgN, got {value[:80]!r}")
    return value


def _usb_text(value: str) -> str:
    # A USB string descriptor holds at most 126 UTF-16 code units.
    if len(value.encode("utf-16-le")) > 252:
        raise ValueError(f"expected at most 126 UTF-16 characters, got {len(value)}")
    if "\n" in value:
        raise ValueError("expected one line")
    return value


class BridgeSection(Section):
    """The box as a USB telephony headset to the PC (docs/bridge.md); `seatbox gadget up`."""

    udc: Annotated[Text, AfterValidator(_udc)] = "auto"  # auto: the only /sys/class/udc entry
    hid_device: Annotated[Text, AfterValidator(_hidg)] = "auto"  # auto | /dev/hidgN
    audio: Literal["uac2", "uac1", "none"] = "none"  # only none is built and tested so far
    # Default: the Linux Foundation's multifunction composite gadget id (a test id, not a
    # headset maker's); a deployment sets its own.
    vendor_id: int = Field(default=0x1D6B, ge=1, le=0xFFFF)
    product_id: int = Field(default=0x0104, ge=0, le=0xFFFF)
    # One product string for the HID and the audio function (Zoom web pairs them by name).
    product: Annotated[NonEmptyText, AfterValidator(_usb_text)] = "Seatbox Headset"
    # The audio relay (drivers/audio/relay.py; docs/audio.md "The bridge's audio relay"):
    # PortAudio names of the headset's card and of the gadget's ALSA card (each name one card's
    # capture and playback), empty: not relayed; built when audio is not none (edge/shell/wiring.py).
    audio_headset: Text = ""  # e.g. "Jabra EVOLVE 30: USB Audio (hw:1,0)"
    audio_pc: Text = ""  # the gadget's card, e.g. "UAC2_Gadget: ... (hw:2,0)"
    audio_rate: Literal[16000, 32000, 44100, 48000] = 48000  # both sides' nominal rate
    audio_period: Annotated[Duration, Field(ge=0.001, le=0.05)] = 0.005  # callback block
    # Drift buffer target per direction (the relay's own share of the delay), >= 2 periods.
    audio_latency: Annotated[Duration, Field(ge=0.002, le=0.2)] = 0.011
    # PortAudio buffer of each stream; 0: PortAudio's low latency for the device.
    audio_device_latency: Annotated[Duration, Field(ge=0, le=0.5)] = 0.0


class StorageSection(Section):
    state_dir: NonEmptyText = "/var/lib/seatbox"
    # Disk budget of the event outbox, 16 KiB to 1 TiB.
    outbox_budget_mb: float = Field(default=64.0, ge=0.016, le=1024 * 1024)
    outbox_keep_acked: Duration = 3600.0  # acknowledged events kept to answer cmd/resend
    # The day's hearing dose is written to <state_dir>/hearing-dose.json this often and at stop;
    # a crash loses at most this much exposure (edge/shell/dose_store.py). Each write is ~200 bytes.
    dose_save_every: Annotated[Duration, Field(gt=0)] = 60.0


class HooksSection(Section):
    # Command run on `screen_lock` (away.long); empty: nothing.
    screen_lock: Annotated[list[Text], AfterValidator(_command)] = []


class SeatConfig(Section):
    seat: SeatSection
    broker: BrokerSection = BrokerSection()
    headset: HeadsetSection = HeadsetSection()
    audio: AudioSection = AudioSection()
    radar: RadarSection = RadarSection()
    call: CallSection = CallSection()
    bridge: BridgeSection = BridgeSection()
    storage: StorageSection = StorageSection()
    hooks: HooksSection = HooksSection()

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"seatbox-{self.seat.site}-{self.seat.id}"


def _requirements(config: SeatConfig) -> list[tuple[str, str]]:
    """What one key needs from another: (where, expected), checked with the schema."""
    problems = []
    broker = config.broker
    if broker.password_file and not broker.username:
        problems.append(("[broker] username", "required when password_file is set"))
    bridge = config.bridge
    if bridge.audio_latency < 2 * bridge.audio_period:
        problems.append(
            (
                "[bridge] audio_latency",
                f"at least two audio periods ({2 * bridge.audio_period:g} s), "
                f"got {bridge.audio_latency:g} s",
            )
        )
    if bool(broker.cert_file) != bool(broker.key_file):
        missing = "cert_file" if not broker.cert_file else "key_file"
        problems.append((f"[broker] {missing}", "set both cert_file and key_file for mutual TLS"))
    return problems


def load_config(path: str | os.PathLike[str]) -> SeatConfig:
    """Read and validate a seat config file: schema, keys that need each other, its profile.

    What the config names on the box (password and TLS files, state folder, scenario, device
    backends' needs) is checked by `edge.shell.config_check.load_seat`, which `seatbox run` and
    `seatbox config check` both use.
    """
    return load_config_and_profile(path)[0]


def load_config_and_profile(path: str | os.PathLike[str]) -> tuple[SeatConfig, Profile]:
    file = Path(path)
    data = read_toml(file)
    try:
        config = SeatConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(file), exc)) from None
    problems = _requirements(config)
    if problems:
        raise ConfigError("\n".join(f"{file}: {where}: {need}" for where, need in problems))
    return config, config_profile(config, file)


def config_profile(config: SeatConfig, file: Path) -> Profile:
    """The config's norm profile; errors name the config file and `[seat] profile` first."""
    try:
        return load_profile(config.seat.profile, base_dir=file.parent)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        raise ConfigError(
            "\n".join(
                f"{file}: {line}"
                if line.startswith("[seat] profile:")
                else f"{file}: [seat] profile: {line}"
                for line in lines
            )
        ) from None


def profile_search_path(base_dir: Path | None = None) -> list[Path]:
    dirs = []
    env = os.environ.get("SEATBOX_CONFIG_DIR")
    if env:
        dirs.append(Path(env) / "profiles")
    if base_dir is not None:
        dirs.append(base_dir / "profiles")
    dirs += [SYSTEM_CONFIG_DIR / "profiles", REPO_CONFIG_DIR / "profiles"]
    return dirs


def find_profile(ref: str, base_dir: Path | None = None) -> Path:
    if not ref or "\x00" in ref or len(ref) > 4096:
        raise ConfigError(f"profile {ref[:80]!r}: expected a profile name or a .toml file")
    if ref.endswith(".toml") or "/" in ref:
        path = Path(ref)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        if path.exists():
            return path
        raise ConfigError(f"profile {ref!r}: file not found")
    for folder in profile_search_path(base_dir):
        candidate = folder / f"{ref}.toml"
        if candidate.exists():
            return candidate
    searched = ", ".join(str(p) for p in profile_search_path(base_dir))
    raise ConfigError(f"[seat] profile: no profile named {ref!r} (looked in {searched})")


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profile(ref: str = "default", base_dir: Path | None = None) -> Profile:
    """A profile overrides a subset of its parent (`extends`, default `default`), down to
    `default.toml`, which holds every default of shared/norms.md."""
    path = find_profile(ref, base_dir)
    layers: list[dict[str, Any]] = []
    seen: set[Path] = set()
    current = path
    while True:
        if current.resolve() in seen:
            raise ConfigError(f"{current}: extends: profiles extend each other in a loop")
        seen.add(current.resolve())
        data = read_toml(current)
        for meta in ("name", "extends", "description"):
            if meta in data and not isinstance(data[meta], str):
                raise ConfigError(f"{current}: {meta}: expected a string (in quotes)")
        layers.append(data)
        parent = data.get("extends")
        if parent is None:
            if current.stem == "default":
                break
            parent = "default"
        current = find_profile(str(parent), current.parent)
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = _merge(merged, layer)
    return profile_from_dict(str(layers[0].get("name", path.stem)), merged, source=str(path))


SECRET_KEYS = {"password", "password_file_contents", "key_passphrase"}


def masked(config: SeatConfig) -> dict[str, Any]:
    """The effective config as a dict with secrets masked (file paths stay visible)."""
    data = config.model_dump(mode="json")
    for section in data.values():
        if isinstance(section, dict):
            for key in list(section):
                if key in SECRET_KEYS and section[key]:
                    section[key] = "********"
    return data


def config_digest(config: SeatConfig) -> str:
    """The seat config's digest, secrets masked (no digest of a password to guess against):
    it changes when the box's config does, so facilities see whether an update took."""
    return digest_of(masked(config))
