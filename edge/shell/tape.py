"""Record and replay: every input the core saw, with its instant, and the effects it caused.

A field problem comes back as a tape; `seatbox replay TAPE` reproduces the same effects exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from edge.base.errors import ConfigError
from edge.core.clock import Instant
from edge.core.effects import Effect
from edge.core.inputs import Input, decode, encode
from edge.core.profile import Profile
from edge.core.profile_schema import profile_from_dict
from edge.core.seat import new_seat, step

TAPE_VERSION = 1


def _instant(at: Instant) -> dict[str, Any]:
    return {"mono": at.mono, "wall": at.wall.isoformat()}


def _read_instant(data: Any) -> Instant:
    return Instant(float(data["mono"]), datetime.fromisoformat(data["wall"]))


class Recorder:
    """Writes a tape as JSON lines: a header, then one line per input with its effects."""

    def __init__(
        self, path: str | Path, profile: Profile, site: str, seat: str, boot_id: str, start: Instant
    ) -> None:
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open)
        header = {
            "tape": TAPE_VERSION,
            "site": site,
            "seat": seat,
            "boot_id": boot_id,
            "profile_name": profile.name,
            "profile": profile.to_dict(),
            "start": _instant(start),
        }
        self._write(header)

    def _write(self, obj: Any) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def record(self, at: Instant, inp: Input, effects: list[Effect]) -> None:
        self._write({"at": _instant(at), "in": encode(inp), "fx": [encode(e) for e in effects]})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class TapeLine:
    at: Instant
    input: Input
    effects: list[Effect]


@dataclass(frozen=True)
class Tape:
    header: dict[str, Any]
    profile: Profile
    start: Instant
    lines: list[TapeLine]


def load_tape(path: str | Path) -> Tape:
    lines: list[TapeLine] = []
    try:
        with open(path, encoding="utf-8") as handle:
            raw = handle.readlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read tape: {exc.strerror}") from None
    if not raw:
        raise ConfigError(f"{path}: empty tape")
    try:
        header = json.loads(raw[0])
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:1: not a tape header: {exc}") from None
    if header.get("tape") != TAPE_VERSION:
        raise ConfigError(f"{path}:1: expected a seatbox tape version {TAPE_VERSION}")
    profile = profile_from_dict(
        header.get("profile_name", "tape"), header["profile"], source=f"{path}:1"
    )
    for number, text in enumerate(raw[1:], start=2):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
            lines.append(
                TapeLine(
                    at=_read_instant(entry["at"]),
                    input=decode(entry["in"]),
                    effects=list(decode(entry.get("fx", []))),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{number}: not a tape line: {exc}") from None
    return Tape(header=header, profile=profile, start=_read_instant(header["start"]), lines=lines)


def replay(tape: Tape) -> Iterator[tuple[TapeLine, list[Effect]]]:
    """Feed the tape's inputs to a fresh seat; yield each line with the effects it gives now."""
    state = new_seat(tape.profile, tape.start)
    for line in tape.lines:
        state, effects = step(state, line.input, line.at)
        yield line, effects
