"""Run in the QEMU guest by tests/test_gadget_guest.py (stdlib + drivers only): the relay's
PC side against the PC's hidraw node of the gadget on dummy_hcd. Prints one JSON line.

    python3 relay_probe.py unbound LABEL  # no gadget node: a write is pc_connected False
    python3 relay_probe.py relay UDC      # both ways through hidraw, then the PC unplugged

Prints `RELAY <LABEL or relay> <json>`.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path

from drivers.gadget.hidg import HidgDevice
from drivers.gadget.relay import CanonicalLeds, PcReports, output_report, parse_output_report
from drivers.hid.events import Drop, Flash, HookSwitch, PhoneMute, Redial, Volume

# What the scripted softphone shows: ring, answer, mute, hold, hang up.
SOFTPHONE = [
    CanonicalLeds(ring=True, ringer=True),
    CanonicalLeds(off_hook=True),
    CanonicalLeds(off_hook=True, mute=True, microphone=True),
    CanonicalLeds(off_hook=True, hold=True),
    CanonicalLeds(),
]
# What the agent presses on the headset: lift, flash, mute, redial, reject, volume up and
# down (the Consumer report), hang up.
AGENT = [
    HookSwitch(off_hook=True),
    Flash(),
    PhoneMute(),
    Redial(),
    Drop(),
    Volume(step=1),
    Volume(step=-1),
    HookSwitch(False),
]


def _state(node: HidgDevice, written: bool) -> dict[str, object]:
    return {"written": written, "pc_connected": node.pc_connected, "problem": node.problem}


def _hidraw() -> str:
    names = sorted(os.listdir("/sys/class/hidraw"))
    if len(names) != 1:
        raise SystemExit(f"expected one hidraw, found {names}")
    return f"/dev/{names[0]}"


def _wait(predicate: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def unbound() -> dict[str, object]:
    node = HidgDevice("auto")
    written = node.write_report(b"\x01\x01")
    return {"unbound": _state(node, written), "read": node.read_report()}


def relay(udc: str) -> dict[str, object]:
    node = HidgDevice("auto")
    hidraw = os.open(_hidraw(), os.O_RDWR | os.O_NONBLOCK)
    out: dict[str, object] = {"hidg": None, "leds": [], "inputs": []}
    leds: list[dict[str, object]] = []
    for shown in SOFTPHONE:  # (a) the softphone writes, the box reads and translates
        report = output_report(shown)
        os.write(hidraw, report)
        started = time.monotonic()
        data = node.wait_report(3.0)
        item: dict[str, object] = {"wrote": report.hex(), "read": data.hex() if data else None}
        item["ms"] = round((time.monotonic() - started) * 1000, 1)
        if data:
            host = parse_output_report(data)
            item["host"] = {k: getattr(host, k) for k in ("off_hook", "ring", "hold", "mute")}
        leds.append(item)
    out["leds"] = leds
    out["hidg"] = node.path
    pc = PcReports()
    inputs: list[dict[str, object]] = []
    for event in AGENT:  # (b) the box writes, the PC's hidraw reads
        for report in pc.reports(event):
            ok = node.write_report(report, timeout=2.0)
            ready, _, _ = select.select([hidraw], [], [], 3.0)
            got = os.read(hidraw, 64) if ready else b""
            inputs.append({"wrote": report.hex(), "ok": ok, "read": got.hex()})
    out["inputs"] = inputs
    out["connected_after_writes"] = _state(node, True)
    os.close(hidraw)
    # (c) the PC goes away (soft disconnect of the controller): a write is a state, not a crash.
    Path(f"/sys/class/udc/{udc}/soft_connect").write_text("disconnect\n")
    out["hidraw_gone"] = _wait(lambda: not os.listdir("/sys/class/hidraw"), 5.0)
    written = node.write_report(b"\x01\x01")
    out["unplugged"] = _state(node, written)
    out["read_unplugged"] = node.read_report()
    # Plugged back for the rest of the job (`down`); the PC's re-enumeration after a soft
    # reconnect was not seen within 10 s on dummy_hcd, so re-plug is not asserted here.
    Path(f"/sys/class/udc/{udc}/soft_connect").write_text("connect\n")
    node.close()
    return out


def main() -> int:
    mode = sys.argv[1]
    label = sys.argv[2] if mode == "unbound" else mode
    try:
        result = unbound() if mode == "unbound" else relay(sys.argv[2])
    except Exception as err:  # the guest's console must show what went wrong
        print(f"RELAY {label} " + json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    print(f"RELAY {label} " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
