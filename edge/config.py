"""Seat config (TOML) and norm profiles: typed schemas whose errors name file, key and need.

`load_config` and `load_profile` are the only ways in; both raise ConfigError on bad input.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SYSTEM_CONFIG_DIR = Path("/etc/seatbox")


class ConfigError(Exception):
    """A config or profile value is wrong; the message names the file, the key and the need."""


def valid_id(value: str) -> bool:
    """Site and seat ids become MQTT topic levels: no `+ # / .`, 1 to 64 characters."""
    return bool(_ID_RE.fullmatch(value))


# --- reading files ---------------------------------------------------------------------

# Configs, profiles and scenarios are a few KiB; anything past this is a mistake (a log, an
# image, /dev/zero) and is refused before it is read (docs/reliability.md).
MAX_CONFIG_BYTES = 1024 * 1024
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_small_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or ConfigError saying why not.

    Opened non-blocking and checked with fstat before reading, so a FIFO, a device or a
    folder is refused at once instead of hanging or filling the memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied (run as the seatbox user or root)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: symlink loop; expected a regular file") from None
        raise ConfigError(
            f"{path}: cannot open ({exc.strerror}); expected a regular file"
        ) from None
    except ValueError:  # a NUL in the path
        raise ConfigError(f"{path!r}: a path cannot contain NUL") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
            raise ConfigError(f"{path}: is {kind}; expected a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{path}: {info.st_size} bytes; expected at most {_size(limit)}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ConfigError(f"{path}: more than {_size(limit)}; expected at most {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 text (a UTF-8 BOM is allowed); UTF-16 and other encodings are named, not guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: is UTF-16 text; expected UTF-8 (save it as UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: byte {exc.start} is not UTF-8; expected UTF-8 text (save it as UTF-8)"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: contains NUL bytes (UTF-16 or binary?); expected UTF-8 text")
    return text.removeprefix("\ufeff")


def read_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    return decode_text(path, read_small_file(path, limit))


# --- value types -------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}
# No timer of the seat needs more; bigger values overflow waits and timestamps.
MAX_DURATION_S = 366 * 24 * 3600.0
_DURATION_NEED = "expected a duration such as 90s, 2m or 1h"


def parse_duration(value: object) -> float:
    """`0.6s`, `90s`, `2m`, `1h`, `250ms` or a bare number of seconds, as seconds."""
    seconds: float | None = None
    if isinstance(value, bool):
        raise ValueError(_DURATION_NEED)
    if isinstance(value, int) and abs(value) > MAX_DURATION_S:
        # float() of a huge int overflows; the checks below name the bound it breaks.
        seconds = 2 * MAX_DURATION_S if value > 0 else -1.0
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds is None:
        raise ValueError(f"{_DURATION_NEED}, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"{_DURATION_NEED} (a finite number), got {value!r}")
    if seconds < 0:
        raise ValueError(f"{_DURATION_NEED}, >= 0")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{_DURATION_NEED}, at most 366 days")
    return seconds


def parse_time_of_day(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        match = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    raise ValueError(f"expected a time of day HH:MM such as 08:45, got {value!r}")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("expected text without NUL characters")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
# File names, device names, commands: no NUL (the OS refuses it), no novel-length values.
Text = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_nul)]


class Section(BaseModel):
    """A config or profile section: unknown keys are errors, values are immutable, numbers are
    finite (TOML's inf and nan are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- broker URL ----------------------------------------------------------------------------

DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "ws": 80, "wss": 443}
_HOST_RE = re.compile(r"^[A-Za-z0-9._:%-]{1,253}$")
CREDENTIALS_IN_URL = (
    "expected no user or password in the URL (it would be shown and logged): put the user in "
    "[broker] username and the password in a file named by [broker] password_file (mode 0600)"
)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    websockets: bool
    path: str = "/mqtt"


def _netloc(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def redact_url(url: str) -> str:
    """The URL with any user:password part replaced, for messages."""
    netloc = _netloc(url)
    if "@" not in netloc:
        return url
    return url.replace(netloc, "***@" + netloc.rsplit("@", 1)[1], 1)


def parse_url(url: str) -> Endpoint:
    """`mqtt://host[:port]`, `mqtts://`, `ws://host[:port]/path`, `wss://`; plain `host[:port]`.

    A user or password in the URL is refused (and never repeated in the message)."""
    if "@" in _netloc(url):
        raise ConfigError(f"[broker] url: {CREDENTIALS_IN_URL}")
    if len(url) > 2048 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError(
            f"[broker] url: expected a host name without spaces, at most 2048 characters, got {url[:80]!r}"
        )
    if "://" not in url:
        url = f"mqtt://{url}"
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
    except ValueError:
        raise ConfigError(
            f"[broker] url: expected a host name or IP address, got {url!r}"
        ) from None
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(
            f"[broker] url: expected mqtt://, mqtts://, ws:// or wss:// (or embedded), got {url!r}"
        )
    if not host or not _HOST_RE.fullmatch(host):
        raise ConfigError(f"[broker] url: expected a host name or IP address, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"[broker] url: expected a port 1-65535, got {url!r}")
    return Endpoint(
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        tls=scheme in ("mqtts", "ssl", "wss"),
        websockets=scheme in ("ws", "wss"),
        path=parts.path or "/mqtt",
    )


def _broker_url(value: str) -> str:
    if value != "embedded":
        try:
            parse_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("[broker] url: ")) from None
    return value


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


# --- seat config ---------------------------------------------------------------------------


class SeatSection(Section):
    site: Id
    id: Id
    profile: NonEmptyText = "default"
    # IANA name for shift times; empty: the box's local time zone
    timezone: Annotated[str, AfterValidator(_timezone)] = ""


class BrokerSection(Section):
    # mqtt://host:1883, mqtts://host:8883, ws://, wss://, or embedded; never a user or password
    url: Annotated[str, AfterValidator(_broker_url)] = "embedded"
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: Annotated[Text, Field(max_length=256)] = ""  # default seatbox-<site>-<seat>
    username: Annotated[Text, Field(max_length=256)] = ""
    password_file: Text = ""  # a file with mode 0600 or stricter; the password is never logged
    ca_file: Text = ""
    cert_file: Text = ""
    key_file: Text = ""
    check_hostname: bool = True
    keepalive: Annotated[Duration, Field(le=65535)] = 30.0  # MQTT's 16-bit keep alive, seconds
    embedded_port: int = Field(default=1883, ge=0, le=65535)
    replay_rate: float = Field(default=200.0, gt=0, le=1e6)  # outbox events/s (backlog replay)
    max_inflight: int = Field(default=32, ge=1, le=65535)  # unacknowledged QoS 1 publishes


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


class StorageSection(Section):
    state_dir: NonEmptyText = "/var/lib/seatbox"
    # Disk budget of the event outbox, 16 KiB to 1 TiB.
    outbox_budget_mb: float = Field(default=64.0, ge=0.016, le=1024 * 1024)
    outbox_keep_acked: Duration = 3600.0  # acknowledged events kept to answer cmd/resend
    # The day's hearing dose is written to <state_dir>/hearing-dose.json this often and at stop;
    # a crash loses at most this much exposure (edge/dose_store.py). Each write is ~200 bytes.
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
    storage: StorageSection = StorageSection()
    hooks: HooksSection = HooksSection()

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"seatbox-{self.seat.site}-{self.seat.id}"


# --- errors ------------------------------------------------------------------------------


_TYPE_NEED = {
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number (not inf or nan)",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": 'expected a list such as ["a", "b"]',
    "model_type": "expected a table (a [section])",
    "model_attributes_type": "expected a table (a [section])",
    "dict_type": "expected a table (a [section])",
}


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
    if kind in _TYPE_NEED:
        return _TYPE_NEED[kind]
    if kind == "greater_than":
        return f"expected more than {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"expected at least {_number(ctx.get('ge'))}"
    if kind == "less_than":
        return f"expected less than {ctx.get('lt')}"
    if kind == "less_than_equal":
        return f"expected at most {_number(ctx.get('le'))}"
    if kind == "string_too_short":
        return "expected a value, got an empty string"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    return f"expected a valid value ({err.get('msg', 'invalid')})"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(value: Any) -> str:
    """A refused value as the message shows it: short, and never a URL's credentials."""
    if isinstance(value, str):
        if "://" in value:
            value = redact_url(value)
        text = repr(value if len(value) <= 80 else value[:80] + "...")
    else:
        text = repr(value)
        if len(text) > 80:
            text = text[:80] + "..."
    return f" (got {text})"


def format_validation_error(source: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        loc = [*prefix, *(str(part) for part in err["loc"])]
        section, key = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("", ".".join(loc))
        where = f"[{section}] {key}" if section else f"[{key}]"
        got = err.get("input")
        show_got = err.get("type") not in ("missing", "extra_forbidden") and not isinstance(
            got, dict
        )
        if (section == "broker" and key == "url") or "got " in _expected(err):
            show_got = False  # the reason already shows it (a URL redacted)
        need = _expected(err)
        if err.get("type") == "extra_forbidden" and len(loc) == 1:
            need = need.replace("unknown key", "unknown section")
        lines.append(f"{source}: {where}: {need}{_shown(got) if show_got else ''}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file of at most MAX_CONFIG_BYTES, UTF-8; every failure is a ConfigError."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def _requirements(config: SeatConfig) -> list[tuple[str, str]]:
    """What one key needs from another: (where, expected), checked with the schema."""
    problems = []
    broker = config.broker
    if broker.password_file and not broker.username:
        problems.append(("[broker] username", "required when password_file is set"))
    if bool(broker.cert_file) != bool(broker.key_file):
        missing = "cert_file" if not broker.cert_file else "key_file"
        problems.append((f"[broker] {missing}", "set both cert_file and key_file for mutual TLS"))
    return problems


def load_config(path: str | os.PathLike[str]) -> SeatConfig:
    """Read and validate a seat config file: schema, keys that need each other, its profile.

    What the config names on the box (password and TLS files, state folder, scenario, device
    backends' needs) is checked by `edge.config_check.load_seat`, which `seatbox run` and
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
