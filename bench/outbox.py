"""Outbox benchmarks on a local Mosquitto the bench starts: latency over 10,000 events from an
input entering a real seat runtime's queue to its event at a subscriber (and from the outbox's
add_event alone), and backlog drain of 100,000 events with the outbox vs raw paho QoS 1.

Run: .venv/bin/python bench/outbox.py [--events 10000] [--backlog 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from machine import describe  # noqa: E402  (bench/machine.py)
from support import Mosquitto, free_port, wait_until  # noqa: E402

from edge.api.broker import BrokerSection, make_client  # noqa: E402
from edge.shell.outbox.pump import OutboxPump  # noqa: E402
from edge.shell.outbox.store import Outbox  # noqa: E402

TOPIC = "seatbox/v1/bench/s01/event"
SEAT_INPUT_SPACING_S = 0.010


SUBSCRIBER = r"""
import json, sys, time
import paho.mqtt.client as mqtt
port, topic, until = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
seen = set()
def on_subscribe(*_):
    print("ready", flush=True)
def on_message(client, userdata, msg):
    seq = json.loads(msg.payload)["seq"]
    now = time.perf_counter()
    if until:
        seen.add(seq)
        if len(seen) == until:
            print(f"done {now}", flush=True)
    else:
        print(f"{seq} {now}", flush=True)
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub")
client.on_subscribe, client.on_message = on_subscribe, on_message
client.connect("127.0.0.1", port)
client.subscribe(topic, qos=1)
client.loop_forever()
"""


class Counter:
    """A QoS 1 subscriber in a process of its own (as a floor view would be, so it does not
    share the seat's GIL), reporting each arrival's seq and time, or only when `until`
    distinct events have arrived. time.perf_counter is CLOCK_MONOTONIC: one clock for both."""

    def __init__(self, port: int, until: int = 0) -> None:
        self.arrived: dict[int, float] = {}
        self.count = 0
        self.done_at: float | None = None
        self.event = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, str(port), TOPIC, str(until)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("bench subscriber did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            first, second = line.split()
            if first == "done":
                self.done_at = float(second)
            else:
                self.arrived.setdefault(int(first), float(second))
                self.count += 1
            self.event.set()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def seat_client(port: int, client_id: str) -> mqtt.Client:
    client, _ = make_client(BrokerSection(url=f"mqtt://127.0.0.1:{port}"), client_id)
    return client


def latency(port: int, workdir: Path, events: int) -> dict[str, float]:
    counter = Counter(port)
    outbox = Outbox(workdir / "latency.db", TOPIC)
    client = seat_client(port, "bench-seat")
    pump = OutboxPump(client, outbox, rate_per_s=None)
    pump.attach()
    client.connect("127.0.0.1", port)
    client.loop_start()
    pump.start()
    wait_until(lambda: pump._connected, 10, "pump connected")  # noqa: SLF001
    enqueue_ms: list[float] = []
    total_ms: list[float] = []
    for n in range(events):
        counter.event.clear()
        start = time.perf_counter()
        entry = outbox.add_event("hold.long", {"n": n})
        stored = time.perf_counter()
        while entry.seq not in counter.arrived:
            counter.event.wait(1.0)
            counter.event.clear()
        total_ms.append((counter.arrived[entry.seq] - start) * 1000)
        enqueue_ms.append((stored - start) * 1000)
    pump.stop()
    client.disconnect()
    client.loop_stop()
    counter.stop()
    outbox.close()

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=1000)[int(q * 10) - 1]

    return {
        "p50_ms": statistics.median(total_ms),
        "p99_ms": pct(total_ms, 99.0),
        "enqueue_p50_ms": statistics.median(enqueue_ms),
        "enqueue_p99_ms": pct(enqueue_ms, 99.0),
    }


def seat_latency(port: int, workdir: Path, events: int) -> dict[str, float]:
    """The whole seat path: `Runtime.sink(input)` -> core -> outbox (fsync) -> pump -> paho ->
    Mosquitto -> subscriber. `cmd/identify` is the input: it makes exactly one event."""
    from edge.core.clock import Clock
    from edge.core.inputs import Identify
    from edge.shell.config import CallSection, SeatConfig, SeatSection, load_profile
    from edge.shell.runtime import Devices
    from edge.shell.wiring import build_seat

    url = f"mqtt://127.0.0.1:{port}"
    config = SeatConfig(
        seat=SeatSection(site="bench", id="s01"),
        broker=BrokerSection(url=url),
        call=CallSection(sources=["cti"]),
    )
    runtime = build_seat(
        config,
        load_profile("default"),
        devices=Devices(),
        clock=Clock(),
        broker_url=url,
        heartbeat=False,
        state_dir=str(workdir / "seat"),
    )
    counter = Counter(port)
    stored_at: list[float] = []
    assert runtime.outbox is not None
    runtime.outbox.add_listener(lambda: stored_at.append(time.perf_counter()))
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    assert runtime.link is not None
    runtime.link.connected.wait(10)
    wait_until(lambda: runtime.link is not None and runtime.link.flush(0.1), 10, "seat idle")
    base = counter.count
    total_ms: list[float] = []
    store_ms: list[float] = []
    # Inputs 10 ms apart: a busy seat makes a few events a second, far below the shipped
    # replay pacing (`replay_rate` 200/s, burst 50), which back-to-back inputs would measure.
    slot = time.perf_counter()
    for n in range(events):
        slot += SEAT_INPUT_SPACING_S
        time.sleep(max(0.0, slot - time.perf_counter()))
        counter.event.clear()
        before = counter.count
        stored_at.clear()
        start = time.perf_counter()
        runtime.sink(Identify(request_id=f"b{n}"))
        while counter.count == before:
            counter.event.wait(1.0)
            counter.event.clear()
        total_ms.append((time.perf_counter() - start) * 1000)
        store_ms.append((stored_at[0] - start) * 1000)
    assert counter.count - base == events, "one event per identify"
    runtime.stop()
    thread.join(10)
    counter.stop()
    return {
        "p50_ms": statistics.median(total_ms),
        "p99_ms": statistics.quantiles(total_ms, n=1000)[989],
        "store_p50_ms": statistics.median(store_ms),
        "store_p99_ms": statistics.quantiles(store_ms, n=1000)[989],
    }


def payloads(count: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "boot_id": "1-bench",
                "seq": n,
                "ts": "2026-11-23T08:00:00.000Z",
                "type": "hold.long",
                "data": {"n": n},
            },
            separators=(",", ":"),
        ).encode()
        for n in range(count)
    ]


def drain_raw(port: int, count: int, inflight: int) -> float:
    """Raw paho QoS 1 with the pump's window and batching but nothing stored: at most four
    windows handed to paho (queueing all 100,000 in paho is quadratic: it scans its whole
    message dict at every PUBACK). Timed until the subscriber has them all."""
    counter = Counter(port, until=count)
    client = seat_client(port, "bench-raw")
    client.max_inflight_messages_set(inflight)
    acked = 0
    sent = 0
    cond = threading.Condition()

    def on_publish(*args: Any) -> None:
        nonlocal acked
        with cond:
            acked += 1
            if sent - acked <= 3 * inflight:  # wake the feeder once a window is free
                cond.notify()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    data = payloads(count)
    start = time.perf_counter()
    while sent < count:
        # The pump's batching without the database: refill once a wire window is free.
        with cond:
            cond.wait_for(lambda: sent - acked <= 3 * inflight)  # noqa: B023 (current value wanted)
            room = 4 * inflight - (sent - acked)
            batch = data[sent : sent + room]
            sent += len(batch)
        for body in batch:
            client.publish(TOPIC, body, qos=1)
    wait_until(lambda: counter.done_at is not None, 600, "raw backlog at the subscriber")
    assert counter.done_at is not None
    elapsed = counter.done_at - start
    client.disconnect()
    client.loop_stop()
    counter.stop()
    return count / elapsed


def drain_outbox(port: int, workdir: Path, count: int, inflight: int) -> float:
    outbox = Outbox(workdir / "drain.db", TOPIC, budget_bytes=1 << 30)
    for first in range(0, count, 1000):
        outbox.add_events(("hold.long", {"n": n}, None) for n in range(first, first + 1000))
    counter = Counter(port, until=count)
    client = seat_client(port, "bench-outbox")
    pump = OutboxPump(client, outbox, rate_per_s=None, max_inflight=inflight)
    pump.attach()
    client.connect("127.0.0.1", port)
    start = time.perf_counter()
    client.loop_start()
    pump.start()
    wait_until(lambda: counter.done_at is not None, 600, "outbox backlog at the subscriber")
    assert counter.done_at is not None
    elapsed = counter.done_at - start
    wait_until(lambda: outbox.stats().pending == 0, 60, "all acknowledged")
    pump.stop()
    client.disconnect()
    client.loop_stop()
    counter.stop()
    outbox.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--inflight", type=int, default=32)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory(prefix="seatbox-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        conf = (
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\n"
        )
        broker = Mosquitto(workdir, conf, port)
        broker.start()
        try:
            seat = seat_latency(port, workdir, args.events)
            print(
                f"latency seat queue->subscriber over {args.events} events (Runtime, outbox, "
                f"pump): p50 {seat['p50_ms']:.2f} ms, p99 {seat['p99_ms']:.2f} ms (of which queue "
                f"to stored on disk p50 {seat['store_p50_ms']:.2f} ms, "
                f"p99 {seat['store_p99_ms']:.2f} ms)"
            )
            result = latency(port, workdir, args.events)
            print(
                f"latency enqueue->subscriber over {args.events} events: "
                f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms "
                f"(of which durable enqueue p50 {result['enqueue_p50_ms']:.2f} ms, "
                f"p99 {result['enqueue_p99_ms']:.2f} ms)"
            )
            raw = drain_raw(port, args.backlog, args.inflight)
            boxed = drain_outbox(port, workdir, args.backlog, args.inflight)
            print(
                f"backlog drain of {args.backlog} events, in-flight {args.inflight}: "
                f"raw paho QoS 1 {raw:.0f}/s, outbox {boxed:.0f}/s "
                f"(outbox costs {100 * (1 - boxed / raw):.0f} %)"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
