"""`seatbox radar info|watch|set|decode`: facilities tools for the LD2410 presence radar.

Exit 0 ok, 1 the radar did not answer or refused, 2 bad input (arguments, a malformed frame).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from drivers.radar.ld2410 import (
    ALL_GATES,
    MAX_ENERGY,
    MAX_GATE,
    Ack,
    Command,
    DataFrame,
    Frame,
    FrameError,
    LD2410Link,
    Parameters,
    RadarError,
    command_name,
    decode_frame,
    engineering,
    factory_reset,
    frame_kind,
    open_serial,
    parse_config_info,
    parse_firmware,
    parse_parameters,
    restart,
    set_gate_sensitivity,
    set_max_gates,
)
from edge.base.errors import ParseError, UsageError
from edge.cli import EXIT_OK, framed

GATE_M = 0.75  # default distance resolution, metres per gate (V1.07 §2.2.13)
WATCH_SILENCE_S = 2.0  # same as the driver's watchdog: no frame this long means no sensor


def register(sub: Any) -> None:
    parser = sub.add_parser("radar", help="read, watch and tune the LD2410 presence radar")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def with_port(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", required=True, help="serial device, e.g. /dev/seatbox-radar")
        p.add_argument("--baudrate", type=int, default=256000, help="default 256000 (factory)")
        p.add_argument("--ack-timeout", type=_positive, default=1.0, help="seconds per command")

    info = verbs.add_parser("info", help="firmware and parameters")
    with_port(info)
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=info_cmd)

    watch = verbs.add_parser("watch", help="live target state and per-gate energies")
    with_port(watch)
    watch.add_argument("--count", type=_count, help="stop after N frames")
    watch.add_argument("--seconds", type=_positive, help="stop after S seconds")
    watch.add_argument("--json", action="store_true", help="one JSON object per frame")
    watch.add_argument(
        "--basic", action="store_true", help="leave engineering mode off (no gate energies)"
    )
    watch.set_defaults(func=watch_cmd)

    setp = verbs.add_parser("set", help="write max gates, no-one duration, sensitivities")
    with_port(setp)
    setp.add_argument("--max-gate", type=_gate_limit, help="max moving and still gate (2..8)")
    setp.add_argument("--max-moving-gate", type=_gate_limit, help="2..8")
    setp.add_argument("--max-still-gate", type=_gate_limit, help="2..8")
    setp.add_argument("--timeout", type=_duration, help="no-one duration in seconds (0..65535)")
    setp.add_argument(
        "--sensitivity",
        action="append",
        type=_sensitivity,
        default=[],
        metavar="GATE:MOVING:STILL",
        help="gate 0..8 or 'all', sensitivities 0..100 (100 = ignore the gate); repeatable",
    )
    setp.add_argument("--engineering", choices=["on", "off"], help="engineering mode")
    setp.add_argument("--factory-reset", action="store_true", help="defaults after restart")
    setp.add_argument("--restart", action="store_true", help="restart the module at the end")
    setp.add_argument("--json", action="store_true")
    setp.set_defaults(func=set_cmd)

    decode = verbs.add_parser("decode", help="decode a frame given in hex, print JSON")
    decode.add_argument("hex", nargs="+", help="frame bytes, e.g. 'F4 F3 F2 F1 0D 00 ...'")
    decode.set_defaults(func=decode_cmd, error_prefix="seatbox radar decode: ")


# --- argument types (argparse turns ValueError/ArgumentTypeError into exit 2) -------------


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return int(text)


def _gate_limit(text: str) -> int:
    if not text.isdigit() or not 2 <= int(text) <= MAX_GATE:
        raise argparse.ArgumentTypeError(
            f"expected a gate 2..{MAX_GATE} (0.75 m per gate), got {text}"
        )
    return int(text)


def _duration(text: str) -> int:
    if not text.isdigit() or int(text) > 0xFFFF:
        raise argparse.ArgumentTypeError(f"expected whole seconds 0..65535, got {text}")
    return int(text)


def _sensitivity(text: str) -> tuple[int, int, int]:
    parts = text.split(":")
    bad = argparse.ArgumentTypeError(
        f"expected GATE:MOVING:STILL with GATE 0..{MAX_GATE} or 'all' and values "
        f"0..{MAX_ENERGY}, got {text}"
    )
    if len(parts) != 3:
        raise bad
    gate_text, moving, still = parts
    if gate_text == "all":
        gate = ALL_GATES
    elif gate_text.isdigit() and int(gate_text) <= MAX_GATE:
        gate = int(gate_text)
    else:
        raise bad
    if not (moving.isdigit() and still.isdigit()):
        raise bad
    if int(moving) > MAX_ENERGY or int(still) > MAX_ENERGY:
        raise bad
    return gate, int(moving), int(still)


# --- JSON shapes -------------------------------------------------------------------------


def frame_to_dict(frame: Frame) -> dict[str, Any]:
    """The frame as `radar decode` and `radar watch --json` print it."""
    kind = frame_kind(frame)
    if isinstance(frame, DataFrame):
        out: dict[str, Any] = {
            "type": kind,
            "target": frame.target,
            "moving": {"distance_cm": frame.moving_cm, "energy": frame.moving_energy},
            "still": {"distance_cm": frame.still_cm, "energy": frame.still_energy},
            "detection_cm": frame.detection_cm,
        }
        if frame.calibration:
            out["calibration"] = frame.calibration
        if frame.engineering:
            out["gates"] = {"moving": list(frame.moving_gates), "still": list(frame.still_gates)}
            out["light"] = frame.light
            out["out_pin"] = frame.out_pin
        return out
    if isinstance(frame, Ack):
        ack: dict[str, Any] = {
            "type": "ack",
            "command": command_name(frame.command),
            "status": "success" if frame.ok else "failure",
        }
        ack.update(_ack_data(frame))
        return ack
    return {"type": "command", "command": command_name(frame.command), "value": frame.value.hex()}


def _ack_data(ack: Ack) -> dict[str, Any]:
    """Known return data decoded; anything else as hex."""
    if not ack.ok or not ack.data:
        return {}
    if ack.command == 0x00FF:
        info = parse_config_info(ack)
        return {"protocol_version": info.protocol_version, "buffer_size": info.buffer_size}
    if ack.command == 0x0061:
        return {"parameters": parse_parameters(ack).to_dict()}
    if ack.command == 0x00A0:
        firmware = parse_firmware(ack)
        return {"firmware": firmware.text, "firmware_type": f"0x{firmware.type:04X}"}
    return {"data": ack.data.hex()}


# --- commands ----------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> LD2410Link:
    port = open_serial(args.port, args.baudrate)
    return LD2410Link(port, name=args.port, ack_timeout=args.ack_timeout)


def _device_error(exc: FrameError | OSError) -> RadarError:
    """A garbled answer or a serial error while talking to the radar: the radar failed (exit 1),
    not the input (a malformed frame given to `decode` is exit 2)."""
    return RadarError(str(exc))


def info_cmd(args: argparse.Namespace) -> int:
    link = _open(args)
    try:
        link.end_configuration()  # a module left in configuration mode answers nothing else
        with link.configuration() as config:
            firmware = link.read_firmware()
            params = link.read_parameters()
    except (FrameError, OSError) as exc:
        raise _device_error(exc) from exc
    finally:
        link.close()
    if args.json:
        data = {
            "port": args.port,
            "firmware": firmware.text,
            "firmware_type": f"0x{firmware.type:04X}",
            "protocol_version": config.protocol_version,
            "buffer_size": config.buffer_size,
            **params.to_dict(),
        }
        print(json.dumps(data))
        return EXIT_OK
    print(f"port:        {args.port} ({args.baudrate} baud)")
    print(f"firmware:    {firmware.text} (type 0x{firmware.type:04X})")
    print(f"protocol:    version {config.protocol_version}, buffer {config.buffer_size} bytes")
    _print_parameters(params)
    return EXIT_OK


def _print_parameters(params: Parameters) -> None:
    # V1.07: max gate 2 limits detection to about 1.5 m; 8 gates reach about 6 m.
    reach = max(params.max_moving_gate, params.max_still_gate) * GATE_M
    print(
        f"max gates:   moving {params.max_moving_gate}, still {params.max_still_gate} "
        f"(about {reach:.2f} m at {GATE_M} m per gate)"
    )
    print(f"no-one duration: {params.no_one_duration_s} s")
    gates = range(len(params.moving_sensitivity))
    print("gate               " + " ".join(f"{g:>3}" for g in gates))
    print("moving sensitivity " + " ".join(f"{v:>3}" for v in params.moving_sensitivity))
    print("still sensitivity  " + " ".join(f"{v:>3}" for v in params.still_sensitivity))


def watch_cmd(args: argparse.Namespace) -> int:
    link = _open(args)
    engineering_on = not args.basic
    params: Parameters | None = None
    try:
        link.end_configuration()
        with link.configuration():
            params = link.read_parameters()
            if engineering_on:
                link.command(engineering(True))
        if not args.json:
            _print_parameters(params)
            print("(* = gate energy above its sensitivity: that gate detects a target)")
        return _watch(link, args, params)
    except (FrameError, OSError) as exc:
        raise _device_error(exc) from exc
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        if engineering_on:
            _engineering_off(link)
        link.close()


def _watch(link: LD2410Link, args: argparse.Namespace, params: Parameters) -> int:
    start = last_frame = time.monotonic()
    seen = 0
    peaks_moving = [0] * (MAX_GATE + 1)
    peaks_still = [0] * (MAX_GATE + 1)
    while args.count is None or seen < args.count:
        now = time.monotonic()
        if args.seconds is not None and now - start >= args.seconds:
            break
        if now - last_frame > WATCH_SILENCE_S:
            raise RadarError(
                f"no data frame for {WATCH_SILENCE_S:g} s on {args.port} (power, wiring, baud rate?)"
            )
        for frame in link.read_reports():
            last_frame = time.monotonic()
            seen += 1
            for i, e in enumerate(frame.moving_gates):
                peaks_moving[i] = max(peaks_moving[i], e)
            for i, e in enumerate(frame.still_gates):
                peaks_still[i] = max(peaks_still[i], e)
            if args.json:
                print(json.dumps(frame_to_dict(frame)), flush=True)
            else:
                print(_frame_line(frame, params), flush=True)
            if args.count is not None and seen >= args.count:
                break
    if not args.json and any(peaks_moving + peaks_still):
        print(f"peak over {seen} frames:")
        print("  moving " + _gate_text(tuple(peaks_moving), params.moving_sensitivity))
        print("  still  " + _gate_text(tuple(peaks_still), params.still_sensitivity))
    return EXIT_OK


def _gate_text(energies: tuple[int, ...], sensitivity: tuple[int, ...]) -> str:
    cells = []
    for gate, energy in enumerate(energies):
        above = gate < len(sensitivity) and energy > sensitivity[gate]
        cells.append(f"{energy:>3}{'*' if above else ' '}")
    return " ".join(cells)


def _frame_line(frame: DataFrame, params: Parameters) -> str:
    state = frame.calibration or frame.target
    line = (
        f"{state:<8} moving {frame.moving_cm:>4} cm/{frame.moving_energy:>3}  "
        f"still {frame.still_cm:>4} cm/{frame.still_energy:>3}  "
        f"detection {frame.detection_cm:>4} cm"
    )
    if frame.engineering:
        line += "\n  moving " + _gate_text(frame.moving_gates, params.moving_sensitivity)
        line += "\n  still  " + _gate_text(frame.still_gates, params.still_sensitivity)
    return line


def _engineering_off(link: LD2410Link) -> None:
    # Leave the module as the seat service expects it (basic frames); best effort.
    try:
        with link.configuration():
            link.command(engineering(False))
    except (RadarError, OSError) as exc:
        print(f"seatbox radar: could not turn engineering mode off: {exc}", file=sys.stderr)


def set_cmd(args: argparse.Namespace) -> int:
    wants_gates = any(
        v is not None
        for v in (args.max_gate, args.max_moving_gate, args.max_still_gate, args.timeout)
    )
    if not (
        wants_gates or args.sensitivity or args.engineering or args.factory_reset or args.restart
    ):
        problem = (
            "nothing to set: give --max-gate, --timeout, --sensitivity, "
            "--engineering, --factory-reset or --restart"
        )
        raise framed("seatbox radar set: ", UsageError(problem))
    link = _open(args)
    try:
        link.end_configuration()
        with link.configuration():
            params = link.read_parameters()
            for cmd in _set_commands(args, params):
                link.command(cmd)
            params = link.read_parameters()
            if args.restart:
                link.command(restart())
    except (FrameError, OSError) as exc:
        raise _device_error(exc) from exc
    finally:
        link.close()
    if args.json:
        print(json.dumps(params.to_dict()))
    else:
        _print_parameters(params)
        if args.restart:
            print("restarting: the module answers again after about 1 s")
    return EXIT_OK


def _set_commands(args: argparse.Namespace, params: Parameters) -> list[Command]:
    cmds = []
    moving = args.max_moving_gate or args.max_gate or params.max_moving_gate
    still = args.max_still_gate or args.max_gate or params.max_still_gate
    duration = params.no_one_duration_s if args.timeout is None else args.timeout
    if (moving, still, duration) != (
        params.max_moving_gate,
        params.max_still_gate,
        params.no_one_duration_s,
    ):
        cmds.append(set_max_gates(moving, still, duration))
    for gate, moving_sens, still_sens in args.sensitivity:
        cmds.append(set_gate_sensitivity(gate, moving_sens, still_sens))
    if args.engineering:
        cmds.append(engineering(args.engineering == "on"))
    if args.factory_reset:
        cmds.append(factory_reset())
    return cmds


def decode_cmd(args: argparse.Namespace) -> int:
    text = "".join(args.hex).replace(" ", "").replace(":", "").replace("0x", "")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise UsageError(
            "expected hexadecimal bytes such as 'F4 F3 F2 F1 0D 00 ...', "
            f"got {' '.join(args.hex)!r}"
        ) from None
    try:
        frame = decode_frame(data)
        out = frame_to_dict(frame)
    except FrameError as exc:
        raise ParseError(f"malformed frame: {exc}") from exc
    print(json.dumps(out))
    return EXIT_OK
