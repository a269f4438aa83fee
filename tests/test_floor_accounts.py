"""The floor's accounts file on its own (floor/accounts.py), time passed as an argument: the
throttle window, session expiry, removal ending sessions, tokens kept as digests only, and the
CLI's refusals naming the argument."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from floor_web_support import seatbox
from support import free_port

from edge.base.errors import UsageError
from floor.accounts import (
    MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_USER,
    SESSION_S,
    THROTTLE_WINDOW_S,
    Accounts,
)

T0 = 1_800_000_000.0


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    # Argon2id with light parameters: these tests are about the file, not the KDF's cost.
    opened = Accounts(tmp_path / "accounts.sqlite", PasswordHasher(time_cost=1, memory_cost=8192))
    opened.add_user("alice", "supervisor", "a long password", ["A"], now=T0)
    return opened


def test_the_throttle_opens_again_when_the_oldest_failure_leaves_the_window(
    accounts: Accounts,
) -> None:
    for i in range(MAX_FAILURES_PER_USER):
        assert accounts.retry_after("alice", "10.0.0.1", now=T0 + i) == 0
        accounts.failed("alice", "10.0.0.1", now=T0 + i)
    assert accounts.retry_after("alice", "10.0.0.9", now=T0 + 10) == THROTTLE_WINDOW_S - 10
    assert accounts.retry_after("bob", "10.0.0.9", now=T0 + 10) == 0  # another name: free
    assert accounts.retry_after("alice", "10.0.0.9", now=T0 + THROTTLE_WINDOW_S) == 0
    accounts.succeeded("alice")
    assert accounts.retry_after("alice", "10.0.0.1", now=T0 + 11) == 0


def test_one_address_trying_many_names_is_throttled_too(accounts: Accounts) -> None:
    for i in range(MAX_FAILURES_PER_ADDRESS):
        accounts.failed(f"user{i}", "10.0.0.66", now=T0)
    assert accounts.retry_after("alice", "10.0.0.66", now=T0 + 1) > 0
    assert accounts.retry_after("alice", "10.0.0.2", now=T0 + 1) == 0


def test_sessions_expire_and_end_with_logout_or_the_users_removal(accounts: Accounts) -> None:
    alice = accounts.verify("alice", "a long password")
    assert alice is not None and alice.teams == ("A",)
    assert accounts.verify("alice", "a wrong password") is None
    assert accounts.verify("nobody", "a long password") is None
    session = accounts.new_session(alice, now=T0)
    found = accounts.session(session.id, now=T0 + SESSION_S - 1)
    assert found is not None and found.csrf == session.csrf and found.name == "alice"
    assert accounts.session(session.id, now=T0 + SESSION_S + 1) is None
    other = accounts.new_session(alice, now=T0)
    accounts.end_session(other.id)
    assert accounts.session(other.id, now=T0) is None
    third = accounts.new_session(alice, now=T0)
    assert accounts.remove_user("alice")
    assert accounts.session(third.id, now=T0) is None


def test_tokens_and_sessions_are_kept_as_digests_only(accounts: Accounts, tmp_path: Path) -> None:
    token = accounts.add_token("bi", "manager", now=T0)
    alice = accounts.verify("alice", "a long password")
    assert alice is not None
    session = accounts.new_session(alice, now=T0)
    principal = accounts.token_principal(token, now=T0)
    assert principal is not None and principal.role == "manager" and principal.kind == "token"
    assert accounts.token_principal(token[:-1] + "x") is None
    accounts.close()
    raw = (tmp_path / "accounts.sqlite").read_bytes()
    raw += b"".join(p.read_bytes() for p in tmp_path.glob("accounts.sqlite-*"))
    assert token.encode() not in raw and session.id.encode() not in raw
    assert b"a long password" not in raw
    with sqlite3.connect(tmp_path / "accounts.sqlite") as db:
        (digest,) = db.execute("SELECT digest FROM tokens").fetchone()
        (hashed,) = db.execute("SELECT hash FROM users").fetchone()
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert hashed.startswith("$argon2id$")


def test_bad_accounts_are_refused_naming_what_is_wrong(accounts: Accounts) -> None:
    for call, expected in (
        (lambda: accounts.add_user("alice", "manager", "a long password"), "exists"),
        (lambda: accounts.add_user("bo b", "manager", "a long password"), "NAME"),
        (lambda: accounts.add_user("bob", "boss", "a long password"), "--role"),
        (lambda: accounts.add_user("bob", "supervisor", "a long password"), "--team"),
        (lambda: accounts.add_user("bob", "agent", "a long password"), "--seat"),
        (lambda: accounts.add_user("bob", "manager", "short"), "password"),
        (lambda: accounts.add_user("bob", "manager", "a long password", ["A/B"]), "--team"),
        (lambda: accounts.add_token("tool", "agent"), "--role"),
    ):
        with pytest.raises(UsageError, match=expected):
            call()


def test_the_cli_never_takes_a_password_on_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "floor.toml"
    config.write_text(
        f'[broker]\nurl = "mqtt://127.0.0.1:1"\n[site]\nid = "lab"\n'
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
    )
    # No terminal to ask on and no --password-file: refused, exit 2, nothing added.
    run = subprocess.run(
        seatbox("floor", "user", "add", "carol", "--role", "manager", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2 and "--password-file" in run.stderr
    run = subprocess.run(
        seatbox("floor", "user", "add", "carol", "--role", "manager", "--password", "x")
        + ["--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and "--password-file FILE" in run.stderr
    assert "'x'" not in run.stderr and " x " not in run.stderr  # not repeated anywhere
    listed = subprocess.run(
        seatbox("floor", "user", "list", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0 and "carol" not in listed.stdout


PROBE = """
import json, sys
from edge.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["floor", "--help"], ["floor", "user", "--help"]])
def test_help_loads_no_web_server_nor_kdf(args: list[str]) -> None:
    """A seat box's CLI does not carry the floor service's weight (issue 15: an extra)."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in json.loads(run.stderr.strip().splitlines()[-1])}
    assert not loaded & {"fastapi", "starlette", "uvicorn", "argon2", "psycopg", "floor"}


def test_the_access_log_cli_lists_who_viewed_what_oldest_first(tmp_path: Path) -> None:
    config = tmp_path / "floor.toml"
    config.write_text('[broker]\nurl = "mqtt://127.0.0.1:1"\n[site]\nid = "lab"\n')
    accounts = Accounts(tmp_path / "accounts.sqlite", PasswordHasher(time_cost=1, memory_cost=8192))
    accounts.add_user("alice", "supervisor", "a long password", ["A"], now=T0)
    alice = accounts.verify("alice", "a long password")
    assert alice is not None
    accounts.log_access(alice, "timeline A-01 2027-01-15", now=T0)
    accounts.log_access(alice, "report 2027-01-15 team A", now=T0 + 60)
    accounts.close()
    run = subprocess.run(
        seatbox("floor", "access-log", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "2027-01-15T08:00:00Z\talice\tsupervisor\ttimeline A-01 2027-01-15",
        "2027-01-15T08:01:00Z\talice\tsupervisor\treport 2027-01-15 team A",
    ]
