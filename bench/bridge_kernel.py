"""The bridge's HID latencies in the kernel tier's guest (emulation figures): the bridged
seat of tests/test_gadget_guest.py, N rounds of tests/bridge_script.py per headset model.

- LED to headset: the softphone writes an LED output report on the gadget's PC-side hidraw
  (dummy_hcd) -> usbhid -> f_hid -> the seat's bridge -> the seat -> the hidraw driver ->
  /dev/uhid: until the headset's first LED report arrives.
- Button to PC: the headset's input report into /dev/uhid -> hidraw -> the seat -> the bridge
  -> /dev/hidg0 -> dummy_hcd -> usbhid: until the PC's hidraw reads the canonical report.

These are **emulation figures**: QEMU in software emulation (TCG, one virtual CPU), Debian's
6.1 kernel, a virtual USB controller and a virtual headset, on a machine shared with other
work. They bound the relay's own cost from above; a Pi 4 on a real USB link is another
measurement (docs/bridge.md).

Run: .venv/bin/python bench/bridge_kernel.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from guest import Guest, GuestUnavailable  # noqa: E402
from kernel_support import BRIDGE_JOB, JOB_PRELUDE, guest_files, kernel_image  # noqa: E402
from machine import describe  # noqa: E402

JOB = JOB_PRELUDE + "mount -t configfs none /sys/kernel/config\n"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f}, min {ordered[0]:.1f}, "
        f"max {ordered[-1]:.1f} (n={len(ordered)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="script runs per headset model")
    args = parser.parse_args()
    try:
        started = time.monotonic()
        image = kernel_image()
        files = guest_files()
        build_s = time.monotonic() - started
    except GuestUnavailable as err:
        print(f"bridge_kernel: no QEMU guest: {err}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with Guest(image, JOB + BRIDGE_JOB.format(probe_args=f"--rounds {args.rounds}"), files) as vm:
        code = vm.exit_code(300 + 120 * args.rounds)
        console = vm.text()
        ready = vm.line_time(re.compile(r"^GUEST-READY"))
    wall = time.monotonic() - started
    runs = [
        (m.group(1), json.loads(m.group(2)))
        for m in re.finditer(r"^BRIDGE (\S+) (.*)$", console, re.M)
    ]
    failed = [(name, r.get("failed") or r.get("error")) for name, r in runs if not r.get("ok")]
    print(f"machine: {describe()}")
    print(f"guest: kernel {image.kernel_version}, QEMU TCG, 1 vCPU; image/files {build_s:.1f} s")
    print("emulation figures (QEMU software emulation, dummy_hcd, uhid): not a Pi's")
    print()
    print("| model | runs | LED to headset | button to PC |")
    print("|---|---|---|---|")
    every_led: list[float] = []
    every_button: list[float] = []
    for name in dict.fromkeys(name for name, _ in runs):
        mine = [r for n, r in runs if n == name and r.get("ok")]
        led = [v for r in mine for v in r["led_to_headset_ms"]]
        button = [v for r in mine for v in r["button_to_pc_ms"]]
        every_led += led
        every_button += button
        print(f"| {name} | {len(mine)} | {spread(led)} | {spread(button)} |")
    print(
        f"| all | {sum(1 for _, r in runs if r.get('ok'))} | {spread(every_led)} | {spread(every_button)} |"
    )
    print()
    print(f"QEMU start -> guest init {ready or 0:.1f} s; boot to power-off {wall:.0f} s; rc {code}")
    for name, why in failed:
        print(f"FAILED {name}: {why}")
    return 0 if code == 0 and not failed and runs else 1


if __name__ == "__main__":
    sys.exit(main())
