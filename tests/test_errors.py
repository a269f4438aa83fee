"""One error root: every project exception is a SeatboxError of a kind, and `seatbox` turns
each kind into one line and one exit code in one place (`edge.cli.main`)."""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.errors import DeviceError, ParseError, SeatboxError
from edge.base.errors import BrokerError, ConfigError, UsageError
from edge.cli import EXIT_FAIL, EXIT_USAGE, error_line, exit_code, framed, main

REPO = Path(__file__).parent.parent
ROOMS = ("edge", "drivers", "dsp", "floor")
SEATBOX = [sys.executable, "-m", "edge.cli"]

# Exception classes that may stay outside SeatboxError, by class name, with the reason.
# Exception classes that may stay outside the root, each with the reason (none today).
OUTSIDE: dict[str, str] = {
    # Starlette's HTTPException: an HTTP answer (status, error, field) raised inside a request
    # handler and turned into a response by the app; it never reaches the CLI's handler.
    "ApiError": "an HTTP response of the floor API",
}


@functools.cache
def _exception_classes() -> list[tuple[str, str, int]]:
    """(module, class name, line) of every class in the rooms whose bases are exceptions:
    built-in ones, names ending in Error or Exception, or the project's own (to a fixpoint)."""
    classes: list[tuple[str, str, int, list[str]]] = []
    for room in ROOMS:
        for path in sorted((REPO / room).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
                    classes.append((module, node.name, node.lineno, bases))
    found: set[str] = set()

    def is_exception(base: str) -> bool:
        builtin = getattr(builtins, base, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return True
        return base.endswith(("Error", "Exception")) or base in found

    while True:
        more = {name for _, name, _, bases in classes if any(map(is_exception, bases))}
        if more <= found:
            break
        found |= more
    return [(module, name, line) for module, name, line, _ in classes if name in found]


def test_the_walk_finds_the_project_exceptions() -> None:
    names = {name for _, name, _ in _exception_classes()}
    # One of each room's kinds, so a broken walk cannot pass the test below by finding none.
    assert {"ConfigError", "FrameError", "RadarError", "DescriptorError", "CommandError"} <= names
    assert {"InstallError", "ProvisionError", "BrokerConnectError", "StreamError"} <= names


def test_every_project_exception_is_a_seatbox_error() -> None:
    wrong = []
    for module, name, line in _exception_classes():
        if name.startswith("_") or name in OUTSIDE:
            continue
        cls = getattr(importlib.import_module(module), name, None)
        if not (isinstance(cls, type) and issubclass(cls, SeatboxError)):
            wrong.append(f"{module}:{line}: {name}")
    assert wrong == [], (
        "derive these from a kind in edge.base.errors (ConfigError, ParseError, DeviceError, "
        "BrokerError, UsageError), make them private, or list them in OUTSIDE with a reason: "
        + ", ".join(wrong)
    )


def test_the_kinds_keep_the_builtin_bases_callers_catch() -> None:
    from drivers.audio.wavfile import AudioFileError
    from drivers.hid.descriptor import DescriptorError
    from drivers.radar.ld2410 import FrameError
    from edge.api.models import StreamError
    from edge.core.inputs import DecodeError
    from edge.shell.mqtt.commands import CommandError

    for cls in (
        DescriptorError,
        FrameError,
        AudioFileError,
        StreamError,
        DecodeError,
        CommandError,
    ):
        assert issubclass(cls, ParseError) and issubclass(cls, ValueError), cls


# --- the CLI: one line and one exit code per kind ---------------------------------------------


@pytest.mark.parametrize(
    "error,code",
    [
        (ConfigError("x"), EXIT_USAGE),
        (ParseError("x"), EXIT_USAGE),
        (UsageError("x"), EXIT_USAGE),
        (DeviceError("x"), EXIT_FAIL),
        (BrokerError("x"), EXIT_FAIL),
        (SeatboxError("x"), EXIT_FAIL),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_kind_has_its_exit_code(error: SeatboxError, code: int) -> None:
    assert exit_code(error) == code


def test_the_line_is_the_errors_prefix_else_the_commands_else_seatbox_command() -> None:
    import argparse

    plain = argparse.Namespace(command="run")
    own = argparse.Namespace(command="config", error_prefix="")
    assert error_line(plain, ConfigError("seat.toml: [seat] id: bad")) == (
        "seatbox run: seat.toml: [seat] id: bad"
    )
    assert error_line(own, ConfigError("seat.toml: [seat] id: bad")) == "seat.toml: [seat] id: bad"
    assert error_line(own, framed("seatbox x: ", UsageError("--y: z"))) == "seatbox x: --y: z"


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


BAD_CONFIG = '[seat]\nsite = "hq"\nid = "A/01"\n[broker]\nurl = "mqtt://127.0.0.1:1883"\n'


def test_a_config_error_is_exit_2_and_the_sentence_through_the_real_entry_point(
    tmp_path: Path,
) -> None:
    path = tmp_path / "seat.toml"
    path.write_text(BAD_CONFIG)
    done = subprocess.run(
        [*SEATBOX, "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"{path}: [seat] id: expected letters"), done.stderr
    assert "Traceback" not in done.stderr


def test_seatbox_run_prefixes_the_same_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "seat.toml"
    path.write_text(BAD_CONFIG)
    code, err = _main(capsys, "run", str(path))
    assert code == 2
    assert err.startswith(f"seatbox run: {path}: [seat] id: expected letters"), err


def test_a_parse_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(capsys, "radar", "decode", "F4 F3 F2 F1 00")
    assert code == 2
    assert err.startswith("seatbox radar decode: malformed frame: "), err


def test_a_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _main(capsys, "meter", str(tmp_path / "x.raw"), "--rate", "5")
    assert (code, err) == (2, "seatbox meter: --rate must be 600..384000 Hz, got 5\n")
    code, err = _main(capsys, "radar", "set", "--port", "/dev/null")
    assert code == 2 and err.startswith("seatbox radar set: nothing to set: give --max-gate"), err
    code, err = _main(capsys, "demo", "--seats", "0")
    assert (code, err) == (2, "--seats: expected at least 1\n")


def test_a_device_error_is_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _main(capsys, "radar", "info", "--port", str(tmp_path / "no-such-tty"))
    assert code == 1
    assert err.startswith(f"seatbox radar: cannot open {tmp_path / 'no-such-tty'}"), err


def test_an_install_error_is_exit_1_from_seatbox_and_from_make_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--root", str(tmp_path / "root"), "--source", str(tmp_path / "nothing")]
    line = f"seatbox install: {tmp_path / 'nothing'} is not a seatbox source tree (no pyproject.toml)\n"
    code, err = _main(capsys, "install", "--no-venv", *args)
    assert (code, err) == (1, line)
    from edge.ops.install import main as install_main

    assert install_main(["install", "--no-venv", *args]) == 1
    assert capsys.readouterr().err == line
