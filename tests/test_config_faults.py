"""Broken configs (issue 12, faults 8-10): `config check` and `seatbox run` refuse the same ones.

Each broken config is given to both commands as real processes; both must exit 2 at once with
one line naming the file, the key and what was expected, and never a traceback or a secret.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edge.cli import main

REPO = Path(__file__).parent.parent
SEATBOX = [sys.executable, "-m", "edge.cli"]
# A refused config exits within a second or two; a started seat or a hang reaches this.
PROCESS_TIMEOUT_S = 30.0
SECRET = "Sup3r-SECRET-pw"
# About 90 `seatbox run` processes in the module fixture: more than pytest-timeout's default.
pytestmark = pytest.mark.timeout(400)

# A config `run` accepts on any machine: virtual devices, no broker needed to start.
BASE: dict[str, dict[str, str]] = {
    "seat": {"site": '"hq"', "id": '"A-01"'},
    "broker": {"url": '"mqtt://127.0.0.1:1"'},
    "headset": {"device": '"virtual"'},
    "audio": {"backend": '"virtual"'},
    "radar": {"backend": '"virtual"'},
    "call": {"sources": '["cti"]'},
    "storage": {"state_dir": '"{dir}/state"'},
}


def render(changes: dict[str, dict[str, str | None]]) -> str:
    """BASE with keys changed (raw TOML values), added, or removed (None)."""
    sections: dict[str, dict[str, str]] = {name: dict(keys) for name, keys in BASE.items()}
    for name, keys in changes.items():
        section = sections.setdefault(name, {})
        for key, value in keys.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {value}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def secret_file(folder: Path, name: str, mode: int, text: str = SECRET) -> None:
    path = folder / name
    path.write_text(text + "\n")
    path.chmod(mode)


def fifo(folder: Path, name: str) -> None:
    os.mkfifo(folder / name)


@dataclass(frozen=True)
class Broken:
    name: str
    changes: dict[str, dict[str, str | None]]
    key: str  # as the error shows it, e.g. "[broker] url"
    expected: str  # a piece of what the error says was expected
    setup: Callable[[Path], None] = field(default=lambda folder: None)
    prefix: str = ""  # top-level lines before the first table


def _user(extra: dict[str, str | None]) -> dict[str, dict[str, str | None]]:
    return {"broker": {"username": '"seat"', **extra}}


BROKEN = [
    # [broker] url: scheme, port, host, credentials
    Broken("url_http", {"broker": {"url": '"http://broker:1883"'}}, "[broker] url", "mqtt://"),
    Broken("url_port_99999", {"broker": {"url": '"mqtt://broker:99999"'}}, "[broker] url", "1-65535"),
    Broken("url_port_0", {"broker": {"url": '"mqtt://broker:0"'}}, "[broker] url", "1-65535"),
    Broken("url_port_text", {"broker": {"url": '"mqtt://broker:http"'}}, "[broker] url", "1-65535"),
    Broken("url_no_host", {"broker": {"url": '"mqtt://:1883"'}}, "[broker] url", "host"),
    Broken("url_empty", {"broker": {"url": '""'}}, "[broker] url", "host"),
    Broken("url_bad_ipv6", {"broker": {"url": '"mqtt://[::1:1883"'}}, "[broker] url", "host"),
    Broken("url_space_in_host", {"broker": {"url": '"mqtt://bro ker:1883"'}}, "[broker] url", "host"),
    Broken("url_number", {"broker": {"url": "1883"}}, "[broker] url", "string"),
    Broken("url_password", {"broker": {"url": f'"mqtt://u:{SECRET}@broker:1883"'}}, "[broker] url", "password_file"),
    Broken("url_user_only", {"broker": {"url": '"mqtts://seat@broker"'}}, "[broker] url", "username"),
    # [broker] numbers
    Broken("keepalive_inf", {"broker": {"keepalive": "inf"}}, "[broker] keepalive", "finite"),
    Broken("keepalive_nan", {"broker": {"keepalive": "nan"}}, "[broker] keepalive", "finite"),
    Broken("keepalive_negative", {"broker": {"keepalive": "-5"}}, "[broker] keepalive", ">= 0"),
    Broken("keepalive_huge", {"broker": {"keepalive": "1e300"}}, "[broker] keepalive", "at most"),
    Broken("keepalive_huge_text", {"broker": {"keepalive": f'"{"9" * 400}s"'}}, "[broker] keepalive", "finite"),
    Broken("replay_rate_inf", {"broker": {"replay_rate": "inf"}}, "[broker] replay_rate", "finite"),
    Broken("max_inflight_zero", {"broker": {"max_inflight": "0"}}, "[broker] max_inflight", "at least 1"),
    Broken("embedded_port_huge", {"broker": {"embedded_port": "99999"}}, "[broker] embedded_port", "at most 65535"),
    Broken("protocol_4", {"broker": {"protocol": '"4"'}}, "[broker] protocol", "'3.1.1'"),
    Broken("client_id_nul", {"broker": {"client_id": '"seat\\u0000x"'}}, "[broker] client_id", "NUL"),
    # [broker] files: what the seat reads at connect, checked before it starts
    Broken("password_file_0644", _user({"password_file": '"{dir}/pw"'}), "[broker] password_file", "chmod 600", lambda d: secret_file(d, "pw", 0o644)),
    Broken("password_file_missing", _user({"password_file": '"{dir}/nope"'}), "[broker] password_file", "not found"),
    Broken("password_file_dir", _user({"password_file": '"{dir}"'}), "[broker] password_file", "regular file"),
    Broken("password_file_fifo", _user({"password_file": '"{dir}/pw"'}), "[broker] password_file", "regular file", lambda d: fifo(d, "pw")),
    Broken("password_file_dev_zero", _user({"password_file": '"/dev/zero"'}), "[broker] password_file", "regular file"),
    Broken("password_file_without_user", {"broker": {"password_file": '"{dir}/pw"'}}, "[broker] username", "required", lambda d: secret_file(d, "pw", 0o600)),
    Broken("ca_file_missing", {"broker": {"url": '"mqtts://broker"', "ca_file": '"{dir}/ca.crt"'}}, "[broker] ca_file", "not found"),
    Broken("ca_file_missing_plain_url", {"broker": {"ca_file": '"{dir}/ca.crt"'}}, "[broker] ca_file", "not found"),
    Broken("ca_file_not_pem", {"broker": {"url": '"mqtts://broker"', "ca_file": '"{dir}/ca.crt"'}}, "[broker] ca_file", "PEM", lambda d: secret_file(d, "ca.crt", 0o644, "not a certificate")),
    Broken("ca_file_dev_zero", {"broker": {"url": '"mqtts://broker"', "ca_file": '"/dev/zero"'}}, "[broker] ca_file", "regular file"),
    Broken("cert_without_key", {"broker": {"url": '"mqtts://broker"', "cert_file": '"{dir}/c.crt"'}}, "[broker] key_file", "both", lambda d: secret_file(d, "c.crt", 0o644)),
    Broken("key_file_0644", {"broker": {"url": '"mqtts://broker"', "cert_file": '"{dir}/c.crt"', "key_file": '"{dir}/c.key"'}}, "[broker] key_file", "chmod 600", lambda d: (secret_file(d, "c.crt", 0o644), secret_file(d, "c.key", 0o644))),  # type: ignore[func-returns-value]
    # [seat]
    Broken("timezone_unknown", {"seat": {"timezone": '"Mars/Olympus_Mons"'}}, "[seat] timezone", "Europe/"),
    Broken("timezone_path", {"seat": {"timezone": '"../../etc/passwd"'}}, "[seat] timezone", "Europe/"),
    Broken("timezone_folder", {"seat": {"timezone": '"Europe"'}}, "[seat] timezone", "Europe/"),
    Broken("timezone_number", {"seat": {"timezone": "8"}}, "[seat] timezone", "string"),
    Broken("id_slash", {"seat": {"id": '"A/01"'}}, "[seat] id", "letters, digits"),
    Broken("id_empty", {"seat": {"id": '""'}}, "[seat] id", "letters, digits"),
    Broken("id_too_long", {"seat": {"id": f'"{"a" * 65}"'}}, "[seat] id", "letters, digits"),
    Broken("id_number", {"seat": {"id": "7"}}, "[seat] id", "string"),
    Broken("site_missing", {"seat": {"site": None}}, "[seat] site", "required"),
    Broken("section_not_a_table", {}, "[hooks]", "table", prefix="hooks = 5\n"),
    Broken("profile_unknown", {"seat": {"profile": '"strictest"'}}, "[seat] profile", "no profile named"),
    Broken("profile_nul", {"seat": {"profile": '"de\\u0000fault"'}}, "[seat] profile", "NUL"),
    Broken("profile_fifo", {"seat": {"profile": '"{dir}/p.toml"'}}, "p.toml", "regular file", lambda d: fifo(d, "p.toml")),
    Broken("unknown_key", {"seat": {"colour": '"blue"'}}, "[seat] colour", "unknown key"),
    Broken("unknown_section", {"sound": {"volume": "3"}}, "[sound]", "unknown section"),
    # devices
    Broken("ld2410_without_port", {"radar": {"backend": '"ld2410"'}}, "[radar] port", "required"),
    Broken("baudrate_negative", {"radar": {"baudrate": "-9600"}}, "[radar] baudrate", "more than 0"),
    Broken("baudrate_huge", {"radar": {"baudrate": "99999999999999999"}}, "[radar] baudrate", "at most"),
    Broken("radar_watchdog_nan", {"radar": {"watchdog": "nan"}}, "[radar] watchdog", "finite"),
    Broken("sounddevice_without_tx", {"audio": {"backend": '"sounddevice"'}}, "[audio] tx_device", "required"),
    Broken("samplerate_float", {"audio": {"samplerate": "16000.5"}}, "[audio] samplerate", "whole number"),
    Broken("levels_hz_inf", {"audio": {"levels_hz": "inf"}}, "[audio] levels_hz", "finite"),
    Broken("block_zero", {"audio": {"block": "0"}}, "[audio] block", "more than 0"),
    Broken("headset_device_name", {"headset": {"device": '"hidraw0"'}}, "[headset] device", "/dev/hidrawN"),
    Broken("headset_echo_inf", {"headset": {"echo_window": "inf"}}, "[headset] echo_window", "finite"),
    Broken("mute_lock_count_one", {"headset": {"mute_lock_count": "1"}}, "[headset] mute_lock_count", "at least 2"),
    Broken("read_timeout_zero", {"headset": {"read_timeout": '"0s"'}}, "[headset] read_timeout", "more than 0"),
    # [call]
    Broken("source_unknown", {"call": {"sources": '["telepathy"]'}}, "[call] sources", "'simulate'"),
    Broken("sources_not_list", {"call": {"sources": '"cti"'}}, "[call] sources", "list"),
    Broken("sources_bridge_and_simulate", {"call": {"sources": '["bridge", "simulate"]'}}, "[call] sources", "expected one of them"),
    Broken("scenario_missing", {"call": {"sources": '["simulate"]', "scenario": '"nope.toml"'}}, "[call] scenario", "not found"),
    Broken("scenario_fifo", {"call": {"sources": '["simulate"]', "scenario": '"sc.toml"'}}, "[call] scenario", "regular file", lambda d: fifo(d, "sc.toml")),
    Broken("scenario_not_toml", {"call": {"sources": '["simulate"]', "scenario": '"sc.toml"'}}, "[call] scenario", "not valid TOML", lambda d: (d / "sc.toml").write_text("[[[")),  # type: ignore[func-returns-value]
    # [storage]
    Broken("budget_inf", {"storage": {"outbox_budget_mb": "inf"}}, "[storage] outbox_budget_mb", "finite"),
    Broken("budget_nan", {"storage": {"outbox_budget_mb": "nan"}}, "[storage] outbox_budget_mb", "finite"),
    Broken("budget_huge", {"storage": {"outbox_budget_mb": "1e30"}}, "[storage] outbox_budget_mb", "at most"),
    Broken("budget_text", {"storage": {"outbox_budget_mb": '"64MB"'}}, "[storage] outbox_budget_mb", "number"),
    Broken("keep_acked_inf", {"storage": {"outbox_keep_acked": "inf"}}, "[storage] outbox_keep_acked", "finite"),
    Broken("keep_acked_huge", {"storage": {"outbox_keep_acked": '"99999999h"'}}, "[storage] outbox_keep_acked", "at most"),
    Broken("keep_acked_huge_int", {"storage": {"outbox_keep_acked": "1" + "0" * 400}}, "[storage] outbox_keep_acked", "at most"),
    Broken("dose_save_every_zero", {"storage": {"dose_save_every": "0"}}, "[storage] dose_save_every", "more than 0"),
    Broken("state_dir_empty", {"storage": {"state_dir": '""'}}, "[storage] state_dir", "empty"),
    Broken("state_dir_is_a_file", {"storage": {"state_dir": '"{dir}/state"'}}, "[storage] state_dir", "folder", lambda d: (d / "state").write_text("x")),  # type: ignore[func-returns-value]
    Broken("state_dir_inside_a_file", {"storage": {"state_dir": '"{dir}/file/state"'}}, "[storage] state_dir", "folder", lambda d: (d / "file").write_text("x")),  # type: ignore[func-returns-value]
    Broken("state_dir_nul", {"storage": {"state_dir": '"/var/\\u0000lib"'}}, "[storage] state_dir", "NUL"),
    # [hooks]
    Broken("screen_lock_string", {"hooks": {"screen_lock": '"xlock"'}}, "[hooks] screen_lock", "list"),
    Broken("screen_lock_nul", {"hooks": {"screen_lock": '["lock\\u0000"]'}}, "[hooks] screen_lock", "NUL"),
    Broken("screen_lock_empty_command", {"hooks": {"screen_lock": '["", "A-01"]'}}, "[hooks] screen_lock", "empty"),
]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: still running at the timeout
    stdout: str
    stderr: str


def launch(args: list[str]) -> Outcome:
    try:
        done = subprocess.run(
            [*SEATBOX, *args], capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, cwd=REPO
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), str(exc.stderr or ""))
    return Outcome(done.returncode, done.stdout, done.stderr)


def check_in_process(path: Path) -> Outcome:
    """`seatbox config check` through the same entry point, in this process (fast)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["config", "check", str(path)])
    return Outcome(code, out.getvalue(), err.getvalue())


def run_both(paths: dict[str, Path]) -> dict[tuple[str, str], Outcome]:
    """`config check` on every config, and `seatbox run` as a real process, two at a time
    (a refused config costs a run process about 0.6 s)."""
    outcomes = {(name, "check"): check_in_process(path) for name, path in paths.items()}
    with ThreadPoolExecutor(2) as pool:
        runs = pool.map(lambda path: launch(["run", str(path)]), paths.values())
        outcomes.update({(name, "run"): outcome for name, outcome in zip(paths, runs, strict=True)})
    return outcomes


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.with_name("other.toml"))
    path.with_name("other.toml").symlink_to(path)


def _too_big(path: Path) -> None:
    comment = "# " + "x" * 1021 + "\n"
    path.write_text(render({}).replace("{dir}", str(path.parent)) + comment * 1100)


# Files that are not a UTF-8 TOML text of sane size: (name, make it at path, what the error says)
FILE_KINDS: list[tuple[str, Callable[[Path], object], str]] = [
    ("latin1", lambda p: p.write_bytes(render({}).replace("hq", "h\xe9q").encode("latin-1")), "UTF-8"),
    ("utf16", lambda p: p.write_bytes(render({}).encode("utf-16")), "UTF-16"),
    ("utf16_without_bom", lambda p: p.write_bytes(render({}).encode("utf-16-le")), "UTF-8"),
    ("directory", lambda p: p.mkdir(), "regular file"),
    ("symlink_loop", _symlink_loop, "symlink loop"),
    ("dev_zero", lambda p: p.symlink_to("/dev/zero"), "regular file"),
    ("fifo", lambda p: os.mkfifo(p), "regular file"),
    ("too_big", _too_big, "1 MiB"),
    ("nested_arrays", lambda p: p.write_text("x = " + "[" * 200_000), "TOML"),
    ("binary", lambda p: p.write_bytes(bytes(range(256)) * 4), "UTF-8"),
]  # fmt: skip


@pytest.fixture(scope="module")
def broken_outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str], Outcome]]:
    paths = {}
    for case in BROKEN:
        folder = tmp_path_factory.mktemp(case.name)
        case.setup(folder)
        path = folder / "seat.toml"
        path.write_text(case.prefix + render(case.changes).replace("{dir}", str(folder)))
        paths[case.name] = path
    for name, make, _ in FILE_KINDS:
        path = tmp_path_factory.mktemp(name) / "seat.toml"
        make(path)
        paths[name] = path
    yield run_both(paths)


def assert_refused(outcome: Outcome, path: str, *pieces: str) -> None:
    """Exit 2 at once, one line on stderr naming the file and each piece, no traceback."""
    assert outcome.returncode is not None, f"still running after {PROCESS_TIMEOUT_S} s"
    assert outcome.returncode == 2, outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert path in lines[0], lines[0]
    for piece in pieces:
        assert piece in lines[0], lines[0]
    assert SECRET not in outcome.stderr + outcome.stdout


def test_the_base_config_of_the_table_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "seat.toml"
    path.write_text(render({}).replace("{dir}", str(tmp_path)))
    outcome = launch(["config", "check", str(path)])
    assert outcome.returncode == 0, outcome.stderr
    assert "OK (seat hq/A-01" in outcome.stdout


@pytest.mark.parametrize("case", BROKEN, ids=[case.name for case in BROKEN])
@pytest.mark.parametrize("verb", ["check", "run"])
def test_a_broken_config_is_refused_by_check_and_run_alike(
    case: Broken, verb: str, broken_outcomes: dict[tuple[str, str], Outcome]
) -> None:
    outcome = broken_outcomes[(case.name, verb)]
    assert_refused(outcome, "seat.toml", case.key, case.expected)


@pytest.mark.parametrize(
    "name,expected", [(n, e) for n, _, e in FILE_KINDS], ids=[n for n, _, _ in FILE_KINDS]
)
@pytest.mark.parametrize("verb", ["check", "run"])
def test_a_config_that_is_no_sane_text_file_is_refused_at_once(
    name: str, expected: str, verb: str, broken_outcomes: dict[tuple[str, str], Outcome]
) -> None:
    assert_refused(broken_outcomes[(name, verb)], "seat.toml", expected)


# --- fault 10: a password in the broker URL -------------------------------------------------

URL_WITH_SECRET = f"mqtt://seat-a01:{SECRET}@127.0.0.1:1883"


def _config_with_secret_url(folder: Path) -> str:
    path = folder / "seat.toml"
    path.write_text(
        render({"broker": {"url": f'"{URL_WITH_SECRET}"'}}).replace("{dir}", str(folder))
    )
    return str(path)


def _seats_csv(folder: Path) -> str:
    path = folder / "seats.csv"
    path.write_text(f"site,seat,broker\nhq,A-01,{URL_WITH_SECRET}\n")
    return str(path)


# (name, arguments given the test's folder, what the refusal points to)
SECRET_URL_USES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("config_check", lambda d: ["config", "check", _config_with_secret_url(d)], "password_file"),
    ("config_show", lambda d: ["config", "show", _config_with_secret_url(d)], "password_file"),
    ("config_show_json", lambda d: ["config", "show", "--json", _config_with_secret_url(d)], "password_file"),
    ("floor_config", lambda d: ["floor", "--config", _config_with_secret_url(d), "--duration", "1"], "password_file"),
    ("floor_broker", lambda d: ["floor", "--broker", URL_WITH_SECRET, "--site", "hq", "--duration", "1"], "password_file"),
    ("simulate_broker", lambda d: ["simulate", str(REPO / "config/scenarios/absent.toml"), "--fast", "--broker", URL_WITH_SECRET], "password_file"),
    ("demo_broker", lambda d: ["demo", "--seats", "1", "--no-view", "--duration", "1", "--broker", URL_WITH_SECRET], "password_file"),
    ("provision", lambda d: ["provision", "--site", "hq", "--seat", "A-01", "--broker", URL_WITH_SECRET, "--no-check", "--output", str(d / "out.toml")], "--password-file"),
    ("provision_csv", lambda d: ["provision", "--from", _seats_csv(d), "--no-check", "--output", str(d / "out")], "--password-file"),
]  # fmt: skip


@pytest.mark.parametrize(
    "args,pointer", [(a, p) for _, a, p in SECRET_URL_USES], ids=[n for n, _, _ in SECRET_URL_USES]
)
def test_a_password_in_the_broker_url_is_refused_and_never_shown(
    args: Callable[[Path], list[str]],
    pointer: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(args(tmp_path))
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert SECRET not in out + err
    assert "expected no user or password in the URL" in err
    assert pointer in err
    # Nothing written that could hold it (provision writes only after validation).
    assert not (tmp_path / "out.toml").exists() and not (tmp_path / "out").exists()
