"""`seatbox install [--root DIR] [--no-venv]` and `seatbox uninstall [--root DIR]`.

Thin wrappers over edge.ops.install, which `make install` also runs with the system python.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge.ops import install


def register(sub: Any) -> None:
    inst = sub.add_parser(
        "install",
        help="install or upgrade this source tree onto the box (venv, config, units, udev rules)",
    )
    install.add_arguments(inst, with_venv=True)
    inst.set_defaults(func=install_cmd)
    uninst = sub.add_parser(
        "uninstall", help="remove the application, units and rules; keep config and state"
    )
    install.add_arguments(uninst, with_venv=False)
    uninst.set_defaults(func=uninstall_cmd)


def install_cmd(args: argparse.Namespace) -> int:
    return install.run("install", args)


def uninstall_cmd(args: argparse.Namespace) -> int:
    return install.run("uninstall", args)
