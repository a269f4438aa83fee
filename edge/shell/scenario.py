"""Simulation scenarios (TOML): a seat, a start time, and steps that act on virtual devices.

Parsing names the step and the key on every error (an audio `file` is checked to be a readable
WAV at load); `edge.sim.build.schedule` plays the steps on a runtime. The format lives in the
shell, not in sim/, because a seat config names one (`[call] scenario`, the `simulate` call
source) and `load_seat` checks it before `seatbox run` starts: the shell reads it, sim plays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.audio.wavfile import AudioFileError, read_audio
from edge.base.errors import ConfigError
from edge.base.files import read_toml
from edge.base.schema import parse_duration, valid_id

ACTIONS: dict[str, set[str]] = {
    "headset.hook_off": set(),
    "headset.hook_on": set(),
    "headset.mute_press": set(),
    "headset.flash_press": set(),
    "headset.unplug": set(),
    "headset.plug": set(),
    "host.ring": set(),
    "host.ring_stop": set(),
    "host.answer": set(),
    "host.hold": set(),
    "host.resume": set(),
    "host.end": set(),
    "cti.ring": {"call_id"},
    "cti.answer": set(),
    "cti.hold": set(),
    "cti.resume": set(),
    "cti.end": set(),
    "radar.present": {"moving"},
    "radar.absent": set(),
    "radar.lost": set(),
    "audio.tx": {"level_dbov", "silence", "noise_dbfs", "clipping_pct", "file", "gain_db", "loop"},
    "audio.rx": {"level_dbov", "silence", "noise_dbfs", "clipping_pct", "file", "gain_db", "loop"},
    "audio.impact": set(),
    "end": set(),
}
# Audio step arguments of generated levels, and those that only go with `file`.
GENERATED_ARGS = ("level_dbov", "silence", "noise_dbfs", "clipping_pct")
FILE_ONLY_ARGS = ("gain_db", "loop")


@dataclass(frozen=True)
class Step:
    t: float  # seconds after start
    do: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    path: str
    site: str
    seat: str
    profile: str
    start: datetime
    steps: tuple[Step, ...]
    description: str = ""

    @property
    def end(self) -> float:
        ends = [s.t for s in self.steps if s.do == "end"]
        return min(ends) if ends else (self.steps[-1].t if self.steps else 0.0)


def load_scenario(path: str | Path) -> Scenario:
    file = Path(path)
    data = read_toml(file)  # size, file type and encoding checked as for configs
    return scenario_from_dict(data, str(file))


def _wav_file(where: str, value: object, base_dir: Path) -> str:
    """The `file` argument of an audio step: a readable WAV, relative to the scenario file."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} file: expected a WAV file path, got {value!r}")
    if "\x00" in value:
        raise ConfigError(f"{where} file: expected a WAV file path without NUL characters")
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    try:
        if path.exists() and not path.is_file():  # a FIFO or device would hang the read
            raise ConfigError(f"{where} file: {path}: not a regular file; expected a WAV file")
        with path.open("rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        raise ConfigError(
            f"{where} file: {path}: not found (relative to the scenario file)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where} file: {path}: cannot read: {exc.strerror or exc}") from None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ConfigError(f"{where} file: {path}: not a WAV file (expected a RIFF/WAVE header)")
    try:
        audio = read_audio(path)
    except AudioFileError as exc:
        raise ConfigError(f"{where} file: {exc}") from None
    if audio.samples.size == 0:
        raise ConfigError(f"{where} file: {path}: holds no samples")
    return str(path)


def _audio_args(where: str, action: str, args: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    if "file" not in args:
        for key in FILE_ONLY_ARGS:
            if key in args:
                raise ConfigError(f'{where} {key}: only with file = "..." on {action}')
        return args
    for key in GENERATED_ARGS:
        if key in args:
            raise ConfigError(
                f"{where} {key}: not with file (the file's samples are measured; use gain_db)"
            )
    if "gain_db" in args and (
        not isinstance(args["gain_db"], int | float) or isinstance(args["gain_db"], bool)
    ):
        raise ConfigError(f"{where} gain_db: expected a number of dB, got {args['gain_db']!r}")
    if "loop" in args and not isinstance(args["loop"], bool):
        raise ConfigError(f"{where} loop: expected true or false")
    return {**args, "file": _wav_file(where, args["file"], base_dir)}


def scenario_from_dict(
    data: dict[str, Any], source: str = "<scenario>", base_dir: str | Path | None = None
) -> Scenario:
    """A scenario from parsed TOML; audio `file`s are relative to `base_dir` (default: the
    directory of `source` when it is a path, else the working directory)."""
    if base_dir is None:
        base_dir = "." if source.startswith("<") else Path(source).parent
    base = Path(base_dir)
    seat = data.get("seat")
    if not isinstance(seat, dict):
        raise ConfigError(f"{source}: [seat]: missing table (site, id, profile, start)")
    unknown = set(seat) - {"site", "id", "profile", "start", "description"}
    if unknown:
        raise ConfigError(f"{source}: [seat] {sorted(unknown)[0]}: unknown key")
    for key in ("site", "id"):
        if not isinstance(seat.get(key), str) or not valid_id(seat[key]):
            raise ConfigError(
                f"{source}: [seat] {key}: expected letters, digits, '_' or '-' (1 to 64), got {seat.get(key)!r}"
            )
    start_raw = seat.get("start")
    if isinstance(start_raw, datetime):
        start = start_raw
    elif isinstance(start_raw, str):
        try:
            start = datetime.fromisoformat(start_raw)
        except ValueError:
            raise ConfigError(
                f"{source}: [seat] start: expected ISO 8601 with offset, e.g. 2026-11-23T08:40:00+08:00"
            ) from None
    else:
        raise ConfigError(f"{source}: [seat] start: expected ISO 8601 with offset")
    if start.tzinfo is None:
        raise ConfigError(f"{source}: [seat] start: needs a UTC offset, e.g. +08:00")
    steps = []
    for index, raw in enumerate(data.get("step", []), start=1):
        where = f"{source}: [[step]] #{index}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        try:
            t = parse_duration(raw.get("t"))
        except ValueError as exc:
            raise ConfigError(f"{where} t: {exc}") from None
        action = raw.get("do")
        if action not in ACTIONS:
            raise ConfigError(
                f"{where} do: unknown action {action!r} (expected one of {sorted(ACTIONS)})"
            )
        args = {k: v for k, v in raw.items() if k not in ("t", "do")}
        extra = set(args) - ACTIONS[action]
        if extra:
            raise ConfigError(f"{where} {sorted(extra)[0]}: not an argument of {action}")
        for key in ("level_dbov", "noise_dbfs", "clipping_pct"):
            if key in args and (
                not isinstance(args[key], int | float) or isinstance(args[key], bool)
            ):
                raise ConfigError(f"{where} {key}: expected a number, got {args[key]!r}")
        for key in ("silence", "moving"):
            if key in args and not isinstance(args[key], bool):
                raise ConfigError(f"{where} {key}: expected true or false")
        if action in ("audio.tx", "audio.rx"):
            args = _audio_args(where, action, args, base)
        steps.append(Step(t=t, do=action, args=args))
    ordered = sorted(enumerate(steps), key=lambda pair: (pair[1].t, pair[0]))
    return Scenario(
        path=source,
        site=seat["site"],
        seat=seat["id"],
        profile=str(seat.get("profile", "default")),
        start=start,
        steps=tuple(step for _, step in ordered),
        description=str(seat.get("description", data.get("description", ""))),
    )
