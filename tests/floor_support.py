"""Shared parts of the floor tests: a real PostgreSQL server of the test's own (initdb + pg_ctl
in a temp dir, a free loopback port), and a `floor_store` fixture that runs a test against
both stores (SQLite and PostgreSQL).

PostgreSQL refuses to run as root: when the tests run as root the server runs as the
`postgres` user (runuser), in a directory chowned to it. Without the binaries the PostgreSQL
cases are skipped with a plain message.

Use from a test module: `from floor_support import pg_server  # noqa: F401` (pytest finds
fixtures in the module's namespace), then `open_test_store(kind, tmp_path, request)` for each
kind in STORES.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import free_port

PG_BIN = Path(os.environ.get("SEATBOX_PG_BIN", "/usr/lib/postgresql/15/bin"))
STORES = ["sqlite", "postgresql"]
_databases = itertools.count(1)


class PgServer:
    """A PostgreSQL server in `workdir` on 127.0.0.1:`port` (trust auth, user `seatbox`)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
            pytest.skip(f"PostgreSQL not installed ({PG_BIN}/initdb): apt-get install postgresql")
        self.workdir = Path(tempfile.mkdtemp(prefix="seatbox-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run PostgreSQL")
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "seatbox", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def _run(self, *command: str) -> None:
        run = subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, timeout=60, cwd="/"
        )
        if run.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {run.stdout[-800:]}{run.stderr[-800:]}")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.data}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://seatbox@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database for one test: its url."""
        import psycopg

        name = f"floor_test_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a name of ours
        return self.url(name)

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own_pg_server() -> Iterator[PgServer]:
    """A server of this test's own (to stop and start without disturbing other tests)."""
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


def open_test_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **kw: Any) -> Any:
    """A fresh store of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        from floor.store import SqliteStore

        return SqliteStore(tmp_path / "floor.sqlite", **kw)
    from floor.store_pg import PostgresStore

    server: PgServer = request.getfixturevalue("pg_server")
    return PostgresStore(server.new_database(), **kw)


def event_payload(seq: int, boot: str, kind: str, ts: str = "") -> bytes:
    """An event as a seat publishes it (dated `ts`, by default on DAY)."""
    data: dict[str, Any] = {"source": "host", "call": seq, "call_id": None}
    if kind == "call.ended":
        data = {"call": seq, "talk_s": 2.0, "hold_s": 1.0}
    return json.dumps(
        {
            "boot_id": boot,
            "seq": seq,
            "ts": ts or f"{DAY}T09:00:00.000+01:00",
            "type": kind,
            "data": data,
        }
    ).encode()


DAY = "2026-11-23"
KINDS = ("call.ringing", "call.answered", "call.ended")  # one of each in turn


class SimSeat:
    """A light simulated seat on a real broker: numbered events on the seat's real topic,
    QoS 1, kept in an outbox it answers `cmd/resend` from (as a seat's outbox does). Its events
    are dated now (UTC), all on `self.day`."""

    def __init__(self, port: int, site: str, seat: str, boot: str = "1-0a0b0c0d") -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.site, self.seat, self.boot = site, seat, boot
        moment = datetime.now(UTC)
        self.ts = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.day = moment.date().isoformat()
        self.base = f"seatbox/v1/{site}/{seat}"
        self.outbox: dict[int, bytes] = {}
        self.resent_seqs: list[int] = []  # what cmd/resend asked for and got again
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{seat}", protocol=mqtt.MQTTv311
        )
        self.client.max_queued_messages_set(0)
        self.client.message_callback_add(f"{self.base}/cmd/resend", self._on_resend)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{self.base}/cmd/resend", qos=1)

    def _on_resend(self, client: Any, userdata: Any, msg: Any) -> None:
        request = json.loads(msg.payload)
        if request.get("boot_id") != self.boot:
            return
        for seq in range(request["from_seq"], request["to_seq"] + 1):
            if seq in self.outbox:
                self.resent_seqs.append(seq)
                client.publish(f"{self.base}/event", self.outbox[seq], qos=1)

    def publish(self, lose: bool = False) -> int:
        """The next event (`lose`: kept in the outbox but never arrives); its seq."""
        seq = len(self.outbox)
        self.outbox[seq] = event_payload(seq, self.boot, KINDS[seq % len(KINDS)], self.ts)
        if not lose:
            self.client.publish(f"{self.base}/event", self.outbox[seq], qos=1)
        return seq

    def expected_rollups(self) -> dict[str, float]:
        kinds = [KINDS[seq % len(KINDS)] for seq in self.outbox]
        ended = kinds.count("call.ended")
        return {
            "calls": float(kinds.count("call.ringing")),
            "answered": float(kinds.count("call.answered")),
            "talk_s": 2.0 * ended,
            "hold_s": 1.0 * ended,
        }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
