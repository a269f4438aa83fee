"""The `seatbox` command: one sub-command group per module of this package.

Each module listed in COMMAND_MODULES has `register(subparsers)`; handlers return the exit code
of a command that ran (doctor's FAIL, a replay that differs) and raise a SeatboxError for one
that cannot: `main` prints it as one line and exits with the code of its kind (EXIT_CODES).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TypeVar

from edge import __version__
from edge.base.errors import (
    BrokerError,
    ConfigError,
    DeviceError,
    ParseError,
    SeatboxError,
    UsageError,
)

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAIL = 1  # the thing checked is not right (broker unreachable, doctor FAIL)
EXIT_USAGE = 2  # bad input: invalid config, unparseable file, wrong arguments

# The exit code of each kind of error: the first kind the error is an instance of.
EXIT_CODES: tuple[tuple[type[SeatboxError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (ParseError, EXIT_USAGE),
    (UsageError, EXIT_USAGE),
    (DeviceError, EXIT_FAIL),
    (BrokerError, EXIT_FAIL),
    (SeatboxError, EXIT_FAIL),  # e.g. an install step that failed
)

E = TypeVar("E", bound=SeatboxError)

COMMAND_MODULES = [
    "edge.cli.config_cmd",
    "edge.cli.seat_cmd",
    "edge.cli.headset_cmd",
    "edge.cli.radar_cmd",
    "edge.cli.meter_cmd",
    "edge.cli.install_cmd",
    "edge.cli.provision_cmd",
    "edge.cli.doctor_cmd",
    "edge.cli.gadget_cmd",
]
# Which module registers each command: `seatbox config check` imports config_cmd alone, not the
# headset, radar and install tools (tests/test_cli_commands.py keeps this in step).
COMMAND_MODULE = {
    "config": "edge.cli.config_cmd",
    "run": "edge.cli.seat_cmd",
    "simulate": "edge.cli.seat_cmd",
    "replay": "edge.cli.seat_cmd",
    "demo": "edge.cli.seat_cmd",
    "floor": "edge.cli.seat_cmd",
    "headset": "edge.cli.headset_cmd",
    "radar": "edge.cli.radar_cmd",
    "meter": "edge.cli.meter_cmd",
    "install": "edge.cli.install_cmd",
    "uninstall": "edge.cli.install_cmd",
    "provision": "edge.cli.provision_cmd",
    "doctor": "edge.cli.doctor_cmd",
    "gadget": "edge.cli.gadget_cmd",
}
# Top-level options that take a value (the command word is the first other bare argument).
_VALUE_OPTIONS = ("--log-level", "--log-format")


def command_word(argv: Sequence[str]) -> str | None:
    """The command `argv` names, when it can be told without parsing (else None: any other
    option before it, such as --help, gets the whole parser)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif arg.startswith(tuple(f"{option}=" for option in _VALUE_OPTIONS)):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the arguments, only the module of the command they name is
    imported and registered (the others' help lines are needed only when none is named)."""
    parser = argparse.ArgumentParser(
        prog="seatbox",
        description="Seat box: headset, audio levels, presence and seat norms over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"seatbox {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="json for log shippers"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    word = command_word(argv) if argv is not None else None
    modules = [COMMAND_MODULE[word]] if word in COMMAND_MODULE else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def framed(prefix: str, error: E) -> E:
    """`error`, printed after `prefix` instead of its command's usual prefix."""
    error.prefix = prefix
    return error


def exit_code(error: SeatboxError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


def error_line(args: argparse.Namespace, error: SeatboxError) -> str:
    """The one line (or paragraph) `seatbox` prints for an error: the error's own prefix,
    else the command's (`set_defaults(error_prefix=...)`: "" where the messages name their
    file), else "seatbox <command>: "."""
    prefix = error.prefix
    if prefix is None:
        prefix = getattr(args, "error_prefix", None)
    if prefix is None:
        prefix = f"seatbox {args.command}: "
    return f"{prefix}{error}"


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from edge.shell.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except SeatboxError as exc:
        # Bad input or a device, broker or step that failed: the sentence, not a traceback.
        print(error_line(args, exc), file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        # Settings built from arguments; pydantic's own text would repeat the input verbatim.
        # Only a command that loaded pydantic can raise its ValidationError: the others (headset
        # describe, radar decode) do not load it just for this except clause.
        core = sys.modules.get("pydantic_core")
        if core is None or not isinstance(exc, core.ValidationError):
            raise
        from edge.base.schema import format_validation_error

        print(format_validation_error(f"seatbox {args.command}", exc), file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
