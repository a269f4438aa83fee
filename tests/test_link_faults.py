"""Issue 12, faults 1-4: single MQTT messages that took a seat offline for good, resend floods,
and a command whose event left a silent gap. Against the real `seatbox run` process and a real
Mosquitto, seen as the floor service sees it: retained availability, replies, events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import mosquitto, wait_until
from test_e2e_mqtt import REPO, seatbox_command
from test_notify import NotifySocket

from edge.api.broker import BrokerSection
from edge.core.clock import Clock
from edge.core.effects import Event
from edge.core.inputs import Tick
from edge.shell.config import (
    AudioSection,
    CallSection,
    HeadsetSection,
    RadarSection,
    SeatConfig,
    SeatSection,
    StorageSection,
    load_profile,
)
from edge.shell.mqtt.commands import Command
from edge.shell.mqtt.link import SeatLink
from edge.shell.notify import CoreWatchdog, Notifier
from edge.shell.outbox.store import EventDataError, Outbox
from edge.shell.runtime import Devices
from edge.shell.wiring import build_seat

SITE, SEAT = "hq", "s01"
BASE = f"seatbox/v1/{SITE}/{SEAT}"


class SeatProcess:
    """`seatbox run` with virtual devices, call state from `cmd/call`, an outbox in state_dir."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.state_dir = workdir / "state"
        self.config = workdir / "seat.toml"
        self.config.write_text(
            f'[seat]\nsite = "{SITE}"\nid = "{SEAT}"\nprofile = "default"\n\n'
            f'[broker]\nurl = "{url}"\nkeepalive = "1s"\n\n'
            '[headset]\ndevice = "virtual"\n\n[audio]\nbackend = "none"\n\n'
            '[radar]\nbackend = "none"\n\n[call]\nsources = ["cti"]\n\n'
            f'[storage]\nstate_dir = "{self.state_dir}"\n'
        )
        self.log_path = workdir / "seat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"

    def start(self) -> SeatProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*seatbox_command(), "run", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self, timeout: float) -> int:
        """SIGTERM as systemd sends it; the exit code, or a failure if it did not exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"seat ignored SIGTERM for {timeout} s:\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Floor:
    """The floor service's view of one seat: its topics, commands sent and replies read."""

    def __init__(self, url: str) -> None:
        self.messages: list[tuple[str, bytes, float]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"{BASE}/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(subscribed.is_set, 10, "SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic[len(BASE) + 1 :], bytes(msg.payload), time.monotonic()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, name: str, payload: bytes) -> None:
        self.client.publish(f"{BASE}/cmd/{name}", payload, qos=1)

    def of(self, leaf: str) -> list[tuple[bytes, float]]:
        with self._lock:
            return [(p, at) for t, p, at in self.messages if t == leaf]

    def availability(self) -> str | None:
        seen = self.of("availability")
        return seen[-1][0].decode() if seen else None

    def replies(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p, _ in self.of(f"cmd/{name}/reply")]

    def reply(
        self, name: str, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found[:] = [r for r in self.replies(name) if match(r)]
            return bool(found)

        wait_until(arrived, timeout, f"a reply on cmd/{name}/reply")
        return found[0]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p, _ in self.of("event")]

    def answers(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Proof of life: a valid `cmd/identify` is answered."""
        self.send("identify", json.dumps({"id": request_id}).encode())
        return self.reply("identify", lambda r: r["id"] == request_id, timeout)

    def answers_again(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Proof of life after a reconnect: a command sent before the seat's new subscription
        reached the broker is dropped by MQTT (no subscriber), as on any broker, so ask again
        each second until one is answered."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.answers(f"{request_id}-{attempt}", timeout=1.0)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise


@pytest.fixture
def seat(tmp_path: Path) -> Iterator[tuple[SeatProcess, Floor]]:
    """A broker of the test's own, so no earlier seat's retained `online` or will can mislead."""
    with mosquitto(tmp_path) as broker:
        floor = Floor(broker.url)
        seat = SeatProcess(broker.url, tmp_path)
        try:
            yield seat, floor
        finally:
            seat.kill()
            floor.close()


def started(seat: SeatProcess, floor: Floor) -> None:
    seat.start()
    wait_until(lambda: floor.availability() == "online", 20, "the seat online")
    floor.answers("first")


def assert_online_and_answering(seat: SeatProcess, floor: Floor, request_id: str) -> None:
    assert seat.proc is not None and seat.proc.poll() is None, seat.log()
    # keepalive is 1 s: a dead network thread shows as the will (`offline`) within 1.5 s.
    reply = floor.answers(request_id, timeout=8)
    assert reply == {"id": request_id, "ok": True}
    assert floor.availability() == "online"


# --- fault 1: no message stops the link ----------------------------------------------------------


def test_lone_surrogate_id_on_rebirth_is_refused_and_the_seat_stays_online(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    floor.send("rebirth", b'{"id":"\\ud800"}')  # 15 bytes: a valid JSON escape, no valid text
    reply = floor.reply("rebirth", lambda r: not r["ok"])
    assert reply["id"] == ""  # it cannot be echoed
    assert reply["error"].startswith("id: expected")
    assert "surrogate" in reply["error"]
    assert_online_and_answering(proc, floor, "after-surrogate")


def test_json_nested_1000_deep_is_refused_and_the_seat_stays_online(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    deep = b'{"id":"n1","action":' + b"[" * 1000 + b"]" * 1000 + b"}"
    floor.send("call", deep)
    reply = floor.reply("call", lambda r: not r["ok"])
    assert reply["error"].startswith("payload: expected JSON nested at most")
    assert_online_and_answering(proc, floor, "after-deep")


def test_resend_with_from_seq_2_63_is_refused_and_the_seat_stays_online(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    boot = json.loads(floor.of("info")[-1][0])["boot_id"]
    big = 2**63
    floor.send(
        "resend",
        f'{{"id":"r63","boot_id":"{boot}","from_seq":{big},"to_seq":{big}}}'.encode(),
    )
    reply = floor.reply("resend", lambda r: r["id"] == "r63")
    assert reply["ok"] is False
    assert reply["error"].startswith("from_seq: expected an integer from 0 to ")
    assert_online_and_answering(proc, floor, "after-2-63")


def test_malformed_commands_of_every_kind_are_answered_and_the_seat_stays_online(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    bad: list[tuple[str, bytes]] = [
        ("call", b'{"id":"c1","action":"ring","call_id":"\\udfff"}'),
        ("resend", b'{"id":"b1","boot_id":"\\ud800","from_seq":0,"to_seq":1}'),
        ("resend", b'{"id":"b2","boot_id":"1-zz","from_seq":0,"to_seq":1}'),
        ("call", b'{"id":"x1","action":"ring","n":' + b"9" * 5000 + b"}"),  # > 4300 digits
        ("call", b'{"id":"x2","a":"' + b"x" * 70000 + b'"}'),
        ("identify", b'{"id":"\\ud83d\\ude00ok"}'),  # a valid surrogate pair is fine
        ("call", b'{"id":"x3","action":"ring","\\ud800":1}'),  # an unknown key is ignored
    ]
    for name, payload in bad:
        floor.send(name, payload)
    # Every one is answered on its command's reply topic (identify: "first" and this one).
    for name, count in (("call", 4), ("resend", 2), ("identify", 2)):
        wait_until(lambda n=name, c=count: len(floor.replies(n)) >= c, 10, f"replies on {name}")
    replies = {r["id"]: r for name in ("call", "resend", "identify") for r in floor.replies(name)}
    assert replies["c1"]["error"].startswith("call_id: expected")
    assert replies["b1"]["error"].startswith("boot_id: expected")
    assert replies["b2"]["error"].startswith("boot_id: expected")
    assert replies["\U0001f600ok"] == {"id": "\U0001f600ok", "ok": True}
    assert replies["x3"]["ok"] is True
    errors = [r["error"] for r in floor.replies("call") if r["id"] == ""]
    assert len(errors) == 2 and all(e.startswith("payload: expected") for e in errors)
    assert any(e.startswith("payload: expected at most") for e in errors)
    assert_online_and_answering(proc, floor, "after-malformed")


# --- fault 2: a huge resend range ----------------------------------------------------------------


def test_resend_of_10_to_the_12_events_is_capped_answered_at_once_and_sigterm_still_works(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    boot = json.loads(floor.of("info")[-1][0])["boot_id"]
    floor.send("call", b'{"id":"ring1","action":"ring","call_id":"c-1"}')
    wait_until(lambda: any(e["type"] == "call.ringing" for e in floor.events()), 10, "ringing")
    held = max(e["seq"] for e in floor.events() if e["boot_id"] == boot)
    payload = f'{{"id":"huge","boot_id":"{boot}","from_seq":0,"to_seq":{10**12}}}'.encode()
    assert len(payload) <= 80
    floor.send("resend", payload)
    reply = floor.reply("resend", lambda r: r["id"] == "huge")
    assert reply["ok"] is True
    # What the seat holds comes again; the rest of the first 1,000 and everything past the cap
    # is answered as missing.
    queued = reply["data"]["queued"]
    assert queued >= held + 1  # (a norm may have added an event since)
    assert reply["data"]["missing"] == [{"boot_id": boot, "from_seq": queued, "to_seq": 10**12}]
    assert_online_and_answering(proc, floor, "after-huge")
    for n in range(20):  # a flood of them changes nothing
        floor.send("resend", payload.replace(b"huge", f"h{n}".encode()))
    floor.reply("resend", lambda r: r["id"] == "h19")
    assert_online_and_answering(proc, floor, "after-huge-flood")
    assert proc.terminate(timeout=10) == 0


# --- fault 3: resend floods are bounded and live events go first ---------------------------------


def test_300_resends_of_1000_events_stay_bounded_and_a_new_ring_goes_out_first(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    # An earlier boot's 20,000 events, all acknowledged (kept for resends), as after a busy day.
    proc.state_dir.mkdir()
    old = Outbox(proc.outbox_path(), f"{BASE}/event")
    entries = old.add_events(
        [("call.ringing", {"call": n, "pad": "x" * 200}, None) for n in range(20000)]
    )
    old.ack(e.id for e in entries)
    old.close()
    started(proc, floor)
    before = proc.rss_kb()
    boot = entries[0].boot_id
    for n in range(300):
        first = (n % 20) * 1000
        floor.send(
            "resend",
            json.dumps(
                {"id": f"f{n}", "boot_id": boot, "from_seq": first, "to_seq": first + 999}
            ).encode(),
        )
    wait_until(lambda: len(floor.replies("resend")) == 300, 30, "300 resend replies")
    replies = {r["id"]: r for r in floor.replies("resend")}
    accepted = [r for r in replies.values() if r["ok"]]
    refused = [r for r in replies.values() if not r["ok"]]
    assert all(r["data"]["queued"] == 1000 and r["data"]["missing"] == [] for r in accepted)
    assert refused and all("ask again later" in r["error"] for r in refused)
    assert proc.rss_kb() - before < 20_000  # kB: ranges are queued, not 300,000 copies

    # A live event overtakes every queued resend.
    copies_before = len(floor.of("event"))
    floor.send("call", b'{"id":"live","action":"ring","call_id":"c-live"}')
    floor.reply("call", lambda r: r["id"] == "live")
    wait_until(
        lambda: any(e["data"].get("call_id") == "c-live" for e in floor.events()),
        5,
        "the live call.ringing",
    )
    events = floor.events()
    live_at = next(i for i, e in enumerate(events) if e["data"].get("call_id") == "c-live")
    assert live_at - copies_before < 500  # ahead of thousands of queued copies
    wait_until(lambda: len(floor.of("event")) > live_at + 100, 10, "resends after the live one")
    assert_online_and_answering(proc, floor, "after-flood")
    assert proc.terminate(timeout=10) == 0


# --- fault 4: no silent gap ----------------------------------------------------------------------


def test_call_id_lone_surrogate_is_refused_and_event_numbering_stays_continuous(
    seat: tuple[SeatProcess, Floor],
) -> None:
    proc, floor = seat
    started(proc, floor)
    boot = json.loads(floor.of("info")[-1][0])["boot_id"]
    floor.send("call", b'{"id":"bad","action":"ring","call_id":"\\ud800"}')
    reply = floor.reply("call", lambda r: r["id"] == "bad")
    assert reply["ok"] is False and reply["error"].startswith("call_id: expected")
    for n, action in enumerate(("ring", "answer", "end")):
        floor.send(
            "call", json.dumps({"id": f"ok{n}", "action": action, "call_id": "c-2"}).encode()
        )
        assert floor.reply("call", lambda r, n=n: r["id"] == f"ok{n}")["ok"] is True
    wait_until(lambda: any(e["type"] == "call.ended" for e in floor.events()), 10, "call.ended")
    ours = [e for e in floor.events() if e["boot_id"] == boot]
    assert [e["seq"] for e in ours] == list(range(len(ours)))
    ringing = [e for e in ours if e["type"] == "call.ringing"]
    assert [e["data"]["call_id"] for e in ringing] == ["c-2"]


# --- a link that dies anyway is noticed ----------------------------------------------------------


class KillThread(SystemExit):
    """Raised in paho's network thread: it passes every `except Exception` and ends the thread,
    as any error escaping paho's loop would (SystemExit: without a traceback on stderr)."""


# The thread's end is what these tests cause; pytest reports it as unhandled.
EXPECTED_THREAD_DEATH = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)


def killing_on(request_id: str, handle: Callable[[Command], None]) -> Callable[[Command], None]:
    def on_command(command: Command) -> None:
        if command.request_id == request_id:
            raise KillThread()
        handle(command)

    return on_command


def seat_config(url: str, tmp_path: Path) -> SeatConfig:
    return SeatConfig(
        seat=SeatSection(site=SITE, id=SEAT),
        broker=BrokerSection(url=url, keepalive=1.0),
        headset=HeadsetSection(device="none"),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
        call=CallSection(sources=["cti"]),
        storage=StorageSection(state_dir=str(tmp_path / "state")),
    )


@EXPECTED_THREAD_DEATH
def test_a_killed_network_thread_is_restarted_and_the_seat_is_back_online(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mosquitto(tmp_path) as broker:
        floor = Floor(broker.url)
        config = seat_config(broker.url, tmp_path)
        runtime = build_seat(
            config,
            load_profile("default"),
            devices=Devices(),
            clock=Clock(),
            broker_url=broker.url,
            state_dir=config.storage.state_dir,
        )
        link = runtime.link
        assert link is not None
        link.on_command = killing_on("die", link.on_command)
        thread = threading.Thread(target=runtime.run, name="seat", daemon=True)
        thread.start()
        try:
            wait_until(lambda: floor.availability() == "online", 10, "the seat online")
            floor.answers("first")
            floor.send("identify", b'{"id":"die"}')
            wait_until(lambda: link.restarts == 1, 10, "the link started again")
            assert "the MQTT network thread stopped" in caplog.text
            assert floor.answers_again("after-restart")["ok"] is True
            wait_until(lambda: floor.availability() == "online", 10, "the seat online again")
        finally:
            runtime.stop()
            runtime.sink(Tick())
            thread.join(10)
            floor.close()
        assert not thread.is_alive()


@EXPECTED_THREAD_DEATH
def test_a_dead_network_thread_withholds_the_systemd_watchdog_until_the_link_runs_again(
    tmp_path: Path,
) -> None:
    listener = NotifySocket(str(tmp_path / "notify.sock"))
    with mosquitto(tmp_path) as broker:
        floor = Floor(broker.url)
        link: SeatLink | None = None

        def answer(command: Command) -> None:
            assert link is not None
            link.reply(command.name, {"id": command.request_id, "ok": True})

        link = SeatLink(seat_config(broker.url, tmp_path), "1-0a0b0c0d", killing_on("die", answer))
        watchdog = CoreWatchdog(Notifier(str(tmp_path / "notify.sock")), interval_s=2.0)
        watchdog.add_check(link.problem)
        link.start()
        try:
            wait_until(lambda: floor.availability() == "online", 10, "the seat online")
            watchdog.core_alive(0.0)
            assert watchdog.tick(0.0)
            assert listener.recv() == ["WATCHDOG=1"]

            floor.send("identify", b'{"id":"die"}')
            # What the floor saw before, for good: no keepalive, so the broker sends the will.
            wait_until(lambda: floor.availability() == "offline", 10, "the will")
            watchdog.core_alive(1.0)  # the core still runs ...
            assert not watchdog.tick(1.0)  # ... yet systemd gets no ping and restarts us
            assert listener.pending() == []

            assert link.supervise()  # what the runtime does every second
            wait_until(lambda: floor.availability() == "online", 10, "the seat online again")
            assert floor.answers("back") == {"id": "back", "ok": True}
            watchdog.core_alive(2.0)
            assert watchdog.tick(2.0)
            assert listener.recv() == ["WATCHDOG=1"]
        finally:
            link.stop(flush_timeout=0.5)
            floor.close()
            listener.sock.close()


def test_an_error_inside_a_command_handler_is_answered_logged_and_the_link_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mosquitto(tmp_path) as broker:
        floor = Floor(broker.url)
        link: SeatLink | None = None

        def handle(command: Command) -> None:
            assert link is not None
            if command.request_id == "boom":
                raise RuntimeError("a bug in a handler")
            link.reply(command.name, {"id": command.request_id, "ok": True})

        link = SeatLink(seat_config(broker.url, tmp_path), "1-0a0b0c0d", handle)
        link.start()
        try:
            wait_until(lambda: floor.availability() == "online", 10, "the seat online")
            floor.send("identify", b'{"id":"boom"}')
            reply = floor.reply("identify", lambda r: r["id"] == "boom")
            assert reply == {
                "id": "boom",
                "ok": False,
                "error": "identify: failed inside the seat (see its log)",
            }
            assert "RuntimeError: a bug in a handler" in caplog.text  # with its traceback
            assert floor.answers("next") == {"id": "next", "ok": True}
            assert link.network_alive() and link.restarts == 0
        finally:
            link.stop(flush_timeout=0.5)
            floor.close()


# --- fault 4 in the outbox: refused before numbering ---------------------------------------------


def test_event_data_that_cannot_be_encoded_takes_no_seq_and_the_numbering_stays_continuous(
    tmp_path: Path,
) -> None:
    with mosquitto(tmp_path) as broker:
        floor = Floor(broker.url)
        outbox = Outbox(tmp_path / "outbox.sqlite", f"{BASE}/event")
        link = SeatLink(
            seat_config(broker.url, tmp_path), outbox.boot_id, lambda _c: None, outbox=outbox
        )
        link.start()
        try:
            ts = "2026-11-23T08:44:00.000+08:00"
            assert link.publish_event(Event(0, ts, "call.ringing", {"call": 1})) is not None
            bad = Event(0, ts, "call.ringing", {"call": 2, "call_id": "\ud800"})
            assert link.publish_event(bad) is None  # refused, logged
            with pytest.raises(EventDataError, match="call.ended"):  # a batch: none numbered
                outbox.add_events([("call.ended", {"call": 1}, ts), ("call.ended", {"x": {1}}, ts)])
            assert link.publish_event(Event(0, ts, "call.ended", {"call": 1})) is not None
            wait_until(lambda: len(floor.events()) == 2, 10, "two events")
            assert [(e["seq"], e["type"]) for e in floor.events()] == [
                (0, "call.ringing"),
                (1, "call.ended"),
            ]
        finally:
            link.stop(flush_timeout=2)
            outbox.close()
            floor.close()
