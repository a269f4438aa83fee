"""End to end over a real Mosquitto: `seatbox simulate` and `seatbox run` as a subscriber sees them.

Every message a test receives from a seat is validated against docs/schemas (tests/schema_support).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from schema_support import errors, validate
from support import Mosquitto, wait_until

from edge.shell.config import load_profile

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "config" / "scenarios"
BASE = "seatbox/v1"
# What a seat publishes (commands sent to it are ours, and some deliberately invalid).
OUTBOUND = ("availability", "state", "event", "levels", "info")


def seatbox_command() -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class Message:
    leaf: str
    payload: bytes
    retain: bool

    @property
    def value(self) -> Any:
        text = self.payload.decode("utf-8")
        return text if self.leaf == "availability" else json.loads(text)


class Subscriber:
    """A plain paho client on one seat's topic tree, validating every outbound message."""

    def __init__(self, url: str, site: str, seat: str) -> None:
        self.base = f"{BASE}/{site}/{seat}"
        self.messages: list[Message] = []
        self.invalid: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"{self.base}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, 10, f"SUBACK for {self.base}/#")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic[len(self.base) + 1 :]
        if leaf in OUTBOUND or (leaf.startswith("cmd/") and leaf.endswith("/reply")):
            problems = errors(leaf, msg.payload)
            if problems:
                self.invalid.append(f"{leaf}: {problems} in {msg.payload!r}")
        with self._lock:
            self.messages.append(Message(leaf, bytes(msg.payload), bool(msg.retain)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # --- reading what arrived ----------------------------------------------------------------

    def mark(self) -> int:
        with self._lock:
            return len(self.messages)

    def of(self, leaf: str, since: int = 0) -> list[Any]:
        with self._lock:
            return [m.value for m in self.messages[since:] if m.leaf == leaf]

    def last(self, leaf: str) -> Any:
        values = self.of(leaf)
        return values[-1] if values else None

    def wait_for(
        self, leaf: str, match: Callable[[Any], bool], since: int = 0, what: str = ""
    ) -> Any:
        found: list[Any] = []

        def seen() -> bool:
            found[:] = [v for v in self.of(leaf, since) if match(v)]
            return bool(found)

        wait_until(seen, 10, what or f"a {leaf} message")
        return found[0]

    def assert_valid(self) -> None:
        assert not self.invalid, "messages not matching docs/schemas:\n" + "\n".join(self.invalid)


def retained(url: str, site: str, seat: str) -> dict[str, Message]:
    """What a subscriber arriving now gets at once: the retained availability, state and info."""
    late = Subscriber(url, site, seat)
    try:
        wait_until(
            lambda: {"availability", "state", "info"} <= {m.leaf for m in late.messages},
            10,
            "the retained availability, state and info",
        )
        late.assert_valid()
        return {m.leaf: m for m in late.messages}
    finally:
        late.close()


def strip_clock(state: dict[str, Any]) -> dict[str, Any]:
    """A state without what changes with the clock alone (`ts`, `today`, `presence.last_seen`)."""
    presence = {k: v for k, v in state["presence"].items() if k != "last_seen"}
    return {**{k: v for k, v in state.items() if k not in ("ts", "today")}, "presence": presence}


def subsequence(wanted: list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(kind in it for kind in wanted)


# --- seatbox simulate --------------------------------------------------------------------------

SCENARIO_CASES = {
    "hold_mute": (
        "S-holdmute",
        [
            "call.ringing",
            "call.answered",
            "call.hold",
            "mute.on",
            "call.resumed",
            "mute.off",
            "call.ended",
        ],
    ),
    "hold_time": (
        "S-holdtime",
        [
            "call.ringing",
            "call.answered",
            "call.hold",
            "hold.long",
            "hold.too_long",
            "call.resumed",
            "call.ended",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIO_CASES))
def test_simulate_publishes_numbered_events_then_leaves_retained_state_info_offline(
    broker: Mosquitto, name: str
) -> None:
    seat, expected_types = SCENARIO_CASES[name]
    live = Subscriber(broker.url, "lab", seat)
    try:
        run = subprocess.run(
            [
                *seatbox_command(),
                "--log-level",
                "WARNING",
                "simulate",
                str(SCENARIOS / f"{name}.toml"),
                "--fast",
                "--broker",
                broker.url,
                "--events-out",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert run.returncode == 0, run.stderr
        printed = [json.loads(line) for line in run.stdout.splitlines()]
        assert printed, "the scenario printed no events"
        live.wait_for("availability", lambda v: v == "offline", what="availability offline")
        wait_until(lambda: len(live.of("event")) >= len(printed), 10, "every printed event on MQTT")
        live.assert_valid()

        events = live.of("event")
        assert events == printed  # the same events, in the same order, as --events-out
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert len({e["boot_id"] for e in events}) == 1
        assert subsequence(expected_types, [e["type"] for e in events]), [e["type"] for e in events]
        if name == "hold_time":
            holds = {
                e["type"]: e["data"]["hold_s"] for e in events if e["type"].startswith("hold.")
            }
            assert holds == {"hold.long": 120.0, "hold.too_long": 180.0}
        assert live.of("availability") == ["online", "offline"]
        assert all(not m.retain for m in live.messages)  # live deliveries, nothing stale
        # The retained state is republished on real change only, not for its clock fields.
        states = [strip_clock(s) for s in live.of("state")]
        repeats = [a for a, b in zip(states, states[1:], strict=False) if a == b]
        assert not repeats, (
            f"{len(repeats)} of {len(states)} state messages repeat the previous one"
        )
        last_live_state = live.last("state")
    finally:
        live.close()

    now = retained(broker.url, "lab", seat)
    assert all(m.retain for m in now.values())
    assert now["availability"].value == "offline"  # a clean stop, not the will
    state, info = now["state"].value, now["info"].value
    assert state == last_live_state
    assert state["call"] == {**state["call"], "state": "idle", "number": 1, "source": None}
    assert state["mute"]["muted"] is False and state["mute"]["by"] is None
    assert state["hook"]["off_hook"] is False
    assert state["violations"] == []  # hold.too_long was cleared by the resume
    assert state["presence"]["state"] == "present"
    assert info["boot_id"] == events[0]["boot_id"]
    assert (info["site"], info["seat"], info["profile"]) == ("lab", seat, "default")
    assert info["profile_digest"] == load_profile("default").digest
    assert info["headset"]["product"] == "Virtual Telephony Headset"


# --- seatbox run -------------------------------------------------------------------------------


def start_checks_done(info: Any) -> bool:
    return all("being checked" not in c["detail"] for c in info["checks"])


class RunningSeat:
    """`seatbox run` on virtual devices with CTI call control, and a subscriber started first."""

    def __init__(self, broker: Mosquitto, workdir: Path, seat: str) -> None:
        self.broker, self.site, self.seat = broker, "e2e", seat
        self.base = f"{BASE}/{self.site}/{seat}"
        config = workdir / f"{seat}.toml"
        config.write_text(
            f'[seat]\nsite = "{self.site}"\nid = "{seat}"\nprofile = "default"\n\n'
            f'[broker]\nurl = "{broker.url}"\nkeepalive = "1s"\n\n'
            '[headset]\ndevice = "virtual"\n\n[audio]\nbackend = "virtual"\n\n'
            '[radar]\nbackend = "virtual"\n\n[call]\nsources = ["cti"]\n\n'
            f'[storage]\nstate_dir = "{workdir}"\n'
        )
        self.sub = Subscriber(broker.url, self.site, seat)
        self.log = (workdir / f"{seat}.log").open("wb")
        self.proc = subprocess.Popen(
            [*seatbox_command(), "run", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self._barriers = 0
        self.publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.publisher.connect("127.0.0.1", broker.port)
        self.publisher.loop_start()
        wait_until(
            lambda: self.sub.last("availability") == "online" or self.proc.poll() is not None,
            15,
            "availability online",
        )
        assert self.proc.poll() is None, self.log_text()
        # Started: the doctor's start checks (run beside the seat) are in `info`, so a test's
        # own messages are not interleaved with that second `info`.
        self.sub.wait_for("info", start_checks_done, 0, "info with the start checks done")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def send(self, name: str, payload: bytes | dict[str, Any]) -> int:
        """Publish a command; returns the subscriber's mark from just before it."""
        mark = self.sub.mark()
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.publisher.publish(f"{self.base}/cmd/{name}", body, qos=1).wait_for_publish(5)
        return mark

    def command(
        self, name: str, payload: bytes | dict[str, Any], request_id: str
    ) -> tuple[dict[str, Any], int]:
        """Send a command and wait for its reply; returns the reply and the mark before it."""
        mark = self.send(name, payload)
        reply = self.sub.wait_for(
            f"cmd/{name}/reply",
            lambda r: r["id"] == request_id,
            mark,
            f"the reply to {name} {payload!r}",
        )
        return reply, mark

    def state_where(
        self, check: Callable[[dict[str, Any]], bool], since: int, what: str
    ) -> dict[str, Any]:
        return self.sub.wait_for("state", check, since, what)  # type: ignore[no-any-return]

    def call_events(self, since: int) -> list[str]:
        """Call and mute events since a mark, without those the real clock may add at any
        time (presence, shift, and dead air after 5 s of silence in a call).

        Events come through the outbox in seq order but apart from replies, so this first
        sends `identify` as a barrier: once its `seat.identify` event is here, every event the
        seat made before it is here too."""
        self._barriers += 1
        barrier = f"barrier-{self._barriers}"
        self.command("identify", {"id": barrier}, barrier)
        wait_until(
            lambda: any(e["type"] == "seat.identify" for e in self.sub.of("event", since)),
            10,
            "the barrier's seat.identify event",
        )
        events = self.sub.of("event", since)
        kinds = [e["type"] for e in events[: [e["type"] for e in events].index("seat.identify")]]
        return [k for k in kinds if k.startswith(("call.", "mute.")) and k != "call.dead_air"]

    def check_events(self) -> list[dict[str, Any]]:
        """Events so far, de-duplicated as a consumer does by (boot_id, seq): valid, one boot,
        consecutive from 0 (the subscriber saw the boot); a resent copy equals the first."""
        self.sub.assert_valid()
        events: list[dict[str, Any]] = []
        seen: dict[tuple[str, int], dict[str, Any]] = {}
        for event in self.sub.of("event"):
            key = (event["boot_id"], event["seq"])
            if key in seen:
                assert event == seen[key], "a resent event differs from its first copy"
                continue
            seen[key] = event
            events.append(event)
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert len({e["boot_id"] for e in events}) <= 1
        return events

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.publisher.disconnect()
        self.publisher.loop_stop()
        self.sub.close()
        self.log.close()


@pytest.fixture(scope="module")
def seat(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSeat]:
    running = RunningSeat(broker, tmp_path_factory.mktemp("seat"), "S-cmd")
    try:
        yield running
    finally:
        running.close()


def test_cti_call_commands_drive_the_call_and_the_retained_state(seat: RunningSeat) -> None:
    for payload in (
        {"id": "r1", "action": "ring", "call_id": "c-42"},
        {"id": "r2", "action": "answer"},
    ):
        validate("cmd/call", payload)  # what we send is what the API documents

    reply, mark = seat.command("call", {"id": "r1", "action": "ring", "call_id": "c-42"}, "r1")
    assert reply == {"id": "r1", "ok": True, "data": {"call": "ringing"}}
    seat.state_where(lambda s: s["call"]["state"] == "ringing", mark, "state ringing")
    ringing = seat.sub.wait_for("event", lambda e: e["type"] == "call.ringing", mark)
    assert ringing["data"] == {"source": "cti", "call": 1, "call_id": "c-42"}
    now = retained(seat.broker.url, seat.site, seat.seat)
    assert now["state"].value["call"]["state"] == "ringing"
    assert now["state"].value["call"]["source"] == "cti"
    assert now["availability"].value == "online"

    reply, mark = seat.command("call", {"id": "r2", "action": "answer"}, "r2")
    assert reply == {"id": "r2", "ok": True, "data": {"call": "active"}}
    seat.state_where(lambda s: s["call"]["state"] == "active", mark, "state active")
    answered = seat.sub.wait_for("event", lambda e: e["type"] == "call.answered", mark)
    assert answered["data"]["source"] == "cti" and answered["data"]["answer_s"] >= 0
    # During a call the seat publishes its audio levels (QoS 0) once per period.
    levels = seat.sub.wait_for("levels", lambda v: True, mark, "a levels message during the call")
    assert levels["call"] == 1

    # Resume while active: nothing to resume, so the seat agrees (ok) and changes nothing.
    reply, mark = seat.command("call", {"id": "r4", "action": "resume"}, "r4")
    assert reply == {"id": "r4", "ok": True, "data": {"call": "active"}}
    # No call event came for this one.
    assert seat.call_events(mark) == []

    # Hold: the enforced hold_mute policy mutes the mic; resume opens it again.
    reply, mark = seat.command("call", {"id": "r5", "action": "hold"}, "r5")
    assert reply["ok"] and reply["data"] == {"call": "held"}
    held = seat.state_where(lambda s: s["call"]["state"] == "held", mark, "state held")
    assert held["mute"] == {**held["mute"], "muted": True, "by": "hold_policy"}
    # The hold's events come through the outbox, after the reply and the state: wait for them
    # (a barrier), or a loaded machine delivers `mute.on` after the next command's mark.
    assert {"call.hold", "mute.on"} <= set(seat.call_events(mark))
    reply, mark = seat.command("call", {"id": "r6", "action": "resume"}, "r6")
    assert reply == {"id": "r6", "ok": True, "data": {"call": "active"}}
    active = seat.state_where(lambda s: s["call"]["state"] == "active", mark, "state active again")
    assert active["mute"]["muted"] is False
    assert seat.call_events(mark)[:2] == ["call.resumed", "mute.off"]

    reply, mark = seat.command("call", {"id": "r7", "action": "end"}, "r7")
    assert reply == {"id": "r7", "ok": True, "data": {"call": "idle"}}
    ended = seat.sub.wait_for("event", lambda e: e["type"] == "call.ended", mark)
    assert ended["data"]["reason"] == "hangup" and ended["data"]["source"] == "cti"
    seat.check_events()


def test_bad_commands_get_error_replies_naming_the_field_and_the_seat_keeps_working(
    seat: RunningSeat,
) -> None:
    fly = {"id": "r3", "action": "fly"}
    assert errors("cmd/call", fly), "the schema must reject an unknown action too"
    reply, _ = seat.command("call", fly, "r3")
    assert reply["ok"] is False and "data" not in reply
    assert reply["error"].startswith("action: expected one of ")
    for allowed in ("ring", "answer", "hold", "resume", "end"):
        assert repr(allowed) in reply["error"]
    assert "'fly'" in reply["error"]

    reply, _ = seat.command("call", b"this is not json", "")
    assert reply["ok"] is False and reply["error"].startswith("payload: expected a JSON object")

    reply, _ = seat.command("call", b"[1, 2]", "")
    assert reply == {"id": "", "ok": False, "error": "payload: expected a JSON object, got list"}

    reply, _ = seat.command("call", {"id": "r8", "action": "ring", "call_id": 7}, "r8")
    assert reply["ok"] is False and reply["error"].startswith("call_id: expected a string")

    reply, _ = seat.command("fly", {"id": "r9"}, "r9")
    assert reply["ok"] is False and reply["error"].startswith("command: unknown 'fly'")

    # A valid command the call state refuses: not ok, says why, and reports the call state.
    reply, mark = seat.command("call", {"id": "r10", "action": "hold"}, "r10")
    assert reply == {
        "id": "r10",
        "ok": False,
        "error": "no active call to hold (call is idle)",
        "data": {"call": "idle"},
    }
    assert seat.call_events(mark) == []

    assert seat.proc.poll() is None, seat.log_text()
    reply, mark = seat.command("call", {"id": "r11", "action": "ring"}, "r11")
    assert reply == {"id": "r11", "ok": True, "data": {"call": "ringing"}}
    seat.state_where(
        lambda s: s["call"]["state"] == "ringing", mark, "state ringing after bad commands"
    )
    reply, _ = seat.command("call", {"id": "r12", "action": "end"}, "r12")
    assert reply == {"id": "r12", "ok": True, "data": {"call": "idle"}}
    missed = seat.sub.wait_for("event", lambda e: e["type"] == "call.ended", mark)
    assert missed["data"]["reason"] == "missed"
    seat.check_events()


def test_identify_replies_ok_and_publishes_a_seat_identify_event(seat: RunningSeat) -> None:
    validate("cmd/identify", {"id": "i1"})
    reply, mark = seat.command("identify", {"id": "i1"}, "i1")
    assert reply == {"id": "i1", "ok": True}
    seen = seat.sub.wait_for("event", lambda e: e["type"] == "seat.identify", mark)
    assert seen["data"] == {}
    seat.check_events()


def test_rebirth_republishes_retained_info_and_state(seat: RunningSeat) -> None:
    validate("cmd/rebirth", {"id": "b1"})
    before_info = seat.sub.last("info")
    reply, mark = seat.command("rebirth", {"id": "b1"}, "b1")
    assert reply == {"id": "b1", "ok": True}
    assert seat.sub.of("info", mark) == [before_info]  # same boot, same inventory, once more
    republished = seat.sub.of("state", mark)
    assert republished and republished[0]["call"]["state"] == "idle"
    now = retained(seat.broker.url, seat.site, seat.seat)
    assert now["info"].value["boot_id"] == before_info["boot_id"]
    seat.check_events()


def test_resend_publishes_held_events_again_and_names_what_is_gone(seat: RunningSeat) -> None:
    """A consumer that saw a gap asks with cmd/resend; the seat answers from its outbox."""
    boot = seat.sub.last("info")["boot_id"]
    mark = seat.send("call", {"id": "rs0", "action": "ring"})
    seat.sub.wait_for("event", lambda e: e["type"] == "call.ringing", mark, "an event to resend")
    first = {(e["boot_id"], e["seq"]): e for e in seat.sub.of("event")}
    assert (boot, 0) in first
    payload = {"id": "s1", "boot_id": boot, "from_seq": 0, "to_seq": 1}
    validate("cmd/resend", payload)
    reply, mark = seat.command("resend", payload, "s1")
    assert reply == {"id": "s1", "ok": True, "data": {"queued": 2, "missing": []}}
    wait_until(lambda: len(seat.sub.of("event", mark)) >= 2, 10, "the resent events")
    again = seat.sub.of("event", mark)[:2]
    assert again == [first[(boot, 0)], first[(boot, 1)]]  # the same records, byte for byte

    # A range this boot never reached, and a boot the seat never had: named as missing.
    top = max(seq for (b, seq) in first if b == boot)
    reply, _ = seat.command(
        "resend", {"id": "s2", "boot_id": boot, "from_seq": top + 100, "to_seq": top + 101}, "s2"
    )
    assert reply["ok"] is True and reply["data"]["queued"] == 0
    assert reply["data"]["missing"] == [
        {"boot_id": boot, "from_seq": top + 100, "to_seq": top + 101}
    ]
    reply, _ = seat.command(
        "resend", {"id": "s3", "boot_id": "0-00000000", "from_seq": 0, "to_seq": 0}, "s3"
    )
    assert reply["data"]["missing"] == [{"boot_id": "0-00000000", "from_seq": 0, "to_seq": 0}]
    seat.command("call", {"id": "rs9", "action": "end"}, "rs9")
    seat.check_events()


def test_killed_seat_goes_offline_by_its_will(broker: Mosquitto, tmp_path: Path) -> None:
    doomed = RunningSeat(broker, tmp_path, "S-will")
    try:
        mark = doomed.sub.mark()
        os.kill(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(10)
        doomed.sub.wait_for("availability", lambda v: v == "offline", mark, "the will: offline")
        doomed.sub.assert_valid()
        now = retained(broker.url, doomed.site, doomed.seat)
        assert now["availability"].value == "offline"
        assert now["state"].value["seat"] == "S-will"  # the last state stays for late subscribers
    finally:
        doomed.close()


def test_sigterm_stops_the_seat_cleanly_with_offline(broker: Mosquitto, tmp_path: Path) -> None:
    stopping = RunningSeat(broker, tmp_path, "S-term")
    try:
        mark = stopping.sub.mark()
        stopping.proc.send_signal(signal.SIGTERM)
        assert stopping.proc.wait(15) == 0, stopping.log_text()
        stopping.sub.wait_for("availability", lambda v: v == "offline", mark, "offline")
        stopping.sub.assert_valid()
        assert retained(broker.url, stopping.site, stopping.seat)["availability"].value == "offline"
    finally:
        stopping.close()


def test_seat_survives_a_broker_restart_and_publishes_its_birth_again(tmp_path: Path) -> None:
    own = Mosquitto(tmp_path)  # no persistence: a restart forgets every retained message
    own.start()
    seat = None
    try:
        seat = RunningSeat(own, tmp_path, "S-restart")
        reply, mark = seat.command("call", {"id": "x1", "action": "ring"}, "x1")
        assert reply["ok"]
        seat.state_where(lambda s: s["call"]["state"] == "ringing", mark, "state ringing")

        own.stop()
        wait_until(
            lambda: not seat.sub.client.is_connected(), 10, "the subscriber to see the broker go"
        )
        mark = seat.sub.mark()
        own.start()
        # The seat reconnects by itself and publishes its birth: online, info and state again.
        seat.sub.wait_for("availability", lambda v: v == "online", mark, "online after restart")
        seat.sub.wait_for("info", lambda v: True, mark, "info after restart")
        seat.state_where(lambda s: s["call"]["state"] == "ringing", mark, "state after restart")
        assert seat.proc.poll() is None, seat.log_text()
        now = retained(own.url, seat.site, seat.seat)
        assert now["availability"].value == "online"
        assert now["state"].value["call"]["state"] == "ringing"

        reply, mark = seat.command("call", {"id": "x2", "action": "end"}, "x2")
        assert reply == {"id": "x2", "ok": True, "data": {"call": "idle"}}
        seat.check_events()
    finally:
        if seat is not None:
            seat.close()
        own.stop()


def test_the_start_checks_run_beside_the_seat_and_info_lists_them_all_when_done(
    seat: RunningSeat,
) -> None:
    """The doctor's checks do not hold up the start: `info` first says which are still being
    checked, and is published again with every check in the doctor's order once they are done
    (the broker's included), as `seatbox doctor` names them."""
    from edge.ops.doctor import CHECK_NAMES

    first = seat.sub.of("info")[0]  # at once, some perhaps still being checked: all named
    assert [c["name"] for c in first["checks"]] == list(CHECK_NAMES[1:])
    info = seat.sub.wait_for("info", start_checks_done, 0, "info with every start check done")
    assert [c["name"] for c in info["checks"]] == list(CHECK_NAMES[1:])
    checks = {c["name"]: c for c in info["checks"]}
    assert checks["broker"]["status"] == "OK"
    assert checks["headset"]["detail"].startswith("virtual")
    assert checks["microphone"]["detail"] == "virtual microphone (simulated seat)"
