"""The floor's site files and reports: the layout and roster (good and bad files), and the
daily report and timeline from a real SQLite store filled with what simulated seats made."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.base.errors import ConfigError
from floor.config import PrivacySection
from floor.layout import Layout
from floor.privacy import Privacy
from floor.roster import Roster

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
