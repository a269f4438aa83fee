"""Voice activity per 20 ms frame: WebRTC's GMM detector, gated by an absolute energy floor.

Falls back to an energy detector with an adaptive noise floor when webrtcvad is not installed.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

try:  # webrtcvad-wheels: the GMM VAD of WebRTC, C code, ~2 us per frame
    # Its C module, which `webrtcvad.Vad` wraps: `is_speech` only checks the length and
    # calls `process`; called directly on slices of one bytes object per block, it saves a
    # Python call and a copy per frame.
    import _webrtcvad

    HAVE_WEBRTCVAD = True
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    HAVE_WEBRTCVAD = False

FRAME_S = 0.02  # webrtcvad accepts 10, 20 or 30 ms frames only
WEBRTC_RATES = (8000, 16000, 32000, 48000)
# Frames quieter than this are never speech: webrtcvad flags low-level noise as voice
# (py-webrtcvad issues #53, #60), and speech at the mic is far above it (-36 dBov at worst).
ENERGY_FLOOR_DBOV = -55.0
# Energy fallback: a frame is voice when it is this far above the tracked noise floor.
ENERGY_MARGIN_DB = 9.0
NOISE_RISE_DB_PER_S = 1.0  # the noise floor creeps up slowly, drops at once

Backend = Literal["auto", "webrtc", "energy"]


class VoiceActivity:
    """Fed int16 blocks of any size; returns the voice flag of every completed 20 ms frame."""

    def __init__(self, samplerate: int, mode: int = 2, backend: Backend = "auto") -> None:
        if backend == "auto":
            backend = "webrtc" if HAVE_WEBRTCVAD and samplerate in WEBRTC_RATES else "energy"
        if backend == "webrtc" and not HAVE_WEBRTCVAD:
            raise ValueError("VAD backend 'webrtc' needs the webrtcvad-wheels package")
        if backend == "webrtc" and samplerate not in WEBRTC_RATES:
            raise ValueError(f"webrtcvad supports {WEBRTC_RATES} Hz, not {samplerate}")
        self.backend: Literal["webrtc", "energy"] = backend
        self.samplerate = samplerate
        self.frame = int(round(FRAME_S * samplerate))
        self._vad = None
        if backend == "webrtc":
            self._vad = _webrtcvad.create()
            _webrtcvad.init(self._vad)
            _webrtcvad.set_mode(self._vad, mode)
        # energy floor as a sum of squares of int16 samples over one frame
        self._floor_sumsq = self.frame * (32768.0**2) * 10.0 ** (ENERGY_FLOOR_DBOV / 10.0)
        self._noise_db = ENERGY_FLOOR_DBOV
        self._rise_db = NOISE_RISE_DB_PER_S * FRAME_S
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, block: npt.NDArray[np.int16]) -> list[bool]:
        data = np.concatenate((self._pending, block)) if self._pending.size else block
        whole = (data.shape[0] // self.frame) * self.frame
        self._pending = data[whole:].copy()
        if whole == 0:
            return []
        frames = data[:whole].reshape(-1, self.frame)
        wide = frames.astype(np.float64)
        sumsq = np.einsum("ij,ij->i", wide, wide).tolist()
        if self._vad is None:
            return [self._energy_decision(e) for e in sumsq]
        floor, rate, frame = self._floor_sumsq, self.samplerate, self.frame
        raw = memoryview(data[:whole].tobytes())
        handle, step, process = self._vad, 2 * frame, _webrtcvad.process
        return [
            e >= floor and process(handle, rate, raw[i : i + step], frame)
            for i, e in zip(range(0, len(raw), step), sumsq, strict=True)
        ]

    def _energy_decision(self, sumsq: float) -> bool:
        level = 10.0 * math.log10(sumsq / (self.frame * 32768.0**2) + 1e-20)
        self._noise_db = min(level, self._noise_db + self._rise_db)
        return level >= ENERGY_FLOOR_DBOV and level >= self._noise_db + ENERGY_MARGIN_DB
