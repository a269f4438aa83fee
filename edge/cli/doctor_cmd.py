"""`seatbox doctor [CONFIG] [--json]`: the box's self-check for facilities staff.

Exit 0 only when no check FAILs; `--json` prints {"checks": [{name, status, detail, fix}]}.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge.cli import EXIT_FAIL, EXIT_OK
from edge.ops.provision import DEFAULT_OUTPUT

MARK = {"OK": "OK  ", "WARN": "WARN", "FAIL": "FAIL"}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check config, broker, headset, audio, radar, clock, disk, outbox and permissions",
    )
    parser.add_argument("config", nargs="?", default=str(DEFAULT_OUTPUT), help="seat config")
    parser.add_argument("--json", action="store_true", help='{"checks": [...]} on stdout')
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="broker connection timeout, seconds"
    )
    parser.set_defaults(func=doctor_cmd)


def doctor_cmd(args: argparse.Namespace) -> int:
    from edge.ops.doctor import Machine, checks_json, run_checks, worst

    checks = run_checks(args.config, Machine(broker_timeout=args.timeout))
    if args.json:
        print(json.dumps(checks_json(checks), indent=2, ensure_ascii=False))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            print(f"{MARK[check.status]}  {check.name:<{width}}  {check.detail}")
            if check.fix and check.status != "OK":
                print(f"{'':4}  {'':<{width}}  fix: {check.fix}")
        print(f"overall: {worst(checks)}")
    return EXIT_FAIL if worst(checks) == "FAIL" else EXIT_OK
