"""The profile's schema stands apart from the norms' logic.

`edge.core.norm_settings` holds every norm's settings so that validating a config or profile
(`seatbox config check`, the start of `seatbox run`) does not load the norms, the core's state,
inputs and effects, or the drivers' events: these tests keep it in step with `NORMS`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.core.norm_settings import NORM_SETTINGS, PresenceSettings
from edge.core.norms import NORMS
from edge.core.presence import PresenceSettings as PresenceFromModel
from edge.core.profile_schema import SECTIONS

REPO = Path(__file__).parent.parent


def test_the_settings_are_the_norms_own_in_the_norms_order() -> None:
    assert list(NORM_SETTINGS.items()) == [(norm.name, norm.settings) for norm in NORMS]
    assert list(SECTIONS)[:2] == ["presence", "levels"]
    assert PresenceFromModel is PresenceSettings is SECTIONS["presence"]


def test_loading_a_config_loads_no_norm_logic_and_no_core_state() -> None:
    probe = (
        "import json, sys\n"
        "from edge.shell.config_check import load_seat\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
            ).stdout
        )
    )
    logic = {"edge.core.norms", "edge.core.state", "edge.core.effects", "edge.core.inputs"}
    assert not loaded & logic
    assert not {m for m in loaded if m.startswith(("drivers.hid", "drivers.audio", "dsp"))}
