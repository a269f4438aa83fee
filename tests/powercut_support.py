"""Power cuts for real: the seat's outbox on an ext4 virtual disk in a QEMU guest (Debian's
kernel), the VM SIGKILLed mid-burst, booted again on the same disk; a subscriber on the host
checks what arrives. Shared by tests/test_powercut.py and bench/powercut.py.

A cut is a SIGKILL of QEMU: the guest's page cache and QEMU's unwritten buffers are lost; what
QEMU had already written to the raw image stays in the host's page cache (the host does not
crash). So the test catches a missing fsync in the guest (data never handed to the disk), not
a disk that loses acknowledged writes from its own cache.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from guest import Disk, Guest, GuestImage, GuestSpec, GuestUnavailable, build_image, qemu_binary
from guest.build import DEFAULT_PYTHON_IMPORTS, python_sources
from paho.mqtt.enums import CallbackAPIVersion
from powercut_seat import TOPIC, event_for
from support import wait_until

from edge.shell.outbox.store import iso_utc

REPO = Path(__file__).resolve().parent.parent
SPEC = GuestSpec(
    modules=("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4"),
    # paho itself comes with each boot (guest_files); its standard-library needs go in here.
    python_imports=(*DEFAULT_PYTHON_IMPORTS, "paho.mqtt.client"),
)
DISK_MB = 64
COMMIT = re.compile(r"^COMMIT (\S+) (\d+)$")
SEAT_BOOT = re.compile(r"^SEAT-BOOT (\S+) ")
BOOT_TIMEOUT_S = 240  # boot + Python start under software emulation on a loaded machine


def guest_image_or_skip() -> GuestImage:
    """The cached guest image; skip (saying what is missing) without QEMU or a kernel."""
    try:
        qemu_binary()
        return build_image(SPEC)
    except GuestUnavailable as err:
        pytest.skip(f"no QEMU guest: {err}")


def new_disk(path: Path, size_mb: int = DISK_MB) -> Path:
    """A raw image with a fresh ext4 (journal and inode tables initialised now, so the guest
    does no lazy init writes during a burst)."""
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"
    with path.open("wb") as image:
        image.truncate(size_mb * 1024 * 1024)
    subprocess.run(
        [mkfs, "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def fsck(path: Path) -> str:
    """e2fsck's verdict on a cleanly unmounted image: '' when clean, else its report."""
    e2fsck = shutil.which("e2fsck") or "/sbin/e2fsck"
    done = subprocess.run([e2fsck, "-f", "-n", str(path)], capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stdout + done.stderr


class Subscriber:
    """The floor's view: every copy of every event on the seat's topic, in arrival order."""

    def __init__(self, port: int) -> None:
        self.arrivals: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="powercut-floor")
        self.client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 10, "the floor subscriber's SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.arrivals.append(json.loads(msg.payload))

    def delivered_keys(self) -> set[tuple[str, int]]:
        with self._lock:
            return {(event["boot_id"], event["seq"]) for event in self.arrivals}

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.arrivals)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Boot:
    boot_id: str
    committed: list[int]  # seqs whose COMMIT line the host saw before the cut (or the end)
    cut: bool
    ready_s: float | None  # QEMU start -> the guest's init ran (kernel boot)
    seat_s: float | None  # QEMU start -> the seat's outbox opened
    console: str


@dataclass
class Figures:
    cuts: int = 0
    boots: int = 0
    committed: int = 0  # COMMIT lines seen, all boots
    delivered: int = 0  # distinct events arrived, all boots
    survived_uncommitted: int = 0  # arrived past the last COMMIT seen before a cut
    lost_committed: int = 0
    invented: int = 0
    duplicates: int = 0  # copies beyond the first (QoS 1, acks lost in a cut): allowed
    problems: list[str] = field(default_factory=list)


def guest_files() -> dict[str, bytes]:
    """The seat program, edge.shell.outbox (store, pump and the error kinds they raise) and
    paho, laid over the image at each boot."""
    import paho

    modules = (
        "edge/__init__.py",
        "edge/base/__init__.py",
        "edge/base/errors.py",
        "edge/shell/__init__.py",
        "edge/shell/outbox/__init__.py",
        "edge/shell/outbox/store.py",
        "edge/shell/outbox/pump.py",
        "drivers/__init__.py",
        "drivers/errors.py",
    )
    return python_sources(
        {
            "/opt/seat/powercut_seat.py": Path(__file__).with_name("powercut_seat.py"),
            **{f"/opt/seat/{name}": REPO / name for name in modules},
            "/opt/seat/paho": Path(paho.__path__[0]),
        }
    )


# The canary proves the cut is real: a file written and not synced before the seat starts,
# on a second ext4 whose journal commits only every 600 s, must be gone after the cut, and a
# file written then synced must be there. (A cut that kept the guest's page cache would
# prove nothing about fsync.)
CANARY_WRITE = (
    "mkdir -p /canary\n"
    "mount -t ext4 -o commit=600 /dev/vdb /canary || exit 22\n"
    "echo kept > /canary/synced\n"
    "sync\n"
    "echo lost > /canary/unsynced\n"
)
CANARY_READ = (
    "mkdir -p /canary\n"
    "mount -t ext4 /dev/vdb /canary || exit 22\n"
    'echo "CANARY synced=$(cat /canary/synced 2>/dev/null)'
    ' unsynced=$(cat /canary/unsynced 2>/dev/null)"\n'
    "umount /canary\n"
)
CANARY = re.compile(r"^CANARY synced=(\S*) unsynced=(\S*)$")


def seat_job(
    python: str, broker_port: int | None, events: int, drain: bool, canary: str = ""
) -> str:
    broker = f"--broker 10.0.2.2:{broker_port}" if broker_port else ""
    flags = f"--events {events} {'--drain' if drain else ''} {broker}"
    return (
        canary + "mkdir -p /state\n"
        "mount -t ext4 /dev/vda /state || exit 20\n"
        f"PYTHONPATH=/opt/seat {python} -u /opt/seat/powercut_seat.py --state /state {flags}\n"
        "rc=$?\n"
        "umount /state || rc=21\n"
        "exit $rc\n"
    )


class PowerCutRig:
    """One seat disk, one broker, one subscriber; boots the guest on that disk again and
    again, cutting the power where told."""

    def __init__(self, image: GuestImage, workdir: Path, broker_port: int) -> None:
        self.image = image
        self.disk = new_disk(workdir / "seat.img")
        self.canary_disk = new_disk(workdir / "canary.img", 16)
        self.broker_port = broker_port
        self.files = guest_files()
        self.boots: list[Boot] = []

    def boot(self, *, online: bool, cut_after: int | None, events: int = 0) -> Boot:
        """Boot, run the seat; with `cut_after`, SIGKILL QEMU once that many COMMIT lines of
        this boot are on the console; else let it write `events`, drain and power off."""
        assert self.image.python is not None, "the guest image has no Python"
        # The canary is written on the first boot and read on the second.
        canary = {0: CANARY_WRITE, 1: CANARY_READ}.get(len(self.boots), "")
        job = seat_job(
            self.image.python,
            self.broker_port if online else None,
            0 if cut_after is not None else events,
            drain=cut_after is None,
            canary=canary,
        )
        disks = [Disk(self.disk), Disk(self.canary_disk)]
        with Guest(self.image, job, self.files, disks, net=online) as vm:
            vm.wait_line(SEAT_BOOT, BOOT_TIMEOUT_S)
            if cut_after is not None:
                vm.wait_for(
                    lambda: len(vm.matching(COMMIT)) >= cut_after,
                    120,
                    f"{cut_after} committed events",
                )
                vm.kill()
            else:
                code = vm.exit_code(300)
                assert code == 0, f"the seat's job failed ({code}):\n{vm.text()[-3000:]}"
            boot = Boot(
                boot_id=vm.wait_line(SEAT_BOOT, 1).group(1),
                committed=[int(m.group(2)) for m in vm.matching(COMMIT)],
                cut=cut_after is not None,
                ready_s=vm.line_time(re.compile(r"^GUEST-READY")),
                seat_s=vm.line_time(SEAT_BOOT),
                console=vm.text(),
            )
        self.boots.append(boot)
        return boot


def canary(boots: Sequence[Boot]) -> tuple[str, str] | None:
    """(synced, unsynced) contents as the second boot read them, None if not read."""
    if len(boots) < 2:
        return None
    found = [CANARY.search(line) for line in boots[1].console.splitlines()]
    hit = next((m for m in found if m), None)
    return (hit.group(1), hit.group(2)) if hit else None


def run_cuts(
    rig: PowerCutRig, subscriber: Subscriber, cut_after: Sequence[int], final_events: int
) -> Figures:
    """Cut boots 0, 2, 4... offline (a cut during an outage: all their events only on disk)
    and boots 1, 3, 5... online while they publish the backlog and write new events, each
    after its `cut_after` committed events; then a last boot that writes `final_events`,
    drains and powers off. The figures of the whole run."""
    for index, count in enumerate(cut_after):
        rig.boot(online=index % 2 == 1, cut_after=count)
    final = rig.boot(online=True, cut_after=None, events=final_events)
    # One publisher, QoS 1, in order: its last event arriving means all before it did.
    last = (final.boot_id, final_events - 1)
    wait_until(lambda: last in subscriber.delivered_keys(), 60, f"event {last} at the subscriber")
    return check(rig.boots, subscriber.events())


def check(boots: Sequence[Boot], arrivals: Sequence[dict[str, Any]]) -> Figures:
    """Compare what arrived with what each boot committed: every committed event delivered,
    none invented (each arrival is exactly what the seat wrote for that seq), seqs of each
    boot continuous from 0, a new boot id at every boot."""
    figures = Figures(cuts=sum(b.cut for b in boots), boots=len(boots))
    ids = [b.boot_id for b in boots]
    if len(set(ids)) != len(ids):
        figures.problems.append(f"a boot id was reused: {ids}")
    first: dict[tuple[str, int], dict[str, Any]] = {}
    for event in arrivals:
        key = (event["boot_id"], event["seq"])
        if key in first:
            figures.duplicates += 1
            if event != first[key]:
                figures.problems.append(f"two different events under {key}")
            continue
        first[key] = event
    figures.delivered = len(first)
    known = set(ids)
    for (boot_id, seq), event in first.items():
        if boot_id not in known:
            figures.invented += 1
            figures.problems.append(f"event of a boot that never ran: {boot_id}/{seq}")
            continue
        event_type, data, ts = event_for(boot_id, seq)
        expected = {
            "boot_id": boot_id,
            "seq": seq,
            "ts": iso_utc(ts),
            "type": event_type,
            "data": data,
        }
        if event != expected:
            figures.invented += 1
            figures.problems.append(f"{boot_id}/{seq} is not what the seat wrote: {event}")
    for boot in boots:
        committed = set(boot.committed)
        figures.committed += len(committed)
        if boot.committed != list(range(len(boot.committed))):
            odd = sorted(set(range(len(boot.committed))) ^ committed)
            figures.problems.append(f"boot {boot.boot_id}: COMMIT lines out of order at {odd[:20]}")
        delivered = sorted(seq for b, seq in first if b == boot.boot_id)
        lost = sorted(committed - set(delivered))
        figures.lost_committed += len(lost)
        if lost:
            figures.problems.append(f"boot {boot.boot_id}: committed but never delivered {lost}")
        if delivered != list(range(len(delivered))):
            gaps = sorted(set(range(max(delivered, default=-1) + 1)) - set(delivered))
            figures.problems.append(f"boot {boot.boot_id}: gap in delivered seqs at {gaps[:20]}")
        if boot.cut:
            figures.survived_uncommitted += len(set(delivered) - committed)
        elif set(delivered) != committed:
            figures.problems.append(
                f"boot {boot.boot_id} (not cut): delivered {len(delivered)}, "
                f"committed {len(committed)}"
            )
    return figures
