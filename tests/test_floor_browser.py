"""The floor pages in a real browser: Debian's headless Chromium driven by Playwright, against
a real Mosquitto, the real `seatbox floor serve` (uvicorn on a free port) and a simulated seat.

The seat runs a scenario in real time (`seatbox simulate` without --fast) with a profile whose
hold limits are seconds, not minutes: its `info.thresholds` tell the floor service to colour a
4 s hold amber and a 9 s hold red, so a long hold is watched turn amber then red in ~15 s.
A few more seats publish their retained `state` as a seat would (idle, away, on a call, one not
in the layout) so the floor has something around the held seat.

`SEATBOX_SCREENSHOTS=1` writes the floor page's screenshot to docs/img/floor.png (the README's
picture); otherwise it goes to the test's temp folder.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from payload_samples import valid_state
from support import Mosquitto, free_port, port_open, wait_until

from floor.store import SqliteStore

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install .[test])"
)
Page = playwright_sync.Page
expect = playwright_sync.expect
# Two shared cores: a page may wait on a busy service for more than Playwright's 5 s.
expect.set_options(timeout=15_000)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent
SITE = "lab"
HELD = "P-01"  # the simulated seat that holds a call too long (agent amy's own seat)
PASSWORD = "correct horse battery staple"
AMBER = "rgb(255, 193, 7)"  # style.css --warn-bg
RED = "rgb(198, 40, 40)"  # style.css --violation-bg

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)

LAYOUT = """
[teams]
alpha = { name = "Alpha" }
beta = { name = "Beta" }

[seats]
P-01 = { team = "alpha", label = "P1", x = 0, y = 0 }
P-02 = { team = "alpha", label = "P2", x = 1, y = 0 }
P-03 = { team = "alpha", label = "P3", x = 2, y = 0 }
Q-01 = { team = "beta", label = "Q1", x = 0, y = 1 }
Q-02 = { team = "beta", label = "Q2", x = 1, y = 1 }
"""

# Who sits where today (the roster): the page and the report name the agent.
AGENTS = {"P-01": "amy", "P-02": "ben", "P-03": "chen", "Q-01": "dana"}

# The default profile with hold limits in seconds: warn at 4 s, violation at 9 s.
SHORT_HOLD = """
name = "short-hold"
extends = "default"
[hold_time]
warn_after = "4s"
violation_after = "9s"
"""


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    return [*base, "--log-level", "WARNING", *args]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Floor:
    url: str
    config: Path
    store: Path
    workdir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                seatbox("floor", "serve", "--config", str(self.config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        port = int(self.url.rsplit(":", 1)[1])
        proc = self.proc
        wait_until(lambda: port_open(port) or proc.poll() is not None, 30, "the floor web")
        assert proc.poll() is None, self.log.read_text()[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def add_user(config: Path, password: Path, name: str, role: str, *extra: str) -> None:
    run = subprocess.run(
        seatbox("floor", "user", "add", name, "--role", role, *extra)
        + ["--password-file", str(password), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


class SeatPublisher:
    """Seats that only publish their retained availability and `state`, as a seat does."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def seat(self, seat: str, call: str, presence: str, ago_s: float) -> None:
        since = iso(datetime.now(UTC) - timedelta(seconds=ago_s))
        state = valid_state(seat)
        state.update(site=SITE, ts=iso(datetime.now(UTC)), violations=[])
        state["call"].update(state=call, since=since, number=1 if call != "idle" else 0)
        state["hook"].update(off_hook=call != "idle", since=since)
        state["mute"].update(muted=False, by=None, since=since)
        state["presence"].update(state=presence, since=since, last_seen=since)
        state["shift"].update(phase="on", since=iso(datetime.now(UTC) - timedelta(hours=2)))
        base = f"seatbox/v1/{SITE}/{seat}"
        for topic, payload in (
            (f"{base}/availability", b"online"),
            (f"{base}/state", json.dumps(state).encode()),
        ):
            self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def floor(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    work = tmp_path_factory.mktemp("floor")
    (work / "layout.toml").write_text(LAYOUT)
    today = datetime.now(UTC).date().isoformat()
    (work / "roster.csv").write_text(
        "date,seat,agent,team\n"
        + "".join(f"{today},{seat},{agent},\n" for seat, agent in AGENTS.items())
    )
    port = free_port()
    config = work / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "{broker.url}"\nclient_id = "seatbox-floor-browser"\n'
        f'[site]\nid = "{SITE}"\ntimezone = "UTC"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        '[store]\ndir = "store"\n'
        '[layout]\nfile = "layout.toml"\n'
        '[roster]\nfile = "roster.csv"\n'
        "[privacy]\nmin_group_size = 1\n"
    )
    password = work / "password"
    password.write_text(PASSWORD + "\n")
    add_user(config, password, "sue", "supervisor", "--team", "alpha", "--team", "beta")
    add_user(config, password, "wally", "wallboard")
    add_user(config, password, "max", "manager")
    add_user(config, password, "amy", "agent", "--seat", HELD)
    running = Floor(
        url=f"http://127.0.0.1:{port}",
        config=config,
        store=work / "store" / "floor.sqlite",
        workdir=work,
        log=work / "floor.log",
    )
    running.start()
    seats = SeatPublisher(broker)
    seats.seat("P-02", "idle", "present", 95)
    seats.seat("P-03", "idle", "away", 7 * 60)  # away past the 5 min warning
    seats.seat("Q-01", "active", "present", 130)
    seats.seat("X-09", "idle", "present", 40)  # publishes, not in the layout
    try:
        yield running
    finally:
        seats.close()
        running.stop()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user data dir
    with playwright_sync.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 960, "height": 600},
            accept_downloads=True,
            timezone_id="UTC",
            locale="en-GB",
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


class Browser:
    """A page of the shared context, logged in as one user; JavaScript errors and CSP
    violations are collected: each test ends by checking there were none."""

    def __init__(self, context: Any, floor: Floor) -> None:
        context.clear_cookies()
        self.floor = floor
        self.page: Page = context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.problems.append(f"CSP: {message.text}")

    def login(self, user: str, lands_on: str) -> None:
        self.page.goto(f"{self.floor.url}/login")
        self.page.get_by_label("User name").fill(user)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(f"{self.floor.url}{lands_on}")

    def close(self) -> None:
        self.page.close()
        assert self.problems == []


@pytest.fixture
def browser(browser_context: Any, floor: Floor) -> Iterator[Browser]:
    opened = Browser(browser_context, floor)
    yield opened
    opened.close()


def held_call(workdir: Path, broker: Mosquitto) -> subprocess.Popen[str]:
    """The seat P-01 in real time from now: rings, answered, held 4..21 s, resumed, hung up."""
    profile = workdir / "short-hold.toml"
    profile.write_text(SHORT_HOLD)
    start = datetime.now(UTC)
    steps = [
        ("0s", "radar.present"),
        ("1s", "host.ring"),
        ("2s", "host.answer"),
        ("4s", "host.hold"),
        ("21s", "host.resume"),
        ("22s", "host.end"),
        ("23s", "end"),
    ]
    scenario = workdir / "held.toml"
    scenario.write_text(
        f'[seat]\nsite = "{SITE}"\nid = "{HELD}"\nprofile = "default"\n'
        f'start = "{start.isoformat()}"\n'
        + "".join(f'[[step]]\nt = "{t}"\ndo = "{do}"\n' for t, do in steps)
    )
    return subprocess.Popen(
        seatbox("simulate", str(scenario), "--profile", str(profile), "--broker", broker.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
    )


def test_a_supervisor_watches_a_long_hold_turn_amber_then_red_opens_the_timeline_and_gets_the_csv(
    browser: Browser, floor: Floor, broker: Mosquitto
) -> None:
    page = browser.page
    browser.login("sue", "/")
    expect(page.locator("#stream-status")).to_have_text("● live")
    # A seat in no team of hers is not on her floor (the server leaves it out).
    expect(page.locator('#seat-list tr[data-seat="P-02"]')).to_be_visible()
    assert page.locator('[data-seat="X-09"]').count() == 0
    expect(page.locator('#map [data-seat="P-03"]')).to_contain_text("away past the agent limit")

    # Alerts are off until asked for: she turns on the flash for a new violation.
    flash = page.get_by_label("flash")
    assert not flash.is_checked()
    flash.check()
    seat = held_call(floor.workdir, broker)
    try:
        tile = page.locator(f'#map .seat[data-seat="{HELD}"]')
        row = page.locator(f'#seat-list tr[data-seat="{HELD}"]')
        expect(tile).to_have_attribute("data-level", "ok", timeout=20_000)
        # Amber: on hold past the warning limit, said in words as well as in colour.
        expect(tile).to_have_attribute("data-level", "warn", timeout=20_000)
        assert tile.evaluate("el => getComputedStyle(el).backgroundColor") == AMBER
        expect(tile).to_contain_text("on hold past the warning limit")
        expect(row).to_contain_text("Warning")
        expect(row.locator("td").first).to_have_text("amy")
        # Time in state ticks on the page, from the hold's start.
        ticking = row.locator("td.time")
        before = ticking.inner_text()
        assert before.startswith("0:0")
        expect(ticking).not_to_have_text(before)
        # Red: on hold too long; the most severe seat heads the list (severity sort).
        expect(tile).to_have_attribute("data-level", "violation", timeout=20_000)
        assert tile.evaluate("el => getComputedStyle(el).backgroundColor") == RED
        expect(tile).to_contain_text("on hold too long")
        expect(tile).to_have_class(re.compile(r"\bflash\b"))
        expect(page.locator("#last-alert")).to_contain_text("New violation at P1: on hold too long")
        expect(page.locator("#seat-list tbody tr").first).to_have_attribute("data-seat", HELD)
        shot = (
            REPO / "docs" / "img" / "floor.png"
            if os.environ.get("SEATBOX_SCREENSHOTS")
            else floor.workdir / "floor.png"
        )
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size < 200_000
        # The call ends; the seat goes back to ok and the simulation exits.
        expect(tile).to_have_attribute("data-level", "ok", timeout=20_000)
        _, err = seat.communicate(timeout=30)
        assert seat.returncode == 0, err
    finally:
        if seat.poll() is None:
            seat.kill()
            seat.wait()

    # Its timeline: the hold and the violation, from the tile's link.
    tile.click()
    page.wait_for_url(f"{floor.url}/seat/{HELD}")
    entries = page.locator("#timeline table.entries tbody tr")
    expect(page.locator('#timeline tr[data-type="hold.too_long"]')).to_contain_text("hold too long")
    types = [t for t in entries.evaluate_all("rows => rows.map(r => r.dataset.type)")]
    assert types.index("call.hold") < types.index("hold.long") < types.index("hold.too_long")

    # The daily report's CSV equals the store's rows for the day.
    day = datetime.now(UTC).date().isoformat()
    store = SqliteStore(floor.store)
    try:
        wait_until(
            lambda: store.rollups(SITE, HELD, day).get("holds_too_long") == 1.0,
            10,
            "the hold in the store",
        )
        rollup = store.rollups(SITE, HELD, day)
    finally:
        store.close()
    page.goto(f"{floor.url}/report?date={day}")
    expect(page.locator("#rows")).to_contain_text(HELD)
    with page.expect_download() as download:
        page.locator("#rows-csv").click()
    assert download.value.suggested_filename == f"seatbox-daily-{SITE}-{day}.csv"
    rows = list(csv.DictReader(download.value.path().open(encoding="utf-8")))
    held = [row for row in rows if row["seat"] == HELD]
    assert len(held) == 1, rows
    for key in ("calls", "holds", "holds_too_long"):
        assert float(held[0][key]) == rollup[key], (key, held[0], rollup)
    assert (held[0]["team"], held[0]["agent"]) == ("alpha", "amy")
    # The page's table shows the rows the CSV holds.
    shown = page.locator("#rows tbody th").all_inner_texts()
    assert sorted(shown) == sorted(row["seat"] for row in rows)


def test_a_wallboard_account_sees_aggregates_and_gets_403_for_a_seat_timeline(
    browser: Browser, floor: Floor
) -> None:
    page = browser.page
    browser.login("wally", "/wallboard")
    expect(page.locator("#stream-status")).to_have_text("● live")
    totals = page.locator("#wall-totals")
    expect(totals).to_contain_text("Online")
    expect(page.locator("#wall-teams")).to_contain_text("alpha")
    # Aggregates only: no seat and no agent anywhere on the wallboard.
    assert HELD not in page.locator("main").inner_text()
    assert page.locator(".seat").count() == 0
    # The server refuses a timeline (403), and the page says why.
    with page.expect_response(lambda r: "/api/v1/seats/" in r.url) as answer:
        page.goto(f"{floor.url}/seat/{HELD}")
    assert answer.value.status == 403
    expect(page.locator("#timeline [role=alert]")).to_contain_text(
        "Your role cannot see individual timelines."
    )
    assert page.locator("#timeline table").count() == 0


def test_an_agent_sees_their_own_seat_and_cannot_read_another(
    browser: Browser, floor: Floor
) -> None:
    page = browser.page
    # A wrong password first: said plainly, and she stays on the login page.
    page.goto(f"{floor.url}/login")
    page.get_by_label("User name").fill("amy")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    browser.login("amy", f"/seat/{HELD}")
    expect(page.locator("#seat-title")).to_have_text(f"Seat {HELD}")
    expect(page.locator("#timeline")).not_to_contain_text("Not allowed")
    # Her report is her own row only.
    page.goto(f"{floor.url}/report")
    expect(page.locator("#rows tbody th")).to_have_text([HELD])
    with page.expect_response(lambda r: "/api/v1/seats/" in r.url) as answer:
        page.goto(f"{floor.url}/seat/P-02")
    assert answer.value.status == 403
    refused = page.locator("#timeline [role=alert]")
    expect(refused).to_contain_text("Not allowed")
    expect(refused).to_contain_text("An agent sees only their own seat and day.")
    assert page.locator("#timeline table").count() == 0


def test_a_manager_sees_a_seat_missing_from_the_layout_and_a_lost_stream_shown_stale(
    browser: Browser, floor: Floor
) -> None:
    page = browser.page
    browser.login("max", "/")
    status = page.locator("#stream-status")
    expect(status).to_have_text("● live")
    # The whole site, a seat that publishes but is not in the layout too, marked as such.
    expect(page.locator('#seat-list tr[data-seat="X-09"]')).to_contain_text("not in layout")
    expect(page.locator('.off-plan [data-seat="X-09"]')).to_contain_text("not in layout")
    floor.stop()
    expect(status).to_contain_text("stale")
    assert "stale" in (page.locator("body").get_attribute("class") or "")
    floor.start()
    expect(status).to_have_text("● live", timeout=30_000)
    # The seats are back after the restart (P-02 published its state once, long before).
    expect(page.locator('#map .seat[data-seat="P-02"]')).to_be_visible()
