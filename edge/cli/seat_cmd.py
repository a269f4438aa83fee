"""The seat commands: `run`, `simulate`, `replay`, `demo` and `floor`.

Each builds the same runtime; they differ in devices (real or virtual), clock and broker.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from edge.base.errors import BrokerError, ConfigError, SeatboxError, UsageError
from edge.cli import EXIT_FAIL, EXIT_OK, framed
from edge.shell.notify import CoreWatchdog, Notifier, WatchdogTicker, watchdog_interval

log = logging.getLogger(__name__)

# A seat without its broker this long after the start says so once (it runs and stores its
# events from the first moment either way; READY=1 never waits for the broker).
READY_BROKER_WAIT_S = 10.0
# floor.accounts.ROLES (not imported here: `seatbox --help` loads no floor service code).
FLOOR_ROLES = ("supervisor", "manager", "wallboard", "agent")


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the seat service with a config")
    run.add_argument("config")
    run.add_argument("--record", metavar="TAPE", help="write every input and effect to a tape")
    run.set_defaults(func=run_cmd)

    simulate = sub.add_parser("simulate", help="play a scenario on one simulated seat")
    simulate.add_argument("scenario")
    simulate.add_argument("--fast", action="store_true", help="simulated time as fast as possible")
    simulate.add_argument("--broker", metavar="URL", help="publish to this broker (or 'embedded')")
    simulate.add_argument(
        "--events-out", metavar="FILE", help="write events as JSON lines ('-' stdout)"
    )
    simulate.add_argument("--record", metavar="TAPE", help="write every input and effect to a tape")
    simulate.add_argument("--profile", help="norm profile name or file instead of the scenario's")
    simulate.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep the event outbox here (default: a scratch directory removed at the end)",
    )
    # Errors of the scenario and profile name their file: printed as is.
    simulate.set_defaults(func=simulate_cmd, error_prefix="")

    replay = sub.add_parser("replay", help="feed a tape to a fresh seat and compare the effects")
    replay.add_argument("tape")
    replay.add_argument("--print", action="store_true", help="print every effect as a JSON line")
    replay.set_defaults(func=replay_cmd, error_prefix="")

    demo = sub.add_parser("demo", help="a simulated floor on the embedded broker, live floor view")
    demo.add_argument("--seats", type=int, default=12)
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument(
        "--no-view", action="store_true", help="no live view; print the floor at the end"
    )
    demo.add_argument("--broker", metavar="URL", help="use this broker instead of the embedded one")
    demo.add_argument(
        "--port", type=int, default=0, help="embedded broker port (default: a free one)"
    )
    demo.add_argument(
        "--http",
        metavar="HOST:PORT",
        default="127.0.0.1:8080",
        help="the web floor's address (default 127.0.0.1:8080; a free port if that one is busy)",
    )
    demo.add_argument(
        "--no-floor", action="store_true", help="no floor service (web wallboard), the seats only"
    )
    demo.set_defaults(func=demo_cmd)

    floor = sub.add_parser("floor", help="live floor view of a site (subscribes like a supervisor)")
    floor.add_argument("--broker", metavar="URL", help="broker URL (default: from --config)")
    floor.add_argument("--site", help="site id (default: from --config)")
    floor.add_argument("--config", help="a seat or supervisor config with [broker] credentials")
    floor.add_argument("--duration", type=float, help="stop after this many seconds")
    floor.set_defaults(func=floor_cmd, error_prefix="")
    # `seatbox floor` alone stays the terminal view; `seatbox floor serve` is the service.
    floor_sub = floor.add_subparsers(dest="floor_command", metavar="{serve,user,token,access-log}")
    serve = floor_sub.add_parser(
        "serve", help="the floor service: ingest, store, web wallboard and API (floor.toml)"
    )
    serve.add_argument("--config", required=True, help="floor.toml")
    serve.add_argument("--duration", type=float, help="stop after this many seconds")
    serve.set_defaults(func=floor_serve_cmd, error_prefix="")
    _register_floor_accounts(floor_sub)


def _register_floor_accounts(floor_sub: Any) -> None:
    """`seatbox floor user|token ...`: parsed here, run by floor.accounts (imported only when
    one of them runs: argon2 stays out of every other command)."""

    def lazily(name: str) -> Any:
        def run(args: argparse.Namespace) -> int:
            from floor import accounts

            result: int = getattr(accounts, name)(args)
            return result

        return run

    user = floor_sub.add_parser("user", help="floor service accounts (add, list, remove)")
    user_sub = user.add_subparsers(dest="user_command", metavar="{add,list,remove}")
    user_sub.required = True
    add = user_sub.add_parser(
        "add", help="add a user (the password is asked for twice)", allow_abbrev=False
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=FLOOR_ROLES)
    add.add_argument("--team", action="append", default=[], help="a team (repeat for several)")
    add.add_argument("--seat", help="an agent's own seat")
    add.add_argument(
        "--password-file", metavar="FILE", help="read the password from this file's first line"
    )
    # Refused with a message that does not repeat it: argv is visible in ps and shell history.
    add.add_argument("--password", help=argparse.SUPPRESS)
    add.add_argument("--config", required=True, help="floor.toml")
    add.set_defaults(func=lazily("user_add"), error_prefix="seatbox floor user add: ")
    listed = user_sub.add_parser("list", help="list users")
    listed.add_argument("--config", required=True, help="floor.toml")
    listed.set_defaults(func=lazily("user_list"), error_prefix="seatbox floor user list: ")
    remove = user_sub.add_parser("remove", help="remove a user (and end their sessions)")
    remove.add_argument("name")
    remove.add_argument("--config", required=True, help="floor.toml")
    remove.set_defaults(func=lazily("user_remove"), error_prefix="seatbox floor user remove: ")

    token = floor_sub.add_parser("token", help="API tokens for integrations (add, list, revoke)")
    token_sub = token.add_subparsers(dest="token_command", metavar="{add,list,revoke}")
    token_sub.required = True
    tadd = token_sub.add_parser("add", help="add a token; printed once, alone on the last line")
    tadd.add_argument("name")
    tadd.add_argument("--role", required=True, choices=FLOOR_ROLES[:3])
    tadd.add_argument("--team", action="append", default=[], help="a team (repeat for several)")
    tadd.add_argument("--config", required=True, help="floor.toml")
    tadd.set_defaults(func=lazily("token_add"), error_prefix="seatbox floor token add: ")
    tlist = token_sub.add_parser("list", help="list tokens (names and roles, never a token)")
    tlist.add_argument("--config", required=True, help="floor.toml")
    tlist.set_defaults(func=lazily("token_list"), error_prefix="seatbox floor token list: ")
    revoke = token_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    revoke.add_argument("--config", required=True, help="floor.toml")
    revoke.set_defaults(func=lazily("token_revoke"), error_prefix="seatbox floor token revoke: ")

    access = floor_sub.add_parser(
        "access-log", help="who viewed which individual timeline or report rows, and when"
    )
    access.add_argument("--limit", type=int, default=100, help="the latest N views (default 100)")
    access.add_argument("--config", required=True, help="floor.toml")
    access.set_defaults(func=lazily("access_log"), error_prefix="seatbox floor access-log: ")


def _check_broker_arg(args: argparse.Namespace) -> None:
    """Refuse a bad --broker URL (never repeating a password in it)."""
    from edge.api.broker import parse_url

    if args.broker is None or args.broker == "embedded":
        return
    try:
        parse_url(args.broker)
    except ConfigError as exc:
        problem = f"--broker: {str(exc).removeprefix('[broker] url: ')}"
        raise framed(f"seatbox {args.command}: ", UsageError(problem)) from None


def _stop_on_signals(stop: Any) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def run_cmd(args: argparse.Namespace) -> int:
    from edge.shell.config_check import load_seat

    # The same validation as `seatbox config check`, before the device and signal
    # libraries load: a config error is one line and exit 2 within a second.
    setup = load_seat(args.config)
    config, profile = setup.config, setup.profile
    from edge.shell import wiring

    play = None
    if setup.scenario is not None:  # the `simulate` call source, read by load_seat
        from edge.sim.build import play_on_devices

        play = play_on_devices(setup.scenario)
    try:
        url, broker = wiring.start_broker(config)
    except OSError as exc:
        # The embedded broker's port refused us: exit 1 (a ConfigError: 2).
        raise SeatboxError(str(exc)) from exc
    from edge.ops.doctor.check import checks_json
    from edge.ops.doctor.start import before_devices, beside_the_seat, pending
    from edge.shell.logs import bind_seat

    bind_seat(config.seat.site, config.seat.id)
    # The doctor's checks, published in `info`: the radar's serial probe before the seat opens
    # the port; the rest (the broker's can take its whole timeout) beside the running seat.
    early = before_devices(config)
    try:
        runtime = wiring.build_seat(
            config,
            profile,
            broker_url=url,
            state_dir=config.storage.state_dir,
            tape_path=args.record,
            keep_day=True,
            play=play,
        )
    except (ConfigError, OSError) as exc:
        if broker:
            broker.stop()
        if isinstance(exc, ConfigError):
            raise
        raise SeatboxError(str(exc)) from exc  # a device node or the tape refused us: exit 1
    runtime.checks = checks_json(pending(early))["checks"]

    def check_beside_the_seat() -> None:
        from edge.ops.doctor.start import SeatMicrophone

        checks = beside_the_seat(config, early, SeatMicrophone(runtime.taps))
        runtime.checks = checks_json(checks)["checks"]
        runtime.publish_info()

    _stop_on_signals(runtime.stop)
    # `kill -USR2` makes the core stop processing, to prove the watchdog restarts the service.
    signal.signal(signal.SIGUSR2, lambda *_: runtime.hang())
    notifier = Notifier()
    watchdog = CoreWatchdog(notifier, watchdog_interval())
    ticker = WatchdogTicker(watchdog, time.monotonic)
    runtime.progress_hooks.append(lambda at: watchdog.core_alive(time.monotonic()))
    link = runtime.link
    if link is not None:
        watchdog.add_check(link.problem)  # a dead MQTT network thread: restart us
    runtime.progress_hooks.append(lambda at: notifier.status(runtime.status_line()))
    log.info("seat %s/%s starting (profile %s)", config.seat.site, config.seat.id, profile.name)
    try:
        runtime.start()
        # The core runs now: inputs, button presses and events into the outbox do not wait
        # for the broker, which comes when it comes (the link reconnects by itself).
        if link is not None:

            def say_if_offline() -> None:
                if not link.connected.is_set():
                    log.warning("broker not reachable yet; running offline and retrying")

            runtime.at(runtime.clock.now().mono + READY_BROKER_WAIT_S, say_if_offline)
        notifier.ready(runtime.status_line())
        threading.Thread(target=check_beside_the_seat, name="start-checks", daemon=True).start()
        ticker.start()
        runtime.loop()
    finally:
        notifier.stopping("stopping")
        ticker.stop()
        runtime.close()
        if broker:
            broker.stop()
    return EXIT_OK


def _open_out(stack: ExitStack, target: str | None) -> IO[str] | None:
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    return stack.enter_context(open(target, "w", encoding="utf-8"))


def simulate_cmd(args: argparse.Namespace) -> int:
    from edge.shell.config import load_profile
    from edge.shell.mqtt.embedded import EmbeddedBroker
    from edge.shell.scenario import load_scenario
    from edge.sim import build as sim

    _check_broker_arg(args)
    scenario = load_scenario(args.scenario)
    profile = load_profile(args.profile or scenario.profile, base_dir=Path(args.scenario).parent)
    with ExitStack() as stack:
        broker_url = args.broker
        if broker_url == "embedded":
            broker = EmbeddedBroker(port=0)
            broker.start()
            stack.callback(broker.stop)
            broker_url = broker.url
        out = _open_out(stack, args.events_out)
        state_dir = args.state_dir
        if broker_url is not None and state_dir is None:
            state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="seatbox-sim-"))
        runtime, _ = sim.build(
            scenario,
            fast=args.fast,
            broker_url=broker_url,
            events_out=out,
            tape_path=args.record,
            profile=profile,
            state_dir=state_dir,
        )
        link = runtime.link
        if link is not None:
            link.start()
            if not link.connected.wait(10):
                runtime.close()
                problem = f"cannot reach the broker at {broker_url}"
                raise framed("seatbox simulate: ", BrokerError(problem))
        _stop_on_signals(runtime.stop)
        runtime.start_devices()
        try:
            runtime.loop()
        finally:
            runtime.close()
    return EXIT_OK


def replay_cmd(args: argparse.Namespace) -> int:
    from edge.core.inputs import encode
    from edge.shell.tape import load_tape, replay

    tape = load_tape(args.tape)
    differences = 0
    count = 0
    for number, (line, effects) in enumerate(replay(tape), start=2):
        count += len(effects)
        if args.print:
            for effect in effects:
                print(json.dumps(encode(effect), ensure_ascii=False))
        if effects != line.effects:
            differences += 1
            if differences <= 5:
                print(
                    f"{args.tape}:{number}: effects differ\n  recorded: {[encode(e) for e in line.effects]}\n"
                    f"  replayed: {[encode(e) for e in effects]}",
                    file=sys.stderr,
                )
    lines = len(tape.lines)
    if differences:
        print(f"replay: {differences} of {lines} inputs gave different effects", file=sys.stderr)
        return EXIT_FAIL
    print(f"replay: {lines} inputs, {count} effects, identical to the recording", file=sys.stderr)
    return EXIT_OK


def demo_cmd(args: argparse.Namespace) -> int:
    from edge.sim.demo import run_demo
    from edge.sim.demo_floor import parse_http

    if args.seats < 1:
        raise framed("", UsageError("--seats: expected at least 1"))
    _check_broker_arg(args)
    http = None if args.no_floor else parse_http(args.http)
    if args.log_level == "INFO":
        # Twelve seats' connection chatter would scroll the floor view away.
        logging.getLogger("edge").setLevel(logging.WARNING)
    try:
        return run_demo(args.seats, args.duration, not args.no_view, args.broker, args.port, http)
    except OSError as exc:
        raise SeatboxError(str(exc)) from exc


def floor_cmd(args: argparse.Namespace) -> int:
    from edge.api.broker import BrokerSection
    from edge.shell.config import load_config
    from floor.view import FloorView

    broker = BrokerSection()
    site = args.site
    if args.config:
        config = load_config(args.config)
        broker = config.broker
        site = site or config.seat.site
    _check_broker_arg(args)
    url = args.broker or (broker.url if broker.url != "embedded" else None)
    if not url or not site:
        problem = "give --broker URL and --site S (or --config FILE)"
        raise framed("seatbox floor: ", UsageError(problem))
    view = FloorView(broker, site, url)
    view.start()
    stop = threading.Event()
    _stop_on_signals(stop.set)
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        view.show(stop)
    finally:
        view.stop()
    return EXIT_OK


def floor_serve_cmd(args: argparse.Namespace) -> int:
    """`seatbox floor serve --config floor.toml`: ingest + store + web until SIGTERM."""
    from floor.web.serve import serve

    return serve(args.config, args.duration)
