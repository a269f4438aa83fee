"""The day's arrival, answer and away tallies survive a restart of the service on the same day.

Before this, a seat restarted at 10:30 forgot the agent's 08:35 arrival: an agent on a break at
that moment was reported absent. Core level: a `RestoreDay` input on the fake-clock harness.
Shell level: `DayStore` on a runtime playing scenarios in simulated time, and on disk.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from schema_support import validate
from seat_harness import TZ, Harness

from drivers.hid.events import HeadsetInfo, HeadsetPlugged
from drivers.radar.events import RadarReport
from edge.core.inputs import RestoreDay, decode, encode
from edge.core.snapshot import snapshot
from edge.shell.day_store import FILE_NAME, DayStore, tallies
from edge.shell.runtime import Runtime
from edge.shell.scenario import load_scenario
from edge.sim import build as sim

DAY = "2026-11-23"
SITE, SEAT = "lab", "S-day"


def morning() -> Harness:
    """08:30 box up, agent in at 08:35 (ready in time), a break from 09:30 to 09:40."""
    h = Harness(start=datetime(2026, 11, 23, 8, 30, tzinfo=TZ))
    h.at(0.0, HeadsetPlugged(HeadsetInfo()), RadarReport(target="none"))
    h.at(300.0, RadarReport(target="still"))
    h.at(3600.0, RadarReport(target="none"))
    h.at(4200.0, RadarReport(target="still"))
    h.until(5400.0)  # 10:00
    return h


def saved(h: Harness) -> RestoreDay:
    day, norms = tallies(h.state)
    return RestoreDay(day=day, tallies=norms)


def restarted_at_1030(restore: RestoreDay | None) -> Harness:
    """The service restarts at 10:30; the agent is on a break then and back at 10:50."""
    h = Harness(start=datetime(2026, 11, 23, 10, 30, tzinfo=TZ))
    if restore is not None:
        h.at(0.0, restore)
    h.at(0.0, HeadsetPlugged(HeadsetInfo()), RadarReport(target="none"))
    h.at(1200.0, RadarReport(target="still"))
    h.until(1800.0)
    return h


# --- the core -----------------------------------------------------------------------------------


def test_without_the_tally_a_restart_during_a_break_reports_the_agent_absent() -> None:
    # The fault this fixes, as a supervisor saw it: absent at the seat's first look, then late.
    h = restarted_at_1030(None)
    assert h.types("shift.") == ["shift.absent", "shift.late"]


def test_a_restored_day_keeps_the_arrival_and_the_counts() -> None:
    before = morning()
    assert before.types("shift.") == [] and before.state.norms["away"].count == 1
    after = restarted_at_1030(saved(before))
    assert after.types("shift.") == []
    attendance = after.state.norms["attendance"]
    assert (attendance.arrived, attendance.late_min) == ("2026-11-23T08:35:00.000+08:00", 0.0)
    # The morning's break plus the one running at the restart (counted from the restart).
    away = after.state.norms["away"]
    assert away.count == 2 and away.away_s == pytest.approx(600.0 + 1200.0)


def test_an_agent_judged_absent_stays_flagged_absent_after_a_restart() -> None:
    h = Harness(start=datetime(2026, 11, 23, 8, 30, tzinfo=TZ))
    h.at(0.0, HeadsetPlugged(HeadsetInfo()), RadarReport(target="none"))
    h.until(4600.0)  # 09:46: absent since 09:45
    assert h.types("shift.absent") == ["shift.absent"]

    after = Harness(start=datetime(2026, 11, 23, 10, 0, tzinfo=TZ))
    after.at(0.0, saved(h))
    assert "shift.absent" in after.state.facts.violations  # the supervisor's flag again
    after.at(0.0, HeadsetPlugged(HeadsetInfo()), RadarReport(target="none"))
    assert after.types("shift.absent") == []  # no second event: the first run published it
    after.at(900.0, RadarReport(target="still"))  # 10:15: arrives at last
    late = after.events("shift.late")
    assert late == [
        (
            900.0,
            "shift.late",
            {
                "late_min": 90.0,
                "arrived": "2026-11-23T10:15:00.000+08:00",
                "counts_as_absence": True,
            },
        )
    ]
    assert "shift.absent" not in after.state.facts.violations


def test_a_tally_of_another_day_is_not_applied_and_a_second_one_not_added() -> None:
    before = morning()
    restore = saved(before)
    yesterday = RestoreDay(day="2026-11-22", tallies=restore.tallies)
    h = Harness(start=datetime(2026, 11, 23, 10, 30, tzinfo=TZ))
    h.at(0.0, yesterday)
    assert h.state.norms["attendance"].arrived == "" and h.state.norms["away"].count == 0
    h.at(0.0, restore)
    h.at(1.0, restore)
    assert h.state.norms["away"].count == 1 and h.state.norms["attendance"].arrived != ""


def test_restore_day_goes_through_the_tape_codec_unchanged() -> None:
    restore = saved(morning())
    assert decode(json.loads(json.dumps(encode(restore)))) == restore


# --- the shell: DayStore on disk and on a runtime in simulated time ---------------------------


def test_tallies_are_written_atomically_and_read_back(tmp_path: Path) -> None:
    h = morning()
    store = DayStore(tmp_path / "state", SITE, SEAT)
    assert store.save(h.state, h.instant(5400.0))
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [FILE_NAME]
    assert store.load(DAY) == saved(h)
    assert store.load("2026-11-24") is None


@pytest.mark.parametrize(
    ("change", "logged"),
    [
        (
            {"answer": {"answered": 3, "late": -1, "answer_s_total": 20.0}},
            "the answer tally is ignored: answer.late: expected an integer >= 0, got -1",
        ),
        (
            {"attendance": {"arrived": "08:40", "late_min": "0"}},
            "attendance.late_min: expected a number >= 0, got '0'",
        ),
    ],
)
def test_a_malformed_tally_is_named_and_only_that_norm_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: dict[str, Any], logged: str
) -> None:
    h = morning()
    store = DayStore(tmp_path, SITE, SEAT)
    store.save(h.state, h.instant(5400.0))
    data = json.loads((tmp_path / FILE_NAME).read_text())
    data["norms"].update(change)
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    caplog.set_level(logging.WARNING, logger="edge.shell.day_store")
    restore = DayStore(tmp_path, SITE, SEAT).load(DAY)
    assert logged in caplog.text and str(tmp_path / FILE_NAME) in caplog.text
    assert restore is not None
    assert set(restore.tallies) == {"attendance", "answer", "away"} - set(change)


def test_a_file_of_another_seat_is_ignored_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = morning()
    DayStore(tmp_path, SITE, "S-other").save(h.state, h.instant(5400.0))
    caplog.set_level(logging.WARNING, logger="edge.shell.day_store")
    assert DayStore(tmp_path, SITE, SEAT).load(DAY) is None
    assert "ignored: the day's tallies of seat lab/S-other, expected seat lab/S-day" in caplog.text


def scenario(tmp: Path, name: str, start: str, steps: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[seat]\nsite = "{SITE}"\nid = "{SEAT}"\nprofile = "default"\nstart = "{start}"\n\n'
        + steps
    )
    return path


def run(path: Path, state_dir: Path | None) -> tuple[Runtime, list[dict[str, Any]]]:
    out = io.StringIO()
    runtime, _ = sim.build(load_scenario(path), fast=True, events_out=out)
    if state_dir is not None:
        DayStore(state_dir, SITE, SEAT).attach(runtime)
    runtime.run()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return runtime, [validate("event", json.dumps(e)) for e in events]


MORNING = """
[[step]]
t = "0s"
do = "radar.absent"
[[step]]
t = "10m"
do = "radar.present"
[[step]]
t = "11m"
do = "host.ring"
[[step]]
t = "16m"
do = "headset.hook_off"
[[step]]
t = "20m"
do = "headset.hook_on"
[[step]]
t = "60m"
do = "radar.absent"
[[step]]
t = "70m"
do = "radar.present"
[[step]]
t = "80m"
do = "end"
"""

AFTER_RESTART = """
[[step]]
t = "0s"
do = "radar.absent"
[[step]]
t = "20m"
do = "radar.present"
[[step]]
t = "25m"
do = "end"
"""


def test_a_runtime_restarted_the_same_day_continues_the_day(tmp_path: Path) -> None:
    first, _ = run(scenario(tmp_path, "am", "2026-11-23T08:30:00+08:00", MORNING), tmp_path)
    on_disk = json.loads((tmp_path / FILE_NAME).read_text())
    assert on_disk["day"] == DAY and on_disk["norms"]["answer"]["answered"] == 1
    today = snapshot(first.state, first.clock.now(), SITE, SEAT)["today"]

    later = scenario(tmp_path, "later", "2026-11-23T10:30:00+08:00", AFTER_RESTART)
    second, events = run(later, tmp_path)
    assert [e["type"] for e in events if e["type"].startswith("shift.")] == []
    again = snapshot(second.state, second.clock.now(), SITE, SEAT)
    validate("state", json.dumps(again))
    assert again["today"]["attendance"] == today["attendance"]
    assert again["today"]["answer"] == today["answer"]
    assert again["today"]["away"]["away_count"] == today["away"]["away_count"] + 1

    # The same restart with no state directory: what a supervisor used to see.
    _, events = run(later, None)
    assert [e["type"] for e in events if e["type"].startswith("shift.")] == [
        "shift.absent",
        "shift.late",
    ]
