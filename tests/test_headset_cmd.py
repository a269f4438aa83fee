"""`seatbox headset describe`: JSON layout, negative controls, bad files (exit codes, text)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hid_support import HID_DATA, descriptor

from edge.cli import EXIT_OK, EXIT_USAGE, main


def test_describe_json_of_jabra(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["headset", "describe", str(HID_DATA / "jabra_evolve_link_ms.hex"), "--json"])
        == EXIT_OK
    )
    out = json.loads(capsys.readouterr().out)
    assert out["telephony"] is True
    assert out["inputs"]["hook_switch"] == {
        "report_id": 2,
        "bit": 0,
        "size": 1,
        "encoding": "toggle_switch",
    }
    assert out["inputs"]["phone_mute"] == {
        "report_id": 2,
        "bit": 2,
        "size": 1,
        "encoding": "toggle_button",
    }
    assert out["leds"]["off_hook"] == {"report_id": 2, "bit": 0}
    assert out["leds"]["mute"] == {"report_id": 2, "bit": 1}
    assert out["output_reports"] == {"2": {"length": 3}}


def test_describe_raw_bytes_and_spaced_hex_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "bt700.bin"
    raw.write_bytes(descriptor("poly_bt700_dongle"))
    spaced = tmp_path / "bt700.txt"
    spaced.write_text(descriptor("poly_bt700_dongle").hex(" ") + "\n")
    assert main(["headset", "describe", str(raw), "--json"]) == EXIT_OK
    from_raw = json.loads(capsys.readouterr().out)
    assert main(["headset", "describe", str(spaced), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == from_raw
    assert from_raw["leds"]["off_hook"] == {"report_id": 0x24, "bit": 0}
    assert from_raw["output_reports"]["36"] == {"length": 2}


def test_describe_without_telephony_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["headset", "describe", str(HID_DATA / "logitech_g535_wireless.hex"), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["telephony"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("050b0905a101", "byte 6: Collection opened at byte 4 is never closed"),
        ("050b09", "byte 2: item 0x09 needs 1 data bytes, 0 left"),
        ("050b0", "odd number of hex digits"),
    ],
)
def test_describe_unparseable_exits_2_with_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.hex"
    path.write_text(content)
    assert main(["headset", "describe", str(path)]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_describe_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["headset", "describe", str(tmp_path / "nope.hex")]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err
