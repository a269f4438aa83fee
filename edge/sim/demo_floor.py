"""The web floor of `seatbox demo`: `seatbox floor serve` as a child process on the demo's broker.

Everything it needs is written to a scratch folder that goes with the demo: `floor.toml`, a
layout of the demo's seats (teams of six, desks on a floor plan), the store and the accounts
file with a supervisor and a wallboard account whose passwords are made up for this run. The
seats' own profile (`config/profiles/demo.toml`, short hold and away limits) is what the floor
colours them by: seats publish their thresholds in `info`.

The child gets SIGTERM when the demo ends (and SIGINT with it from a terminal's Ctrl-C); its
log goes to `floor.log` in the scratch folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edge.base.errors import UsageError

SITE = "demo"
DEFAULT_HTTP = "127.0.0.1:8080"
TEAM_SIZE = 6  # at least [privacy] min_group_size (5): a team's aggregates are shown
TEAM_IDS = ("north", "south", "east", "west")
# The floor service's MQTT user on the embedded broker: amqtt keeps a persistent session only
# for a client with a username (edge/shell/mqtt/embedded_auth.py says why).
FLOOR_MQTT_USER = "seatbox-floor"
# A loaded two-core machine takes a few seconds to import the web stack and open the store.
READY_S = 40.0
STOP_S = 10.0


def missing_floor_extra() -> str | None:
    """The first package of the `[floor]` extra that cannot be imported, or None."""
    import importlib.util

    for module in ("fastapi", "uvicorn", "argon2"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return module
    return None


def parse_http(value: str) -> tuple[str, int]:
    """`--http host:port` (`[::1]:8080` for IPv6); UsageError naming what was expected."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--http: expected host:port such as {DEFAULT_HTTP}, got {value[:60]!r}")
    return host, int(port)


def free_listen(host: str, port: int) -> tuple[int, str | None]:
    """`port` if it can be listened on, else a free port and a sentence saying so. A host that
    is not this machine's is a UsageError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for wanted in (port, 0) if port else (0,):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, wanted))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and wanted:
                    continue
                raise UsageError(
                    f"--http: cannot listen on {_hostport(host, wanted)} ({exc.strerror})"
                ) from None
            got = int(sock.getsockname()[1])
        if wanted == port:
            return got, None
        return got, (
            f"{_hostport(host, port)} is in use; the web floor listens on "
            f"{_hostport(host, got)} instead (--http HOST:PORT to choose)"
        )
    raise AssertionError("unreachable: port 0 always binds")  # pragma: no cover


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_timezone() -> str:
    """This machine's IANA zone name (the demo's seats use its wall clock), else UTC."""
    from zoneinfo import ZoneInfo

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    try:
        link = os.readlink("/etc/localtime")
        candidates.append(link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "")
    except OSError:
        pass
    for name in candidates:
        if not name or name.startswith("/"):
            continue
        try:
            ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            continue
        return name
    return "UTC"


def demo_layout(seats: list[str]) -> dict[str, Any]:
    """Teams of six (the last takes what is left over), each a block of desks two wide and three
    deep; three blocks a row, with aisles half a desk wide between them."""
    count = max(1, len(seats) // TEAM_SIZE)
    teams = [TEAM_IDS[i] if i < len(TEAM_IDS) else f"team-{i + 1}" for i in range(count)]
    layout: dict[str, Any] = {
        "teams": {team: {"name": team.replace("-", " ").title()} for team in teams},
        "seats": {},
    }
    for index, seat in enumerate(seats):
        team = min(index // TEAM_SIZE, count - 1)
        desk = index - team * TEAM_SIZE
        layout["seats"][seat] = {
            "team": teams[team],
            "label": seat,
            "x": (team % 3) * 2.5 + desk % 2,
            "y": (team // 3) * 3.5 + desk // 2,
        }
    return layout


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def layout_toml(layout: dict[str, Any]) -> str:
    lines = [
        "# The demo's seats: written by `seatbox demo` (docs/floor.md, Site layout)",
        "[teams]",
    ]
    for team, entry in layout["teams"].items():
        lines.append(f"{team} = {{ name = {_toml_value(entry['name'])} }}")
    lines.append("")
    lines.append("[seats]")
    for seat, entry in layout["seats"].items():
        fields = ", ".join(f"{key} = {_toml_value(val)}" for key, val in entry.items())
        lines.append(f"{seat} = {{ {fields} }}")
    return "\n".join(lines) + "\n"


def floor_toml(broker_url: str, embedded: bool, host: str, port: int, timezone: str) -> str:
    user = (
        f'username = "{FLOOR_MQTT_USER}"   # amqtt keeps a persistent session only for a named '
        "client\n"
        if embedded
        else ""
    )
    return (
        "# The demo's floor service: written by `seatbox demo`, removed when it ends.\n"
        "[broker]\n"
        f"url = {_toml_value(broker_url)}\n"
        f"client_id = {_toml_value('seatbox-floor-' + SITE)}\n"
        f"{user}"
        "[site]\n"
        f"id = {_toml_value(SITE)}\n"
        f"timezone = {_toml_value(timezone)}\n"
        "[http]\n"
        f"listen = {_toml_value(_hostport(host, port))}\n"
        "[store]\n"
        'dir = "store"\n'
        "[layout]\n"
        'file = "layout.toml"\n'
    )


@dataclass
class Login:
    user: str
    password: str
    role: str
    what: str


@dataclass
class WebFloor:
    """The running floor service of the demo."""

    process: subprocess.Popen[bytes]
    url: str
    logins: list[Login]
    folder: Path
    log: IO[bytes]
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None)

    @property
    def log_path(self) -> Path:
        return self.folder / "floor.log"

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def wait_ready(self, timeout: float = READY_S) -> str | None:
        """None once the service answers HTTP, else what went wrong (one line)."""
        deadline = time.monotonic() + timeout
        probe = self.url + "api/v1/me"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return f"it exited ({code}): {self.last_log_line() or 'no output'}"
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    return None
            except urllib.error.HTTPError:
                return None  # 401 without a session: the service is up
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        return f"it did not answer within {timeout:.0f} s ({self.last_log_line() or 'no output'})"

    def banner(self) -> list[str]:
        lines = [f"seatbox demo: web floor at {self.url}"]
        for login in self.logins:
            lines.append(f"  login {login.user} / {login.password}   {login.what}")
        lines.append(
            f"  files: {self.folder} (floor.toml, layout.toml, floor.log; removed at the end)"
        )
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_S)
        self.log.close()
        if self.workdir is not None:
            self.workdir.cleanup()


def start_web_floor(
    seats: list[str], broker_url: str, embedded: bool, host: str, port: int
) -> WebFloor:
    """Write the site, make the accounts and start `seatbox floor serve` (not waiting for it)."""
    from floor.accounts import Accounts

    workdir = tempfile.TemporaryDirectory(prefix="seatbox-demo-floor-")
    folder = Path(workdir.name)
    layout = demo_layout(seats)
    (folder / "layout.toml").write_text(layout_toml(layout), encoding="utf-8")
    config = folder / "floor.toml"
    config.write_text(
        floor_toml(broker_url, embedded, host, port, local_timezone()), encoding="utf-8"
    )
    teams = list(layout["teams"])
    logins = [
        Login(
            "supervisor",
            secrets.token_urlsafe(9),
            "supervisor",
            f"supervisor of {', '.join(teams)}: live floor, timelines, reports",
        ),
        Login(
            "wallboard",
            secrets.token_urlsafe(9),
            "wallboard",
            f"big screen, aggregates only: {_url(host, port)}wallboard",
        ),
    ]
    accounts = Accounts(folder / "store" / "accounts.sqlite")
    try:
        for login in logins:
            accounts.add_user(
                login.user, login.role, login.password, teams if login.role == "supervisor" else ()
            )
    finally:
        accounts.close()
    log = (folder / "floor.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "floor", "serve", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    return WebFloor(
        process=process,
        url=_url(host, port),
        logins=logins,
        folder=folder,
        log=log,
        workdir=workdir,
    )


def _url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{_hostport(shown, port)}/"
