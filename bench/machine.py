"""What every benchmark prints about the machine it ran on (figures compare only within one)."""

from __future__ import annotations

import os
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


TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK
