"""Hearing exposure: dose arithmetic (ISO 1999 / EU 2003/10/EC), level at the ear, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp.exposure import EarLevelMeter, NoiseDose
from dsp.meter import ChannelMeter
from dsp.types import ChannelLevels


def test_four_hours_at_85_dba_is_lex8h_82_and_158_percent_of_the_80_dba_criterion() -> None:
    dose = NoiseDose(day="2026-11-23")
    for _ in range(4 * 3600):
        dose.add(85.0, 1.0)
    assert dose.lex_8h_dba == pytest.approx(81.99, abs=0.01)  # 85 + 10 log10(4/8)
    assert dose.dose_pct(80.0) == pytest.approx(100 * 10 ** (1.99 / 10), rel=1e-3)
    assert dose.dose_pct(85.0) == pytest.approx(50.0, rel=1e-9)
    # 100 % at 80 dB(A) for 8 h is 1152 Pa^2 s (reference note 4.2)
    full = NoiseDose()
    full.add(80.0, 8 * 3600)
    assert full.exposure_pa2s == pytest.approx(1152.0, rel=1e-3)
    assert full.dose_pct(80.0) == pytest.approx(100.0)


def test_dose_state_survives_a_restart_through_json() -> None:
    dose = NoiseDose(day="2026-11-23")
    dose.add(88.0, 3600)
    restored = NoiseDose.from_dict(json.loads(json.dumps(dose.to_dict())))
    restored.add(88.0, 3600)
    whole = NoiseDose(day="2026-11-23")
    whole.add(88.0, 7200)
    assert restored.day == "2026-11-23"
    assert restored.lex_8h_dba == pytest.approx(whole.lex_8h_dba, abs=1e-9)
    assert restored.seconds == 7200


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ({"day": 5}, "'day'"),
        ({"exposure_pa2s": -1}, "'exposure_pa2s'"),
        ({"seconds": "x"}, "'seconds'"),
    ],
)
def test_bad_persisted_dose_state_names_the_field(state: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NoiseDose.from_dict(state)


def test_ear_level_per_second_from_a_1khz_tone_and_the_peak_limit() -> None:
    rate = 16000
    t = np.arange(rate * 3) / rate
    tone = (0.1 * np.sqrt(2) * np.sin(2 * np.pi * 1000 * t) * 32768).astype(np.int16)  # -20 dBov
    periods = ChannelMeter(rate).feed(tone)
    ear = EarLevelMeter(sensitivity_db_spl=110.0, peak_limit_db_spl=102.0)
    seconds = [s for p in periods if (s := ear.update(p)) is not None]
    assert len(seconds) == 3
    # 1 kHz: A-weighting 0 dB, so -20 dBov + 110 dB = 90 dB(A) at the ear
    assert seconds[-1].laeq_dba == pytest.approx(90.0, abs=0.05)
    assert seconds[-1].peak_db_spl == pytest.approx(93.0, abs=0.05)
    assert not seconds[-1].peak_exceeded
    loud = ChannelLevels(period_s=0.1, peak_dbfs=-6.0, rms_dbov=-20.0, laeq_dbfs=-20.0)
    assert ear.peak_exceeded(loud)  # -6 + 110 = 104 dB SPL >= 102
