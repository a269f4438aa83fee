"""Seat config (TOML) and norm profiles: typed schemas whose errors name file, key and need.

`load_config` and `load_profile` are the only ways in; both raise ConfigError on bad input.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SYSTEM_CONFIG_DIR = Path("/etc/seatbox")


class ConfigError(Exception):
    """A config or profile value is wrong; the message names the file, the key and the need."""


def valid_id(value: str) -> bool:
    """Site and seat ids become MQTT topic levels: no `+ # / .`, 1 to 64 characters."""
    return bool(_ID_RE.fullmatch(value))


# --- value types -------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """`0.6s`, `90s`, `2m`, `1h`, `250ms` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 2m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("expected a duration >= 0")
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _UNIT_S[match.group(2)]
    raise ValueError(f"expected a duration such as 90s, 2m or 1h, got {value!r}")


def parse_time_of_day(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    raise ValueError(f"expected a time of day HH:MM such as 08:45, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]


class Section(BaseModel):
    """A config or profile section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- seat config ---------------------------------------------------------------------------


class SeatSection(Section):
    site: Id
    id: Id
    profile: str = "default"
    timezone: str = ""  # IANA name for shift times; empty: the box's local time zone


class BrokerSection(Section):
    url: str = "embedded"  # mqtt://host:1883, mqtts://host:8883, ws://, wss://, or embedded
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: str = ""  # default seatbox-<site>-<seat>
    username: str = ""
    password_file: str = ""  # a file with mode 0600 or stricter; the password is never logged
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    check_hostname: bool = True
    keepalive: Duration = 30.0
    embedded_port: int = Field(default=1883, ge=0, le=65535)
    replay_rate: float = Field(default=200.0, gt=0)  # outbox events/s at most (backlog replay)
    max_inflight: int = Field(default=32, ge=1, le=65535)  # unacknowledged QoS 1 publishes


class HeadsetSection(Section):
    device: str = "auto"  # auto | virtual | none | /dev/hidrawN
    # Device handling (docs/headsets.md; shared/reference/hid-telephony.md §4), not norms:
    echo_window: Duration = 0.5  # ignore hook reports this long after an Off-Hook write
    debounce_window: Duration = 0.1  # repeated presses closer than this are one press
    mute_lock_window: Duration = 2.0  # this many mute requests within it = mute-lock
    mute_lock_count: int = Field(default=4, ge=2)
    read_timeout: Duration = 0.2  # reader thread wakes this often to notice stop()
    reconnect_max: Duration = 10.0  # back-off cap between looks for an absent headset


class AudioSection(Section):
    backend: Literal["virtual", "sounddevice", "none"] = "virtual"
    tx_device: str = ""  # PortAudio device name of the microphone capture
    rx_device: str = ""  # PortAudio device name of the receive (playback monitor) capture
    samplerate: int = Field(default=16000, ge=8000, le=48000)
    block: Duration = 0.02
    levels_hz: float = Field(default=10.0, gt=0, le=50)
    vad_mode: int = Field(default=2, ge=0, le=3)  # webrtcvad aggressiveness, 3 = fewest false voice
    # Mute and receive-cap enforcement on the headset's ALSA mixer (sounddevice backend):
    # auto = the card of tx_device, none = off, or an ALSA control device (hw:CARD=J40).
    mixer: str = "auto"
    mixer_capture_switch: str = ""  # e.g. "Mic Capture Switch"; empty: the first found
    mixer_playback_volume: str = ""  # e.g. "PCM Playback Volume"; empty: the first found
    mixer_recheck: Duration = Field(default=5.0, gt=0)  # re-applied this often (headset buttons)


class RadarSection(Section):
    backend: Literal["virtual", "ld2410", "none"] = "virtual"
    port: str = ""  # e.g. /dev/seatbox-radar (udev link, systemd/61-seatbox-radar.rules)
    baudrate: int = 256000
    watchdog: Duration = 2.0  # no valid frame this long: radar lost, port reopened
    report_interval: Duration = 1.0  # reports to the seat: on target change, else this often
    engineering: bool = False  # per-gate energies in every report (for tuning logs)


class CallSection(Section):
    sources: list[Literal["bridge", "cti", "simulate"]] = ["simulate", "cti"]
    scenario: str = ""  # simulate: scenario file played at start


class StorageSection(Section):
    state_dir: str = "/var/lib/seatbox"
    outbox_budget_mb: float = Field(default=64.0, ge=0.016)  # disk budget of the event outbox
    outbox_keep_acked: Duration = 3600.0  # acknowledged events kept to answer cmd/resend
    # The day's hearing dose is written to <state_dir>/hearing-dose.json this often and at stop;
    # a crash loses at most this much exposure (edge/dose_store.py). Each write is ~200 bytes.
    dose_save_every: Duration = Field(default=60.0, gt=0)


class HooksSection(Section):
    screen_lock: list[str] = []  # command run on `screen_lock` (away.long); empty: nothing


class SeatConfig(Section):
    seat: SeatSection
    broker: BrokerSection = BrokerSection()
    headset: HeadsetSection = HeadsetSection()
    audio: AudioSection = AudioSection()
    radar: RadarSection = RadarSection()
    call: CallSection = CallSection()
    storage: StorageSection = StorageSection()
    hooks: HooksSection = HooksSection()

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"seatbox-{self.seat.site}-{self.seat.id}"


# --- errors ------------------------------------------------------------------------------


def _expected(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config/seatbox.example.toml)"
    if kind == "missing":
        return "missing: this key is required"
    if kind == "string_pattern_mismatch":
        return "expected letters, digits, '_' or '-' (1 to 64), no '+ # / .'"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", err.get("msg", "")))
    return str(err.get("msg", "invalid value"))


def format_validation_error(source: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        loc = [*prefix, *(str(part) for part in err["loc"])]
        section, key = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("", ".".join(loc))
        where = f"[{section}] {key}" if section else key
        got = err.get("input")
        got_text = (
            f" (got {got!r})"
            if err.get("type") not in ("missing", "extra_forbidden") and not isinstance(got, dict)
            else ""
        )
        lines.append(f"{source}: {where}: {_expected(err)}{got_text}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied (run as the seatbox user or root)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> SeatConfig:
    """Read and validate a seat config; its profile is checked too (ConfigError otherwise)."""
    file = Path(path)
    data = read_toml(file)
    try:
        config = SeatConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(file), exc)) from None
    if config.broker.password_file and config.broker.username == "":
        raise ConfigError(f"{file}: [broker] username: required when password_file is set")
    load_profile(config.seat.profile, base_dir=file.parent)
    return config


# --- norm profiles -----------------------------------------------------------------------


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


@dataclass(frozen=True)
class Profile:
    """A validated norm profile: one settings object per section (one per norm)."""

    name: str
    sections: Mapping[str, Any]
    source: str = ""

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        return {k: v.model_dump(mode="json") for k, v in self.sections.items()}

    @property
    def digest(self) -> str:
        """12 hex digits of SHA-256 over every value in force (canonical JSON): seats showing
        the same digest enforce the same numbers, whatever the profile files are called."""
        return digest_of(self.to_dict())


def profile_from_dict(name: str, data: Mapping[str, Any], source: str = "") -> Profile:
    """Validate a complete profile (default merged with overrides) against the norm schemas."""
    from edge.profile_schema import SECTIONS

    errors = []
    sections: dict[str, Any] = {}
    meta = {"name", "description", "extends"}
    for key in data:
        if key not in SECTIONS and key not in meta:
            errors.append(
                f"{source}: [{key}]: unknown section (expected one of {sorted(SECTIONS)})"
            )
    for key, model in SECTIONS.items():
        raw = data.get(key)
        if raw is None:
            errors.append(f"{source}: [{key}]: missing section")
            continue
        if not isinstance(raw, Mapping):
            errors.append(f"{source}: [{key}]: expected a table")
            continue
        try:
            sections[key] = model.model_validate(raw)
        except ValidationError as exc:
            errors.append(format_validation_error(source, exc, prefix=(key,)))
    if errors:
        raise ConfigError("\n".join(errors))
    return Profile(name=name, sections=sections, source=source)


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


# --- showing ------------------------------------------------------------------------------

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


def digest_of(data: Any) -> str:
    """12 hex digits of SHA-256 over canonical JSON: equal digests, equal values."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def config_digest(config: SeatConfig) -> str:
    """The seat config's digest, secrets masked (no digest of a password to guess against):
    it changes when the box's config does, so facilities see whether an update took."""
    return digest_of(masked(config))
