"""Power cuts of the seat's outbox in the QEMU guest (tests/guest/, Debian's kernel, ext4 on
a virtual disk): N cuts mid-burst (alternately offline and while publishing), then a boot that
drains; prints what was committed, delivered, lost and invented, and the boot times.

Run: .venv/bin/python bench/powercut.py [--cuts 20] [--seed N]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from guest import GuestUnavailable, build_image, qemu_binary  # noqa: E402
from powercut_support import (  # noqa: E402
    SPEC,
    PowerCutRig,
    Subscriber,
    canary,
    fsck,
    run_cuts,
)
from support import mosquitto  # noqa: E402


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.1f} s, min {min(values):.1f}, max {max(values):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cuts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--min-events", type=int, default=1, help="fewest commits before a cut")
    parser.add_argument("--max-events", type=int, default=300, help="most commits before a cut")
    parser.add_argument("--final-events", type=int, default=100)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    cut_after = [rng.randint(args.min_events, args.max_events) for _ in range(args.cuts)]

    try:
        qemu_binary()
        started = time.monotonic()
        image = build_image(SPEC)
        build_s = time.monotonic() - started
    except GuestUnavailable as err:
        print(f"powercut: no QEMU guest: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="powercut-bench-") as scratch:
        workdir = Path(scratch)
        with mosquitto(workdir) as broker:
            floor = Subscriber(broker.port)
            rig = PowerCutRig(image, workdir, broker.port)
            started = time.monotonic()
            try:
                figures = run_cuts(rig, floor, cut_after, args.final_events)
            finally:
                floor.stop()
            wall = time.monotonic() - started
            fs_report = fsck(rig.disk)

    boots = rig.boots
    ready = [b.ready_s for b in boots if b.ready_s is not None]
    seat = [b.seat_s for b in boots if b.seat_s is not None]
    sizes = image.sizes
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, Linux {platform.release()}, "
        f"Python {platform.python_version()}; guest kernel {image.kernel_version} (QEMU TCG)"
    )
    print(f"seed {seed}; cuts after {cut_after} committed events")
    print(
        f"image: initrd {sizes['initrd'] / 1e6:.1f} MB gzip ({sizes['initrd_raw'] / 1e6:.1f} MB raw, "
        f"Python {sizes['python_raw'] / 1e6:.1f} MB, modules {sizes['modules_raw'] / 1e6:.1f} MB), "
        f"vmlinuz {sizes['vmlinuz'] / 1e6:.1f} MB; build/cache lookup {build_s:.1f} s"
    )
    print()
    print("| what | figure |")
    print("|---|---|")
    print(f"| power cuts (SIGKILL of QEMU mid-burst; odd ones while publishing) | {figures.cuts} |")
    print(f"| boots | {figures.boots} |")
    print(f"| events committed (add_event returned, seen on the console) | {figures.committed} |")
    print(f"| events delivered (distinct) | {figures.delivered} |")
    print(
        f"| delivered past the last commit seen before a cut (real, in sequence) | {figures.survived_uncommitted} |"
    )
    print(f"| **committed but lost** | **{figures.lost_committed}** |")
    print(f"| **invented** (not what the seat wrote for that seq) | **{figures.invented}** |")
    print(
        f"| duplicates (acks lost in a cut: sent again, dropped by consumers) | {figures.duplicates} |"
    )
    print(f"| canary (synced / unsynced file after the first cut) | {canary(boots)} |")
    print(f"| e2fsck after the run | {'clean' if not fs_report else 'ERRORS'} |")
    print(f"| QEMU start -> guest init | {spread(ready)} |")
    print(f"| QEMU start -> seat's outbox open | {spread(seat)} |")
    print(f"| whole run | {wall:.0f} s |")
    for problem in figures.problems:
        print(f"PROBLEM: {problem}")
    if fs_report:
        print(fs_report)
    ok = not figures.problems and not fs_report and canary(boots) == ("kept", "")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
