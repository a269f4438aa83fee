"""The floor's site files and reports: the layout and roster (good and bad files), and the
daily report and timeline from a real SQLite store filled with what simulated seats made."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from floor_support import STORES, open_test_store, pg_server  # noqa: F401
from payload_samples import valid_info

from edge.api.models import parse_event
from edge.api.payloads import info_thresholds
from edge.base.errors import ConfigError, ParseError
from edge.shell.config import load_profile
from floor.config import PrivacySection
from floor.layout import Layout
from floor.privacy import Privacy
from floor.reports import COLUMNS, Report, daily_report, timeline
from floor.roster import Roster
from floor.store import SqliteStore

REPO = Path(__file__).resolve().parent.parent
DAY = "2026-11-23"
SITE_TZ = "Asia/Shanghai"  # the seats' wall clock is +08:00
END_OF_DAY = datetime.fromisoformat("2026-11-24T00:00:00+08:00").timestamp()

LAYOUT = """
[teams]
sales = { name = "Sales" }
care = { name = "Customer care" }

[seats]
A-01 = { team = "sales", label = "A1", x = 0, y = 0 }
A-02 = { team = "sales", x = 1.5, y = 0 }
B-01 = { team = "care" }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_layout_seats_teams_positions_and_unknown_seats(tmp_path: Path) -> None:
    layout = Layout.load(write(tmp_path, "layout.toml", LAYOUT))
    assert layout.teams == {"care": "Customer care", "sales": "Sales"}
    assert layout.team_of("A-01") == "sales" and layout.team_of("B-01") == "care"
    a2 = layout.seat("A-02")
    assert (a2.label, a2.x, a2.y, a2.in_layout) == ("A-02", 1.5, 0.0, True)
    assert layout.seat("B-01").to_dict()["x"] is None
    stranger = layout.seat("Z-99")  # publishes, not in the file: still shown, marked
    assert (stranger.in_layout, stranger.team, stranger.label) == (False, None, "Z-99")
    assert Layout.load(None).seat("A-01").in_layout is False


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[seats]\nA-01 = { team = "sales", x = -1, y = 0 }', ["[seats] A-01.x", "at least 0"]),
        ('[seats]\nA-01 = { team = "sales", x = 1 }', ["[seats] A-01", "both x and y"]),
        ('[seats]\n"A/01" = { team = "sales" }', ["[seats] A/01", "letters, digits"]),
        ('[seats]\nA-01 = { team = "sales", colour = "red" }', ["A-01.colour", "unknown key"]),
        ("[seats]\nA-01 = { }", ["[seats] A-01.team", "required"]),
        ('[teams]\nsales = {}\n[seats]\nA-01 = { team = "care" }', ["A-01.team", "'care'"]),
        ("[seats\n", ["not valid TOML"]),
    ],
)
def test_a_bad_layout_names_file_key_and_need(tmp_path: Path, text: str, names: list[str]) -> None:
    path = write(tmp_path, "layout.toml", text)
    with pytest.raises(ConfigError) as caught:
        Layout.load(path)
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_roster_maps_seat_and_day_to_agent_and_team(tmp_path: Path) -> None:
    text = "date,seat,agent,team\n2026-11-23,A-01,agent-7,care\n2026-11-24,A-01,agent-9,\n"
    roster = Roster.load(write(tmp_path, "roster.csv", text))
    first = roster.on("2026-11-23", "A-01")
    assert first is not None and (first.agent, first.team) == ("agent-7", "care")
    second = roster.on("2026-11-24", "A-01")
    assert second is not None and (second.agent, second.team) == ("agent-9", None)
    assert roster.on("2026-11-25", "A-01") is None
    assert roster.assignment("2026-11-23", "A-01", "sales") == ("agent-7", "care")
    assert roster.assignment("2026-11-24", "A-01", "sales") == ("agent-9", "sales")
    assert roster.assignment("2026-11-25", "A-01", "sales") == (None, "sales")
    assert Roster.load(None).on("2026-11-23", "A-01") is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("seat,date,agent,team\n", ["line 1", "date,seat,agent,team"]),
        ("date,seat,agent,team\n2026-13-01,A-01,a,\n", ["line 2, column date", "YYYY-MM-DD"]),
        ("date,seat,agent,team\n2026-11-23,A-01,bob smith,\n", ["line 2, column agent"]),
        ("date,seat,agent,team\n2026-11-23,A/1,bob,\n", ["line 2, column seat"]),
        ("date,seat,agent,team\n\n2026-11-23,A-01,bob,x.y\n", ["line 3, column team"]),
        ("date,seat,agent,team\n2026-11-23,A-01\n", ["line 2", "4 columns"]),
        (
            "date,seat,agent,team\n2026-11-23,A-01,bob,\n2026-11-23,A-01,eve,\n",
            ["line 3, column seat", "one row per date and seat"],
        ),
    ],
)
def test_a_bad_roster_names_line_and_column(tmp_path: Path, text: str, names: list[str]) -> None:
    path = write(tmp_path, "roster.csv", text)
    with pytest.raises(ConfigError) as caught:
        Roster.load(path)
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_privacy_norm_patterns() -> None:
    privacy = Privacy(PrivacySection(norms=["hold.*", "call.dead_air"], min_group_size=3))
    assert privacy.shows("hold.too_long") and privacy.shows("hold.long")
    assert privacy.shows("call.dead_air")
    assert not privacy.shows("call.ringing") and not privacy.shows("holding.x")
    assert not privacy.shows("away.long")
    assert Privacy().shows("anything.at_all")
    assert privacy.min_group_size == 3 and privacy.individual_views


# --- reports from simulated seats ------------------------------------------------------------

# A short shift keeps the simulated days short (a few seconds each): 08:45-11:00, lunch
# 10:00-10:15; the numbers are the profile's, as a site would set them.
SHORT_SHIFT = """
[attendance]
end = "11:00"
lunch_start = "10:00"
lunch_end = "10:15"
"""
SHIFT_MINUTES = (11 * 60) - (8 * 60 + 45) - 15

# R-01 (the default profile, short shift): the box is up at 08:30, the agent comes at 08:52
# (7 min late for 08:45); a call answered after 4 s with a 200 s hold; a call answered after
# 17 s (4 rings: late) with a 60 s hold; away 09:30-09:42; gone at 10:40 (20 min early).
R01 = """
[seat]
site = "lab"
id = "R-01"
profile = "PROFILE"
start = "2026-11-23T08:30:00+08:00"
[[step]]
t = "0s"
do = "radar.absent"
[[step]]
t = "22m"
do = "radar.present"
[[step]]
t = "30m"
do = "host.ring"
[[step]]
t = "1804s"
do = "host.answer"
[[step]]
t = "31m"
do = "host.hold"
[[step]]
t = "2060s"
do = "host.resume"
[[step]]
t = "35m"
do = "host.end"
[[step]]
t = "40m"
do = "host.ring"
[[step]]
t = "2417s"
do = "host.answer"
[[step]]
t = "41m"
do = "host.hold"
[[step]]
t = "42m"
do = "host.resume"
[[step]]
t = "43m"
do = "host.end"
[[step]]
t = "60m"
do = "radar.absent"
[[step]]
t = "72m"
do = "radar.present"
[[step]]
t = "130m"
do = "radar.absent"
[[step]]
t = "151m"
do = "end"
"""

# R-02 (the lenient profile, hold warning at 3 min; short shift): on time at 08:40; a call
# answered after 2 s with a 150 s hold; away for lunch only (10:00-10:14); the report is made
# at the day's end, the agent still there (the scenario stops at 10:20).
R02 = """
[seat]
site = "lab"
id = "R-02"
profile = "PROFILE"
start = "2026-11-23T08:30:00+08:00"
[[step]]
t = "0s"
do = "radar.absent"
[[step]]
t = "10m"
do = "radar.present"
[[step]]
t = "30m"
do = "host.ring"
[[step]]
t = "1802s"
do = "host.answer"
[[step]]
t = "31m"
do = "host.hold"
[[step]]
t = "2010s"
do = "host.resume"
[[step]]
t = "34m"
do = "host.end"
[[step]]
t = "90m"
do = "radar.absent"
[[step]]
t = "104m"
do = "radar.present"
[[step]]
t = "110m"
do = "end"
"""


@dataclass
class Played:
    store: Any  # SqliteStore or PostgresStore
    events: dict[str, list[dict[str, Any]]]  # seat -> the events the simulated seat made


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    return [*base, "--log-level", "WARNING", *args]


@dataclass
class Simulated:
    lines: dict[str, list[bytes]]  # seat -> its events as published
    infos: dict[str, bytes]  # seat -> its info, with the thresholds of its profile


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    """Both scenarios played by real simulated seats (in parallel), once for both stores."""
    folder = tmp_path_factory.mktemp("reports")
    runs = {}
    for seat, text, base in (("R-01", R01, "default"), ("R-02", R02, "lenient")):
        profile = folder / f"{seat}-profile.toml"
        profile.write_text(f'name = "short-{base}"\nextends = "{base}"\n{SHORT_SHIFT}')
        scenario = folder / f"{seat}.toml"
        scenario.write_text(text.replace("PROFILE", str(profile)), encoding="utf-8")
        command = seatbox("simulate", str(scenario), "--fast", "--events-out", "-")
        runs[seat] = (scenario, subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO))
    result = Simulated({}, {})
    for seat, (scenario, run) in runs.items():
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0
        result.lines[seat] = out.splitlines()
        used = tomllib.loads(scenario.read_text())["seat"]["profile"]
        info = {**valid_info(seat), "site": "lab"}
        info["thresholds"] = info_thresholds(load_profile(used).to_dict())
        result.infos[seat] = json.dumps(info).encode()
    return result


@pytest.fixture(scope="module", params=STORES)
def played(
    simulated: Simulated, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Played]:
    """The simulated seats' events written through each store's add_event (SQLite and
    PostgreSQL: the same reports expected of both), their info as the seat publishes it."""
    store = open_test_store(request.param, tmp_path_factory.mktemp("store"), request)
    events: dict[str, list[dict[str, Any]]] = {}
    for seat, lines in simulated.lines.items():
        events[seat] = [json.loads(line) for line in lines]
        for line in lines:
            assert store.add_event("lab", seat, parse_event(line), 0.0)
        store.put_info("lab", seat, simulated.infos[seat], 0.0)
    yield Played(store, events)
    store.close()


def summary(played: Played, seat: str) -> dict[str, Any]:
    """The seat's own tally of the day (`shift.summary` at the shift's end)."""
    (found,) = [e["data"] for e in played.events[seat] if e["type"] == "shift.summary"]
    return dict(found)


def report(played: Played, teams: set[str | None] | None = None, **privacy: Any) -> Report:
    return daily_report(
        played.store,
        "lab",
        DAY,
        SITE_TZ,
        Layout.parse(
            {"seats": {"R-01": {"team": "sales"}, "R-02": {"team": "care", "x": 1, "y": 0}}}
        ),
        Roster.parse(f"date,seat,agent,team\n{DAY},R-01,agent-7,\n"),
        Privacy(PrivacySection(**{"min_group_size": 1, **privacy})),
        now=END_OF_DAY,
        teams=teams,
    )


def row_of(result: Report, seat: str) -> dict[str, Any]:
    (row,) = [row for row in result.rows if row["seat"] == seat]
    return row


def test_attendance_away_and_calls_as_the_scenario_played_them(played: Played) -> None:
    row = row_of(report(played), "R-01")
    own = summary(played, "R-01")
    assert row["arrival"] == "2026-11-23T08:52:00.000+08:00"
    assert row["late"] == own["attendance"]["late_min"] == 7.0
    assert row["early_leave"] == own["attendance"]["early_leave_min"] == 20.0
    assert row["absent"] is False
    # Away in working time after arrival: 09:30-09:42 and 10:40-11:00, as the seat counted.
    assert row["away_count"] == own["away"]["away_count"] == 2
    assert row["away_minutes"] == own["away"]["away_min"] == 12 + 20
    assert (row["calls"], row["answered"], row["answered_late"]) == (2, 2, 1)
    assert (row["holds"], row["holds_too_long"]) == (2, 1)
    assert row["events"]["hold.too_long"] == 1 and row["events"]["shift.late"] == 1
    # Out of adherence: 7 min late, 12 - 5 (grace) min away, 20 min early (the last absence
    # is the early leave: counted once).
    assert row["scheduled_minutes"] == SHIFT_MINUTES
    assert row["adherence_pct"] == round((1 - (7 + 7 + 20) / SHIFT_MINUTES) * 100, 1)
    assert row["thresholds"] == "seat"

    other = row_of(report(played), "R-02")
    assert other["arrival"] == "2026-11-23T08:40:00.000+08:00"
    assert (other["late"], other["early_leave"], other["absent"]) == (0, 0, False)
    # The lunch break is nobody's business: no away, full adherence.
    assert (other["away_count"], other["away_minutes"]) == (0, 0)
    assert other["adherence_pct"] == 100.0


def test_distributions_use_each_seats_own_limits(played: Played) -> None:
    dist = report(played).distributions
    answers = dist["answer"]
    assert answers["count"] == 3  # 4 s, 17 s, 2 s
    assert answers["within_limit"] == 2 and answers["within_limit_pct"] == round(200 / 3, 1)
    first = answers["buckets"][0]
    assert (first["from_s"], first["to_s"], first["count"]) == (0.0, 5.0, 2)
    holds = dist["hold"]
    assert holds["count"] == 3 and holds["longest_s"] == 200.0
    # R-02's 150 s hold is under its lenient profile's 3 min warning; R-01's 200 s is over both.
    assert (holds["over_warn"], holds["over_violation"]) == (1, 1)
    assert sum(bucket["count"] for bucket in holds["buckets"]) == 3


def test_roster_and_layout_give_agent_and_team(played: Played) -> None:
    result = report(played)
    first, second = row_of(result, "R-01"), row_of(result, "R-02")
    assert (first["agent"], first["team"]) == ("agent-7", "sales")
    assert (second["agent"], second["team"], second["in_layout"]) == (None, "care", True)
    teams = {team["team"]: team for team in result.teams}
    assert teams["sales"]["calls"] == 2 and teams["care"]["calls"] == 1
    assert teams["sales"]["late_count"] == 1 and teams["care"]["late_count"] == 0
    assert result.totals["holds_too_long"] == 1 and result.totals["people"] == 2
    # A supervisor of `care` only: only its seats are read, the totals are theirs.
    care = report(played, teams={"care"})
    assert [row["seat"] for row in care.rows] == ["R-02"]
    assert [team["team"] for team in care.teams] == ["care"] and care.totals["calls"] == 1
    # Another day: the roster says nothing, the layout's team stands.
    moved = daily_report(
        played.store,
        "lab",
        DAY,
        SITE_TZ,
        Layout.parse({"seats": {"R-01": {"team": "sales"}}}),
        Roster.parse(f"date,seat,agent,team\n{DAY},R-01,agent-9,care\n"),
        Privacy(PrivacySection(min_group_size=1)),
        now=END_OF_DAY,
    )
    assert (row_of(moved, "R-01")["agent"], row_of(moved, "R-01")["team"]) == ("agent-9", "care")


def test_groups_smaller_than_the_minimum_are_suppressed(played: Played) -> None:
    result = report(played, min_group_size=2)
    for team in result.teams:  # one person each
        assert team["suppressed"] is True
        assert team["calls"] is None and team["adherence_pct"] is None and team["events"] is None
    assert result.totals["suppressed"] is False and result.totals["calls"] == 3
    assert result.distributions["teams"] == {}
    whole = report(played, min_group_size=3)
    assert whole.totals["suppressed"] is True and whole.totals["away_minutes"] is None
    assert whole.distributions["suppressed"] is True and "answer" not in whole.distributions


def test_privacy_norms_hide_event_types_and_their_columns(played: Played) -> None:
    result = report(played, norms=["shift.*", "presence.*"])
    row = row_of(result, "R-01")
    assert row["events"] and all(t.split(".")[0] in ("shift", "presence") for t in row["events"])
    assert "hold.too_long" not in row["events"] and row["events"]["shift.late"] == 1
    assert row["calls"] is None and row["holds_too_long"] is None
    assert row["late"] == 7.0 and row["away_minutes"] == 32.0
    entries = timeline(played.store, "lab", "R-01", DAY, SITE_TZ, result_privacy(["hold.*"]))
    assert [e["type"] for e in entries] == ["hold.long", "hold.too_long"]
    assert entries[1]["ts"] == "2026-11-23T09:04:00.000+08:00"
    team_only = report(played, individual_views=False)
    assert team_only.rows == [] and team_only.totals["calls"] == 3
    assert team_only.to_csv().splitlines() == [",".join(team_only.columns)]
    own = daily_report(
        played.store,
        "lab",
        DAY,
        SITE_TZ,
        privacy=Privacy(PrivacySection(individual_views=False)),
        now=END_OF_DAY,
        self_view="R-02",
    )
    assert [row["seat"] for row in own.rows] == ["R-02"]  # an agent's self-view stays


def result_privacy(norms: list[str]) -> Privacy:
    return Privacy(PrivacySection(norms=norms))


def test_csv_has_the_json_rows_columns_and_values(played: Played) -> None:
    result = report(played)
    table = list(csv.DictReader(io.StringIO(result.to_csv())))
    header = result.to_csv().splitlines()[0].split(",")
    assert header[: len(COLUMNS)] == list(COLUMNS)
    kinds = sorted({k for row in result.rows for k in row["events"]})
    assert header[len(COLUMNS) :] == [f"events.{k}" for k in kinds]
    assert [line["seat"] for line in table] == [row["seat"] for row in result.rows]
    for line, row in zip(table, result.rows, strict=True):
        assert line["arrival"] == row["arrival"]
        assert float(line["adherence_pct"]) == row["adherence_pct"]
        assert float(line["away_minutes"]) == row["away_minutes"]
        assert line["agent"] == (row["agent"] or "")
        for kind in kinds:
            assert int(line[f"events.{kind}"]) == row["events"].get(kind, 0)
    teams = list(csv.DictReader(io.StringIO(result.to_csv("teams"))))
    assert [t["team"] for t in teams] == [t["team"] for t in result.teams]


def test_csv_cells_cannot_become_formulas(played: Played) -> None:
    layout = Layout.parse(
        {"seats": {"R-01": {"team": "sales", "label": '=HYPERLINK("http://x","y")'}}}
    )
    result = daily_report(played.store, "lab", DAY, SITE_TZ, layout, now=END_OF_DAY)
    (line,) = [r for r in csv.DictReader(io.StringIO(result.to_csv())) if r["seat"] == "R-01"]
    assert line["label"] == "'" + '=HYPERLINK("http://x","y")'


def test_report_days_are_the_sites_local_days(tmp_path: Path) -> None:
    """A seat at +08:00 and a site in Berlin: an event at 23:30 Berlin time belongs to that
    Berlin day, although the store's row says the seat's (next) local day."""
    store = SqliteStore(tmp_path / "floor.sqlite")
    stamps = [
        "2026-11-23T07:30:00.000+08:00",  # 00:30 Berlin, 23 Nov
        "2026-11-24T06:30:00.000+08:00",  # 23:30 Berlin, 23 Nov
        "2026-11-24T07:30:00.000+08:00",  # 00:30 Berlin, 24 Nov
    ]
    for seq, ts in enumerate(stamps):
        envelope = {"boot_id": "1-0a0b0c0d", "seq": seq, "ts": ts, "type": "floor.loud", "data": {}}
        store.add_event("lab", "Z-01", parse_event(json.dumps(envelope).encode()), 0.0)
    berlin = timeline(store, "lab", "Z-01", "2026-11-23", "Europe/Berlin")
    assert [e["ts"] for e in berlin] == stamps[:2]
    assert [e["day"] for e in store.events("lab", "Z-01")][1] == "2026-11-24"  # seat-local
    assert [e["ts"] for e in timeline(store, "lab", "Z-01", "2026-11-24", "Europe/Berlin")] == [
        stamps[2]
    ]
    late_night = daily_report(store, "lab", "2026-11-23", "Europe/Berlin", now=END_OF_DAY)
    assert row_of(late_night, "Z-01")["events"] == {"floor.loud": 2}
    store.close()


def test_an_absent_agent_is_out_of_adherence_all_day(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "floor.sqlite")
    made = [
        (
            "2026-11-23T08:30:10.000+08:00",
            "presence.away",
            {"last_seen": "2026-11-23T08:30:00.000+08:00"},
        ),
        ("2026-11-23T09:45:00.100+08:00", "shift.absent", {"start": "08:45", "limit_min": 60.0}),
    ]
    for seq, (ts, kind, data) in enumerate(made):
        envelope = {"boot_id": "1-0a0b0c0d", "seq": seq, "ts": ts, "type": kind, "data": data}
        store.add_event("lab", "Z-02", parse_event(json.dumps(envelope).encode()), 0.0)
    row = row_of(daily_report(store, "lab", DAY, SITE_TZ, now=END_OF_DAY), "Z-02")
    assert (row["absent"], row["arrival"], row["adherence_pct"]) == (True, None, 0.0)
    assert row["thresholds"] == "defaults"  # no info.thresholds: documented defaults
    store.close()


def test_bad_dates_and_ids_are_refused(played: Played) -> None:
    with pytest.raises(ParseError) as caught:
        timeline(played.store, "lab", "R/01", DAY, SITE_TZ)
    assert "seat id" in str(caught.value)
    with pytest.raises(ParseError) as caught:
        daily_report(played.store, "lab", "23.11.2026", SITE_TZ)
    assert "YYYY-MM-DD" in str(caught.value)
