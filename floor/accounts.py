"""The floor service's accounts file: users, API tokens, sessions, login throttling and the
access log, in one SQLite file (`FloorPaths.accounts`, beside the store).

Passwords are kept as Argon2id hashes (argon2-cffi's `PasswordHasher`, the OWASP-recommended
KDF); API tokens and session ids as SHA-256 digests only (they are 32 random bytes: a fast
digest suffices and a stolen file holds nothing that logs in). Every value reaches SQL as a
bound parameter. The CLI (`seatbox floor user|token ...`) is at the end of this module.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge.base.errors import ConfigError, UsageError
from edge.base.schema import valid_id

Role = Literal["supervisor", "manager", "wallboard", "agent"]
ROLES: tuple[Role, ...] = ("supervisor", "manager", "wallboard", "agent")

# A session lasts a shift and a bit; after that the browser logs in again.
SESSION_S = 12 * 3600.0
# Login throttling (OWASP: limit failed attempts per account and per source). An office behind
# one NAT address shares the per-address budget: it is larger.
THROTTLE_WINDOW_S = 300.0
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 takes any length; this bounds what a request can make us hash
TOKEN_PREFIX = "sbx_"
ACCESS_LOG_KEEP = 200_000  # rows; older ones go (the access log is itself personal data)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, teams TEXT NOT NULL, seat TEXT,
    hash TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
    teams TEXT NOT NULL, created REAL NOT NULL, last_used REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_key ON failures (kind, key, at);
CREATE TABLE IF NOT EXISTS access_log (
    at REAL NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL, what TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user or an API token."""

    name: str
    role: Role
    teams: tuple[str, ...] = ()
    seat: str | None = None
    kind: Literal["user", "token"] = "user"
    csrf: str = ""  # the session's CSRF token ("" for an API token: no cookie, no CSRF)


@dataclass(frozen=True)
class Session:
    id: str  # the cookie value; only its digest is kept
    csrf: str
    expires: float
    principal: Principal = field(repr=False)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME_RE.fullmatch(name))


def check_role(role: str, teams: Sequence[str], seat: str | None) -> None:
    """UsageError naming what is wrong with a role and its scope."""
    if role not in ROLES:
        raise UsageError(f"--role: expected one of {', '.join(ROLES)}, got {role[:40]!r}")
    for team in teams:
        if not valid_id(team):
            raise UsageError(f"--team: expected 1-64 of A-Z a-z 0-9 _ -, got {team[:70]!r}")
    if seat is not None and not valid_id(seat):
        raise UsageError(f"--seat: expected a seat id (1-64 of A-Z a-z 0-9 _ -), got {seat[:70]!r}")
    if role == "supervisor" and not teams:
        raise UsageError("--team: a supervisor needs at least one team (--team T)")
    if role == "agent" and seat is None:
        raise UsageError("--seat: an agent account names its seat (--seat S)")


class Accounts:
    """The accounts file. Safe to call from several threads (one lock); several processes
    (the service and the CLI) may open it at once (SQLite WAL)."""

    def __init__(self, path: str | Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()  # Argon2id, argon2-cffi's RFC 9106 defaults
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"[store] dir: cannot open {self.path} ({exc})") from None
        self._lock = threading.Lock()
        self._dummy_hash = ""

    @property
    def _dummy(self) -> str:
        # Verifying a password for a name that does not exist costs the same as for one that
        # does: the answer's timing does not tell which names exist.
        if not self._dummy_hash:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        return self._dummy_hash

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- users -----------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        password: str,
        teams: Sequence[str] = (),
        seat: str | None = None,
        now: float | None = None,
    ) -> None:
        if not valid_name(name):
            raise UsageError(f"NAME: expected 1-64 of A-Z a-z 0-9 . _ @ -, got {name[:70]!r}")
        check_role(role, teams, seat)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise UsageError(f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        hashed = self.hasher.hash(password)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                    (name, role, json.dumps(sorted(set(teams))), seat, hashed, _now(now)),
                )
            except sqlite3.IntegrityError:
                raise UsageError(f"NAME: user {name!r} exists (remove it first)") from None

    def remove_user(self, name: str) -> bool:
        with self._lock, self._db:
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))
            return self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[Principal]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, teams, seat FROM users ORDER BY name")
            return [_principal(*row) for row in rows.fetchall()]

    def user(self, name: str) -> Principal | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, teams, seat FROM users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _principal(*row)

    def verify(self, name: str, password: str) -> Principal | None:
        """The user if the password is theirs, else None (same work for unknown names)."""
        if len(password) > MAX_PASSWORD:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, teams, seat, hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        stored = row[4] if row else self._dummy
        try:
            self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self.hasher.check_needs_rehash(stored):  # parameters raised since: upgrade quietly
            with self._lock:
                self._db.execute(
                    "UPDATE users SET hash = ? WHERE name = ?", (self.hasher.hash(password), name)
                )
        return _principal(*row[:4])

    # --- API tokens ------------------------------------------------------------------------

    def add_token(
        self, name: str, role: str, teams: Sequence[str] = (), now: float | None = None
    ) -> str:
        """A new token (32 random bytes); only its SHA-256 is kept. Shown once."""
        if not valid_name(name):
            raise UsageError(f"NAME: expected 1-64 of A-Z a-z 0-9 . _ @ -, got {name[:70]!r}")
        if role == "agent":
            raise UsageError("--role: an agent logs in with a password; tokens are for tools")
        check_role(role, teams, None)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                    (name, _digest(token), role, json.dumps(sorted(set(teams))), _now(now)),
                )
            except sqlite3.IntegrityError:
                raise UsageError(f"NAME: token {name!r} exists (revoke it first)") from None
        return token

    def revoke_token(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0

    def tokens(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, role, teams, created, last_used FROM tokens ORDER BY name"
            ).fetchall()
        keys = ("name", "role", "teams", "created", "last_used")
        return [dict(zip(keys, row, strict=True), teams=json.loads(row[2])) for row in rows]

    def token_principal(self, token: str, now: float | None = None) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, teams FROM tokens WHERE digest = ?", (_digest(token),)
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE tokens SET last_used = ? WHERE name = ?", (_now(now), row[0]))
        return _principal(row[0], row[1], row[2], None, kind="token")

    # --- sessions --------------------------------------------------------------------------

    def new_session(self, principal: Principal, now: float | None = None) -> Session:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = _now(now) + SESSION_S
        with self._lock, self._db:
            self._db.execute("DELETE FROM sessions WHERE expires < ?", (_now(now),))
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_digest(session_id), principal.name, csrf, expires),
            )
        return Session(session_id, csrf, expires, principal)

    def session(self, session_id: str, now: float | None = None) -> Principal | None:
        """The session's user (with its CSRF token), or None if unknown or expired. A user
        removed since is logged out: the user row is read again."""
        if len(session_id) > 200:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.role, u.teams, u.seat, s.csrf FROM sessions s "
                "JOIN users u ON u.name = s.user WHERE s.digest = ? AND s.expires >= ?",
                (_digest(session_id), _now(now)),
            ).fetchone()
        if row is None:
            return None
        name, role, teams, seat, csrf = row
        return _principal(name, role, teams, seat, csrf=csrf)

    def end_session(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE digest = ?", (_digest(session_id),))

    # --- login throttling ------------------------------------------------------------------

    def retry_after(self, name: str, address: str, now: float | None = None) -> int:
        """Seconds until a login for this name from this address may be tried again (0: now)."""
        moment = _now(now)
        since = moment - THROTTLE_WINDOW_S
        wait = 0.0
        with self._lock:
            for kind, key, limit in (
                ("user", name, MAX_FAILURES_PER_USER),
                ("address", address, MAX_FAILURES_PER_ADDRESS),
            ):
                rows = self._db.execute(
                    "SELECT at FROM failures WHERE kind = ? AND key = ? AND at >= ? "
                    "ORDER BY at DESC LIMIT ?",
                    (kind, key, since, limit),
                ).fetchall()
                if len(rows) >= limit:
                    # Free again when the oldest of the last `limit` failures leaves the window.
                    wait = max(wait, rows[-1][0] + THROTTLE_WINDOW_S - moment)
        return max(1, int(wait + 0.999)) if wait > 0 else 0

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        moment = _now(now)
        with self._lock, self._db:
            self._db.execute("DELETE FROM failures WHERE at < ?", (moment - THROTTLE_WINDOW_S,))
            self._db.executemany(
                "INSERT INTO failures VALUES (?, ?, ?)",
                [("user", name[:64], moment), ("address", address[:64], moment)],
            )

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM failures WHERE kind = 'user' AND key = ?", (name,))

    # --- access log ------------------------------------------------------------------------

    def log_access(self, principal: Principal, what: str, now: float | None = None) -> None:
        """Who viewed an individual timeline or report rows, and when."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO access_log VALUES (?, ?, ?, ?)",
                (_now(now), principal.name, principal.role, what[:200]),
            )
            self._db.execute(
                "DELETE FROM access_log WHERE rowid <= (SELECT MAX(rowid) FROM access_log) - ?",
                (ACCESS_LOG_KEEP,),
            )

    def access_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT at, who, role, what FROM access_log ORDER BY rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(zip(("at", "who", "role", "what"), row, strict=True)) for row in rows]


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _principal(
    name: str,
    role: str,
    teams: str,
    seat: str | None,
    kind: Literal["user", "token"] = "user",
    csrf: str = "",
) -> Principal:
    return Principal(
        name=name,
        role=cast(Role, role),
        teams=tuple(json.loads(teams)),
        seat=seat,
        kind=kind,
        csrf=csrf,
    )


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (a CSRF token)."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- CLI: seatbox floor user|token ... (parsed in edge/cli/seat_cmd.py) --------------------


def _open(args: argparse.Namespace) -> Accounts:
    from floor.config import load_floor_config

    _, paths = load_floor_config(args.config)
    return Accounts(paths.accounts)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--password-file: cannot read {args.password_file} ({exc})") from None
        lines = text.splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: give --password-file FILE")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def user_add(args: argparse.Namespace) -> int:
    if getattr(args, "password", None) is not None:
        raise UsageError(
            "--password: a password on the command line is seen by every user of this machine "
            "(ps, shell history); give --password-file FILE or type it when asked"
        )
    # Checked before the password is asked for: a typo in --role costs no typing.
    if not valid_name(args.name):
        raise UsageError(f"NAME: expected 1-64 of A-Z a-z 0-9 . _ @ -, got {args.name[:70]!r}")
    check_role(args.role, args.team, args.seat)
    with closing(_open(args)) as accounts:
        accounts.add_user(args.name, args.role, _read_password(args), args.team, args.seat)
    scope = ", ".join(args.team) or (f"seat {args.seat}" if args.seat else "the site")
    print(f"user {args.name} added: {args.role} ({scope})")
    return 0


def user_list(args: argparse.Namespace) -> int:
    with closing(_open(args)) as accounts:
        for user in accounts.users():
            teams = ",".join(user.teams) or "-"
            print(f"{user.name}\t{user.role}\tteams={teams}\tseat={user.seat or '-'}")
    return 0


def user_remove(args: argparse.Namespace) -> int:
    with closing(_open(args)) as accounts:
        if not accounts.remove_user(args.name):
            raise UsageError(f"NAME: no user {args.name[:70]!r}")
    print(f"user {args.name} removed")
    return 0


def token_add(args: argparse.Namespace) -> int:
    with closing(_open(args)) as accounts:
        token = accounts.add_token(args.name, args.role, args.team)
    print(f"token {args.name} added: {args.role}; send it as 'Authorization: Bearer <token>'.")
    print("It is shown once (only its SHA-256 is kept):")
    print(token)
    return 0


def token_list(args: argparse.Namespace) -> int:
    with closing(_open(args)) as accounts:
        for row in accounts.tokens():
            used = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["last_used"])) + "Z"
            used = used if row["last_used"] else "never"
            teams = ",".join(row["teams"]) or "-"
            print(f"{row['name']}\t{row['role']}\tteams={teams}\tlast used {used}")
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    with closing(_open(args)) as accounts:
        if not accounts.revoke_token(args.name):
            raise UsageError(f"NAME: no token {args.name[:70]!r}")
    print(f"token {args.name} revoked")
    return 0


def access_log(args: argparse.Namespace) -> int:
    """`seatbox floor access-log`: the latest views, oldest first (UTC)."""
    if not 1 <= args.limit <= ACCESS_LOG_KEEP:
        raise UsageError(f"--limit: expected 1 to {ACCESS_LOG_KEEP}, got {args.limit}")
    with closing(_open(args)) as accounts:
        rows = accounts.access_log(args.limit)
    for row in reversed(rows):
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["at"]))
        print(f"{when}\t{row['who']}\t{row['role']}\t{row['what']}")
    return 0
