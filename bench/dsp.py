"""CPU time of the full audio pipeline per second of audio, next to pyloudnorm and webrtcvad.

Both channels at 16 kHz in 20 ms blocks through every meter the seat runs; best of 15 runs.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from machine import cpu_model  # noqa: E402  (bench/machine.py)

from drivers.audio.levels import LevelsPipeline  # noqa: E402
from drivers.audio.wavfile import read_audio  # noqa: E402
from dsp.conversation import AmbientMeter, ConversationAnalyser, ImpulseDetector  # noqa: E402
from dsp.exposure import EarLevelMeter, NoiseDose  # noqa: E402

RATE = 16000
BLOCK = 320  # 20 ms
SECONDS = 60
RUNS = 15


def _audio() -> tuple[np.ndarray, np.ndarray]:
    data = REPO / "tests" / "data" / "audio"
    n = SECONDS * RATE
    agent = np.round(read_audio(data / "agent.wav").samples * 32768).astype(np.int16)
    customer = np.round(read_audio(data / "customer.wav").samples * 32768).astype(np.int16)
    gap = np.zeros(RATE, dtype=np.int16)
    tx = np.resize(np.concatenate([agent, gap, gap]), n)
    rx = np.resize(np.concatenate([gap, gap, customer, gap]), n)
    return tx, rx


def full_pipeline(tx: np.ndarray, rx: np.ndarray) -> None:
    pipeline = LevelsPipeline(RATE, 0.1)
    conversation = ConversationAnalyser()
    ear = EarLevelMeter(110.0, 102.0)
    dose = NoiseDose()
    ambient = AmbientMeter(10.0)
    impulses = ImpulseDetector(-1.0, 20.0)
    for start in range(0, tx.size, BLOCK):
        pipeline.feed("tx", tx[start : start + BLOCK])
        for levels in pipeline.feed("rx", rx[start : start + BLOCK]):
            conversation.update(levels.tx, levels.rx)
            second = ear.update(levels.rx)
            if second is not None:
                dose.add(second.laeq_dba, 1.0)
            ambient.update(levels.tx)
            impulses.update(levels.tx)


def pyloudnorm_integrated(tx: np.ndarray, rx: np.ndarray) -> None:
    import pyloudnorm

    meter = pyloudnorm.Meter(RATE)
    meter.integrated_loudness(np.column_stack([tx, rx]).astype(np.float64) / 32768.0)


def webrtcvad_alone(tx: np.ndarray, rx: np.ndarray) -> None:
    import webrtcvad

    vad = webrtcvad.Vad(2)
    for channel in (tx, rx):
        data = channel.tobytes()
        step = BLOCK * 2
        for start in range(0, len(data) - step + 1, step):
            vad.is_speech(data[start : start + step], RATE)


def _best_ms_per_audio_s(
    func: Callable[[np.ndarray, np.ndarray], None], tx: np.ndarray, rx: np.ndarray
) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.process_time()
        func(tx, rx)
        best = min(best, time.process_time() - start)
    return 1000.0 * best / SECONDS


def main() -> int:
    tx, rx = _audio()
    full_pipeline(tx[: RATE * 2], rx[: RATE * 2])  # warm up imports and caches
    print(f"machine: {platform.uname()}")
    print(f"cpu: {cpu_model()}; python {platform.python_version()}; numpy {np.__version__}")
    print(f"audio: 2 channels x {SECONDS} s at {RATE} Hz, {BLOCK}-sample blocks; best of {RUNS}")
    full = _best_ms_per_audio_s(full_pipeline, tx, rx)
    loudness = _best_ms_per_audio_s(pyloudnorm_integrated, tx, rx)
    vad = _best_ms_per_audio_s(webrtcvad_alone, tx, rx)
    print(f"full pipeline (both channels, all meters): {full:.3f} ms CPU per audio second")
    print(f"pyloudnorm integrated_loudness (2 ch):     {loudness:.3f} ms CPU per audio second")
    print(f"webrtcvad alone (2 ch, 20 ms frames):      {vad:.3f} ms CPU per audio second")
    print(f"ratio full / pyloudnorm: {full / loudness:.2f}  (target <= 3; full target <= 2 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
