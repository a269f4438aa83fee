"""A recorded tape replays to identical effects; a tape that does not match is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.core.effects import Event
from edge.shell.tape import load_tape, replay

REPO = Path(__file__).parent.parent


def seatbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def simulate(scenario: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return seatbox("simulate", scenario, "--fast", *extra)


def test_recorded_tape_replays_to_identical_effects(tmp_path: Path) -> None:
    tape = tmp_path / "hold.tape"
    events = tmp_path / "events.jsonl"
    result = simulate(
        "config/scenarios/hold_mute.toml", "--record", str(tape), "--events-out", str(events)
    )
    assert result.returncode == 0, result.stderr
    loaded = load_tape(tape)
    replayed = [effect for _, effects in replay(loaded) for effect in effects]
    recorded = [effect for line in loaded.lines for effect in line.effects]
    assert replayed == recorded
    published = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e.type for e in replayed if isinstance(e, Event)] == [p["type"] for p in published]
    assert "mute.on" in [p["type"] for p in published]

    check = seatbox("replay", str(tape))
    assert check.returncode == 0 and "identical to the recording" in check.stderr


def test_a_tampered_tape_is_caught(tmp_path: Path) -> None:
    tape = tmp_path / "answer.tape"
    assert simulate("config/scenarios/answer.toml", "--record", str(tape)).returncode == 0
    lines = tape.read_text().splitlines()
    # Change one recorded input: the agent answers a second later than the tape says.
    for index, line in enumerate(lines[1:], start=1):
        entry = json.loads(line)
        if entry["in"]["@"] == "HookSwitch" and entry["in"]["off_hook"]:
            entry["at"]["mono"] += 1.0
            lines[index] = json.dumps(entry)
            break
    tape.write_text("\n".join(lines) + "\n")
    check = seatbox("replay", str(tape))
    assert check.returncode == 1 and "effects differ" in check.stderr


def test_a_broken_tape_line_is_named(tmp_path: Path) -> None:
    tape = tmp_path / "bad.tape"
    assert simulate("config/scenarios/greet.toml", "--record", str(tape)).returncode == 0
    tape.write_text(tape.read_text() + '{"at": {"mono": 1, "wall": "x"}, "in": {"@": "Nope"}}\n')
    check = seatbox("replay", str(tape))
    assert check.returncode == 2 and "not a tape line" in check.stderr
