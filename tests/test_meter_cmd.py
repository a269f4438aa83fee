"""`seatbox meter FILE`: JSON figures, WAV widths and channels, raw files, bad files."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main

DATA = Path(__file__).parent / "data" / "audio"
KEYS = {"active_level_dbov", "activity_pct", "rms_dbov", "peak_dbfs", "clipping_pct", "laeq_dba"}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["meter", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _wav(path: Path, frames: np.ndarray, rate: int, bits: int, tag: int = 1) -> None:
    """Write a WAV by hand (any width, float, several channels) to test the reader."""
    channels = frames.shape[1]
    width = bits // 8
    if tag == 3:
        body = frames.astype("<f4").tobytes()
    elif bits == 8:
        body = (np.round(frames * 128) + 128).clip(0, 255).astype(np.uint8).tobytes()
    else:
        ints = np.round(frames * 2 ** (bits - 1)).clip(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width]
        body = raw.tobytes()
    fmt = struct.pack(
        "<HHIIHH", tag, channels, rate, rate * channels * width, channels * width, bits
    )
    chunks = (
        b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)


def test_raw_reference_vector_at_8khz_reads_the_stl_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, str(DATA / "voice.src"), "--rate", "8000", "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) == KEYS
    assert result["active_level_dbov"] == pytest.approx(-25.022, abs=0.0015)
    assert result["activity_pct"] == pytest.approx(90.044, abs=0.0015)
    assert result["rms_dbov"] == pytest.approx(-25.478, abs=0.0015)
    assert result["clipping_pct"] == 0.0


def test_raw_file_read_at_the_default_16khz_gives_the_wrong_rate_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, str(DATA / "voice.nrm"), "--json")
    assert code == 0
    assert json.loads(out)["activity_pct"] > 95  # time constants are in seconds


@pytest.mark.parametrize(("bits", "tag"), [(8, 1), (16, 1), (24, 1), (32, 1), (32, 3)])
def test_wav_of_any_width_measures_its_first_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bits: int, tag: int
) -> None:
    speech = np.fromfile(DATA / "voice.src", dtype="<i2") / 32768.0
    noise = np.random.default_rng(0).uniform(-0.9, 0.9, speech.size)
    path = tmp_path / "two.wav"
    _wav(path, np.column_stack([speech, noise]), 8000, bits, tag)
    code, out, _ = _run(capsys, str(path), "--json", "--rate", "16000")
    assert code == 0
    result = json.loads(out)
    tolerance = 0.05 if bits == 8 else 0.0015  # 8-bit quantisation noise
    assert result["active_level_dbov"] == pytest.approx(-25.022, abs=tolerance)
    assert result["rms_dbov"] == pytest.approx(-25.478, abs=tolerance)


def test_full_scale_square_wave_is_0_dbov_and_all_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    square = np.tile(np.r_[np.full(8, 32767), np.full(8, -32768)], 1000).astype("<i2")
    path = tmp_path / "square.pcm"
    square.tofile(path)
    code, out, _ = _run(capsys, str(path), "--json")
    result = json.loads(out)
    assert code == 0
    assert result["rms_dbov"] == pytest.approx(0.0, abs=0.001)
    assert result["peak_dbfs"] == pytest.approx(0.0, abs=0.001)
    assert result["clipping_pct"] == 100.0


def test_human_output_names_format_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(DATA / "agent.wav"))
    assert code == 0
    assert "WAV PCM 16-bit, 1 ch, 16000 Hz" in out
    assert "-27.095 dBov" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "without a 'data' chunk"),
        (b"RIFF\x04\x00\x00\x00AVI ", "not WAVE"),
        (b"abc", "odd number of bytes"),
        (b"", "empty file"),
    ],
)
def test_bad_file_exits_2_with_a_clear_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())"]
        + ["meter", str(path), "--json"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 2
    assert str(path) in proc.stderr and message in proc.stderr
    assert proc.stdout == ""


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, str(tmp_path / "nope.wav"))
    assert code == 2
    assert "cannot read" in err
