"""Resend flood against the real `seatbox run` on a local Mosquitto the bench starts (issue 12,
faults 2 and 3): 300 `cmd/resend` requests of 1,000 events each over an earlier boot's 20,000
held events, and 20 requests of `from_seq 0, to_seq 10^12`. Measured: the seat's RSS growth, how
fast every request is answered, the latency of a live `call.ringing` during the resend drain
against the same latency with no resends (the baseline, same run), and the exit after SIGTERM.

Run: .venv/bin/python bench/resend_flood.py [--requests 300] [--rings 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support import mosquitto, wait_until  # noqa: E402
from test_link_faults import BASE, Floor, SeatProcess  # noqa: E402

from edge.shell.outbox.store import Outbox  # noqa: E402

HELD = 20_000


def ring_latencies(floor: Floor, rings: int, tag: str) -> list[float]:
    """Seconds from `cmd/call ring` sent to its `call.ringing` at the floor, `rings` times."""
    latencies = []
    for n in range(rings):
        call_id = f"{tag}-{n}"
        floor.send(
            "call", json.dumps({"id": call_id, "action": "ring", "call_id": call_id}).encode()
        )
        sent = time.monotonic()
        needle = f'"call_id":"{call_id}"'.encode()
        wait_until(lambda c=needle: any(c in p for p, _ in floor.of("event")), 30, "ringing")
        latencies.append(next(at for p, at in floor.of("event") if needle in p) - sent)
        floor.send("call", json.dumps({"id": f"{call_id}-end", "action": "end"}).encode())
        floor.reply("call", lambda r, i=f"{call_id}-end": r["id"] == i, 30)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rings", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mosquitto(Path(tmp)) as broker:
        floor = Floor(broker.url)
        seat = SeatProcess(broker.url, Path(tmp))
        seat.state_dir.mkdir()
        old = Outbox(seat.outbox_path(), f"{BASE}/event")
        rows = old.add_events(
            [("call.ringing", {"call": n, "pad": "x" * 200}, None) for n in range(HELD)]
        )
        old.ack(row.id for row in rows)
        old.close()
        boot = rows[0].boot_id
        seat.start()
        try:
            wait_until(lambda: floor.availability() == "online", 30, "the seat online")
            floor.answers("warm-up")
            baseline = ring_latencies(floor, args.rings, "idle")
            rss_before = seat.rss_kb()

            sent = time.monotonic()
            for n in range(args.requests):
                first = (n % (HELD // 1000)) * 1000
                request = {"id": f"f{n}", "boot_id": boot, "from_seq": first, "to_seq": first + 999}
                floor.send("resend", json.dumps(request).encode())
            wait_until(lambda: len(floor.replies("resend")) >= args.requests, 120, "replies")
            answered_s = time.monotonic() - sent
            replies = floor.replies("resend")
            accepted = sum(1 for r in replies if r["ok"])
            during = ring_latencies(floor, args.rings, "flood")
            rss_growth = seat.rss_kb() - rss_before

            huge_sent = time.monotonic()
            for n in range(20):
                request = {"id": f"h{n}", "boot_id": boot, "from_seq": 0, "to_seq": 10**12}
                floor.send("resend", json.dumps(request).encode())
            floor.reply("resend", lambda r: r["id"] == "h19", 60)
            huge_s = time.monotonic() - huge_sent

            term = time.monotonic()
            code = seat.terminate(60)
            term_s = time.monotonic() - term
        finally:
            seat.kill()
            floor.close()
    base_p50, flood_p50 = statistics.median(baseline), statistics.median(during)
    print(
        f"{args.requests} resend requests of 1,000 events answered in {answered_s:.2f} s "
        f"({accepted} accepted, {args.requests - accepted} refused: queue full)"
    )
    print(f"seat RSS growth: {rss_growth / 1024:.1f} MB")
    print(
        f"live call.ringing p50 / max: idle {base_p50 * 1000:.0f} / {max(baseline) * 1000:.0f} ms,"
        f" during the resend drain {flood_p50 * 1000:.0f} / {max(during) * 1000:.0f} ms"
        f" (p50 ratio {flood_p50 / base_p50:.2f})"
    )
    print(f"20 requests of from_seq 0 .. 10^12 answered in {huge_s:.2f} s")
    print(f"SIGTERM: exit {code} after {term_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
