"""`seatbox headset describe`: JSON layout, negative controls, bad files (exit codes, text)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
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


def _peak_bytes_of(call: Callable[[], int]) -> tuple[int, int]:
    """(return value, peak bytes Python allocated during the call)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("form", ["raw", "hex"])
def test_describe_a_10_mb_descriptor_exits_2_at_once_without_reading_it_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    # A well-formed Telephony collection of ~5 million Usage items: parsing it took 28 s
    # and 1.2 GB before the kernel's limit was enforced.
    body = bytes.fromhex("050b0905a101") + bytes.fromhex("0920") * (5 * 1024 * 1024) + b"\xc0"
    path = tmp_path / f"huge.{form}"
    path.write_bytes(body if form == "raw" else body.hex(" ").encode())
    code, peak = _peak_bytes_of(lambda: main(["headset", "describe", str(path)]))
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: not a valid report descriptor: ")
    assert "a report descriptor is at most 4096 bytes (the kernel's HID_MAX_DESCRIPTOR_SIZE)" in err
    assert peak < 1024 * 1024  # the file is 10-30 MB: only its first 64 KiB were read


def test_describe_just_over_the_limit_names_the_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = bytes.fromhex("050b0905a101") + bytes.fromhex("0920") * 2100 + b"\xc0"
    path = tmp_path / "long.hex"
    path.write_text(body.hex(" "))
    assert main(["headset", "describe", str(path)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"{path}: not a valid report descriptor: byte 4096: the descriptor is 4207 bytes long, "
        "over the kernel's limit of 4096 (HID_MAX_DESCRIPTOR_SIZE): no USB device can have it\n"
    )
