"""Child process for the capture tests: runs SoundDeviceAudio and prints what reaches the sink.

A separate process because PortAudio reads the ALSA configuration (HOME/.asoundrc) when it
initialises, which happens at import; the test gives this process its own HOME.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from typing import Any

from drivers.audio.capture import SoundDeviceAudio
from drivers.audio.events import AudioLevels, AudioStatus


def _fields(obj: Any) -> dict[str, list[object]]:
    """Each field with the name of its Python type, so the test can check what is carried."""
    return {
        f.name: [type(getattr(obj, f.name)).__name__, getattr(obj, f.name)]
        for f in dataclasses.fields(obj)
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tx", required=True)
    parser.add_argument("--rx", default="")
    parser.add_argument("--levels", type=int, required=True)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--retry", type=float, default=0.5)
    args = parser.parse_args()
    done = threading.Event()
    count = 0

    def sink(item: object) -> None:
        nonlocal count
        if isinstance(item, AudioStatus):
            line = {"kind": "status", "ok": item.ok, "detail": item.detail}
        elif isinstance(item, AudioLevels):
            count += 1
            line = {"kind": "levels", "tx": _fields(item.tx), "rx": _fields(item.rx)}
            if count >= args.levels:
                done.set()
        else:
            line = {"kind": type(item).__name__}
        if count <= args.levels:
            print(json.dumps(line), flush=True)

    audio = SoundDeviceAudio(args.tx, args.rx, samplerate=args.rate, retry_initial_s=args.retry)
    audio.start(sink)
    finished = done.wait(60)
    audio.stop()
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
