"""`seatbox run` with an LD2410 on a serial line, seen from the site broker end to end.

Three real processes: the LD2410 emulator program on a pseudo-terminal (SIGUSR2: the agent
leaves / returns; SIGUSR1: the module goes quiet / talks again), `seatbox run` with a config
naming that port, and a Mosquitto of the test's own. The test is a subscriber on the seat's
topic tree. Short profile durations make the away norm fire in seconds; the shift is placed
around the current time so the norm is active.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from support import Mosquitto, wait_until

REPO = Path(__file__).parent.parent
SITE, SEAT = "itest", "seat-radar"
BASE = f"seatbox/v1/{SITE}/{SEAT}"
WAIT = 15.0  # generous: two CPUs shared by a whole team


class Subscriber:
    """Everything the seat publishes under its base topic: events in order, the latest state."""

    def __init__(self, url_port: int, client_id: str = "itest-subscriber") -> None:
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.availability = ""
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{BASE}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber could not subscribe"

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic == f"{BASE}/event":
                self.events.append(json.loads(msg.payload))
            elif msg.topic == f"{BASE}/state":
                self.state = json.loads(msg.payload)
            elif msg.topic == f"{BASE}/availability":
                self.availability = msg.payload.decode()

    def types(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [e["type"] for e in self.events if e["type"].startswith(prefix)]

    def last(self, kind: str) -> dict[str, Any]:
        with self._lock:
            return [e for e in self.events if e["type"] == kind][-1]

    def current(self) -> dict[str, Any]:
        with self._lock:
            return self.state

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def working_zone() -> tuple[str, datetime]:
    """A time zone whose clock is well inside a day now, so a shift fits around it."""
    for name in ("UTC", "Etc/GMT+8", "Etc/GMT-8"):
        now = datetime.now(ZoneInfo(name))
        if 1 <= now.hour < 22:
            return name, now
    raise AssertionError("no zone with a mid-day clock")  # cannot happen: they are 8 h apart


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def write_config(tmp: Path, broker_port: int, port: Path) -> Path:
    zone, now = working_zone()
    profile = tmp / "itest-profile.toml"
    profile.write_text(
        f"""\
extends = "default"
name = "itest"

[presence]
away_after = "0.5s"

[away]
long_after = "1s"
too_long_after = "2s"

[attendance]
start = "{hhmm(now - timedelta(minutes=30))}"
end = "{hhmm(now + timedelta(minutes=60))}"
lunch_start = "{hhmm(now + timedelta(minutes=40))}"
lunch_end = "{hhmm(now + timedelta(minutes=50))}"
workdays = [1, 2, 3, 4, 5, 6, 7]
"""
    )
    config = tmp / "seat.toml"
    config.write_text(
        f"""\
[seat]
site = "{SITE}"
id = "{SEAT}"
profile = "{profile}"
timezone = "{zone}"

[broker]
url = "mqtt://127.0.0.1:{broker_port}"

[headset]
device = "virtual"

[audio]
backend = "none"

[radar]
backend = "ld2410"
port = "{port}"
watchdog = "1s"
report_interval = "0.2s"

[call]
sources = ["cti"]

[storage]
state_dir = "{tmp}"
"""
    )
    return config


def stop(proc: subprocess.Popen[Any]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(5)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    link = tmp_path / "seatbox-radar"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drivers.radar.ld2410_emulator",
            "--pty",
            str(link),
            "--period",
            "0.05",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once the pty is linked and the handlers are set
    assert line.startswith("emulator: LD2410 on /dev/pts/"), line
    yield proc, link
    stop(proc)


def test_presence_away_norm_and_radar_loss_through_seatbox_run(
    tmp_path: Path, broker: Mosquitto, emulator: tuple[subprocess.Popen[str], Path]
) -> None:
    module, link = emulator
    config = write_config(tmp_path, broker.port, link)
    watcher = Subscriber(broker.port)
    log = (tmp_path / "seatbox.log").open("w")
    seat = subprocess.Popen(
        [str(Path(sys.executable).parent / "seatbox"), "run", str(config)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def state(part: str) -> Any:
        return watcher.current().get(part, {})

    try:
        # The module streams a still target: the seat is present, the radar healthy.
        wait_until(lambda: state("presence").get("state") == "present", WAIT, "present")
        assert state("radar")["ok"] is True and state("radar")["target"] == "still"
        assert watcher.current()["shift"]["phase"] == "on"
        assert watcher.availability == "online"
        late = Subscriber(broker.port, "itest-late")  # a late subscriber is current at once
        try:
            wait_until(lambda: late.current().get("presence"), WAIT, "retained state")
            assert late.current()["presence"]["state"] == "present"
        finally:
            late.stop()

        module.send_signal(signal.SIGUSR2)  # the agent leaves: target none
        wait_until(lambda: "away.too_long" in watcher.types(), WAIT, "away.too_long")
        assert [t for t in watcher.types() if t.startswith(("presence.", "away."))] == [
            "presence.present",
            "presence.away",
            "away.long",
            "away.too_long",
        ]
        assert watcher.last("away.too_long")["data"]["away_s"] >= 2.0
        wait_until(
            lambda: (
                [v["type"] for v in state("violations")] == ["away.long", "away.too_long"]
                if isinstance(state("violations"), list)
                else False
            ),
            WAIT,
            "violations in the state",
        )
        assert state("presence")["state"] == "away" and state("radar")["target"] == "none"

        module.send_signal(signal.SIGUSR2)  # back at the desk
        wait_until(lambda: watcher.types("presence.")[-1:] == ["presence.present"], WAIT, "back")
        assert watcher.last("presence.present")["data"]["away_s"] >= 2.0
        wait_until(lambda: state("violations") == [], WAIT, "violations cleared")

        module.send_signal(signal.SIGUSR1)  # the module goes quiet
        wait_until(lambda: "radar.lost" in watcher.types(), WAIT, "radar.lost")
        assert "no valid frame" in watcher.last("radar.lost")["data"]["detail"]
        wait_until(lambda: state("radar").get("ok") is False, WAIT, "state.radar.ok false")

        module.send_signal(signal.SIGUSR1)  # and talks again
        wait_until(lambda: "radar.restored" in watcher.types(), WAIT, "radar.restored")
        wait_until(lambda: state("radar").get("ok") is True, WAIT, "state.radar.ok true")
        assert watcher.types("radar.") == ["radar.lost", "radar.restored"]
        # Every event of this boot, numbered without a gap.
        seqs = [e["seq"] for e in watcher.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        code = stop(seat)
        watcher.stop()
        log.close()
    assert code == 0, (tmp_path / "seatbox.log").read_text()
