"""The floor service as the HTTP tests meet it: `seatbox floor serve` started on a free port
with a layout, a roster and accounts made by the CLI; seats publishing on the site broker.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from payload_samples import valid_state
from support import Mosquitto, free_port, port_open, wait_until

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "config" / "scenarios"
TZ = "Europe/Berlin"
PASSWORD = "correct horse battery"
LAYOUT = """
[teams]
A = { name = "Team A" }
B = { name = "Team B" }

[seats]
A-01 = { team = "A", label = "A1", x = 0, y = 0 }
A-02 = { team = "A", label = "A2", x = 1, y = 0 }
A-03 = { team = "A", x = 2, y = 0 }
B-01 = { team = "B", x = 0, y = 2 }
"""
USERS = [  # name, role, extra CLI arguments
    ("sup-a", "supervisor", ["--team", "A"]),
    ("sup-b", "supervisor", ["--team", "B"]),
    ("boss", "manager", []),
    ("wall", "wallboard", []),
    ("agent-a1", "agent", ["--seat", "A-01"]),
    ("victim", "manager", []),
]


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    return [*base, "--log-level", "INFO", *args]


def today() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo(TZ)).date().isoformat()


def state(seat: str, call: str = "idle", presence: str = "present", **parts: Any) -> bytes:
    """A valid retained `state` of site lab (docs/schemas/state.json)."""
    payload = copy.deepcopy(valid_state(seat))
    payload["site"] = "lab"
    payload["call"]["state"] = call
    payload["call"]["since"] = datetime.now(UTC).isoformat(timespec="milliseconds")[:23] + "Z"
    payload["presence"]["state"] = presence
    payload["violations"] = []
    payload.update(parts)
    return json.dumps(payload).encode()


def event(seq: int, kind: str, data: dict[str, Any], boot: str = "5-0a0b0c0d") -> bytes:
    """A seat's event of today (its own wall clock, the site's offset)."""
    ts = datetime.now(ZoneInfo(TZ)).isoformat(timespec="milliseconds")
    return json.dumps({"boot_id": boot, "seq": seq, "ts": ts, "type": kind, "data": data}).encode()


RINGING = {"source": "host", "call": 1, "call_id": None}


@dataclass
class Floor:
    """A running `seatbox floor serve` and what the tests need to reach it."""

    url: str
    config: Path
    proc: subprocess.Popen[str]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def login(self, name: str, **headers: str) -> contextlib.closing[httpx.Client]:
        client = self.client()
        answer = client.post(
            "/api/v1/login", json={"username": name, "password": PASSWORD}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf"]
        return contextlib.closing(client)

    def bearer(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def write_config(folder: Path, broker: Mosquitto, store_url: str = "", **privacy: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "layout.toml").write_text(LAYOUT)
    (folder / "roster.csv").write_text(f"date,seat,agent,team\n{today()},A-01,agent-a1,\n")
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in privacy.items())
    config = folder / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "{broker.url}"\nclient_id = "floor-{folder.name}"\n'
        f'[site]\nid = "lab"\ntimezone = "{TZ}"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[store]\ndir = "state"\nurl = "{store_url}"\n'
        '[layout]\nfile = "layout.toml"\n[roster]\nfile = "roster.csv"\n'
        f"[privacy]\n{lines}\n"
    )
    return config


def add_users(config: Path, users: list[tuple[str, str, list[str]]]) -> None:
    """Accounts straight into the accounts file (the CLI's own code path, without a process
    per user: `add_accounts` runs the CLI itself)."""
    from floor.accounts import Accounts

    accounts = Accounts(config.parent / "state" / "accounts.sqlite")
    try:
        for name, role, extra in users:
            teams = [extra[i + 1] for i, arg in enumerate(extra) if arg == "--team"]
            seat = extra[extra.index("--seat") + 1] if "--seat" in extra else None
            accounts.add_user(name, role, PASSWORD, teams, seat)
    finally:
        accounts.close()


def add_token(config: Path, name: str, role: str) -> str:
    """`seatbox floor token add`: the token is alone on the last line."""
    run = subprocess.run(
        seatbox("floor", "token", "add", name, "--role", role, "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()[-1]


def add_accounts(config: Path) -> dict[str, str]:
    """USERS (the first two with `seatbox floor user add --password-file`) and two tokens."""
    password = config.parent / "password"
    password.write_text(PASSWORD + "\n")
    for name, role, extra in USERS[:2]:
        run = subprocess.run(
            seatbox("floor", "user", "add", name, "--role", role, *extra)
            + ["--password-file", str(password), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
    add_users(config, USERS[2:])
    return {"bi": add_token(config, "bi", "manager"), "tv": add_token(config, "tv", "wallboard")}


def start(config: Path) -> Floor:
    port = int(config.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
    log = config.parent / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            seatbox("floor", "serve", "--config", str(config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
    floor = Floor(f"http://127.0.0.1:{port}", config, proc, log)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 20, "the floor service")
        assert proc.poll() is None, log.read_text()
        # Subscribed, not only connected: an event published before the broker has the
        # service's subscription is not the service's (events are not retained).
        wait_until(lambda: "subscribed to site" in log.read_text(), 10, "the ingest's subscription")
    except BaseException:
        floor.stop()
        raise
    return floor


class Seats:
    """Seats publishing on the site broker (a test publisher speaking the v1 topic tree)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, seat: str, leaf: str, payload: bytes) -> None:
        topic = f"seatbox/v1/lab/{seat}/{leaf}"
        self.client.publish(topic, payload, qos=1, retain=leaf != "event").wait_for_publish(5)

    def online(self, seat: str, **kwargs: Any) -> None:
        self.send(seat, "availability", b"online")
        self.send(seat, "state", state(seat, **kwargs))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
