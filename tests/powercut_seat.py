"""The seat of the power-cut test, run inside the QEMU guest: the shipped `Outbox` and
`OutboxPump` on a real ext4, writing a burst of events as fast as it can.

Prints `COMMIT <boot_id> <seq>` after each `add_event` returns (the event is durable then), so
the host knows what was committed when it pulls the plug. Only the standard library, paho
and edge.shell.outbox (store, pump) are imported: the guest is slow (software emulation), scipy
would take 80 s.
The host imports `event_for` to check that every delivered event is one this program wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

SITE, SEAT = "hq", "s01"
TOPIC = f"seatbox/v1/{SITE}/{SEAT}/event"
# A conduct record and an informational transition, so both drop classes are on disk.
EVENT_TYPES = ("greeting.late", "mute.on")
EPOCH = 1_790_000_000  # the events' own wall-clock stamps: EPOCH + seq (deterministic)


def event_for(boot_id: str, seq: int) -> tuple[str, dict[str, Any], float]:
    """(type, data, ts) of event `seq` of boot `boot_id`: what this program writes, so the
    host can tell a real event from an invented or torn one."""
    digest = hashlib.sha256(f"{boot_id}/{seq}".encode()).hexdigest()
    data = {"n": seq, "check": digest[:16], "pad": digest * 3}
    return EVENT_TYPES[seq % len(EVENT_TYPES)], data, float(EPOCH + seq)


def say(line: str) -> None:
    """One console line in one write: print() writes the text and the newline separately, so
    a line from paho's thread could land in between and garble a COMMIT line."""
    os.write(1, (line + "\n").encode())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the seat's state_dir")
    parser.add_argument("--broker", help="host:port of the MQTT broker (none: offline)")
    parser.add_argument("--events", type=int, default=0, help="how many (0: until cut)")
    parser.add_argument("--drain", action="store_true", help="then wait until all acked")
    args = parser.parse_args(argv)

    from edge.shell.outbox.pump import OutboxPump
    from edge.shell.outbox.store import Outbox

    db = args.state / "outbox.sqlite"
    if db.exists():
        check = sqlite3.connect(str(db)).execute("PRAGMA integrity_check").fetchone()[0]
        say(f"SEAT-INTEGRITY {check}")
    outbox = Outbox(db, TOPIC)
    stats = outbox.stats()
    say(f"SEAT-BOOT {outbox.boot_id} pending={stats.pending} kept={stats.kept}")
    pump = client = None
    if args.broker:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        host, port = args.broker.rsplit(":", 1)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"seatbox-{SITE}-{SEAT}")
        client.reconnect_delay_set(1, 2)
        client.on_connect = lambda *_: say("SEAT-CONNECTED")
        pump = OutboxPump(client, outbox, rate_per_s=None)
        pump.attach()
        client.connect_async(host, int(port), keepalive=10)
        pump.start()
        client.loop_start()

    seq = 0
    while args.events == 0 or seq < args.events:
        event_type, data, ts = event_for(outbox.boot_id, seq)
        entry = outbox.add_event(event_type, data, ts)
        if entry.seq != seq or not entry.stored:
            say(f"SEAT-ERROR expected seq {seq} stored, got {entry}")
            return 3
        say(f"COMMIT {outbox.boot_id} {seq}")
        seq += 1
    say(f"SEAT-BURST-DONE {seq}")

    if args.drain and pump is not None and client is not None:
        deadline = time.monotonic() + 300
        while outbox.stats().pending or pump.inflight:
            if time.monotonic() > deadline:
                say(f"SEAT-ERROR not drained: {outbox.stats()}")
                return 4
            time.sleep(0.1)
        say(f"SEAT-DRAINED published={pump.published} acked={pump.acknowledged}")
    if pump is not None and client is not None:
        pump.stop()
        client.disconnect()
        client.loop_stop()
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
