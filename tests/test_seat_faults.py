"""Broker faults against the real seat process: `seatbox run` playing a steady stream of short
calls (7 events each quarter second) into its outbox, a real Mosquitto killed and restarted
under it, and a floor consumer (edge.api.stream) with a persistent session.

The reference for "every event" is the seat's own outbox database: after the seat stops, it
holds every event of every boot (acknowledged rows are kept an hour for resends).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from outbox_support import (
    SITE,
    Subscriber,
    persistent_broker,
)
from support import Mosquitto, wait_until
from test_e2e_mqtt import REPO, seatbox_command

STEADY = """\
[seat]
site = "hq"
id = "s01"
profile = "default"
start = "2026-11-23T10:00:00+08:00"
description = "A steady stream of short calls: 7 events (info and conduct) per loop"

[[step]]
t = "0s"
do = "cti.ring"
[[step]]
t = "0.05s"
do = "cti.answer"
[[step]]
t = "0.15s"
do = "cti.hold"
[[step]]
t = "0.2s"
do = "cti.end"
[[step]]
t = "0.25s"
do = "end"
"""


class SeatProcess:
    """`seatbox run` on virtual devices looping the steady scenario, outbox in `state_dir`."""

    def __init__(
        self, url: str, workdir: Path, budget_mb: float = 64.0, keepalive: str | None = "1s"
    ) -> None:
        self.state_dir = workdir / "state"
        (workdir / "steady.toml").write_text(STEADY)
        config = workdir / "seat.toml"
        keep = f'keepalive = "{keepalive}"\n' if keepalive else ""
        config.write_text(
            f'[seat]\nsite = "{SITE}"\nid = "s01"\nprofile = "default"\n\n'
            f'[broker]\nurl = "{url}"\n{keep}\n'
            '[headset]\ndevice = "virtual"\n\n[audio]\nbackend = "virtual"\n\n'
            '[radar]\nbackend = "virtual"\n\n'
            '[call]\nsources = ["simulate"]\nscenario = "steady.toml"\n\n'
            f'[storage]\nstate_dir = "{self.state_dir}"\noutbox_budget_mb = {budget_mb}\n'
        )
        self.log_path = workdir / "seat.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*seatbox_command(), "run", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def stop(self) -> None:
        """SIGTERM: a clean stop (what systemd does); the outbox keeps what is unsent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def alive(self) -> None:
        assert self.proc.poll() is None, self.log_path.read_text(errors="replace")

    def loss_record(self) -> dict[str, Any]:
        """The drops the outbox has recorded and not yet reported in an `outbox.loss` event."""
        db = sqlite3.connect(f"file:{self.state_dir / 'outbox.sqlite'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'loss'").fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row and row[0] else {}  # type: ignore[no-any-return]

    def rows_dropped(self) -> int:
        return sum(self.loss_record().get("dropped", {}).values())

    def rows(self, where: str = "1") -> list[tuple[str, int, bytes]]:
        """(boot_id, seq, payload) of the outbox, in publish order (read-only, beside the seat)."""
        db = sqlite3.connect(f"file:{self.state_dir / 'outbox.sqlite'}?mode=ro", uri=True)
        try:
            return [
                (str(b), int(s), bytes(p))
                for b, s, p in db.execute(
                    f"SELECT boot_id, seq, payload FROM entry WHERE {where} ORDER BY id"
                )
            ]
        finally:
            db.close()


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    """A Mosquitto that keeps sessions across clean restarts, on a fixed port."""
    with persistent_broker() as running:
        yield running


def delivered(subscriber: Subscriber, rows: list[tuple[str, int, bytes]]) -> bool:
    """Has the consumer every one of these? (Asks the seat for its gaps, as the floor does.)"""
    subscriber.ask_for_gaps()
    return set(subscriber.new_keys()) >= {(b, s) for b, s, _ in rows}


def wait_delivered(subscriber: Subscriber, rows: list[tuple[str, int, bytes]], what: str) -> None:
    try:
        wait_until(lambda: delivered(subscriber, rows), 60, what)
    except AssertionError:
        missing = sorted({(b, s) for b, s, _ in rows} - set(subscriber.new_keys()))
        raise AssertionError(
            f"{what}: {len(missing)} never arrived, e.g. {missing[:10]}; "
            f"resends asked: {subscriber.requested[-5:]}, gaps: {subscriber.tracker.gaps()[:5]}"
        ) from None


def test_broker_restarted_20_times_under_a_running_seat_loses_and_invents_nothing(
    tmp_path: Path, broker: Mosquitto
) -> None:
    subscriber = Subscriber(broker.url).start()
    assert subscriber.connected.wait(10)
    seat = SeatProcess(broker.url, tmp_path)
    try:
        for cycle in range(20):
            seen = len(subscriber.new_keys())
            wait_until(lambda s=seen: len(subscriber.new_keys()) > s + 5, 30, "events flowing")
            # Half are crashes: the broker forgets what it had not saved, including events it
            # already acknowledged to the seat; the consumer's resend request recovers those.
            if cycle % 2:
                broker.kill()
            else:
                broker.stop()
            broker.start()
            subscriber.ask_for_gaps()
            seat.alive()
        # Gaps are filled by the seat answering cmd/resend, so it runs while we check...
        wait_delivered(subscriber, seat.rows(), "every event stored so far")
        # ... then stops cleanly (the broker is up: its last events are flushed first).
        seat.stop()
        rows = seat.rows()
        assert len(rows) > 20 * 5 and len({b for b, _, _ in rows}) == 1
        wait_delivered(subscriber, rows, "every stored event")
        new = subscriber.new_keys()
        assert len(new) == len(set(new)) == len(rows)  # exactly once after de-duplication
        # Nothing invented: every copy that arrived is a record the seat stored, byte for byte.
        stored = {(b, s): p for b, s, p in rows}
        assert set(subscriber.received.arrivals) <= set(stored)
        # In order per seat, apart from events that came back through a resend request.
        resent = {(b, s) for b, a, z in subscriber.requested for s in range(a, z + 1)}
        in_stream = [seq for _, seq in new if (rows[0][0], seq) not in resent]
        assert in_stream == sorted(in_stream)
        kinds = set(subscriber.received.types.values())
        assert {"call.ringing", "greeting.late", "call.ended"} <= kinds
    finally:
        seat.kill()
        subscriber.stop()


def test_seat_sigkilled_during_an_outage_then_restarted_delivers_both_boots(
    tmp_path: Path, broker: Mosquitto
) -> None:
    subscriber = Subscriber(broker.url).start()
    assert subscriber.connected.wait(10)
    first = SeatProcess(broker.url, tmp_path)
    second: SeatProcess | None = None
    try:
        wait_until(lambda: len(subscriber.new_keys()) > 10, 30, "events before the outage")
        broker.stop()
        # The seat goes on working during the outage; its events wait on disk.
        wait_until(lambda: len(first.rows("acked IS NULL")) >= 20, 30, "20 events stored, unsent")
        first.kill()
        old = first.rows()
        old_boot = old[0][0]
        broker.start()
        second = SeatProcess(broker.url, tmp_path)
        wait_until(lambda: any(b != old_boot for b, _ in subscriber.new_keys()), 30, "the new boot")
        wait_delivered(subscriber, second.rows(), "both boots")
        second.stop()
        rows = second.rows()
        wait_delivered(subscriber, rows, "both boots, to the last event")
        new = subscriber.new_keys()
        assert len(new) == len(set(new)) == len(rows)
        assert set(subscriber.received.arrivals) <= {(b, s) for b, s, _ in rows}
        # The killed boot's backlog came first, in order, then the new boot from seq 0.
        boots = [b for b, _ in new]
        cut = boots.index(next(b for b in boots if b != old_boot))
        assert new[:cut] == [(b, s) for b, s, _ in old]
        assert [s for _, s in new[cut:]] == list(range(len(new) - cut))
        assert set(boots[cut:]) == {new[cut][0]} and new[cut][0] != old_boot
        assert int(new[cut][0].split("-")[0]) == int(old_boot.split("-")[0]) + 1
    finally:
        first.kill()
        if second:
            second.kill()
        subscriber.stop()


def test_outbox_budget_during_an_outage_drops_info_before_conduct_and_says_so(
    tmp_path: Path, broker: Mosquitto
) -> None:
    subscriber = Subscriber(broker.url, reorder_s=0.0).start()
    assert subscriber.connected.wait(10)
    # 32 KiB: about seventy events before the budget is full.
    seat = SeatProcess(broker.url, tmp_path, budget_mb=0.032)
    try:
        wait_until(lambda: len(subscriber.new_keys()) > 5, 30, "events before the outage")
        broker.stop()
        # The budget is full once the outbox starts recording what it dropped.
        wait_until(lambda: seat.rows_dropped() >= 10, 60, "informational events dropped")
        broker.start()

        def loss_arrived() -> bool:
            return "outbox.loss" in subscriber.received.types.values()

        wait_until(loss_arrived, 30, "the outbox.loss event")
        seat.stop()  # clean stop: whatever is stored is flushed to the broker first
        stored = seat.rows()
        wait_until(
            lambda: set(subscriber.new_keys()) >= {(b, q) for b, q, _ in stored},
            30,
            "every stored event",
        )
        types = subscriber.received.types
        reports = [subscriber.received.data[k] for k, t in types.items() if t == "outbox.loss"]
        boot = stored[0][0]
        # Informational events went first; every conduct record of the outage survived.
        dropped: dict[str, int] = {}
        for report in reports:
            for kind, count in report["dropped"].items():
                dropped[kind] = dropped.get(kind, 0) + count
        assert sum(dropped.values()) > 0 and "greeting.late" not in dropped
        assert set(dropped) <= {
            "call.ringing",
            "call.answered",
            "call.hold",
            "call.ended",
            "mute.on",
            "mute.off",
            "presence.present",
            "headset.connected",
        }
        # Every number the seat gave out either arrived or is named as lost (in a report, or in
        # the record the next start reports): nothing vanished unsaid, nothing twice.
        reported = {
            seq
            for report in reports
            for r in report["ranges"]
            if r["boot_id"] == boot
            for seq in range(r["from_seq"], r["to_seq"] + 1)
        }
        assert len(reported) == sum(r["total"] for r in reports)
        assert all(r["ranges_exact"] for r in reports)
        unreported = {
            seq
            for a, z in seat.loss_record().get("ranges", {}).get(boot, [])
            for seq in range(a, z + 1)
        }
        arrived = {seq for b, seq in types if b == boot}
        top = max(arrived | reported | unreported)
        assert arrived | reported | unreported == set(range(top + 1))
        # Events already handed to the MQTT client are never dropped (they still go out after
        # the reconnect), so nothing is both reported lost and delivered.
        assert not arrived & (reported | unreported)
        first_loss = min(reported)
        assert any(t == "greeting.late" for (_, seq), t in types.items() if seq > first_loss)
        # The consumer does not chase what the seat reported lost.
        subscriber.ask_for_gaps()
        assert {
            seq for gap in subscriber.tracker.gaps() for seq in range(gap.first, gap.last + 1)
        } <= unreported
    finally:
        seat.kill()
        subscriber.stop()
