"""The floor service's HTTP side as a browser or an integrator meets it: a real Mosquitto, seats
publishing (a test publisher and `seatbox simulate --fast`), `seatbox floor serve` on a free
port (ingest + uvicorn in one process), accounts made with the `seatbox floor user|token` CLI,
and httpx.

Login and its throttle, cookie flags, CSRF, role scope (the server refuses with 403), privacy
switches, API tokens, /metrics labels, the event stream (a snapshot, then a diff when a seat
changes), hostile requests (all 4xx, never a 500), and a clean stop on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from floor_support import PgServer, own_pg_server  # noqa: F401
from floor_web_support import (
    PASSWORD,
    REPO,
    RINGING,
    SCENARIOS,
    TZ,
    Floor,
    Seats,
    add_accounts,
    add_token,
    add_users,
    event,
    seatbox,
    start,
    state,
    today,
    write_config,
)
from support import Mosquitto, wait_until

from floor.accounts import Accounts
from floor.config import FloorConfig
from floor.layout import Layout
from floor.web.live import LiveFloor
from floor.web.places import Places


@pytest.fixture(scope="module")
def floor(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    config = write_config(tmp_path_factory.mktemp("floor"), broker, min_group_size=2)
    tokens = add_accounts(config)
    running = start(config)
    running.tokens = tokens
    seats = Seats(broker)
    try:
        seats.online("A-01")
        seats.online("A-02", call="active")
        seats.online("B-01", presence="away")
        for seat in ("A-01", "B-01"):
            seats.send(seat, "event", event(0, "call.ringing", RINGING))
            seats.send(seat, "event", event(1, "hold.too_long", {"hold_s": 181}))
        with running.bearer(tokens["bi"]) as bi:
            wait_until(
                lambda: (
                    {"A-01", "A-02", "B-01"}
                    <= {s["seat"] for s in bi.get("/api/v1/floor").json()["seats"] if s["online"]}
                ),
                10,
                "three seats online on the floor",
            )
        yield running
    finally:
        seats.close()
        code = running.stop()
        log = running.log.read_text()
        assert "Traceback" not in log, log[-3000:]
        assert code == 0 and "floor service: stopped" in log, log[-2000:]


def seat_ids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {seat["seat"] for seat in answer.json()["seats"]}


def test_login_sets_a_strict_httponly_session_cookie_and_me_names_the_scope(floor: Floor) -> None:
    with floor.client() as client:
        answer = client.post("/api/v1/login", json={"username": "sup-a", "password": PASSWORD})
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("seatbox_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
        me = client.get("/api/v1/me").json()
        assert me["user"] == "sup-a" and me["role"] == "supervisor" and me["teams"] == ["A"]
        assert me["site"] == "lab" and me["timezone"] == TZ and me["individual_views"] is True
        assert me["csrf"] == answer.json()["csrf"] and len(me["csrf"]) >= 32
        # Headers every answer carries.
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    # Behind a TLS-terminating proxy on this host the cookie is Secure.
    with floor.client() as client:
        answer = client.post(
            "/api/v1/login",
            json={"username": "sup-a", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "Secure" in answer.headers["set-cookie"]
    with floor.client() as client:
        answer = client.get("/api/v1/me")
        assert answer.status_code == 401 and "log in" in answer.json()["error"]
        answer = client.post("/api/v1/login", json={"username": "sup-a", "password": "wrong!!!"})
        assert answer.status_code == 401
        assert answer.json() == {"error": "wrong user name or password", "field": None}
        assert "set-cookie" not in answer.headers


def test_failed_logins_are_throttled_with_retry_after_even_for_the_right_password(
    floor: Floor,
) -> None:
    with floor.client() as client:
        for _ in range(5):
            answer = client.post(
                "/api/v1/login", json={"username": "victim", "password": "guess-guess"}
            )
            assert answer.status_code == 401
        answer = client.post("/api/v1/login", json={"username": "victim", "password": PASSWORD})
        assert answer.status_code == 429
        assert 1 <= int(answer.headers["retry-after"]) <= 300
        assert "try again" in answer.json()["error"]
        # Another account from the same address is not locked out by it.
        assert (
            client.post(
                "/api/v1/login", json={"username": "boss", "password": PASSWORD}
            ).status_code
            == 200
        )


def test_a_cookie_write_without_the_csrf_header_is_refused(floor: Floor) -> None:
    with floor.login("boss") as client:
        csrf = client.headers.pop("X-CSRF-Token")
        answer = client.post("/api/v1/logout")
        assert answer.status_code == 403 and answer.json()["field"] == "X-CSRF-Token"
        answer = client.post("/api/v1/logout", headers={"X-CSRF-Token": "not-the-token"})
        assert answer.status_code == 403
        assert client.get("/api/v1/me").status_code == 200  # still logged in
        assert client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/api/v1/me").status_code == 401


def test_each_role_sees_its_own_scope_of_the_floor(floor: Floor) -> None:
    with floor.login("boss") as boss:
        answer = boss.get("/api/v1/floor")
        assert {"A-01", "A-02", "A-03", "B-01"} <= seat_ids(answer)
        rows = {seat["seat"]: seat for seat in answer.json()["seats"]}
        assert rows["A-01"]["agent"] == "agent-a1"  # the roster's agent today
        assert rows["A-01"]["label"] == "A1" and rows["A-01"]["in_layout"] is True
        assert rows["A-02"]["call"] == "active" and rows["A-02"]["team"] == "A"
        assert rows["A-03"]["online"] is None  # in the layout, never heard of
        teams = {team["team"]: team for team in answer.json()["teams"]}
        assert teams["A"]["online"] == 2 and teams["A"]["on_call"] == 1
        # Team B is one seat: under min_group_size 2 its agents' states are not shown.
        assert teams["B"]["suppressed"] is True and teams["B"]["away"] is None
    with floor.login("sup-a") as sup:
        answer = sup.get("/api/v1/floor")
        assert seat_ids(answer) == {"A-01", "A-02", "A-03"}
        assert [team["team"] for team in answer.json()["teams"]] == ["A"]
    with floor.login("agent-a1") as agent:
        answer = agent.get("/api/v1/floor")
        assert seat_ids(answer) == {"A-01"} and answer.json()["teams"] == []
    with floor.login("wall") as wall:
        answer = wall.get("/api/v1/floor")
        assert seat_ids(answer) == set()  # aggregates only
        teams = {team["team"]: team for team in answer.json()["teams"]}
        assert teams["A"]["online"] == 2 and teams["B"]["suppressed"] is True


def test_api_tokens_authenticate_without_a_cookie_and_a_bad_one_is_401(floor: Floor) -> None:
    with floor.bearer(floor.tokens["bi"]) as bi:
        me = bi.get("/api/v1/me").json()
        assert me["user"] == "bi" and me["role"] == "manager" and me["csrf"] == ""
        assert "set-cookie" not in bi.get("/api/v1/floor").headers
    with floor.bearer("sbx_" + "x" * 43) as forged:
        answer = forged.get("/api/v1/floor")
        assert answer.status_code == 401 and answer.json()["field"] == "Authorization"
    listed = subprocess.run(
        seatbox("floor", "token", "list", "--config", str(floor.config)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0 and "bi\tmanager" in listed.stdout
    assert floor.tokens["bi"] not in listed.stdout  # only its digest is kept


def test_metrics_count_seats_by_site_and_team_never_by_seat_or_agent(floor: Floor) -> None:
    with floor.bearer(floor.tokens["tv"]) as tv:
        answer = tv.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'seatbox_floor_seats{site="lab",team="A",state="online"} 2' in text
    assert 'seatbox_floor_seats{site="lab",team="B",state="online"} 1' in text
    assert 'seatbox_floor_headset_lost{site="lab",team="A"} 0' in text
    assert "seatbox_floor_ingest_events_total" in text
    assert "seatbox_floor_store_lag_seconds" in text
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        labels = line.split("{", 1)[1].split("}", 1)[0] if "{" in line else ""
        assert {part.split("=")[0] for part in labels.split(",")} <= {"site", "team", "state"}
    for name in ("A-01", "A-02", "B-01", "agent-a1"):
        assert name not in text
    with floor.login("sup-a") as sup:
        assert sup.get("/metrics").status_code == 403
    with floor.login("wall") as wall:
        assert wall.get("/metrics").status_code == 403  # a wallboard token, not a session
    with floor.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401


def read_events(response: httpx.Response, out: list[tuple[str, dict[str, Any]]]) -> None:
    kind = ""
    with contextlib.suppress(httpx.HTTPError):  # the test closes the stream when done
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[6:])))


def test_the_stream_sends_a_snapshot_then_a_diff_when_a_seat_changes(
    floor: Floor, broker: Mosquitto
) -> None:
    """Two browsers at once: a supervisor of team A and a manager (the whole site)."""
    ours: list[tuple[str, dict[str, Any]]] = []
    site: list[tuple[str, dict[str, Any]]] = []
    seats = Seats(broker)
    with (
        floor.login("sup-a") as sup,
        floor.bearer(floor.tokens["bi"]) as bi,
        sup.stream("GET", "/api/v1/floor/stream") as response,
        bi.stream("GET", "/api/v1/floor/stream") as site_response,
    ):
        try:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for stream, out in ((response, ours), (site_response, site)):
                threading.Thread(target=read_events, args=(stream, out), daemon=True).start()
            wait_until(lambda: ours and site, 10, "the snapshots")
            kind, snapshot = ours[0]
            assert kind == "floor"
            assert {s["seat"] for s in snapshot["seats"]} == {"A-01", "A-02", "A-03"}
            assert site[0][0] == "floor" and len(site[0][1]["seats"]) >= 4
            seats.send("A-03", "availability", b"online")
            seats.send("A-03", "state", state("A-03", call="ringing"))
            seats.send("B-01", "state", state("B-01", call="ringing"))  # not sup-a's team

            def ringing(events: list[tuple[str, dict[str, Any]]], seat: str) -> bool:
                return any(
                    k == "diff" and (d["seats"].get(seat) or {}).get("call") == "ringing"
                    for k, d in events
                )

            wait_until(lambda: ringing(ours, "A-03"), 10, "a diff with A-03 ringing")
            wait_until(lambda: ringing(site, "B-01"), 10, "the manager's diff with B-01")
            assert ringing(site, "A-03")
            diffs = [d for k, d in ours if k == "diff"]
            assert all("B-01" not in d["seats"] for d in diffs)
            assert diffs[-1]["teams"][0]["team"] == "A" and diffs[-1]["teams"][0]["ringing"] >= 1
            # At most two diffs a second.
            for events in (ours, site):
                stamps = [datetime.fromisoformat(d["ts"]) for k, d in events if k == "diff"]
                assert all(
                    (b - a).total_seconds() >= 0.45
                    for a, b in zip(stamps, stamps[1:], strict=False)
                )
        finally:
            response.close()
            site_response.close()
            seats.send("A-03", "state", state("A-03"))
            seats.send("B-01", "state", state("B-01", presence="away"))
            seats.close()


def test_a_simulated_seat_outside_the_layout_shows_marked_and_counts_events(
    floor: Floor, broker: Mosquitto
) -> None:
    run = subprocess.run(
        seatbox("simulate", str(SCENARIOS / "hold_time.toml"), "--fast", "--broker", broker.url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    with floor.bearer(floor.tokens["bi"]) as bi:

        def seen() -> dict[str, Any] | None:
            rows = bi.get("/api/v1/floor").json()["seats"]
            return next((s for s in rows if s["seat"] == "S-holdtime"), None)

        wait_until(seen, 10, "the simulated seat on the floor")
        row = seen()
        assert row is not None and row["in_layout"] is False and row["team"] is None
        metrics = bi.get("/metrics").text
    events = next(
        line for line in metrics.splitlines() if line.startswith("seatbox_floor_ingest_events")
    )
    assert float(events.split()[-1]) >= 10


def access_log(floor: Floor) -> list[tuple[str, str, str]]:
    accounts = Accounts(floor.config.parent / "state" / "accounts.sqlite")
    try:
        return [(row["who"], row["role"], row["what"]) for row in accounts.access_log()]
    finally:
        accounts.close()


def test_timelines_are_refused_outside_the_scope_and_each_view_is_logged(floor: Floor) -> None:
    day = today()
    path = f"/api/v1/seats/A-01/timeline?date={day}"
    with floor.login("boss") as boss:

        def stored() -> bool:
            return len(boss.get(path).json()["entries"]) == 2

        wait_until(stored, 10, "A-01's events in the store")
        answer = boss.get(path).json()
        assert answer["seat"] == "A-01" and answer["date"] == day
        assert answer["team"] == "A" and answer["agent"] == "agent-a1"
        assert [e["type"] for e in answer["entries"]] == ["call.ringing", "hold.too_long"]
        assert answer["entries"][1]["data"] == {"hold_s": 181}
        missing = boss.get(f"/api/v1/seats/Z-99/timeline?date={day}")
        assert missing.status_code == 404 and missing.json()["field"] == "seat"
    with floor.login("sup-a") as sup:
        assert sup.get(path).status_code == 200
        refused = sup.get(f"/api/v1/seats/B-01/timeline?date={day}")
        assert refused.status_code == 403 and "your teams" in refused.json()["error"]
    with floor.login("sup-b") as sup:
        assert sup.get(f"/api/v1/seats/B-01/timeline?date={day}").status_code == 200
    with floor.login("wall") as wall:
        refused = wall.get(path)
        assert refused.status_code == 403 and "aggregates" in refused.json()["error"]
    with floor.bearer(floor.tokens["tv"]) as tv:
        assert tv.get(path).status_code == 403
    with floor.login("agent-a1") as agent:
        assert agent.get(path).status_code == 200
        assert agent.get(f"/api/v1/seats/A-02/timeline?date={day}").status_code == 403
        assert agent.get("/api/v1/seats/A-01/timeline?date=2026-01-05").status_code == 403
    logged = access_log(floor)
    assert ("boss", "manager", f"timeline A-01 {day}") in logged
    assert ("sup-b", "supervisor", f"timeline B-01 {day}") in logged
    assert ("agent-a1", "agent", f"timeline A-01 {day}") in logged
    assert not any(who in ("wall", "tv") for who, _, _ in logged)  # refused: nothing seen
    assert ("sup-a", "supervisor", f"timeline B-01 {day}") not in logged


REPORT_COLUMNS = [
    "seat",
    "team",
    "agent",
    "arrival",
    "late",
    "early_leave",
    "absent",
    "away_count",
    "away_minutes",
    "calls",
    "answered_late",
    "holds",
    "holds_too_long",
    "adherence_pct",
]


def test_the_daily_report_as_json_and_csv_in_each_roles_scope(floor: Floor) -> None:
    day = today()
    path = f"/api/v1/reports/daily?date={day}"
    with floor.bearer(floor.tokens["bi"]) as bi:  # a BI tool pulling the report
        wait_until(
            lambda: len(bi.get(f"/api/v1/seats/B-01/timeline?date={day}").json()["entries"]) == 2,
            10,
            "B-01's events in the store",
        )
        report = bi.get(path).json()
        rows = {row["seat"]: row for row in report["rows"]}
        assert {"A-01", "A-02", "A-03", "B-01"} <= set(rows)
        assert set(REPORT_COLUMNS) | {"events"} <= set(rows["A-01"])
        assert rows["A-01"]["calls"] == 1 and rows["A-01"]["holds_too_long"] == 1
        assert rows["A-01"]["agent"] == "agent-a1" and rows["B-01"]["team"] == "B"
        assert rows["A-01"]["events"] == {"call.ringing": 1, "hold.too_long": 1}
        answer = bi.get(path + "&format=csv")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="seatbox-daily-lab-{day}.csv"'
        )
        lines = answer.text.splitlines()
        header = lines[0].split(",")
        assert set(REPORT_COLUMNS) <= set(header) and header[0] == "seat"
        assert "events.hold.too_long" in header
        assert len(lines) == 1 + len(report["rows"])
        a01 = dict(
            zip(
                header,
                next(line for line in lines if line.startswith("A-01,")).split(","),
                strict=True,
            )
        )
        assert a01["calls"] == "1" and a01["events.hold.too_long"] == "1"
    with floor.login("sup-a") as sup:
        report = sup.get(path).json()
        assert {row["team"] for row in report["rows"]} == {"A"}
        assert [team["team"] for team in report["teams"]] == ["A"]
        assert sup.get(path + "&team=B").status_code == 403
    with floor.login("agent-a1") as agent:
        assert [row["seat"] for row in agent.get(path).json()["rows"]] == ["A-01"]
    with floor.login("wall") as wall:
        assert wall.get(path).status_code == 403
    logged = access_log(floor)
    assert ("bi", "manager", f"report {day}") in logged
    assert ("sup-a", "supervisor", f"report {day}") in logged


def test_hostile_requests_get_a_4xx_naming_the_problem_never_a_500(floor: Floor) -> None:
    with floor.login("boss") as boss:
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/api/v1/seats/..%2F..%2Fetc%2Fpasswd/timeline?date=2026-12-03", {}),
            ("GET", "/api/v1/seats/A-01/timeline?date=2026-13-45", {}),
            ("GET", "/api/v1/seats/A-01/timeline?date=yesterday", {}),
            ("GET", "/api/v1/seats/A-01/timeline", {}),
            ("GET", "/api/v1/seats/" + "A" * 300 + "/timeline?date=2026-12-03", {}),
            ("GET", "/api/v1/reports/daily?date=2026-12-03&format=xml", {}),
            ("GET", "/api/v1/reports/daily?date=2026-12-03&team=%27%3B%20DROP", {}),
            ("GET", "/api/v1/floor?" + "x=" + "y" * 6000, {}),
            ("GET", "/static/../../floor/accounts.py", {}),
            ("GET", "/static/%2e%2e/%2e%2e/pyproject.toml", {}),
            ("GET", "/seat/%00", {}),
            ("POST", "/api/v1/login", {"json": {"username": ["x"], "password": 5}}),
            ("POST", "/api/v1/login", {"json": {"username": "x" * 100, "password": "y"}}),
            ("POST", "/api/v1/login", {"content": b"not json"}),
            ("POST", "/api/v1/login", {"json": [1, 2, 3]}),
            ("POST", "/api/v1/login", {"content": b"x" * (MAX_BODY + 1)}),
            ("DELETE", "/api/v1/floor", {}),
            ("GET", "/api/v1/nothing-here", {}),
        ]
        for method, url, kwargs in cases:
            answer = boss.request(method, url, **kwargs)
            assert 400 <= answer.status_code < 500, (url[:80], answer.status_code, answer.text)
            if answer.headers.get("content-type", "").startswith("application/json"):
                assert "error" in answer.json(), url
        answer = boss.get("/api/v1/seats/A-01/timeline?date=2026-13-45")
        assert answer.status_code == 400 and answer.json()["field"] == "date"
        answer = boss.get("/api/v1/seats/" + "A" * 300 + "/timeline?date=2026-12-03")
        assert answer.status_code == 400 and answer.json()["field"] == "seat"
        assert boss.get("/api/v1/me").status_code == 200  # the service is still there
    # Path traversal as sent on the wire (an HTTP client would normalise the dots away).
    port = int(floor.url.rsplit(":", 1)[1])
    for target in (
        "/static/../../../pyproject.toml",
        "/static/..%2f..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/%2e%2e/floor/accounts.py",
        "/static//etc/passwd",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (target, answer[:200])
        assert b"[project]" not in answer and b"argon2" not in answer and b"root:" not in answer


MAX_BODY = 64 * 1024


def test_team_only_mode_shows_no_seat_to_anyone(broker: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path / "teamonly", broker, individual_views=False, min_group_size=1)
    add_users(config, [("boss", "manager", []), ("agent-a1", "agent", ["--seat", "A-01"])])
    running = start(config)
    seats = Seats(broker)
    try:
        seats.online("A-01")
        with running.login("boss") as boss:
            assert boss.get("/api/v1/me").json()["individual_views"] is False

            def team_a_online() -> bool:
                teams = boss.get("/api/v1/floor").json()["teams"]
                return any(t["team"] == "A" and (t["online"] or 0) >= 1 for t in teams)

            wait_until(team_a_online, 10, "team A's aggregate")
            assert boss.get("/api/v1/floor").json()["seats"] == []
            refused = boss.get(f"/api/v1/seats/A-01/timeline?date={today()}")
            assert refused.status_code == 403 and "individual views" in refused.json()["error"]
            report = boss.get(f"/api/v1/reports/daily?date={today()}").json()
            assert report["rows"] == [] and [t["team"] for t in report["teams"]] == ["A", "B"]
        with running.login("agent-a1") as agent:
            assert agent.get("/api/v1/floor").json()["seats"] == []
            # SIGTERM with a browser's stream open: the service still stops cleanly, soon.
            events: list[tuple[str, dict[str, Any]]] = []
            with agent.stream("GET", "/api/v1/floor/stream") as response:
                reader = threading.Thread(target=read_events, args=(response, events))
                reader.start()
                wait_until(lambda: events, 10, "the snapshot")
                assert events[0][1]["seats"] == []
                started = time.monotonic()
                assert running.stop() == 0
                assert time.monotonic() - started < 10
                reader.join(10)
                assert not reader.is_alive()  # the stream ended with the service
    finally:
        seats.close()
        assert running.stop() == 0


def test_a_norm_the_site_does_not_show_colours_nothing_and_lists_no_violation() -> None:
    """[privacy] norms on the live floor: a hold past its limit, flagged by the seat, is red
    where hold norms are shown and leaves no trace where only call norms are."""
    held_since = datetime.now(UTC) - timedelta(seconds=200)
    since = held_since.isoformat(timespec="milliseconds")[:23] + "Z"
    payload = json.loads(state("A-01", call="held"))
    payload["call"]["since"] = since
    payload["violations"] = [{"type": "hold.too_long", "since": since}]
    rows = {}
    for norms in (["*"], ["call.*"]):
        config = FloorConfig.model_validate({"site": {"id": "lab"}, "privacy": {"norms": norms}})
        places = Places(config, Layout.parse({"seats": {"A-01": {"team": "A"}}}))
        live = LiveFloor("lab", places, places.level)
        live.apply("seatbox/v1/lab/A-01/availability", b"online", 0.0)
        live.apply("seatbox/v1/lab/A-01/state", json.dumps(payload).encode(), 0.0)
        rows[norms[0]] = live.step(time.time())["A-01"]
    shown, hidden = rows["*"], rows["call.*"]
    assert shown["level"] == "violation" and shown["reasons"] == ["hold.violation"]
    assert shown["since"] == since and shown["violations"][0]["type"] == "hold.too_long"
    assert hidden["call"] == "hold"  # the state itself is still shown
    assert hidden["level"] == "ok" and hidden["reasons"] == [] and hidden["violations"] == []


def test_with_postgresql_gone_the_live_floor_goes_on_and_the_store_catches_up(
    broker: Mosquitto, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pg: PgServer = request.getfixturevalue("own_pg_server")  # stopped and started here
    config = write_config(tmp_path / "pg", broker, pg.new_database(), min_group_size=1)
    add_users(config, [("boss", "manager", [])])
    running = start(config)
    seats = Seats(broker)
    timeline = f"/api/v1/seats/A-01/timeline?date={today()}"
    try:
        with running.login("boss") as boss:
            seats.online("A-01")
            seats.send("A-01", "event", event(0, "call.ringing", RINGING, boot="6-0a0b0c0d"))
            wait_until(lambda: len(boss.get(timeline).json()["entries"]) == 1, 10, "stored")

            pg.stop()
            seats.online("A-02", call="ringing")
            seats.send("A-01", "event", event(1, "hold.too_long", {}, boot="6-0a0b0c0d"))

            def ringing() -> bool:
                rows = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
                return rows["A-02"]["call"] == "ringing"

            wait_until(ringing, 10, "the live floor without its database")
            refused = boss.get(timeline)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "10"
            assert "store is unavailable" in refused.json()["error"]
            assert boss.get(f"/api/v1/reports/daily?date={today()}").status_code == 503

            pg.start()
            wait_until(
                lambda: (
                    boss.get(timeline).status_code == 200
                    and len(boss.get(timeline).json()["entries"]) == 2
                ),
                30,
                "the store caught up",
            )
    finally:
        seats.close()
        assert running.stop() == 0
    assert "Traceback" not in running.log.read_text()


def test_a_restart_with_the_brokers_retained_messages_gone_still_shows_the_last_states(
    tmp_path: Path,
) -> None:
    """Issue 15: the live floor is seeded from the store at start, so a restarted service
    shows every seat's last state at once even when the broker replays nothing (here a fresh
    broker on the same port), each row marked `from_store` until the broker speaks of it."""
    broker = Mosquitto(tmp_path)
    broker.start()
    config = write_config(tmp_path / "restart", broker, min_group_size=1)
    token = add_token(config, "bi", "manager")
    running = start(config)
    seats = Seats(broker)
    try:
        seats.online("A-01", call="active")
        seats.online("B-01", presence="away")
        with running.bearer(token) as boss:

            def two_live() -> bool:
                rows = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
                return all(rows.get(s, {}).get("online") for s in ("A-01", "B-01"))

            wait_until(two_live, 10, "two seats online")
            before = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
        assert not before["A-01"]["from_store"] and before["A-01"]["call"] == "active"
        seats.close()
        assert running.stop() == 0
        broker.stop()
        broker.start()  # persistence off: nothing retained any more
        seats = Seats(broker)
        running = start(config)
        with running.bearer(token) as boss:
            rows = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
            assert (rows["A-01"]["call"], rows["A-01"]["online"]) == ("active", True)
            assert (rows["B-01"]["presence"], rows["B-01"]["online"]) == ("away", True)
            assert rows["A-01"]["from_store"] and rows["B-01"]["from_store"]
            assert rows["A-01"]["call_since"] == before["A-01"]["call_since"]
            assert rows["A-02"]["online"] is None and not rows["A-02"]["from_store"]
            # The seat speaks again: its own message replaces the store's copy.
            seats.online("A-01")

            def a01_live() -> bool:
                rows = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
                return rows["A-01"]["call"] == "idle" and not rows["A-01"]["from_store"]

            wait_until(a01_live, 10, "A-01's new state from the broker")
            rows = {s["seat"]: s for s in boss.get("/api/v1/floor").json()["seats"]}
            assert rows["B-01"]["from_store"]
        assert "2 seats seeded from the store" in running.log.read_text()
    finally:
        seats.close()
        assert running.stop() == 0
        broker.stop()
