"""Reading audio files for the meters: RIFF/WAVE of any PCM width or float, else raw int16.

Samples go straight to dsp meters (seatbox meter, the WAV-playing virtual audio); never stored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads on the first read: `AudioFileError` alone costs nothing
    import numpy as np
    import numpy.typing as npt

from drivers.errors import ParseError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class AudioFileError(ParseError):
    """A file that cannot be read as audio; the message names the file and what is wrong."""


@dataclass(frozen=True)
class AudioFile:
    samples: npt.NDArray[np.float64]  # first channel, -1..1 (int / 2^(bits-1))
    samplerate: int
    source_format: str  # e.g. "WAV PCM 24-bit, 2 ch" or "raw int16 LE"


def read_audio(path: str | Path, raw_rate: int = 16000) -> AudioFile:
    """WAV when the file starts with a RIFF header, else raw 16-bit little-endian mono."""
    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if data[:4] == b"RIFF":
        return _read_wav(path, data)
    if len(data) % 2:
        raise AudioFileError(
            f"{path}: not a WAV file (no RIFF header) and an odd number of bytes "
            f"({len(data)}), so not raw 16-bit PCM either"
        )
    if not data:
        raise AudioFileError(f"{path}: empty file")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    return AudioFile(samples, raw_rate, "raw int16 LE mono")


def _read_wav(path: Path, data: bytes) -> AudioFile:
    if len(data) < 12 or data[8:12] != b"WAVE":
        raise AudioFileError(f"{path}: RIFF file but not WAVE (bytes 8-11 are {data[8:12]!r})")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioFileError(f"{path}: 'fmt ' chunk too short ({len(body)} bytes)")
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                (tag,) = struct.unpack_from("<H", body, 24)  # SubFormat GUID's first two bytes
            fmt = (tag, channels, rate, bits)
            if channels < 1 or rate < 1 or block_align < 1:
                raise AudioFileError(
                    f"{path}: 'fmt ' chunk has channels={channels}, rate={rate}, "
                    f"block_align={block_align}; each must be >= 1"
                )
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFileError(f"{path}: 'data' chunk before the 'fmt ' chunk")
            return AudioFile(_decode(path, body, *fmt), fmt[2], _describe(*fmt))
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    raise AudioFileError(f"{path}: WAV file without a 'data' chunk")


def _decode(
    path: Path, body: bytes, tag: int, channels: int, rate: int, bits: int
) -> npt.NDArray[np.float64]:
    import numpy as np

    width = bits // 8 if bits % 8 == 0 else (bits + 7) // 8
    frame = width * channels
    usable = len(body) - len(body) % frame
    if usable == 0:
        raise AudioFileError(f"{path}: WAV 'data' chunk holds no complete sample frame")
    raw = np.frombuffer(body[:usable], dtype=np.uint8).reshape(-1, frame)[:, :width]
    if tag == WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        kind = "<f4" if width == 4 else "<f8"
        return np.ascontiguousarray(raw).view(kind)[:, 0].astype(np.float64)
    if tag != WAVE_FORMAT_PCM:
        raise AudioFileError(
            f"{path}: WAV format tag 0x{tag:04x} with {bits} bits is not supported; "
            "expected PCM (1) or IEEE float (3)"
        )
    if width == 1:  # 8-bit WAV is unsigned
        return (raw[:, 0].astype(np.float64) - 128.0) / 128.0
    if width > 4:
        raise AudioFileError(f"{path}: {bits}-bit PCM is not supported (1 to 32 bits)")
    # Little-endian two's complement of any width: place the bytes at the top of an int32.
    padded = np.zeros((raw.shape[0], 4), dtype=np.uint8)
    padded[:, 4 - width :] = raw
    values = padded.view("<i4")[:, 0].astype(np.float64)
    return values / 2147483648.0


def _describe(tag: int, channels: int, rate: int, bits: int) -> str:
    kind = "float" if tag == WAVE_FORMAT_IEEE_FLOAT else "PCM"
    return f"WAV {kind} {bits}-bit, {channels} ch, {rate} Hz"
