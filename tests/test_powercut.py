"""Power cuts for real: the seat's outbox on ext4 in a QEMU guest running Debian's kernel, the
VM killed mid-burst twice; after each boot every committed event reaches the broker, none is
invented, each boot numbers its events from 0 without a gap.

Marked `guest` (about a minute on 2 cores): `pytest -m "not guest"` leaves it out.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest import GuestImage
from powercut_support import (
    PowerCutRig,
    Subscriber,
    canary,
    fsck,
    guest_image_or_skip,
    run_cuts,
)
from support import Mosquitto

pytestmark = [pytest.mark.guest, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def image() -> GuestImage:
    return guest_image_or_skip()


@pytest.fixture
def floor(broker: Mosquitto) -> Iterator[Subscriber]:
    subscriber = Subscriber(broker.port)
    yield subscriber
    subscriber.stop()


def test_power_cuts_mid_burst_lose_no_committed_event_and_invent_none(
    image: GuestImage, broker: Mosquitto, floor: Subscriber, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SEATBOX_POWERCUT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    # Cut the first boot (offline) and the second (online, publishing its backlog) after a
    # random number of committed events each; the third boot drains.
    cut_after = [rng.randint(20, 150), rng.randint(20, 150)]
    rig = PowerCutRig(image, tmp_path, broker.port)
    figures = run_cuts(rig, floor, cut_after, final_events=30)
    where = f"(seed {seed}, cuts after {cut_after}; SEATBOX_POWERCUT_SEED={seed} repeats them)"

    assert canary(rig.boots) == ("kept", ""), (
        f"the cut did not drop the guest's page cache: canary {canary(rig.boots)} {where}"
    )
    assert figures.problems == [], f"{where}\n" + "\n".join(figures.problems)
    assert figures.lost_committed == 0 and figures.invented == 0
    assert [boot.cut for boot in rig.boots] == [True, True, False]
    assert len({boot.boot_id for boot in rig.boots}) == 3
    counters = [int(boot.boot_id.split("-")[0]) for boot in rig.boots]
    assert counters == list(range(counters[0], counters[0] + 3)), f"boot counters: {counters}"
    assert figures.committed >= sum(cut_after) + 30
    assert fsck(rig.disk) == "", f"ext4 not clean after the cuts {where}"
