"""How fast the LD2410 stream parser is: frames per second, clean and with garbage.

The module sends ~10 frames/s; this shows how much headroom a Pi-class CPU has.
"""

from __future__ import annotations

import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model  # noqa: E402  (bench/machine.py)

from drivers.radar.ld2410 import DataFrame, FrameParser, encode_data  # noqa: E402


def stream(frames: int, garbage: bool, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    for i in range(frames):
        frame = DataFrame(
            engineering=i % 2 == 0,
            target_state=i % 4,
            moving_cm=rng.randrange(600),
            moving_energy=rng.randrange(101),
            still_cm=rng.randrange(600),
            still_energy=rng.randrange(101),
            detection_cm=rng.randrange(600),
            moving_gates=tuple(rng.randrange(101) for _ in range(9)),
            still_gates=tuple(rng.randrange(101) for _ in range(9)),
            light=rng.randrange(256),
            out_pin=i % 2,
        )
        data = encode_data(frame)
        if garbage:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
            if rng.random() < 0.1:
                data = data[: rng.randrange(len(data))]
        out += data
    return bytes(out)


def run(name: str, data: bytes, chunk: int) -> None:
    best = float("inf")
    count = 0
    for _ in range(5):
        parser = FrameParser()
        start = time.perf_counter()
        count = 0
        for pos in range(0, len(data), chunk):
            count += len(parser.feed(data[pos : pos + chunk]))
        best = min(best, time.perf_counter() - start)
    print(
        f"{name:<34} {count:>6} frames  {count / best:>10,.0f} frames/s  "
        f"{len(data) / best / 1e6:>6.2f} MB/s  ({len(data)} bytes, {chunk}-byte reads)"
    )


def main() -> None:
    uname = platform.uname()
    print(f"machine: {uname.system} {uname.release} {uname.machine}; CPU: {cpu_model()}")
    print(f"python: {platform.python_version()}")
    clean = stream(20000, garbage=False)
    dirty = stream(20000, garbage=True)
    run("clean stream, 64-byte reads", clean, 64)
    run("clean stream, 1-byte reads", clean[: len(clean) // 10], 1)
    run("garbage + 10% cut frames, 64-byte", dirty, 64)


if __name__ == "__main__":
    main()
