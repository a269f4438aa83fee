"""`seatbox demo`: an embedded broker, a floor of simulated seats in real time, a live floor view,
and the floor service with its web wallboard (edge/sim/demo_floor.py) unless `--no-floor`.

Every seat is a full runtime (core, norms, MQTT link) driven by virtual devices in a loop.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from edge.api.broker import BrokerSection
from edge.base.files import read_toml
from edge.core.profile import Profile
from edge.core.profile_schema import profile_from_dict
from edge.shell.config import REPO_CONFIG_DIR, find_profile, load_profile
from edge.shell.mqtt.embedded import EmbeddedBroker
from edge.shell.runtime import Runtime
from edge.shell.scenario import load_scenario, scenario_from_dict
from edge.sim import build as sim
from edge.sim import demo_floor
from floor.view import FloorView, render

log = logging.getLogger(__name__)

DEMO_SCENARIOS = REPO_CONFIG_DIR / "scenarios" / "demo"


def demo_profile(now: datetime) -> Profile:
    """The demo profile with the shift placed around now, so the floor is at work whenever run.

    The shift began this minute: an absence counts from the first minute (the seats' away
    norm and the web floor's amber and red), and no seat is late (a box that starts after the
    shift start and finds its agent there cannot tell when they came)."""
    base = load_profile("demo")
    data = {name: section.model_dump(mode="json") for name, section in base.sections.items()}
    start = now.replace(second=0, microsecond=0)
    end = min(now + timedelta(hours=8), now.replace(hour=23, minute=59))
    data["attendance"].update(
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
        lunch_start=end.strftime("%H:%M"),
        lunch_end=end.strftime("%H:%M"),
        ready_before="0s",
        workdays=[1, 2, 3, 4, 5, 6, 7],
    )
    return profile_from_dict("demo", data, source=str(find_profile("demo")))


def seat_ids(seats: int) -> list[str]:
    return [f"A-{index + 1:02d}" for index in range(seats)]


@dataclass
class Floor:
    broker: EmbeddedBroker | None
    url: str
    runtimes: list[Runtime]
    threads: list[threading.Thread]
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None)

    def stop(self) -> None:
        for runtime in self.runtimes:
            runtime.stop()
        for thread in self.threads:
            thread.join(10)
        if self.broker:
            self.broker.stop()
        if self.workdir:
            self.workdir.cleanup()


# The embedded broker (amqtt) can leave a connection that never gets its CONNACK when a seat
# connects while the machine is busy (seen in CI: one seat of six missing for 18 s); paho
# notices only after 1.5 keepalives and reconnects. A short keepalive keeps that within
# seconds, well inside the time the demo's printed floor waits.
DEMO_KEEPALIVE_S = 4.0


def start_broker(broker_url: str | None, port: int) -> tuple[EmbeddedBroker | None, str]:
    """The embedded broker on `port` unless a broker url is given."""
    if broker_url is not None:
        return None, broker_url
    broker = EmbeddedBroker(port=port)
    broker.start()
    return broker, broker.url


def start_floor(
    seats: int = 12,
    site: str = "demo",
    broker_url: str | None = None,
    port: int = 0,
    broker: EmbeddedBroker | None = None,
) -> Floor:
    if broker_url is None:
        broker, broker_url = start_broker(None, port)
    now = datetime.now().astimezone()
    profile = demo_profile(now)
    files = sorted(DEMO_SCENARIOS.glob("*.toml"))
    if not files:
        raise FileNotFoundError(f"no demo scenarios in {DEMO_SCENARIOS}")
    runtimes, threads = [], []
    # Each seat's outbox lives in a scratch directory that goes with the demo.
    workdir = tempfile.TemporaryDirectory(prefix="seatbox-demo-")
    for index in range(seats):
        scenario = load_scenario(files[index % len(files)])
        seat_id = seat_ids(seats)[index]
        raw: dict[str, Any] = read_toml(Path(scenario.path))
        raw["seat"].update(site=site, id=seat_id)
        scenario = scenario_from_dict(raw, scenario.path)
        # Seats start at different points of their loop, so the floor is varied from the start.
        runtime, _ = sim.build(
            scenario,
            fast=False,
            broker_url=broker_url,
            profile=profile,
            start=now,
            loop=True,
            delay=float((index // len(files)) * 23),
            state_dir=str(Path(workdir.name) / seat_id),
            keepalive=DEMO_KEEPALIVE_S,
        )
        thread = threading.Thread(target=runtime.run, name=f"seat-{seat_id}", daemon=True)
        runtimes.append(runtime)
        threads.append(thread)
    for thread in threads:
        thread.start()
    return Floor(broker=broker, url=broker_url, runtimes=runtimes, threads=threads, workdir=workdir)


# How long `--no-view` waits past `--duration` for seats that have not shown their state yet.
LATE_SEATS_S = 10.0


def _every_seat_seen(floor_view: FloorView, seats: int) -> bool:
    with floor_view.lock:
        return sum(1 for v in floor_view.model.seats.values() if v.state) >= seats


def _unseen(floor_view: FloorView, floor: Floor) -> list[str]:
    with floor_view.lock:
        seen = {v.seat for v in floor_view.model.seats.values() if v.state}
    return [r.config.seat.id for r in floor.runtimes if r.config.seat.id not in seen]


def _show(floor_view: FloorView, stop: threading.Event, footer: str) -> None:
    """The live terminal view (FloorView.show), with the web floor's address under it: the
    twelve tiles push the lines printed before them off a small terminal."""
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    def frame() -> Group:
        with floor_view.lock:
            return Group(render(floor_view.model), Text(footer, style="bold"))

    with Live(frame(), refresh_per_second=4, screen=False) as live:
        while not stop.wait(0.5):
            live.update(frame())


def _start_web_floor(
    seats: int, url: str, embedded: bool, http: tuple[str, int]
) -> demo_floor.WebFloor | None:
    """The floor service on the demo's broker, answering HTTP; None (said in one line) when
    the `[floor]` extra is missing or the service does not come up: the demo goes on without."""
    missing = demo_floor.missing_floor_extra()
    if missing is not None:
        print(
            f"seatbox demo: no web floor: the [floor] extra is not installed ({missing} is "
            "missing; pip install 'seatbox[floor]'); the terminal view runs without it",
            flush=True,
        )
        return None
    host, port = http
    port, note = demo_floor.free_listen(host, port)
    if note:
        print(f"seatbox demo: {note}", flush=True)
    web = demo_floor.start_web_floor(seat_ids(seats), url, embedded, host, port)
    problem = web.wait_ready()
    if problem is not None:
        print(f"seatbox demo: the web floor did not start: {problem}", flush=True)
        web.stop()
        return None
    return web


def run_demo(
    seats: int,
    duration: float | None,
    view: bool,
    broker_url: str | None,
    port: int,
    http: tuple[str, int] | None = None,
) -> int:
    """`http` None: no web floor (`--no-floor`)."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM ends the demo as Ctrl-C does: seats, floor service and broker stop.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker, url = start_broker(broker_url, port)
    web: demo_floor.WebFloor | None = None
    floor: Floor | None = None
    floor_view: FloorView | None = None
    try:
        # The floor service subscribes before any seat starts (as the terminal view does).
        if http is not None:
            web = _start_web_floor(seats, url, broker is not None, http)
        # The view subscribes before any seat starts, so it sees every seat's first publish
        # itself rather than relying on the broker's retained copy arriving in time.
        floor_view = FloorView(BrokerSection(url=url), site="demo")
        floor_view.start()
        if not floor_view.subscribed.wait(LATE_SEATS_S):
            log.warning("demo: the floor view is not subscribed yet; starting the seats anyway")
        floor = start_floor(seats=seats, broker_url=url, broker=broker)
        if web is not None:
            print("\n".join(web.banner()), flush=True)
        print(f"seatbox demo: {seats} seats on {floor.url}; Ctrl-C to stop", flush=True)
        if view:
            if duration is not None:
                timer = threading.Timer(duration, stop.set)
                timer.daemon = True  # Ctrl-C before the duration does not wait for it
                timer.start()
            if web is not None:
                supervisor = web.logins[0]
                _show(
                    floor_view,
                    stop,
                    f"web floor: {web.url}  login {supervisor.user} / {supervisor.password}"
                    "  (Ctrl-C to stop)",
                )
            else:
                floor_view.show(stop)
        else:
            stop.wait(duration)
            # On a loaded machine a seat may connect late: the one printed floor waits (at most
            # LATE_SEATS_S more) until every seat has shown its state.
            deadline = time.monotonic() + LATE_SEATS_S
            while time.monotonic() < deadline and not _every_seat_seen(floor_view, seats):
                stop.wait(0.1)
            missing = _unseen(floor_view, floor)
            if missing:
                log.warning("demo: no state yet from %s", ", ".join(missing))
            from rich.console import Console

            with floor_view.lock:
                Console(width=110).print(render(floor_view.model))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if floor_view is not None:
            floor_view.stop()
        if web is not None:
            web.stop()  # before the broker: the service's last words are not reconnects
        if floor is not None:
            floor.stop()  # the seats, then the broker
        elif broker is not None:
            broker.stop()
    print("seatbox demo: stopped", flush=True)
    return 0
