"""`seatbox config check FILE` and `seatbox config show FILE`.

check runs exactly the validation `seatbox run` runs (`edge.shell.config_check.load_seat`): 0 when valid, 2 with
one line per problem naming file, key and expectation when not.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge.cli import EXIT_OK


def register(sub: Any) -> None:
    parser = sub.add_parser("config", help="check or show a seat config")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    check = verbs.add_parser(
        "check",
        help="validate a seat config as `seatbox run` does: keys, profile, files it names",
    )
    check.add_argument("file")
    # A config error names its file: printed as is.
    check.set_defaults(func=check_cmd, error_prefix="")
    show = verbs.add_parser("show", help="print the effective config, secrets masked")
    show.add_argument("file")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML-like text")
    show.set_defaults(func=show_cmd, error_prefix="")


def check_cmd(args: argparse.Namespace) -> int:
    from edge.shell.config import config_digest
    from edge.shell.config_check import load_seat

    setup = load_seat(args.file)
    config, profile = setup.config, setup.profile
    # The digests are the ones the seat publishes in `info`: compare them with the floor's.
    print(
        f"{args.file}: OK (seat {config.seat.site}/{config.seat.id}, "
        f"config {config_digest(config)}, profile {profile.name} {profile.digest})"
    )
    return EXIT_OK


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def show_cmd(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.shell.config import config_digest, config_profile, load_config, masked

    config = load_config(args.file)
    profile = config_profile(config, Path(args.file))
    data = masked(config)
    digest = config_digest(config)
    data["profile"] = {
        "name": profile.name,
        "source": profile.source,
        "digest": profile.digest,
        **profile.to_dict(),
    }
    if args.json:
        print(json.dumps({"digest": digest, **data}, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"# config digest {digest}, profile digest {profile.digest} (as published in info)")
    for section, values in data.items():
        _print_section(section, values)
    return EXIT_OK


def _print_section(name: str, values: dict[str, Any]) -> None:
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    print(f"[{name}]")
    for key, value in scalars.items():
        print(f"{key} = {_toml_value(value)}")
    print()
    for key, value in tables.items():
        _print_section(f"{name}.{key}", value)
