"""The seat process against storage and start-up faults: a broker that is down when the seat
starts, a garbled outbox file, and a really full file system (a small tmpfs filled to the brim).

Real parts: `seatbox run` (looping short calls into its outbox), a real Mosquitto, a consumer
built on edge.consumer; the full disk is a real tmpfs mount (root only, skipped otherwise).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

from outbox_support import Subscriber, broker_workdir, persistent_mosquitto_config
from support import Mosquitto, free_port, wait_until
from test_seat_faults import SeatProcess

from edge.cli.seat_cmd import READY_BROKER_WAIT_S


def stored_types(state_dir: Path) -> list[str]:
    """Event types in the seat's outbox (read-only, beside the running seat)."""
    path = state_dir / "outbox.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [str(t) for (t,) in db.execute("SELECT type FROM entry ORDER BY id")]
    except sqlite3.OperationalError:  # created, tables not there yet
        return []
    finally:
        db.close()


def test_seat_started_while_the_broker_is_down_works_at_once_and_delivers_later(
    tmp_path: Path,
) -> None:
    """The core runs from the first moment: the scenario's first ring is stored within a
    fraction of the old 10 s broker wait, READY=1 does not wait for the broker, and the event
    reaches a subscriber once the broker comes."""
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"  # nothing listens there yet
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.05)
    os.environ["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    try:
        seat = SeatProcess(url, tmp_path)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    with broker_workdir() as workdir:
        broker = Mosquitto(workdir, persistent_mosquitto_config(port, workdir), port)
        try:
            wait_until(lambda: "starting" in seat.log_path.read_text(), 30, "the seat starting")
            started = time.monotonic()
            notes: list[str] = []

            def ready_and_rung() -> bool:
                try:
                    notes.extend(notify.recv(4096).decode().split("\n"))
                except TimeoutError:
                    pass
                return "READY=1" in notes and "call.ringing" in stored_types(seat.state_dir)

            # Well under the old READY_BROKER_WAIT_S, on a busy two-core machine.
            wait_until(ready_and_rung, READY_BROKER_WAIT_S / 2, "READY=1 and call.ringing stored")
            assert time.monotonic() - started < READY_BROKER_WAIT_S / 2
            seat.alive()
            broker.start()
            subscriber = Subscriber(broker.url, reorder_s=0.0).start()
            try:
                wait_until(
                    lambda: "call.ringing" in subscriber.received.types.values(),
                    45,  # paho's reconnect back-off reaches 16-30 s after a long outage
                    "call.ringing delivered once the broker came",
                )
                # The whole boot from seq 0: nothing of the offline start went missing.
                seqs = sorted(seq for _, seq in subscriber.new_keys())
                assert seqs[: len(seqs) // 2] == list(range(len(seqs) // 2))
            finally:
                subscriber.stop()
        finally:
            seat.kill()
            broker.stop()
            notify.close()
