"""The floor service's HTTP side: the JSON API v1 (docs/floor-api.md), the event stream of
floor diffs, /metrics, and the page (floor/web/static/).

Who sees what is decided here, on the server: a supervisor their teams, a manager the site, a
wallboard account aggregates only, an agent their own seat and day; `[privacy]
individual_views = false` removes every per-seat view. Refusals are 403 with a JSON body
{"error", "field"}; bad input is 400 naming the field; nothing a client sends makes a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import date as Date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from edge.base.schema import ID_PATTERN, valid_id
from floor.accounts import MAX_PASSWORD, SESSION_S, Accounts, Principal, same_secret
from floor.reports import Report, daily_report, timeline
from floor.store import StoreUnavailable
from floor.web.live import Seat, aggregate, iso, team_aggregates
from floor.web.service import FloorService

log = logging.getLogger(__name__)

COOKIE = "seatbox_session"
STATIC = Path(__file__).resolve().parent / "static"
TICK_S = 0.5  # diffs at most twice a second
GC_FREEZE_S = 30.0  # long-lived objects moved out of the garbage collector's scans this often
GC_FULL_S = 3600.0  # and everything collected once (frozen cyclic garbage freed) this often
KEEPALIVE_S = 15.0
STREAM_QUEUE = 8  # ticks a slow browser may lag before it gets a fresh snapshot instead
MAX_BODY = 64 * 1024  # nothing the API takes is larger (a login)
MAX_URL = 2048  # path + query: no request of this API needs more
# Verifying a password costs 64 MiB and ~0.1 s (Argon2id): a few at a time, whatever comes.
LOGINS_AT_ONCE = 2
# A reverse proxy on this host may say the browser's request came over TLS
# (X-Forwarded-Proto) and from which address (X-Forwarded-For); nobody else may.
TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
FIRST_DAY, LAST_DAY = Date(1970, 1, 1), Date(2999, 12, 31)  # anything else is a typo
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

# What each checked field expects, in the words an error gives.
EXPECTED = {
    "seat": "a seat id (1-64 of A-Z a-z 0-9 _ -)",
    "team": "a team id (1-64 of A-Z a-z 0-9 _ -)",
    "date": "a date YYYY-MM-DD",
    "format": "json or csv",
    "table": "rows or teams",
    "username": "a user name (a string of 1-64 characters)",
    "password": f"a password (a string of at most {MAX_PASSWORD} characters)",
}


class ApiError(HTTPException):
    def __init__(
        self,
        status: int,
        error: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, error, headers)
        self.field = field


# --- request and response models (the OpenAPI description) -------------------------------


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]


class ErrorBody(BaseModel):
    error: str
    field: str | None


class Me(BaseModel):
    user: str
    role: str
    teams: list[str]
    seat: str | None
    csrf: str
    site: str
    timezone: str
    individual_views: bool


class Violation(BaseModel):
    type: str
    since: str


class SeatRow(BaseModel):
    """A seat on the live floor (docs/floor-api.md)."""

    seat: str
    team: str | None
    agent: str | None
    label: str
    x: float | None
    y: float | None
    in_layout: bool
    online: bool | None
    call: str = Field(description="idle | ringing | active | hold")
    call_since: str | None
    presence: str = Field(description="present | away | unknown")
    presence_since: str | None
    muted: bool
    headset_ok: bool | None
    radar_ok: bool | None
    level: str = Field(description="ok | warn | fault | violation | offline")
    reasons: list[str]
    since: str | None
    violations: list[Violation]
    from_store: bool = Field(
        description="shown from the floor service's store (its last copy before a restart); "
        "false once the broker has sent this seat's state, info or availability"
    )


class Aggregate(BaseModel):
    """Counts over a team (or the scope's totals, without `team`); null when suppressed."""

    team: str | None = None
    seats: int
    online: int | None
    on_call: int | None
    ringing: int | None
    on_hold: int | None
    away: int | None
    violations: int | None
    longest_hold_s: int | None
    longest_ring_s: int | None
    suppressed: bool


class FloorBody(BaseModel):
    site: str
    ts: str
    seats: list[SeatRow]
    teams: list[Aggregate]
    totals: Aggregate


class TimelineEntry(BaseModel):
    ts: str
    type: str
    data: dict[str, Any]


class TimelineBody(BaseModel):
    seat: str
    date: str
    team: str | None
    agent: str | None
    entries: list[TimelineEntry]


class ReportBody(BaseModel):
    """floor.reports.daily_report (docs/floor.md, "Reports", defines the columns)."""

    site: str
    date: str
    timezone: str
    columns: list[str]
    rows: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    totals: dict[str, Any] | None
    distributions: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "bad input: `field` names it"),
        (401, "not logged in"),
        (403, "not yours to see"),
    )
}


# --- who is asking ---------------------------------------------------------------------------

bearer_scheme = HTTPBearer(auto_error=False, description="an API token (seatbox floor token add)")
cookie_scheme = APIKeyCookie(name=COOKIE, auto_error=False, description="the session cookie")


def _trusted(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in TRUSTED_PROXIES)


def client_address(request: Request) -> str:
    """The browser's address: the peer, or what a trusted local proxy says it is."""
    peer = request.client.host if request.client else "?"
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded and _trusted(request):
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer


def over_tls(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" and _trusted(request)


def principal(
    request: Request,
    _bearer: Annotated[Any, Depends(bearer_scheme)] = None,
    _cookie: Annotated[str | None, Depends(cookie_scheme)] = None,
) -> Principal:
    accounts: Accounts = request.app.state.service.accounts
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        found = accounts.token_principal(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise ApiError(
                401,
                "expected Authorization: Bearer <a valid API token>",
                "Authorization",
                {"WWW-Authenticate": "Bearer"},
            )
        return found
    session = request.cookies.get(COOKIE)
    found = accounts.session(session) if session else None
    if found is None:
        raise ApiError(
            401, "log in first (POST /api/v1/login) or send Authorization: Bearer <token>"
        )
    return found


Who = Annotated[Principal, Depends(principal)]


@dataclass
class Tick:
    """One pass of the live floor: the rows that changed, and every row (for aggregates)."""

    ts: float
    changed: dict[str, Seat]
    rows: list[Seat]
    _aggregates: dict[tuple[str, ...], tuple[list[dict[str, Any]], dict[str, Any]]] = field(
        default_factory=dict
    )
    # The site-wide diff, encoded once for every browser that sees the whole site.
    _site_diff: str | None = None
    # Per scope, the `floor` snapshot encoded once for every browser opening in this tick,
    # and the seats it holds.
    _snapshots: dict[tuple[Any, ...], tuple[str, set[str], Any]] = field(default_factory=dict)


class Hub:
    """Steps the live floor twice a second and hands each tick to every open stream."""

    def __init__(
        self, service: FloorService, prepare: Callable[[Tick], None] = lambda tick: None
    ) -> None:
        self.service = service
        self._prepare = prepare  # run on the step's thread: what every stream will share
        self.streams: set[asyncio.Queue[Tick | None]] = set()
        self.last: Tick | None = None

    def subscribe(self) -> asyncio.Queue[Tick | None]:
        queue: asyncio.Queue[Tick | None] = asyncio.Queue(STREAM_QUEUE)
        self.streams.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Tick | None]) -> None:
        self.streams.discard(queue)

    async def run(self) -> None:
        frozen, collected = float("-inf"), time.monotonic()  # the seeded floor at once
        while True:
            started = time.monotonic()
            if started - frozen >= GC_FREEZE_S:
                # What has lived this long (the floor's states and rows) leaves the collector's
                # generations: a full collection over ~500,000 objects at 10,000 seats held
                # the GIL ~210 ms, the live floor's and the SSE browsers' tail (issue 15).
                if started - collected >= GC_FULL_S:
                    # Frozen objects that later became cyclic garbage are freed here: one
                    # full pause an hour instead of one every few seconds.
                    gc.unfreeze()
                    gc.collect()
                    collected = started
                gc.freeze()
                frozen = started
            try:
                tick = await asyncio.to_thread(self._tick, time.time())
                self.last = tick
                for queue in list(self.streams):
                    if queue.full():  # a slow browser: it gets a fresh snapshot instead
                        while not queue.empty():
                            queue.get_nowait()
                        queue.put_nowait(None)
                    else:
                        queue.put_nowait(tick)
            except Exception:  # a bug must not stop the floor: logged, next tick
                log.exception("floor web: live floor step failed")
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - started)))

    def _tick(self, now: float) -> Tick:
        """One step of the live floor and what the streams share of it, off the event loop."""
        live = self.service.live
        tick = Tick(now, live.step(now), live.rows())
        self._prepare(tick)
        return tick


def create_app(service: FloorService) -> FastAPI:
    """The floor service's web app (FastAPI)."""
    accounts = service.accounts
    places = service.places
    hub = Hub(service, lambda tick: prepare(tick))
    login_slots = threading.BoundedSemaphore(LOGINS_AT_ONCE)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="seatbox floor service",
        version="1",
        description="The supervisors' floor: live floor, timelines, daily reports (docs/floor-api.md).",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.service = service

    # --- errors: {"error", "field"}, never a stack trace ---------------------------------

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ())]
        where = loc[1:] if loc and loc[0] in ("query", "path", "body", "header", "cookie") else loc
        name = ".".join(where)[:64] or None  # a body's key names come from the client
        if name in EXPECTED:
            message = f"{name}: expected {EXPECTED[name]}"
        elif first.get("type") == "missing" and name:
            message = f"{name}: missing"
        elif loc[:1] == ["body"] and not where:
            message = 'expected a JSON object {"username": ..., "password": ...}'
        else:
            message = f"{name or 'request'}: {first.get('msg', 'invalid')}"[:200]
        return JSONResponse({"error": message, "field": name}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        field = getattr(exc, "field", None)
        detail = exc.detail if isinstance(exc.detail, str) else "refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such page or resource"
        if exc.status_code == 405:
            detail = "method not allowed here"
        return JSONResponse(
            {"error": detail, "field": field}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("floor web: %s: the store is unavailable (%s)", request.url.path[:120], exc)
        return JSONResponse(
            {"error": "the store is unavailable; the live floor goes on: try again", "field": None},
            status_code=503,
            headers={"Retry-After": "10"},
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("floor web: %s %s failed", request.method, request.url.path[:120])
        return JSONResponse({"error": "internal error (logged)", "field": None}, status_code=500)

    # --- auth ------------------------------------------------------------------------------

    def check_csrf(request: Request, who: Principal) -> None:
        if who.kind == "user" and not same_secret(
            request.headers.get("x-csrf-token", ""), who.csrf
        ):
            raise ApiError(
                403,
                "expected header X-CSRF-Token (the csrf of login or /api/v1/me)",
                "X-CSRF-Token",
            )

    def me(who: Principal) -> dict[str, Any]:
        return {
            "user": who.name,
            "role": who.role,
            "teams": list(who.teams),
            "seat": who.seat,
            "csrf": who.csrf,
            "site": service.site,
            "timezone": places.timezone,
            "individual_views": places.individual_views,
        }

    @app.post("/api/v1/login", response_model=Me, responses=ERRORS | {429: ERRORS[403]})
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        """Log in: the session cookie, and the CSRF token for writes."""
        address = client_address(request)
        wait = accounts.retry_after(body.username, address)
        if wait:
            raise ApiError(
                429,
                f"too many failed logins: try again in {wait} s",
                None,
                {"Retry-After": str(wait)},
            )
        with login_slots:
            found = accounts.verify(body.username, body.password)
        if found is None:
            accounts.failed(body.username, address)
            # A name typed into the wrong field may be a password: only known names are logged.
            known = accounts.user(body.username) is not None
            shown = repr(body.username) if known else "an unknown user name"
            log.info("floor web: failed login for %s from %s", shown, address)
            raise ApiError(401, "wrong user name or password")
        accounts.succeeded(body.username)
        session = accounts.new_session(found)
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(SESSION_S),
            path="/",
            secure=over_tls(request),
            httponly=True,
            samesite="strict",
        )
        log.info("floor web: %s logged in (%s) from %s", found.name, found.role, address)
        return me(Principal(**{**found.__dict__, "csrf": session.csrf}))

    @app.post("/api/v1/logout", status_code=204, responses=ERRORS)
    def logout(request: Request) -> Response:
        """End the session (a cookie session needs X-CSRF-Token)."""
        session = request.cookies.get(COOKIE)
        found = accounts.session(session) if session else None
        if session and found is not None:
            check_csrf(request, found)
            accounts.end_session(session)
        response = Response(status_code=204)
        response.delete_cookie(
            COOKIE, path="/", secure=over_tls(request), httponly=True, samesite="strict"
        )
        return response

    @app.get("/api/v1/me", response_model=Me, responses=ERRORS)
    def get_me(who: Who) -> dict[str, Any]:
        """Who is logged in, their scope, and the CSRF token for writes."""
        return me(who)

    # --- scope -----------------------------------------------------------------------------

    def in_scope(who: Principal, row: Seat) -> bool:
        """Whether this seat counts in what `who` sees (rows or aggregates)."""
        if who.role == "manager":
            return True
        if who.role == "agent":
            return bool(row["seat"] == who.seat)
        if who.role == "wallboard" and not who.teams:
            return True
        return row["team"] in who.teams

    def sees_seats(who: Principal) -> bool:
        return places.individual_views and who.role != "wallboard"

    def scope_key(who: Principal) -> tuple[str, ...]:
        if who.role == "manager" or (who.role == "wallboard" and not who.teams):
            return ("site",)
        if who.role == "agent":
            return ("seat", who.seat or "")
        return ("teams", *who.teams)

    def aggregates(who: Principal, tick: Tick) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        key = scope_key(who)
        if key not in tick._aggregates:
            # The site scope is every row: no per-row check of 10,000 rows each tick.
            rows = tick.rows if key == ("site",) else [r for r in tick.rows if in_scope(who, r)]
            teams = (
                [] if who.role == "agent" else team_aggregates(rows, tick.ts, places.min_group_size)
            )
            totals = aggregate(rows, tick.ts, places.min_group_size, None)
            tick._aggregates[key] = (teams, totals)
        return tick._aggregates[key]

    site_wide_viewer = Principal(name="", role="manager")  # the scope ("site",), not a user

    def site_diff(tick: Tick, who: Principal) -> str:
        """The site-wide diff of this tick, encoded once for every browser seeing the site."""
        if tick._site_diff is None:
            teams, totals = aggregates(who, tick)
            tick._site_diff = _sse(
                "diff",
                {"ts": iso(tick.ts), "seats": tick.changed, "teams": teams, "totals": totals},
            )
        return tick._site_diff

    def prepare(tick: Tick) -> None:
        """On the step's thread: the site's aggregates and diff, before any stream needs them
        (the event loop then only writes the same text to every site-wide browser)."""
        if tick.changed and hub.streams and sees_seats(site_wide_viewer):
            site_diff(tick, site_wide_viewer)

    def current_tick() -> Tick:
        return hub.last or Tick(time.time(), {}, service.live.rows())

    def floor_for(who: Principal, tick: Tick) -> dict[str, Any]:
        teams, totals = aggregates(who, tick)
        seats = (
            sorted((r for r in tick.rows if in_scope(who, r)), key=lambda r: r["seat"])
            if sees_seats(who)
            else []
        )
        return {
            "site": service.site,
            "ts": iso(tick.ts),
            "seats": seats,
            "teams": teams,
            "totals": totals,
        }

    def snapshot_for(who: Principal, tick: Tick) -> tuple[str, set[str], Any]:
        """The `floor` event of this scope, encoded once per tick for every browser of the
        scope that opens (or falls behind) in it: its text, its seats, its aggregates."""
        key = (scope_key(who), sees_seats(who))
        if key not in tick._snapshots:
            snapshot = floor_for(who, tick)
            tick._snapshots[key] = (
                _sse("floor", snapshot),
                {row["seat"] for row in snapshot["seats"]},
                (snapshot["teams"], snapshot["totals"]),
            )
        return tick._snapshots[key]

    @app.get(
        "/api/v1/floor",
        response_model=None,
        responses=ERRORS | {200: {"model": FloorBody, "description": "the live floor"}},
    )
    def get_floor(who: Who) -> dict[str, Any]:
        """The live floor: seats in scope (none for a wallboard or in team-only mode), team
        aggregates and totals."""
        return floor_for(who, current_tick())

    @app.get(
        "/api/v1/floor/stream",
        responses=ERRORS | {200: {"content": {"text/event-stream": {}}, "description": "SSE"}},
    )
    async def floor_stream(who: Who, request: Request) -> StreamingResponse:
        """Server-sent events: `floor` (a full snapshot), then `diff`s at most twice a second."""
        queue = hub.subscribe()

        async def still_allowed() -> bool:
            """The session or token is still valid (a logout, a removed user or a revoked
            token ends the stream at the next keepalive)."""
            try:
                await asyncio.to_thread(principal, request)
            except ApiError:
                return False
            return True

        async def events() -> AsyncIterator[str]:
            try:
                text, seen, last_aggs = snapshot_for(who, current_tick())
                sent = set(seen)
                yield text
                last_write = last_check = time.monotonic()
                while not service.stopping():
                    if time.monotonic() - last_check >= KEEPALIVE_S:
                        if not await still_allowed():
                            return
                        last_check = time.monotonic()
                    if time.monotonic() - last_write >= KEEPALIVE_S:
                        last_write = time.monotonic()
                        yield ": keepalive\n\n"
                    try:
                        tick = await asyncio.wait_for(queue.get(), 1.0)
                    except TimeoutError:
                        continue
                    if tick is None:  # fell behind: start again from a snapshot
                        text, seen, last_aggs = snapshot_for(who, current_tick())
                        sent = set(seen)
                        last_write = time.monotonic()
                        yield text
                        continue
                    site_wide = scope_key(who) == ("site",) and sees_seats(who)
                    if site_wide and tick.changed:  # the same diff for every such browser
                        last_aggs = aggregates(who, tick)
                        last_write = time.monotonic()
                        yield site_diff(tick, who)
                        continue
                    seats: dict[str, Seat | None] = {}
                    if sees_seats(who):
                        for seat, row in tick.changed.items():
                            if in_scope(who, row):
                                seats[seat] = row
                                sent.add(seat)
                            elif seat in sent:  # moved out of scope (another team today)
                                seats[seat] = None
                                sent.discard(seat)
                    aggs = aggregates(who, tick)
                    if not seats and aggs == last_aggs:
                        continue
                    last_aggs = aggs
                    last_write = time.monotonic()
                    diff = {"ts": iso(tick.ts), "seats": seats, "teams": aggs[0], "totals": aggs[1]}
                    yield _sse("diff", diff)
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- timelines and reports (floor.reports) ---------------------------------------------

    def refuse_individual(who: Principal) -> None:
        if who.role == "wallboard":
            raise ApiError(403, "a wallboard account sees aggregates only")
        if not places.individual_views:
            raise ApiError(
                403, "individual views are off at this site ([privacy] individual_views)"
            )

    def agent_today(who: Principal, day: str) -> None:
        if who.role == "agent" and day != places.day(time.time()):
            raise ApiError(403, "an agent sees their own seat today only", "date")

    @app.get(
        "/api/v1/seats/{seat}/timeline",
        response_model=None,
        responses=ERRORS
        | {404: ERRORS[403], 200: {"model": TimelineBody, "description": "the seat's day"}},
    )
    def get_timeline(who: Who, seat: SeatId, date: DateQuery) -> dict[str, Any]:
        """A seat's events of a site-local day (norms the site does not show left out)."""
        day = valid_date(date)
        refuse_individual(who)
        place = places.place_on(seat, day)
        if who.role == "agent" and seat != who.seat:
            raise ApiError(403, "an agent sees their own seat only", "seat")
        agent_today(who, day)
        if who.role == "supervisor" and place.team not in who.teams:
            raise ApiError(403, "not a seat of your teams on that day", "seat")
        known = (
            places.known(seat)
            or seat in service.live.model.seats
            or service.store.seat(service.site, seat) is not None
        )
        if not known:
            raise ApiError(404, f"seat {seat}: not in the layout and never heard of", "seat")
        entries = timeline(service.store, service.site, seat, day, places.tz, places.privacy)
        accounts.log_access(who, f"timeline {seat} {day}")
        return {
            "seat": seat,
            "date": day,
            "team": place.team,
            "agent": place.agent,
            "entries": entries,
        }

    @app.get(
        "/api/v1/reports/daily",
        response_model=None,
        responses=ERRORS
        | {
            200: {
                "model": ReportBody,
                "description": "JSON, or CSV with format=csv",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    def get_daily_report(
        who: Who,
        date: DateQuery,
        format: FormatQuery = "json",
        team: TeamQuery = None,
        table: TableQuery = "rows",
    ) -> Response:
        """The daily report of a site-local day: rows per seat (and agent), team aggregates,
        distributions; `format=csv` one table (`table=rows|teams`) as CSV."""
        day = valid_date(date)
        if who.role == "wallboard":
            raise ApiError(403, "a wallboard account sees the live aggregates only")
        if who.role == "supervisor" and team is not None and team not in who.teams:
            raise ApiError(403, f"team {team}: not one of your teams", "team")
        agent_today(who, day)

        def compute() -> Report:
            return daily_report(
                service.store,
                service.site,
                day,
                places.tz,
                places.layout,
                places.roster,
                places.privacy,
            )

        # The whole site's report; a finished day's from the cache while unchanged. Scoping,
        # the access log and rendering below are per request, hit or not.
        cache = service.reports
        report = compute() if cache is None else cache.report(day, compute)
        rows, teams = report.rows, report.teams
        site_scope = who.role == "manager" and team is None
        if who.role == "agent":
            rows = [row for row in rows if row["seat"] == who.seat]
            teams = []
        elif not site_scope:  # a supervisor's teams, or the one team asked for
            allowed = {team} if team is not None else set(who.teams)
            rows = [row for row in rows if row["team"] in allowed]
            teams = [agg for agg in teams if agg["team"] in allowed]
        scoped = replace(report, rows=rows, teams=teams)
        if rows:
            accounts.log_access(who, f"report {day}" + (f" team {team}" if team else ""))
        if format == "csv":
            name = f"seatbox-daily-{service.site}-{day}" + ("-teams" if table == "teams" else "")
            return Response(
                scoped.to_csv(table),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        body = scoped.to_json()
        if not site_scope:
            body["totals"] = None  # the site's totals are for a manager
            shown = {agg["team"] for agg in teams}
            body["distributions"] = {
                "teams": {
                    k: v for k, v in report.distributions.get("teams", {}).items() if k in shown
                }
            }
        return JSONResponse(body)

    # --- /metrics --------------------------------------------------------------------------

    @app.get("/metrics", response_class=PlainTextResponse, responses=ERRORS)
    def metrics(who: Who) -> PlainTextResponse:
        """Prometheus text: labels site and team only, never a seat or an agent."""
        if who.role not in ("manager", "wallboard") or (
            who.role == "wallboard" and who.kind != "token"
        ):
            raise ApiError(403, "/metrics is for a manager, or a manager or wallboard API token")
        return PlainTextResponse(
            prometheus_text(service), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    # --- the page ----------------------------------------------------------------------------

    def page() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            return JSONResponse(
                {
                    "error": "the floor page is not installed (floor/web/static/index.html)",
                    "field": None,
                },
                status_code=404,
            )
        return FileResponse(index, media_type="text/html; charset=utf-8")

    for path in ("/", "/wallboard", "/report", "/login"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @app.get("/seat/{seat}", include_in_schema=False)
    def seat_page(seat: str) -> Response:
        if not valid_id(seat):
            raise ApiError(400, f"seat: expected {EXPECTED['seat']}", "seat")
        return page()

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def valid_date(value: str) -> str:
    """A YYYY-MM-DD date that exists (400 naming `date` otherwise)."""
    if not re.fullmatch(DATE_PATTERN, value):
        raise ApiError(400, f"date: expected {EXPECTED['date']}", "date")
    try:
        day = Date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"date: expected {EXPECTED['date']} (a real day)", "date") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ApiError(400, f"date: expected a day from {FIRST_DAY} to {LAST_DAY}", "date")
    return value


SeatId = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=64)]
DateQuery = Annotated[
    str,
    Query(
        pattern=DATE_PATTERN,
        max_length=10,
        description="a site-local day, YYYY-MM-DD",
        json_schema_extra={"format": "date"},
    ),
]
TeamQuery = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
FormatQuery = Annotated[Literal["json", "csv"], Query()]
TableQuery = Annotated[Literal["rows", "teams"], Query()]


# --- /metrics text -------------------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(service: FloorService) -> str:
    site = _label(service.site)
    now = time.time()
    per_team: dict[str, dict[str, int]] = {}
    for view in service.live.views():
        team = service.places.place(view.seat, now).team or ""
        counts = per_team.setdefault(
            team, {"online": 0, "offline": 0, "radar": 0, "headset": 0, "held": 0}
        )
        counts["online" if view.online else "offline"] += 1
        state = view.state
        if state is not None:
            counts["radar"] += state.radar.ok is False
            counts["headset"] += not state.headset.connected
            counts["held"] += state.storage.held if state.storage else 0
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    family("seatbox_floor_seats", "gauge", "Seats heard of, by availability.")
    for team, c in sorted(per_team.items()):
        for state_name in ("online", "offline"):
            lines.append(
                f'seatbox_floor_seats{{site="{site}",team="{_label(team)}",state="{state_name}"}} '
                f"{c[state_name]}"
            )
    for name, key, text in (
        ("seatbox_floor_radar_lost", "radar", "Seats whose radar is lost."),
        ("seatbox_floor_headset_lost", "headset", "Seats whose headset is not connected."),
        ("seatbox_floor_outbox_held", "held", "Events held in the seats' outboxes (storage.held)."),
    ):
        family(name, "gauge", text)
        for team, c in sorted(per_team.items()):
            lines.append(f'{name}{{site="{site}",team="{_label(team)}"}} {c[key]}')
    counters = service.live.counters
    mono = time.monotonic()
    family("seatbox_floor_ingest_events_total", "counter", "Event messages received.")
    lines.append(f'seatbox_floor_ingest_events_total{{site="{site}"}} {counters.events}')
    family(
        "seatbox_floor_store_lag_seconds",
        "gauge",
        "From the latest event's arrival to its row in the store.",
    )
    lines.append(f'seatbox_floor_store_lag_seconds{{site="{site}"}} {service.store_lag():.3f}')
    family("seatbox_floor_store_queued", "gauge", "Events received, not yet in the store.")
    lines.append(f'seatbox_floor_store_queued{{site="{site}"}} {service.store_queued()}')
    family("seatbox_floor_events_per_second", "gauge", "Event messages per second (last 10 s).")
    lines.append(f'seatbox_floor_events_per_second{{site="{site}"}} {counters.rate(mono):.2f}')
    return "\n".join(lines) + "\n"


# --- ASGI middleware -------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """CSP, nosniff, no framing, no referrer; no caching of API answers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = not scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if api and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuse bodies larger than MAX_BODY (413) before anything reads them, and URLs longer
    than MAX_URL (414)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_URL:
            response = JSONResponse(
                {"error": f"expected a URL of at most {MAX_URL} bytes", "field": None},
                status_code=414,
            )
            await response(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        too_big = chunked or (
            length is not None and (not length.isdigit() or int(length) > MAX_BODY)
        )
        if too_big:
            response = JSONResponse(
                {
                    "error": f"expected a body of at most {MAX_BODY} bytes with Content-Length",
                    "field": None,
                },
                status_code=413,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
