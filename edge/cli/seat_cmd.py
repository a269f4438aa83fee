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

from edge.base.errors import ConfigError
from edge.cli import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from edge.shell.notify import CoreWatchdog, Notifier, WatchdogTicker, watchdog_interval

log = logging.getLogger(__name__)

# A seat without its broker this long after the start says so once (it runs and stores its
# events from the first moment either way; READY=1 never waits for the broker).
READY_BROKER_WAIT_S = 10.0


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
    simulate.set_defaults(func=simulate_cmd)

    replay = sub.add_parser("replay", help="feed a tape to a fresh seat and compare the effects")
    replay.add_argument("tape")
    replay.add_argument("--print", action="store_true", help="print every effect as a JSON line")
    replay.set_defaults(func=replay_cmd)

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
    demo.set_defaults(func=demo_cmd)

    floor = sub.add_parser("floor", help="live floor view of a site (subscribes like a supervisor)")
    floor.add_argument("--broker", metavar="URL", help="broker URL (default: from --config)")
    floor.add_argument("--site", help="site id (default: from --config)")
    floor.add_argument("--config", help="a seat or supervisor config with [broker] credentials")
    floor.add_argument("--duration", type=float, help="stop after this many seconds")
    floor.set_defaults(func=floor_cmd)


def _broker_arg_error(url: str | None) -> str | None:
    """What is wrong with a --broker URL (never repeating a password in it), or None."""
    from edge.api.broker import parse_url

    if url is None or url == "embedded":
        return None
    try:
        parse_url(url)
    except ConfigError as exc:
        return f"--broker: {str(exc).removeprefix('[broker] url: ')}"
    return None


def _stop_on_signals(stop: Any) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def run_cmd(args: argparse.Namespace) -> int:
    from edge.shell.config_check import load_seat

    try:
        # The same validation as `seatbox config check`, before the device and signal
        # libraries load: a config error is one line and exit 2 within a second.
        setup = load_seat(args.config)
    except ConfigError as exc:
        print(f"seatbox run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config, profile = setup.config, setup.profile
    from edge.shell import wiring as app
    from edge.shell.runtime import Runtime
    from edge.sim import build as sim
    from edge.sim.scenario import load_scenario

    try:
        devices = app.build_devices(config)
        clock = app.seat_clock(config)
        url, broker = app.start_broker(config)
    except (ConfigError, OSError) as exc:
        print(f"seatbox run: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAIL
    from edge.ops.doctor import broker_check, checks_json, run_checks_for
    from edge.shell.logs import bind_seat

    bind_seat(config.seat.site, config.seat.id)
    # The doctor's checks at start (before the devices are opened), published in `info`. The
    # broker's can take its whole timeout: it runs beside the seat, which does not wait.
    checks = checks_json(run_checks_for(config, broker=False))["checks"]
    broker_pending = {
        "name": "broker",
        "status": "WARN",
        "detail": "being checked (the seat runs meanwhile)",
        "fix": "",
    }
    runtime = Runtime(
        config,
        profile,
        devices,
        clock,
        broker_url=url,
        tape_path=args.record,
        state_dir=config.storage.state_dir,
    )
    runtime.checks = [broker_pending, *checks]

    def check_the_broker() -> None:
        runtime.checks = [*checks_json([broker_check(config)])["checks"], *checks]
        runtime.publish_info()

    from edge.shell.day_store import DayStore
    from edge.shell.dose_store import DoseStore

    # Today's hearing dose, arrival and counts survive a restart of the service.
    DoseStore.for_config(config).attach(runtime)
    DayStore.for_config(config).attach(runtime)
    if "simulate" in config.call.sources and config.call.scenario:
        try:
            scenario = load_scenario(Path(args.config).parent / config.call.scenario)
        except ConfigError as exc:
            print(f"seatbox run: [call] scenario: {exc}", file=sys.stderr)
            return EXIT_USAGE
        seat = sim.VirtualSeat(
            headset=devices.headset,  # type: ignore[arg-type]
            host=devices.host,  # type: ignore[arg-type]
            radar=devices.radar,  # type: ignore[arg-type]
            audio=devices.audio,
            cti=sim.VirtualCti(),
        )
        devices.extra.append(seat.cti)
        sim.schedule(runtime, seat, scenario, offset=clock.now().mono, loop=True)
    if devices.audio is not None and hasattr(devices.audio, "tick"):
        runtime.every(devices.audio.period_s, devices.audio.tick)  # type: ignore[attr-defined]
    _stop_on_signals(runtime.stop)
    # `kill -USR2` makes the core stop processing, to prove the watchdog restarts the service.
    signal.signal(signal.SIGUSR2, lambda *_: runtime.hang())
    notifier = Notifier()
    watchdog = CoreWatchdog(notifier, watchdog_interval())
    ticker = WatchdogTicker(watchdog, time.monotonic)
    runtime.progress_hooks.append(lambda at: watchdog.core_alive(time.monotonic()))
    watchdog.add_check(runtime.link_problem)  # a dead MQTT network thread: restart us
    runtime.progress_hooks.append(lambda at: notifier.status(runtime.status_line()))
    log.info("seat %s/%s starting (profile %s)", config.seat.site, config.seat.id, profile.name)
    try:
        runtime.start()
        # The core runs now: inputs, button presses and events into the outbox do not wait
        # for the broker, which comes when it comes (the link reconnects by itself).
        link = runtime.link
        if link is not None:
            threading.Thread(target=check_the_broker, name="broker-check", daemon=True).start()

            def say_if_offline() -> None:
                if not link.connected.is_set():
                    log.warning("broker not reachable yet; running offline and retrying")

            runtime.at(clock.now().mono + READY_BROKER_WAIT_S, say_if_offline)
        notifier.ready(runtime.status_line())
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
    from edge.sim import build as sim
    from edge.sim.scenario import load_scenario

    problem = _broker_arg_error(args.broker)
    if problem:
        print(f"seatbox simulate: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = load_scenario(args.scenario)
        profile = load_profile(
            args.profile or scenario.profile, base_dir=Path(args.scenario).parent
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
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
        try:
            runtime, _ = sim.build(
                scenario,
                fast=args.fast,
                broker_url=broker_url,
                events_out=out,
                tape_path=args.record,
                profile=profile,
                state_dir=state_dir,
            )
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        runtime.start_link()
        if runtime.link is not None and not runtime.link.connected.wait(10):
            print(f"seatbox simulate: cannot reach the broker at {broker_url}", file=sys.stderr)
            runtime.close()
            return EXIT_FAIL
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

    try:
        tape = load_tape(args.tape)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
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

    if args.seats < 1:
        print("--seats: expected at least 1", file=sys.stderr)
        return EXIT_USAGE
    problem = _broker_arg_error(args.broker)
    if problem:
        print(f"seatbox demo: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.log_level == "INFO":
        # Twelve seats' connection chatter would scroll the floor view away.
        logging.getLogger("edge").setLevel(logging.WARNING)
    try:
        return run_demo(args.seats, args.duration, not args.no_view, args.broker, args.port)
    except OSError as exc:
        print(f"seatbox demo: {exc}", file=sys.stderr)
        return EXIT_FAIL


def floor_cmd(args: argparse.Namespace) -> int:
    from edge.api.broker import BrokerSection
    from edge.shell.config import load_config
    from floor.view import FloorView

    broker = BrokerSection()
    site = args.site
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        broker = config.broker
        site = site or config.seat.site
    problem = _broker_arg_error(args.broker)
    if problem:
        print(f"seatbox floor: {problem}", file=sys.stderr)
        return EXIT_USAGE
    url = args.broker or (broker.url if broker.url != "embedded" else None)
    if not url or not site:
        print("seatbox floor: give --broker URL and --site S (or --config FILE)", file=sys.stderr)
        return EXIT_USAGE
    try:
        view = FloorView(broker, site, url)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
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
