"""The `seatbox` command: one sub-command group per module of this package.

Each module listed in COMMAND_MODULES has `register(subparsers)`; handlers return the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edge import __version__

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAIL = 1  # the thing checked is not right (broker unreachable, doctor FAIL)
EXIT_USAGE = 2  # bad input: invalid config, unparseable file, wrong arguments

COMMAND_MODULES = [
    "edge.cli.config_cmd",
    "edge.cli.seat_cmd",
    "edge.cli.headset_cmd",
    "edge.cli.radar_cmd",
    "edge.cli.meter_cmd",
    "edge.cli.install_cmd",
    "edge.cli.provision_cmd",
    "edge.cli.doctor_cmd",
]


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from edge.shell.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    from pydantic import ValidationError

    from edge.base.errors import ConfigError
    from edge.base.schema import format_validation_error

    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        # A command that let a config error escape still answers with the sentence, not a
        # traceback: bad input is exit 2 everywhere.
        print(f"seatbox {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        # Settings built from arguments; pydantic's own text would repeat the input verbatim.
        print(format_validation_error(f"seatbox {args.command}", exc), file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
