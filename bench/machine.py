"""What every benchmark prints about the machine it ran on (figures compare only within one)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo: "model name" on x86, "Model"/"Hardware" on a Pi."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for key in ("model name", "Model", "Hardware"):
        for line in lines:
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe() -> str:
    """One line: system, kernel, architecture, CPU and Python."""
    u = platform.uname()
    return f"{u.system} {u.release} {u.machine}; {cpu_model()}; Python {platform.python_version()}"
