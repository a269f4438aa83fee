"""`seatbox demo` brings up a floor: every seat publishes over the embedded broker and the
floor view (a real MQTT subscriber) shows them; it ends cleanly by itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent


def test_demo_floor_shows_every_seat_and_stops_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "demo", "--no-view", "--duration", "8", "--seats", "6"],
        capture_output=True, text=True, timeout=90, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "seats 6" in out
    for seat in ("A-01", "A-02", "A-03", "A-04", "A-05", "A-06"):
        assert seat in out
    assert "seatbox demo: stopped" in out
    assert "Traceback" not in result.stderr
