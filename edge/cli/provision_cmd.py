"""`seatbox provision`: write a seat's config and check the broker accepts its credentials.

One seat from flags, or many from a CSV (one folder per seat, for imaging); see docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.base.errors import ConfigError, UsageError
from edge.cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from edge.ops.provision import (
    CHECK_TIMEOUT_S,
    CSV_OPTIONAL,
    CSV_REQUIRED,
    DEFAULT_OUTPUT,
    DEFAULT_RADAR_PORT,
    ProvisionError,
    SeatRequest,
    check_broker,
    describe,
    missing_before_start,
    read_seats_csv,
    seat_output,
    write_config,
)

if TYPE_CHECKING:
    from edge.shell.config import SeatConfig

# Checks of many seats run side by side; a handful keeps a site broker comfortable.
PARALLEL_CHECKS = 8


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "provision",
        help="write a seat config and check the broker accepts it",
        description=(
            "One seat: --site --seat --broker [credentials]. Many: --from seats.csv with "
            f"columns {','.join(CSV_REQUIRED)} and optional {','.join(CSV_OPTIONAL)}."
        ),
    )
    parser.add_argument("--site", help="site id (letters, digits, _ or -)")
    parser.add_argument("--seat", help="seat id (letters, digits, _ or -)")
    parser.add_argument("--broker", help="mqtt://host:1883, mqtts://host:8883, ws(s)://...")
    parser.add_argument(
        "--ca", default="", help="CA certificate (PEM) the broker's cert is signed by"
    )
    parser.add_argument("--cert", default="", help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--key", default="", help="client key (PEM, mode 0600) for mutual TLS")
    parser.add_argument("--username", default="", help="broker username")
    parser.add_argument(
        "--password-file", default="", help="file holding the password (mode 0600), as on the box"
    )
    parser.add_argument("--profile", default="default", help="norm profile name (default: default)")
    parser.add_argument(
        "--radar-port",
        default=DEFAULT_RADAR_PORT,
        help=f"radar serial port (default {DEFAULT_RADAR_PORT})",
    )
    parser.add_argument(
        "--tx-device",
        default="",
        help="the headset's capture device (PortAudio name; seatbox doctor lists them)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="virtual headset, audio and radar (labs, demos)"
    )
    parser.add_argument(
        "--from", dest="csv", metavar="FILE.csv", help="provision every seat of a CSV file"
    )
    parser.add_argument(
        "--output",
        help=f"config file to write (default {DEFAULT_OUTPUT}); with --from, a folder "
        "(default ./provisioned) that gets SITE/SEAT/seatbox.toml per seat",
    )
    parser.add_argument("--no-check", action="store_true", help="do not connect to the broker")
    parser.add_argument(
        "--timeout", type=float, default=CHECK_TIMEOUT_S, help="broker check timeout, seconds"
    )
    parser.set_defaults(func=provision_cmd, error_prefix="provision: ")


def provision_cmd(args: argparse.Namespace) -> int:
    if args.csv:
        if args.site or args.seat or args.broker:
            raise UsageError("use either --from FILE.csv or --site/--seat/--broker")
        return _many(args)
    missing = [f"--{name}" for name in ("site", "seat", "broker") if not getattr(args, name)]
    if missing:
        raise UsageError(f"{', '.join(missing)} required (or --from FILE.csv)")
    if (args.username or args.password_file) and (args.cert or args.key):
        # Both is legal MQTT, but one seat should have one way in; mixing hides mistakes.
        raise UsageError("give either --username/--password-file or --cert/--key")
    req = SeatRequest(
        site=args.site,
        seat=args.seat,
        broker=args.broker,
        username=args.username,
        password_file=args.password_file,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        profile=args.profile,
        simulate=args.simulate,
        radar_port=args.radar_port,
        tx_device=args.tx_device,
    )
    output = Path(args.output) if args.output else DEFAULT_OUTPUT
    try:
        config, replaced = write_config(req, output)
    except (ProvisionError, ConfigError) as exc:
        raise ProvisionError(f"nothing written:\n{exc}") from exc
    except OSError as exc:
        raise ProvisionError(f"cannot write {output}: {exc.strerror}") from exc
    print(f"{'replaced' if replaced else 'wrote'} {output}: {describe(req)}")
    if missing_before_start(req):
        print(f"note: {missing_before_start(req)}")
    code = _check(config, args) if not args.no_check else EXIT_OK
    if args.no_check:
        print("broker: not checked (--no-check)")
    if output == DEFAULT_OUTPUT:
        print("next: seatbox doctor, then systemctl restart seatbox")
    return code


def _check(config: SeatConfig, args: argparse.Namespace, label: str = "broker") -> int:
    result = check_broker(config.broker, config.client_id, timeout=args.timeout)
    if result.ok:
        print(f"{label}: OK {result.detail}")
        return EXIT_OK
    print(f"{label}: FAIL {result.detail}", file=sys.stderr)
    if result.fix:
        print(f"{label}: fix: {result.fix}", file=sys.stderr)
    return EXIT_FAIL


def _many(args: argparse.Namespace) -> int:
    folder = Path(args.output) if args.output else Path("provisioned")
    try:
        requests = read_seats_csv(Path(args.csv), simulate=args.simulate)
    except ProvisionError as exc:
        raise ProvisionError(f"nothing written:\n{exc}") from exc
    written: list[tuple[SeatRequest, SeatConfig]] = []
    errors = []
    for req in requests:
        target = seat_output(folder, req)
        try:
            config, _ = write_config(req, target)
        except (ProvisionError, ConfigError) as exc:
            errors.append(f"{req.site}/{req.seat}: {exc}")
            continue
        written.append((req, config))
        print(f"wrote {target}: {describe(req)}")
        if missing_before_start(req):
            print(f"note: {req.site}/{req.seat}: {missing_before_start(req)}")
    for line in errors:
        print(f"provision: {line}", file=sys.stderr)
    print(f"{len(written)} of {len(requests)} seat configs written under {folder}")
    if errors:
        return EXIT_USAGE
    if args.no_check:
        print("broker: not checked (--no-check)")
        return EXIT_OK
    with ThreadPoolExecutor(PARALLEL_CHECKS) as pool:
        codes = list(
            pool.map(
                lambda item: _check(item[1], args, f"{item[0].site}/{item[0].seat} broker"),
                written,
            )
        )
    failed = codes.count(EXIT_FAIL)
    print(f"broker check: {len(codes) - failed} OK, {failed} FAIL")
    return EXIT_FAIL if failed else EXIT_OK
