"""`seatbox radar info|watch|set|decode` against the emulator over a real pty.

Checks what a facilities user sees: the printed output, the JSON and the exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ld2410_pty import emulated_radar

from drivers.radar.ld2410 import CMD_END_CONFIG, CMD_ENGINEERING_OFF, CMD_ENGINEERING_ON
from edge.cli import main

FRAMES: dict[str, Any] = json.loads((Path(__file__).parent / "data/ld2410/frames.json").read_text())
REPO = Path(__file__).parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["radar", *argv])
    except SystemExit as exc:  # argparse rejects bad arguments with exit 2
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_prints_firmware_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar() as (_emulator, path):
        code, out, err = run(capsys, "info", "--port", path)
    assert (code, err) == (0, "")
    assert "firmware:    V1.07.22091516 (type 0x0100)" in out
    assert "max gates:   moving 8, still 8 (about 6.00 m at 0.75 m per gate)" in out
    assert "no-one duration: 5 s" in out
    assert "moving sensitivity  50  50  40  30  20  15  15  15  15" in out
    assert "still sensitivity    0   0  40  40  30  30  20  20  20" in out


def test_info_clears_a_stuck_configuration_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar(stuck_config=True) as (emulator, path):
        code, out, _ = run(capsys, "info", "--port", path, "--json")
        assert emulator.received[0].command == CMD_END_CONFIG
        assert not emulator.config_mode
    assert code == 0
    data = json.loads(out)
    assert data["firmware"] == "V1.07.22091516"
    assert data["moving_sensitivity"] == [50, 50, 40, 30, 20, 15, 15, 15, 15]
    assert data["no_one_duration_s"] == 5


def test_info_on_a_silent_radar_exits_1_saying_what_to_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with emulated_radar(silent=True) as (_emulator, path):
        code, out, err = run(capsys, "info", "--port", path, "--ack-timeout", "0.1")
    assert code == 1
    assert out == ""
    assert f"{path}: no answer to end_config within 0.1 s (check power, TX/RX crossed" in err


def test_info_on_a_missing_port_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "info", "--port", str(tmp_path / "ttyUSB9"))
    assert code == 1
    assert f"cannot open {tmp_path / 'ttyUSB9'}" in err


def test_set_max_gate_and_timeout_writes_and_prints_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with emulated_radar() as (emulator, path):
        code, out, err = run(capsys, "set", "--port", path, "--max-gate", "3", "--timeout", "30")
        settings = emulator.settings
        assert not emulator.config_mode
    assert (code, err) == (0, "")
    assert (settings.max_moving_gate, settings.max_still_gate) == (3, 3)
    assert settings.no_one_duration_s == 30
    assert "max gates:   moving 3, still 3 (about 2.25 m at 0.75 m per gate)" in out
    assert "no-one duration: 30 s" in out


def test_set_sensitivities_per_gate_and_for_all(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar() as (emulator, path):
        code, out, _ = run(
            capsys,
            "set",
            "--port",
            path,
            "--sensitivity",
            "all:40:40",
            "--sensitivity",
            "5:100:100",
            "--json",
        )
        settings = emulator.settings
    assert code == 0
    assert settings.moving_sensitivity == (40, 40, 40, 40, 40, 100, 40, 40, 40)
    assert json.loads(out)["still_sensitivity"] == [40, 40, 40, 40, 40, 100, 40, 40, 40]
    assert json.loads(out)["max_moving_gate"] == 8  # untouched


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-gate", "9"], "argument --max-gate: expected a gate 2..8"),
        (["--timeout", "-1"], "argument --timeout: expected whole seconds 0..65535"),
        (["--sensitivity", "9:10:10"], "expected GATE:MOVING:STILL with GATE 0..8 or 'all'"),
        (["--sensitivity", "1:101:10"], "values 0..100, got 1:101:10"),
        ([], "nothing to set: give --max-gate"),
    ],
)
def test_set_rejects_bad_values_with_exit_2_before_touching_the_radar(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with emulated_radar() as (emulator, path):
        code, _, err = run(capsys, "set", "--port", path, *argv)
        received = list(emulator.received)
    assert code == 2
    assert message in err
    assert received == []


def test_set_restart_and_factory_reset(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar(restart_s=0.0) as (emulator, path):
        assert run(capsys, "set", "--port", path, "--max-gate", "2")[0] == 0
        code, out, _ = run(capsys, "set", "--port", path, "--factory-reset", "--restart")
        settings = emulator.settings
    assert code == 0
    assert "restarting" in out
    assert (settings.max_moving_gate, settings.no_one_duration_s) == (8, 5)


def test_watch_json_prints_frames_with_gates_and_leaves_engineering_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with emulated_radar() as (emulator, path):
        emulator.set_target("moving", 120, 80, 0, 0)
        code, out, err = run(capsys, "watch", "--port", path, "--count", "3", "--json")
        commands = [c.command for c in emulator.received]
        engineering_now = emulator.engineering
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3
    assert lines[-1]["type"] == "engineering"
    assert lines[-1]["target"] == "moving"
    assert lines[-1]["moving"] == {"distance_cm": 120, "energy": 80}
    assert lines[-1]["gates"]["moving"][:3] == [68, 80, 68]
    assert commands.index(CMD_ENGINEERING_ON) < commands.index(CMD_ENGINEERING_OFF)
    assert not engineering_now


def test_watch_text_marks_gates_above_their_sensitivity(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar() as (emulator, path):
        emulator.set_target("still", 60, 0, 60, 45)
        code, out, _ = run(capsys, "watch", "--port", path, "--seconds", "0.3")
    assert code == 0
    # Still energy 45 at gate 1 (sensitivity 0) counts, 33 at gate 2 (sensitivity 40) does not.
    assert "still    moving   60 cm/  0  still   60 cm/ 45  detection    0 cm" in out
    assert "  still   33*  45*  33   21    9    0    0    0    0 " in out
    assert "peak over " in out


def test_watch_basic_mode_prints_no_gates(capsys: pytest.CaptureFixture[str]) -> None:
    with emulated_radar() as (emulator, path):
        code, out, _ = run(capsys, "watch", "--port", path, "--count", "2", "--basic", "--json")
        commands = [c.command for c in emulator.received]
    assert code == 0
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["basic", "basic"]
    assert CMD_ENGINEERING_ON not in commands


def test_watch_while_another_program_holds_the_port_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from drivers.radar.ld2410 import open_serial

    with emulated_radar() as (_emulator, path):
        holder = open_serial(path)
        try:
            code, _, err = run(capsys, "watch", "--port", path, "--count", "1")
        finally:
            holder.close()
    assert code == 1
    assert "stop the seatbox service before using the tools" in err


# --- decode ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", FRAMES["data"], ids=lambda c: c["id"])
def test_decode_prints_data_frames_as_json(
    capsys: pytest.CaptureFixture[str], case: dict[str, Any]
) -> None:
    code, out, _ = run(capsys, "decode", case["hex"])
    assert code == 0
    data = json.loads(out)
    names = {0: "none", 1: "moving", 2: "still", 3: "both"}
    expected = {
        "type": case["type"],
        "target": names[case["state"]],
        "moving": {"distance_cm": case["moving"][0], "energy": case["moving"][1]},
        "still": {"distance_cm": case["still"][0], "energy": case["still"][1]},
        "detection_cm": case["detection_cm"],
    }
    if case["type"] == "engineering":
        expected["gates"] = {"moving": case["moving_gates"], "still": case["still_gates"]}
        expected["light"] = case["light"]
        expected["out_pin"] = case["out_pin"]
    assert data == expected


def test_decode_an_ack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "decode", "FD FC FB FA 04 00 60 01 00 00 04 03 02 01")
    assert code == 0
    assert json.loads(out) == {"type": "ack", "command": "set_max_gates", "status": "success"}


@pytest.mark.parametrize(
    "case", [c for c in FRAMES["malformed"] if c["offset"] is not None], ids=lambda c: c["id"]
)
def test_decode_a_malformed_frame_exits_2_naming_the_offset(
    capsys: pytest.CaptureFixture[str], case: dict[str, Any]
) -> None:
    code, out, err = run(capsys, "decode", case["hex"])
    assert code == 2
    assert out == ""
    assert f"malformed frame: byte {case['offset']}: expected " in err


def test_decode_rejects_text_that_is_not_hex(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "decode", "F4 F3 ZZ")
    assert code == 2
    assert "expected hexadecimal bytes" in err


def test_the_installed_command_and_the_emulator_program_work_together(tmp_path: Path) -> None:
    link = tmp_path / "radar"
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drivers.radar.ld2410_emulator",
            "--pty",
            str(link),
            "--target",
            "both",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        assert emulator.stdout.readline().startswith("emulator: LD2410 on ")
        seatbox = Path(sys.executable).parent / "seatbox"
        result = subprocess.run(
            [str(seatbox), "radar", "watch", "--port", str(link), "--count", "2", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        emulator.terminate()
        emulator.wait(5)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["target"] for line in result.stdout.splitlines()] == ["both", "both"]
