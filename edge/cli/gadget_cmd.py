"""`seatbox gadget up|down|status`: the box as a USB telephony headset to the PC (docs/bridge.md).

Exit 0 done (up twice or down when absent too), 1 the gadget cannot be built (no configfs, no
device controller, controller busy, bound elsewhere, not root), 2 an invalid config.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge.cli import EXIT_OK

DEFAULT_CONFIG = "/etc/seatbox/seatbox.toml"


def register(sub: Any) -> None:
    parser = sub.add_parser("gadget", help="bring the USB gadget (the PC's headset) up or down")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for verb, text in (
        ("up", "build the gadget from [bridge] and bind it (nothing changes when it is up)"),
        ("down", "unbind and remove the gadget (fine when absent)"),
        ("status", "whether the gadget is there, bound, configured by the PC"),
    ):
        p = verbs.add_parser(verb, help=text)
        p.add_argument(
            "--config", default=DEFAULT_CONFIG, help=f"seat config (default {DEFAULT_CONFIG})"
        )
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=gadget_cmd)


def gadget_cmd(args: argparse.Namespace) -> int:
    from edge.ops import gadget
    from edge.shell.config import load_config

    config = load_config(args.config)
    action = {"up": gadget.up, "down": gadget.down, "status": gadget.status}[args.verb]
    result = action(config)
    print(json.dumps(result, sort_keys=True) if args.json else gadget.describe(result))
    return EXIT_OK
