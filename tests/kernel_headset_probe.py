"""Run in the QEMU guest by tests/test_gadget_guest.py (stdlib + drivers + hidapi's hidraw
module): real headsets emulated through /dev/uhid (tests/uhid_headset.py), driven by the
project's hidraw driver as the seat runs it (`HidrawHeadset("auto")`: hidapi's enumeration and
hidraw backend, no udev in the guest so hot-plug is found by polling).

    python3 headset_probe.py SCRIPT.json

SCRIPT (written by the test on the host, from the descriptors): a list of headsets, each with
its descriptor, ids, the input reports to press (and how many driver events the test expects,
used only to know how long to wait), the LED states to write (with the reports the test
expects, likewise only for waiting). The probe asserts nothing: it prints what happened, one
line per headset, `HEADSET <name> <json>`, and the test compares it with its expectations.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import sys
import time
from pathlib import Path
from typing import Any

from uhid_headset import UhidHeadset, wait_hidraw

from drivers.hid.events import HeadsetPlugged, HeadsetUnplugged, LedState
from drivers.hid.hidraw import HidrawHeadset

EVENT_WAIT = 5.0  # seconds: the deadline for anything the guest should see at once
PLUG_WAIT = 10.0


class Recorder(logging.Handler):
    """The driver's log lines (what it says about plug and unplug)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _event(item: object) -> dict[str, Any]:
    fields = dataclasses.asdict(item) if dataclasses.is_dataclass(item) else {}  # type: ignore[arg-type]
    return {"type": type(item).__name__, **fields}


class Events:
    """What the driver hands the seat, with the time it arrived."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[float, object]] = queue.Queue()
        self.seen: list[tuple[float, object]] = []

    def sink(self, item: object) -> None:
        self._queue.put((time.monotonic(), item))

    def _take(self, timeout: float) -> bool:
        try:
            self.seen.append(self._queue.get(timeout=max(0.0, timeout)))
        except queue.Empty:
            return False
        return True

    def wait_count(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and self._take(deadline - time.monotonic()):
            pass

    def wait_type(self, kind: type, timeout: float) -> tuple[float, object] | None:
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while True:
            for at, item in self.seen[start:]:
                if isinstance(item, kind):
                    return at, item
            start = len(self.seen)
            if not self._take(deadline - time.monotonic()):
                return None

    def drain(self) -> None:
        while self._take(0.0):
            pass


def _latest(device: UhidHeadset, since: int) -> dict[int, str]:
    latest: dict[int, str] = {}
    for write in device.writes[since:]:
        latest[write.data[0] if write.data else -1] = write.data.hex()
    return latest


def _wait_leds(device: UhidHeadset, since: int, expected: dict[str, str]) -> None:
    """Until the latest report of each expected ID since `since` is the expected one (the
    deadline otherwise); then whatever else comes at once."""
    want = {int(k): v for k, v in expected.items()}
    deadline = time.monotonic() + EVENT_WAIT
    while time.monotonic() < deadline:
        latest = _latest(device, since)
        if all(latest.get(k) == v for k, v in want.items()):
            break
        device.pump(0.05)
    device.pump(0.05)


def _writes(device: UhidHeadset, since: int, t0: float) -> list[dict[str, Any]]:
    return [
        {"data": w.data.hex(), "via": w.via, "rtype": w.rtype, "ms": round((w.at - t0) * 1e3, 2)}
        for w in device.writes[since:]
    ]


def run_headset(spec: dict[str, Any], log: Recorder) -> dict[str, Any]:
    out: dict[str, Any] = {}
    log.lines.clear()
    device = UhidHeadset(
        bytes.fromhex(spec["descriptor"]),
        name=spec["hid_name"],
        vendor=spec["vendor"],
        product=spec["product"],
    )
    events = Events()
    driver = HidrawHeadset("auto", reconnect_min=0.05, reconnect_max=0.5)
    try:
        t0 = time.monotonic()
        device.create()
        node = wait_hidraw(spec["hid_name"], True, EVENT_WAIT)
        out["node"] = node
        out["node_ms"] = round((time.monotonic() - t0) * 1e3, 1)
        if node is None:
            raise RuntimeError(f"no hidraw node for {spec['hid_name']!r} within {EVENT_WAIT} s")
        device.pump(0.0)
        t0 = time.monotonic()
        driver.start(events.sink)
        plugged = events.wait_type(HeadsetPlugged, PLUG_WAIT)
        if plugged is None:
            raise RuntimeError(f"the driver did not open {node} within {PLUG_WAIT} s")
        out["plugged"] = _event(plugged[1])
        out["plugged_ms"] = round((plugged[0] - t0) * 1e3, 1)
        _wait_leds(device, 0, spec["on_plug"])
        out["on_plug"] = _writes(device, 0, t0)

        # The agent presses the headset's buttons.
        presses = []
        for step in spec["presses"]:
            first = len(events.seen)
            sent = device.send_input(bytes.fromhex(step["report"]))
            events.wait_count(first + step["expect"], EVENT_WAIT)
            presses.append({"sent": sent, "from": first})
        events.drain()
        for press, step in zip(presses, spec["presses"], strict=True):
            press["control"] = step["control"]
        # Attribute each event to the last press sent before it arrived.
        for at, item in events.seen:
            if isinstance(item, HeadsetPlugged | HeadsetUnplugged):
                continue
            owner = [p for p in presses if p["sent"] <= at]
            if owner:
                p = owner[-1]
                p.setdefault("events", []).append(_event(item))
                p.setdefault("ms", round((at - p["sent"]) * 1e3, 2))
        out["presses"] = [
            {"control": p["control"], "events": p.get("events", []), "ms": p.get("ms")}
            for p in presses
        ]

        # The seat shows call states on the headset's LEDs.
        leds = []
        for step in spec["leds"]:
            since = len(device.writes)
            t0 = time.monotonic()
            driver.write_leds(LedState(**step["state"]))
            _wait_leds(device, since, step["changed"])
            leds.append({"label": step["label"], "writes": _writes(device, since, t0)})
        out["leds"] = leds

        # Unplugged mid-call and plugged back: the driver says so and shows the call again.
        live = spec["replug"]
        since = len(device.writes)
        driver.write_leds(LedState(**live["state"]))
        _wait_leds(device, since, live["changed"])
        t0 = time.monotonic()
        device.destroy()
        gone = events.wait_type(HeadsetUnplugged, EVENT_WAIT)
        out["unplugged"] = _event(gone[1]) if gone else None
        out["unplugged_ms"] = round((gone[0] - t0) * 1e3, 1) if gone else None
        out["node_after_destroy"] = wait_hidraw(spec["hid_name"], False, EVENT_WAIT)
        since = len(device.writes)
        t0 = time.monotonic()
        device.create()
        back = events.wait_type(HeadsetPlugged, PLUG_WAIT)
        out["replugged"] = _event(back[1]) if back else None
        out["replugged_ms"] = round((back[0] - t0) * 1e3, 1) if back else None
        _wait_leds(device, since, live["expect"])
        out["on_replug"] = _writes(device, since, t0)
        after = live["press"]
        first = len(events.seen)
        sent = device.send_input(bytes.fromhex(after["report"]))
        events.wait_count(first + 1, EVENT_WAIT)
        device.send_input(bytes.fromhex(after["release"]))
        out["press_after_replug"] = [_event(item) for _, item in events.seen[first:]]
        out["press_after_replug_ms"] = (
            round((events.seen[first][0] - sent) * 1e3, 2) if len(events.seen) > first else None
        )
    finally:
        driver.stop()
        device.close()
    out["node_after_close"] = wait_hidraw(spec["hid_name"], False, EVENT_WAIT)
    out["log"] = list(log.lines)
    return out


def _dmesg_tail() -> str:
    try:
        import subprocess

        return subprocess.run(["dmesg"], capture_output=True, text=True).stdout[-1500:]
    except OSError as err:
        return str(err)


def main() -> int:
    script = json.loads(Path(sys.argv[1]).read_text())
    log = Recorder()
    logging.getLogger("drivers").addHandler(log)
    logging.getLogger("drivers").setLevel(logging.INFO)
    failed = 0
    for spec in script:
        started = time.monotonic()
        try:
            result = run_headset(spec, log)
        except Exception as err:  # the guest's console must show what went wrong
            result = {"error": f"{type(err).__name__}: {err}", "log": list(log.lines)}
            result["dmesg"] = _dmesg_tail()
            failed += 1
        result["seconds"] = round(time.monotonic() - started, 2)
        print(f"HEADSET {spec['name']} {json.dumps(result)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
