"""The largest payloads a seat publishes, for the site broker's `max_packet_size`: every
scenario played in process (each distinct `state`, every event, `info`), the doctor checks of
the example config, and a worst case built from the schema's limits. Sizes are the bytes on the
wire (compact UTF-8 JSON, as `edge.shell.mqtt.link.dumps` writes them) plus the topic.

Run: .venv/bin/python bench/payload_sizes.py
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.api.payloads import dumps  # noqa: E402
from edge.core.clock import Instant  # noqa: E402
from edge.core.snapshot import snapshot  # noqa: E402
from edge.shell.scenario import load_scenario  # noqa: E402
from edge.sim import build as sim  # noqa: E402

SCENARIOS = REPO / "config" / "scenarios"
# MQTT PUBLISH overhead: fixed header (<= 5), topic length (2), packet id (2).
HEADER = 9


def play(path: Path) -> tuple[int, int, int]:
    """Largest state, largest event, info of one scenario (bytes)."""
    out = io.StringIO()
    runtime, _ = sim.build(load_scenario(path), events_out=out)
    largest_state = [0]

    def on_step(at: Instant) -> None:
        snap = snapshot(runtime.state, at, runtime.site, runtime.seat)
        largest_state[0] = max(largest_state[0], len(dumps(snap)))

    runtime.progress_hooks.append(on_step)
    runtime.run()
    events = [len(line.encode()) for line in out.getvalue().splitlines()]
    return largest_state[0], max(events, default=0), len(dumps(runtime.info()))


def doctor_checks() -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "seatbox"), "doctor", "--json", "--timeout", "1"]
        + [str(REPO / "config" / "seatbox.example.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    checks: list[dict[str, Any]] = json.loads(done.stdout)["checks"]
    return checks


def worst_case(checks: list[dict[str, Any]]) -> tuple[int, int]:
    """state and info at the schema's limits: 64-character ids, every violation, every part of
    `today`; USB strings at their maximum (126 UTF-16 units, here 3-byte UTF-8 each), twice
    the doctor checks of the example config with 300-character details and fixes."""
    ts = "2026-11-23T08:45:00.000+01:00"
    since = "2026-11-23T07:45:00.000Z"
    seat_id = "s" * 64
    violations = [
        {"type": t, "since": since}
        for t in (
            "away.long",
            "away.too_long",
            "call.dead_air",
            "floor.loud",
            "hold.too_long",
            "shift.absent",
        )
    ]
    state = {
        "site": "x" * 64,
        "seat": seat_id,
        "ts": ts,
        "call": {
            "state": "active",
            "since": since,
            "source": "headset",
            "direction": "outbound",
            "number": 10**9,
        },
        "hook": {"off_hook": True, "since": since},
        "mute": {"muted": True, "by": "hold_policy", "since": since},
        "presence": {"state": "present", "since": since, "last_seen": since},
        "headset": {"connected": True, "since": since, "product": "\u20ac" * 126},
        "radar": {"ok": True, "target": "both", "since": since},
        "audio": {"ok": True, "since": since},
        "shift": {"phase": "on", "since": since},
        "rx_cap_db": -12.345678901234567,
        "violations": violations,
        "today": {
            "answer": {"answered": 10**6, "late": 10**6, "mean_answer_s": 1234.5678901234567},
            "attendance": {
                "arrived": ts,
                "late_min": 1234.5678901234567,
                "absent": False,
                "early_leave_min": 1234.5678901234567,
                "arrival_seen": False,
            },
            "away": {"away_count": 10**6, "away_min": 1234.5678901234567},
            "hearing": {"lex_8h_dba": 85.12345678901234, "dose_pct": 1234.5678901234567},
        },
    }
    usb = "\u20ac" * 126
    long_checks = [{**check, "detail": "d" * 300, "fix": "f" * 300} for check in checks + checks]
    info = {
        "version": "0.0.0.dev0+g0123456789ab",
        "boot_id": "999999999999-0a1b2c3d",
        "site": "x" * 64,
        "seat": seat_id,
        "profile": "p" * 64,
        "profile_digest": "0" * 12,
        "config_digest": "0" * 12,
        "headset": {
            "manufacturer": usb,
            "product": usb,
            "serial": usb,
            "firmware": "65535.65535",
            "vendor_id": "ffff",
            "product_id": "ffff",
            "usb_path": "1-1.2.3.4.5.6:1.0",
            "telephony": True,
        },
        "checks": long_checks,
        "devices": {"radar": "LD2410Radar", "audio": "AlsaAudio", "host": "GadgetHost"},
        "thresholds": {
            "answer": {"ring_limit": 1000, "ring_period_s": 1234.5678901234567},
            "hold_time": {"warn_after_s": 1234.5678901234567, "violation_after_s": 1234.56789012},
            "away": {"long_after_s": 1234.5678901234567, "too_long_after_s": 1234.5678901234567},
            "dead_air": {
                "notice_after_s": 1234.5678901234567,
                "violation_after_s": 1234.5678901234567,
            },
            "attendance": {
                "start": "08:45:59",
                "end": "17:30:59",
                "lunch_start": "12:00:59",
                "lunch_end": "13:30:59",
                "ready_before_s": 1234.5678901234567,
                "absent_after_s": 1234.5678901234567,
                "workdays": [1, 2, 3, 4, 5, 6, 7],
            },
        },
    }
    topic = len(f"seatbox/v1/{'x' * 64}/{seat_id}/state")
    return len(dumps(state)) + topic + HEADER, len(dumps(info)) + topic + HEADER


def main() -> int:
    rows = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        rows.append((path.stem, *play(path)))
    state = max(r[1] for r in rows)
    event = max(r[2] for r in rows)
    info = max(r[3] for r in rows)
    checks = doctor_checks()
    checks_bytes = len(dumps({"checks": checks}))
    worst_state, worst_info = worst_case(checks)
    print(f"scenarios played: {len(rows)}")
    print(f"largest state (scenarios):           {state:6d} bytes")
    print(f"largest event (scenarios):           {event:6d} bytes")
    print(f"largest info (scenarios, no checks): {info:6d} bytes")
    print(f"doctor checks, example config:       {checks_bytes:6d} bytes ({len(checks)} checks)")
    print(f"worst-case state packet:             {worst_state:6d} bytes")
    print(f"worst-case info packet:              {worst_info:6d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
