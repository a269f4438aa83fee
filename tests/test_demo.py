"""`seatbox demo` brings up a floor: every seat publishes over the embedded broker and the
floor view (a real MQTT subscriber) shows them; the floor service answers at the printed URL
with the printed logins; it ends cleanly by itself, on SIGTERM, and without the [floor] extra."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from edge.shell.mqtt.embedded import EmbeddedBroker

REPO = Path(__file__).parent.parent
DEMO = [sys.executable, "-m", "edge.cli", "demo", "--no-view"]
SIX = ["A-01", "A-02", "A-03", "A-04", "A-05", "A-06"]


def test_demo_floor_shows_every_seat_and_stops_cleanly() -> None:
    result = subprocess.run(
        [*DEMO, "--duration", "8", "--seats", "6", "--no-floor"],
        capture_output=True, text=True, timeout=90, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "seats 6" in out
    for seat in SIX:
        assert seat in out
    assert "seatbox demo: stopped" in out
    assert "Traceback" not in result.stderr
    # amqtt's subscription table changed under a connecting seat (fixed in embedded.py).
    assert "dictionary changed size" not in result.stderr
    # --no-floor: no floor service, so no URL and no login to print.
    assert "http://" not in out and "login" not in out


class Lines:
    """A child's stdout, line by line, waited on with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self._queue.put(line)
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if match := re.search(pattern, line):
                return match
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")

    def rest(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)


def _floor(client: httpx.Client) -> dict[str, object]:
    response = client.get("/api/v1/floor")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_demo_web_floor_answers_at_the_printed_url_with_the_printed_logins() -> None:
    # The default port is taken (as by another service): the demo says so and uses a free one.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    proc = subprocess.Popen(
        [*DEMO, "--seats", "6", "--duration", "120", "--http", f"127.0.0.1:{taken}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        lines = Lines(proc)
        moved = lines.until(r"127\.0\.0\.1:(\d+) is in use; the web floor listens on", 60)
        assert int(moved.group(1)) == taken
        url = lines.until(r"web floor at (http://127\.0\.0\.1:(\d+)/)", 60)
        assert int(url.group(2)) != taken
        supervisor = lines.until(r"login (supervisor) / (\S+)", 5)
        wallboard = lines.until(r"login (wallboard) / (\S+)", 5)
        folder = Path(lines.until(r"files: (\S+) \(", 5).group(1))
        lines.until(r"6 seats on mqtt://", 30)
        assert folder.is_dir()

        with httpx.Client(base_url=url.group(1), timeout=10) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            login = client.post(
                "/api/v1/login",
                json={"username": supervisor.group(1), "password": supervisor.group(2)},
            )
            assert login.status_code == 200, login.text
            assert login.json()["role"] == "supervisor"
            # Every demo seat is on the floor, placed by the generated layout, and online
            # through the embedded broker (the seats' first state may take a few seconds).
            deadline = time.monotonic() + 30
            while True:
                floor = _floor(client)
                seats = {s["seat"]: s for s in floor["seats"]}  # type: ignore[attr-defined]
                if sorted(seats) == SIX and all(s["online"] for s in seats.values()):
                    break
                assert time.monotonic() < deadline, f"the floor lists {floor}"
                time.sleep(0.3)
            assert floor["site"] == "demo"
            assert all(s["in_layout"] and s["team"] == "north" for s in seats.values())
            assert all(s["x"] is not None and s["y"] is not None for s in seats.values())
            assert {s["level"] for s in seats.values()} <= {"ok", "warn", "violation", "fault"}

        with httpx.Client(base_url=url.group(1), timeout=10) as client:
            login = client.post(
                "/api/v1/login",
                json={"username": wallboard.group(1), "password": wallboard.group(2)},
            )
            assert login.status_code == 200, login.text
            board = _floor(client)
            assert board["seats"] == []  # aggregates only
            assert [t["team"] for t in board["teams"]] == ["north"]  # type: ignore[attr-defined]
            assert board["teams"][0]["seats"] == 6  # type: ignore[index]

        # SIGTERM stops the seats, the floor service and the broker; the floor is printed.
        proc.send_signal(signal.SIGTERM)
        out = lines.rest(40)
        assert proc.wait(40) == 0
        assert "seatbox demo: stopped" in out
        assert "seats 6" in out
        try:
            httpx.get(url.group(1), timeout=2)
            raise AssertionError("the floor service still answers after the demo stopped")
        except httpx.TransportError:
            pass
        assert not folder.exists()
        assert proc.stderr is not None
        errors = proc.stderr.read()
        assert "Traceback" not in errors
        assert "dictionary changed size" not in errors
    finally:
        busy.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_demo_without_the_floor_extra_says_so_in_one_line(tmp_path: Path) -> None:
    # An interpreter where fastapi cannot be imported, as without `pip install seatbox[floor]`.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoFastapi:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'fastapi':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _NoFastapi())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [*DEMO, "--duration", "2", "--seats", "2"],
        capture_output=True, text=True, timeout=90, cwd=REPO, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if "[floor] extra" in line]
    assert said == [
        "seatbox demo: no web floor: the [floor] extra is not installed (fastapi is missing; "
        "pip install 'seatbox[floor]'); the terminal view runs without it"
    ]
    assert "http://" not in result.stdout
    assert "A-01" in result.stdout and "A-02" in result.stdout
    assert "seatbox demo: stopped" in result.stdout
    assert "Traceback" not in result.stderr


def test_embedded_broker_keeps_a_named_clients_session_and_its_qos1_messages() -> None:
    """The floor service's persistent session on the demo's broker (amqtt): QoS 1 events sent
    while it is away (a restart, a crash) arrive when it is back."""
    broker = EmbeddedBroker(port=0)
    broker.start()
    got: queue.Queue[tuple[str, bool]] = queue.Queue()

    def floor_client() -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="seatbox-floor-demo", clean_session=False
        )
        client.username_pw_set("seatbox-floor")
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, p: object) -> None:
            got.put(("session_present", bool(getattr(flags, "session_present", False))))
            c.subscribe("seatbox/v1/demo/+/event", qos=1)

        client.on_connect = on_connect
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = lambda c, u, m: got.put((m.payload.decode(), m.qos == 1))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert subscribed.wait(10)
        return client

    seat = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seat-A-01")  # anonymous
    try:
        floor = floor_client()
        assert got.get(timeout=5) == ("session_present", False)
        seat.connect("127.0.0.1", broker.port)
        seat.loop_start()
        seat.publish("seatbox/v1/demo/A-01/event", "1", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == ("1", True)
        floor.disconnect()
        floor.loop_stop()
        for n in ("2", "3"):
            seat.publish("seatbox/v1/demo/A-01/event", n, qos=1).wait_for_publish(5)
        floor = floor_client()
        assert got.get(timeout=5) == ("session_present", True)
        assert [got.get(timeout=5), got.get(timeout=5)] == [("2", True), ("3", True)]
        floor.disconnect()
        floor.loop_stop()
    finally:
        seat.loop_stop()
        broker.stop()
