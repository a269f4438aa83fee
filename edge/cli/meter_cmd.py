"""`seatbox meter FILE`: the levels of a recorded file, measured as the seat measures live audio.

WAV (any PCM width or float, first channel) when FILE starts with RIFF, else raw int16 LE mono.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge.base.errors import UsageError
from edge.cli import EXIT_OK

RATES = (8000, 16000, 32000, 48000)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "meter",
        help="measure a speech file: P.56 active level, activity, RMS, peak, clipping, LAeq",
        description=(
            "Measure a speech file with the seat's meters (ITU-T P.56 active speech level in "
            "dBov, activity, RMS, peak, clipping, A-weighted Leq). FILE is WAV when it starts "
            "with a RIFF header (first channel is measured), otherwise raw 16-bit "
            "little-endian mono at --rate."
        ),
    )
    parser.add_argument("file")
    parser.add_argument(
        "--rate",
        type=int,
        default=16000,
        help="sample rate of a raw file in Hz (default 16000; WAV files carry their own)",
    )
    parser.add_argument(
        "--sensitivity",
        type=float,
        default=0.0,
        help="dB SPL produced by 0 dBov RMS; added to laeq_dba (default 0: dB(A) re full scale)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=meter_cmd)


def meter_cmd(args: argparse.Namespace) -> int:
    # numpy and scipy load here, not when any seatbox command builds its parser.
    from drivers.audio.wavfile import AudioFileError, read_audio

    if args.rate < 600 or args.rate > 384000:
        raise UsageError(f"--rate must be 600..384000 Hz, got {args.rate}")
    audio = read_audio(args.file, raw_rate=args.rate)
    if audio.samplerate < 600:
        raise AudioFileError(
            f"{args.file}: sample rate {audio.samplerate} Hz is below the 600 Hz ITU-T P.56 needs"
        )
    from dsp.meter import measure  # scipy: ~1 s to import, only this command needs it

    levels = measure(audio.samples, audio.samplerate)
    result = {
        "active_level_dbov": round(levels.active_level_dbov, 3),
        "activity_pct": round(levels.activity_pct, 3),
        "rms_dbov": round(levels.rms_dbov, 3),
        "peak_dbfs": round(levels.peak_dbfs, 3),
        "clipping_pct": round(levels.clipping_pct, 4),
        "laeq_dba": round(levels.laeq_dbfs + args.sensitivity, 3),
    }
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    print(f"{args.file}: {audio.source_format}, {levels.seconds:.2f} s")
    print(f"  active speech level  {result['active_level_dbov']:8.3f} dBov (ITU-T P.56 method B)")
    print(f"  activity             {result['activity_pct']:8.3f} %")
    print(f"  RMS level            {result['rms_dbov']:8.3f} dBov")
    print(f"  peak                 {result['peak_dbfs']:8.3f} dBFS")
    print(f"  clipping             {result['clipping_pct']:8.4f} % of samples")
    unit = "dB(A) SPL" if args.sensitivity else "dB(A) re full scale"
    print(f"  LAeq                 {result['laeq_dba']:8.3f} {unit}")
    print(f"  voice activity (VAD) {levels.voiced_pct:8.1f} % of 20 ms frames")
    return EXIT_OK
