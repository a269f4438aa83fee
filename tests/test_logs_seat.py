"""Every log line names its seat, in text (journal) and JSON format; journald gets priorities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging, sys
from edge.shell.logs import setup_logging, bind_seat
setup_logging("INFO", sys.argv[1])
logging.getLogger("edge.test").info("before config")
bind_seat("hq", "A-12")
logging.getLogger("edge.test").warning("broker %s unreachable", "b1")
"""


def run(fmt: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt], capture_output=True, text=True, timeout=30,
        env=env, check=True,
    )  # fmt: skip
    return result.stderr.splitlines()


def test_json_records_carry_site_and_seat_once_bound() -> None:
    first, second = (json.loads(line) for line in run("json"))
    assert "seat" not in first
    assert (second["site"], second["seat"], second["level"]) == ("hq", "A-12", "WARNING")
    assert second["msg"] == "broker b1 unreachable"


def test_text_lines_name_the_seat() -> None:
    lines = run("text")
    assert lines[1].endswith("WARNING [hq/A-12] edge.test: broker b1 unreachable")
    assert "[" not in lines[0].split("INFO")[1]


def test_under_journald_lines_carry_syslog_priority_and_no_timestamp(tmp_path: Path) -> None:
    log = tmp_path / "journal-stream"
    with log.open("w") as stderr:
        info = os.fstat(stderr.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        subprocess.run(
            [sys.executable, "-c", SCRIPT, "text"], stderr=stderr, env=env, timeout=30, check=True
        )
    lines = log.read_text().splitlines()
    assert lines == [
        "<6>INFO edge.test: before config",
        "<4>WARNING [hq/A-12] edge.test: broker b1 unreachable",
    ]
