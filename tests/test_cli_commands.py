"""The `seatbox` command loads only what the command it runs needs.

`edge.cli.COMMAND_MODULE` names the module of each command, so `seatbox config check` does not
import the headset, radar and install tools; these tests keep that table in step with what the
modules register, and check what a few commands load (bench/footprint.py times them).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import COMMAND_MODULE, COMMAND_MODULES, build_parser, command_word

REPO = Path(__file__).parent.parent
DESCRIPTOR = REPO / "tests" / "data" / "hid" / "jabra_biz2400_ii.hex"
FRAME = "F4 F3 F2 F1 0D 00 02 AA 02 51 00 00 00 00 3B 00 00 55 00 F8 F7 F6 F5"


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    for name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(name).register(sub)
        mapped = {command for command, module in COMMAND_MODULE.items() if module == name}
        assert _commands(parser) == mapped, name
    assert set(COMMAND_MODULE.values()) == set(COMMAND_MODULES)


def test_a_named_command_builds_only_its_module_and_otherwise_every_one() -> None:
    assert _commands(build_parser(["config", "check", "x.toml"])) == {"config"}
    assert _commands(build_parser(["--log-level", "DEBUG", "run", "x"])) == {
        "run", "simulate", "replay", "demo", "floor",
    }  # fmt: skip
    assert _commands(build_parser(["--help"])) == set(COMMAND_MODULE)
    assert _commands(build_parser(["no-such-command"])) == set(COMMAND_MODULE)
    assert _commands(build_parser()) == set(COMMAND_MODULE)


def test_the_command_word_skips_the_top_level_options() -> None:
    assert command_word(["--log-format", "json", "doctor"]) == "doctor"
    assert command_word(["--log-level=INFO", "meter", "f.wav"]) == "meter"
    assert command_word(["--version"]) is None
    assert command_word(["--help", "config"]) is None  # the top-level help lists every command
    assert command_word(["--log-lev", "DEBUG", "run"]) is None  # an abbreviation: parse it all
    assert command_word([]) is None


PROBE = """
import json, sys
from edge.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _loaded(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), result.stderr
    return {name.split(".")[0] for name in report["modules"]} | set(report["modules"])


HEAVY = {"numpy", "scipy", "sounddevice", "paho", "sqlite3", "ssl", "serial", "rich", "asyncio"}


@pytest.mark.parametrize(
    ("args", "also_absent"),
    [
        (["--help"], {"pydantic"}),
        (["headset", "describe", str(DESCRIPTOR)], {"pydantic", "edge.shell.config"}),
        (["radar", "decode", FRAME], {"pydantic", "edge.shell.config", "drivers.hid"}),
    ],
)
def test_quick_commands_load_neither_pydantic_nor_io_libraries(
    args: list[str], also_absent: set[str]
) -> None:
    assert not (_loaded(*args) & (HEAVY | also_absent))


def test_config_check_loads_the_schema_but_no_io_library(tmp_path: Path) -> None:
    config = tmp_path / "seatbox.toml"
    config.write_text('[seat]\nsite = "hq"\nid = "A-01"\n[broker]\nurl = "mqtt://127.0.0.1:1883"\n')
    loaded = _loaded("config", "check", str(config))
    assert "pydantic" in loaded
    assert not (loaded & (HEAVY | {"drivers.hid.descriptor", "drivers.radar.ld2410"}))
