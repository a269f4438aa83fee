"""Property tests of config loading: whatever a file holds, loading returns or says ConfigError.

Hypothesis, with a short budget here; `load_seat` is what `seatbox run` and `config check` call.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.api.broker import parse_url
from edge.base.errors import ConfigError
from edge.core.profile_schema import SECTIONS
from edge.shell.config import SeatConfig, load_profile
from edge.shell.config_check import load_seat

BUDGET = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
# Every (section, key) a seat config knows, from the schema itself.
CONFIG_KEYS = [
    (section, key)
    for section, info in SeatConfig.model_fields.items()
    for key in info.annotation.model_fields  # type: ignore[union-attr]
]
PROFILE_KEYS = [(section, key) for section, model in SECTIONS.items() for key in model.model_fields]

scalars = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1]),  # past float and SQLite range
    st.floats(),  # nan, inf, -0.0, huge, tiny
    st.booleans(),
    st.text(max_size=40),
    st.sampled_from(
        ["", "embedded", "mqtt://h:1", "mqtts://u:pw@h", "/dev/zero", "/", ".", "..", "90s",
         "1e400s", "default", "virtual", "ld2410", "sounddevice", "Europe/Paris", "\x00", "ü"]
    ),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _in_file(folder: Path, text: str | bytes) -> Path:
    path = folder / "seat.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _loads_or_refuses(path: Path) -> None:
    """The property: a SeatSetup, or ConfigError with a message; nothing else escapes."""
    try:
        setup = load_seat(path)
    except ConfigError as exc:
        assert str(exc).strip(), "a refusal says why"
    else:
        assert isinstance(setup.config, SeatConfig)


def _document(pairs: list[tuple[tuple[str, str], Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"seat": {"site": "hq", "id": "A-01"}}
    for (section, key), value in pairs:
        doc.setdefault(section, {})[key] = value
    return doc


@BUDGET
@given(st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), values), max_size=6))
def test_any_value_in_any_known_key_loads_or_is_refused(
    pairs: list[tuple[tuple[str, str], Any]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _loads_or_refuses(_in_file(Path(folder), tomli_w.dumps(_document(pairs))))


TOMLISH_LINES = st.one_of(
    st.sampled_from([f"[{s}]" for s in SeatConfig.model_fields] + ["[seat", "[[seat]]", "[]"]),
    st.builds(
        lambda key, value: f"{key[1]} = {value}",
        st.sampled_from(CONFIG_KEYS),
        st.one_of(
            st.sampled_from(["inf", "-inf", "nan", "1e999", "0x7fffffffffffffff", "[[[[", "{",
                             '"""', "'a'", "true", "1979-05-27T07:32:00Z", '"\\u0000"']),
            st.text(max_size=20),
        ),
    ),
    st.text(max_size=30),
)  # fmt: skip


@BUDGET
@given(st.lists(TOMLISH_LINES, max_size=12))
@example(["[seat]", 'site = "hq"', 'id = "A-01"', "[broker]", "keepalive = inf"])
@example(["x = " + "[" * 5000])
def test_any_tomlish_text_loads_or_is_refused(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _loads_or_refuses(_in_file(Path(folder), "\n".join(lines)))


@BUDGET
@given(st.binary(max_size=300))
def test_any_bytes_load_or_are_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _loads_or_refuses(_in_file(Path(folder), b'[seat]\nsite = "hq"\nid = "A-01"\n' + data))


@BUDGET
@given(st.lists(st.tuples(st.sampled_from(PROFILE_KEYS), values), max_size=5))
def test_any_value_in_a_profile_loads_or_is_refused(
    pairs: list[tuple[tuple[str, str], Any]],
) -> None:
    doc: dict[str, Any] = {"extends": "default"}
    for (section, key), value in pairs:
        doc.setdefault(section, {})[key] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "site.toml"
        path.write_text(tomli_w.dumps(doc), encoding="utf-8")
        try:
            load_profile(str(path))
        except ConfigError as exc:
            assert str(exc).strip()


PASSWORDS = st.text(string.ascii_letters + string.digits + "!$%&*+,;=~", min_size=8, max_size=30)


@BUDGET
@given(
    st.sampled_from(["mqtt", "mqtts", "ws", "wss", "tcp", "ssl", "http", ""]),
    st.text(string.ascii_letters + string.digits + "-._~", max_size=12),
    PASSWORDS,
    st.text(max_size=20),
)
def test_a_password_in_a_url_is_refused_and_never_repeated(
    scheme: str, user: str, password: str, rest: str
) -> None:
    url = f"{scheme}://{user}:{password}@{rest}" if scheme else f"{user}:{password}@{rest}"
    try:
        parse_url(url)
    except ConfigError as exc:
        assert password not in str(exc)
    else:
        raise AssertionError(f"accepted a URL with a password: {url!r}")


@BUDGET
@given(st.text(max_size=60))
def test_any_url_text_parses_or_is_refused(url: str) -> None:
    try:
        endpoint = parse_url(url)
    except ConfigError:
        return
    assert 1 <= endpoint.port <= 65535 and endpoint.host
