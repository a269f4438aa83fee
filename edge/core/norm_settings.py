"""The settings each norm and the presence model read from the profile: schema only.

Validating a profile (`edge.core.profile_schema`, `seatbox config check`) loads these and
pydantic, not the norms' logic and the core's state, inputs and effects. Each norm module
names its settings `Settings` (`edge.core.norms.away.Settings` is `AwaySettings`);
`NORM_SETTINGS` is in the order of `edge.core.norms.NORMS` (tests/test_profile_sections.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.base.schema import Duration, Section
from edge.core.shift import ShiftSettings

Energy = Annotated[int, Field(ge=0, le=100)]


class PresenceSettings(Section):
    away_after: Duration  # no evidence for this long (radar working) → away
    away_after_without_radar: Duration  # the same when no radar reports
    min_moving_energy: Energy  # a moving target weaker than this is not this seat's agent
    min_still_energy: Energy  # the same for a still target


class AnswerSettings(Section):
    ring_limit: int = Field(ge=1)  # rings within which a call must be answered
    ring_period: Duration  # one ring cadence (on + off)


class GreetSettings(Section):
    limit: Duration  # answer to first words


class HoldMuteSettings(Section):
    enforce: bool  # the box mutes the mic while the call is on hold


class HoldTimeSettings(Section):
    warn_after: Duration
    violation_after: Duration


class SpeechLevelSettings(Section):
    min_dbov: float  # quietest acceptable active speech level
    max_dbov: float  # loudest acceptable active speech level
    clipping_pct: float = Field(ge=0)  # more clipped samples than this: mic too close
    unsteady_spread_db: float = Field(gt=0)  # std. deviation of utterance levels over a call
    min_utterance: Duration  # shorter bursts are not judged


class OvertalkSettings(Section):
    min_overlap: Duration  # overlap started by the agent that counts as an interruption


class DeadAirSettings(Section):
    notice_after: Duration
    violation_after: Duration


class QuietFloorSettings(Section):
    ambient_dbfs: float  # ambient level at the mic that counts as loud
    ambient_for: Duration  # for at least this long
    impact_peak_dbfs: float  # an impact peaks at least this high
    impact_crest_db: float  # with at least this crest factor (peak over RMS)


class HearingSettings(Section):
    peak_limit_db_spl: float  # acoustic-shock practice: no peak above this at the ear
    dose_limit_dba: float  # L_EX,8h limit (lower action value)
    dose_cap_db: float  # receive gain cap once the day's dose reaches 100 %
    sensitivity_db_spl: dict[str, float]  # headset model -> dB SPL at the ear for 0 dBFS
    default_sensitivity_db_spl: float  # for models not in the table


class AwaySettings(Section):
    long_after: Duration  # request a screen lock, tell the agent
    too_long_after: Duration  # tell the supervisor
    screen_lock: bool  # run the seat's screen-lock hook at `away.long`


class AttendanceSettings(ShiftSettings):
    absent_after: Duration  # late (or early) by more than this counts as absence


NORM_SETTINGS: dict[str, type[Section]] = {
    "answer": AnswerSettings,
    "greet": GreetSettings,
    "hold_mute": HoldMuteSettings,
    "hold_time": HoldTimeSettings,
    "speech_level": SpeechLevelSettings,
    "overtalk": OvertalkSettings,
    "dead_air": DeadAirSettings,
    "quiet_floor": QuietFloorSettings,
    "hearing": HearingSettings,
    "away": AwaySettings,
    "attendance": AttendanceSettings,
}
