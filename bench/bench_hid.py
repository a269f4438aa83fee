"""Headset driver speed: descriptor parse + layout, and input reports decoded per second.

Prints the figures and the machine; record them in docs/benchmarks.md (Headset driver).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model  # noqa: E402  (bench/machine.py)

from drivers.hid.events import LedState  # noqa: E402
from drivers.hid.layout import layout_from_bytes  # noqa: E402
from drivers.hid.protocol import TelephonyProtocol  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "hid"


def main() -> None:
    print(f"machine: {platform.uname()}")
    print(f"cpu: {cpu_model()}  python: {platform.python_version()}")
    descriptors = [bytes.fromhex(p.read_text().strip()) for p in sorted(DATA.glob("*.hex"))]
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        for data in descriptors:
            layout_from_bytes(data)
    elapsed = time.perf_counter() - start
    per = elapsed / (rounds * len(descriptors)) * 1e6
    print(f"parse + layout: {per:.0f} us per descriptor ({len(descriptors)} real ones)")

    layout = layout_from_bytes(bytes.fromhex((DATA / "jabra_evolve_link_ms.hex").read_text()))
    protocol = TelephonyProtocol(layout)
    reports = [b"\x02\x00\x00", b"\x02\x01\x00", b"\x02\x05\x00", b"\x02\x01\x00"]
    n = 50_000
    start = time.perf_counter()
    for i in range(n):
        protocol.on_input_report(reports[i % 4], now=i * 0.2)
    elapsed = time.perf_counter() - start
    print(f"input reports: {n / elapsed:,.0f} per second ({elapsed / n * 1e6:.1f} us each)")
    start = time.perf_counter()
    for i in range(n):
        protocol.led_reports(LedState(off_hook=True, mute=bool(i % 2)), now=i * 0.2)
    elapsed = time.perf_counter() - start
    print(f"LED compositions: {n / elapsed:,.0f} per second")


if __name__ == "__main__":
    main()
