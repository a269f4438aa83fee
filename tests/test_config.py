"""Config and profile errors name the file, the key and what was expected; good files pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.base.errors import ConfigError
from edge.core.profile_schema import profile_from_dict
from edge.shell.config import config_digest, load_config, load_profile

REPO = Path(__file__).parent.parent
SEATBOX = [sys.executable, "-m", "edge.cli"]


def seatbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEATBOX, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def write(tmp_path: Path, text: str, name: str = "seat.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
[seat]
site = "hq"
id = "A-01"
[broker]
url = "mqtt://127.0.0.1:1883"
"""


def test_example_config_and_every_shipped_profile_are_valid() -> None:
    # `config check` also wants the TLS files the example names (as `run` does), which a
    # development machine lacks: the file itself is checked here, and shown.
    assert load_config(REPO / "config" / "seatbox.example.toml").seat.id == "A-01"
    result = seatbox("config", "show", "config/seatbox.example.toml")
    assert result.returncode == 0, result.stderr
    for profile in (REPO / "config" / "profiles").glob("*.toml"):
        assert load_profile(profile.stem).name == profile.stem


def test_the_profile_digest_follows_the_values_not_the_name(tmp_path: Path) -> None:
    default = load_profile("default")
    data = default.to_dict()
    assert profile_from_dict("site-copy", data).digest == default.digest
    data["answer"]["ring_limit"] += 1
    assert profile_from_dict("default", data).digest != default.digest
    # What facilities compare with the digests a seat publishes in `info`.
    path = write(tmp_path, GOOD)
    result = seatbox("config", "check", str(path))
    assert f"profile default {default.digest})" in result.stdout
    shown = json.loads(seatbox("config", "show", str(path), "--json").stdout)
    assert shown["profile"]["digest"] == default.digest
    assert shown["digest"] == config_digest(load_config(path))
    assert f"config {shown['digest']}, profile" in seatbox("config", "check", str(path)).stdout
    text = seatbox("config", "show", str(path)).stdout
    assert text.startswith(f"# config digest {shown['digest']}, profile digest {default.digest}")


def test_the_config_digest_follows_the_config_but_no_secret(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    plain = load_config(write(tmp_path, GOOD))
    with_password = load_config(
        write(tmp_path, GOOD + f'username = "seat"\npassword_file = "{secret}"\n')
    )
    assert config_digest(with_password) != config_digest(plain)
    secret.write_text("another-password")
    assert config_digest(
        load_config(write(tmp_path, GOOD + f'username = "seat"\npassword_file = "{secret}"\n'))
    ) == (config_digest(with_password))


def test_wrong_type_names_the_key_and_the_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + 'keepalive = "soon"\n')
    result = seatbox("config", "check", str(path))
    assert result.returncode == 2
    assert f"{path}: [broker] keepalive: expected a duration such as 90s, 2m or 1h" in result.stderr


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "[radar]\nbaud = 9600\n")
    result = seatbox("config", "check", str(path))
    assert result.returncode == 2
    assert "[radar] baud: unknown key" in result.stderr


def test_missing_profile_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('id = "A-01"', 'id = "A-01"\nprofile = "strictest"'))
    with pytest.raises(ConfigError, match=r"\[seat\] profile: no profile named 'strictest'"):
        load_config(path)
    assert seatbox("config", "check", str(path)).returncode == 2


def test_seat_id_that_would_break_topics_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"A-01"', '"A/01+"'))
    result = seatbox("config", "check", str(path))
    assert result.returncode == 2
    assert "[seat] id: expected letters, digits, '_' or '-'" in result.stderr


def test_profile_override_errors_name_the_profile_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    write(
        tmp_path / "profiles",
        '[answer]\nring_limit = "three"\n[dead_air]\nnotice = "5s"\n',
        "site.toml",
    )
    path = write(tmp_path, GOOD.replace('id = "A-01"', 'id = "A-01"\nprofile = "site"'))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "site.toml: [answer] ring_limit:" in text and "'three'" in text
    assert "site.toml: [dead_air] notice: unknown key" in text


def test_a_profile_overrides_only_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    write(tmp_path / "profiles", "[answer]\nring_limit = 2\n", "two-rings.toml")
    profile = load_profile("two-rings", base_dir=tmp_path)
    default = load_profile("default")
    assert profile["answer"].ring_limit == 2
    assert profile["answer"].ring_period == default["answer"].ring_period
    assert profile["away"] == default["away"]


def test_show_masks_secrets_and_prints_effective_values(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    path = write(tmp_path, GOOD + f'username = "seat"\npassword_file = "{secret}"\n')
    result = seatbox("config", "show", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    import json

    shown = json.loads(result.stdout)
    assert shown["broker"]["password_file"] == str(secret)
    assert shown["profile"]["answer"]["ring_limit"] == 3


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[seat\nsite = 1\n")
    result = seatbox("config", "check", str(path))
    assert (
        result.returncode == 2 and "not valid TOML" in result.stderr and "line 1" in result.stderr
    )
