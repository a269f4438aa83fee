"""Conversation metrics on two-channel signals built from real speech with known overlaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.audio.wavfile import read_audio
from dsp.conversation import (
    AmbientMeter,
    ConversationAnalyser,
    DeadAir,
    ImpulseDetector,
    OverTalk,
)
from dsp.meter import ChannelMeter
from dsp.types import ChannelLevels

DATA = Path(__file__).parent / "data" / "audio"
RATE = 16000


def _speech(name: str) -> np.ndarray:
    return np.round(read_audio(DATA / name).samples * 32768).astype(np.int16)


def _place(total_s: float, *parts: tuple[float, np.ndarray]) -> np.ndarray:
    out = np.zeros(int(total_s * RATE), dtype=np.int16)
    for start_s, samples in parts:
        start = int(start_s * RATE)
        out[start : start + samples.size] = samples
    return out


def _analyse(tx: np.ndarray, rx: np.ndarray) -> tuple[ConversationAnalyser, list[object]]:
    tx_meter, rx_meter = ChannelMeter(RATE), ChannelMeter(RATE)
    analyser = ConversationAnalyser()
    events: list[object] = []
    for start in range(0, tx.size, 320):  # 20 ms blocks, as the capture delivers them
        for t, r in zip(
            tx_meter.feed(tx[start : start + 320]),
            rx_meter.feed(rx[start : start + 320]),
            strict=True,
        ):
            events += analyser.update(t, r)
    return analyser, events


def test_agent_cutting_into_the_customer_is_an_overtalk_started_by_the_agent() -> None:
    customer, agent = _speech("customer.wav"), _speech("agent.wav")  # 4.34 s, 5.51 s
    # customer speaks 0.5-4.8 s; the agent starts at 3.0 s: ~1.8 s of both speaking
    rx = _place(10, (0.5, customer))
    tx = _place(10, (3.0, agent))
    analyser, events = _analyse(tx, rx)
    overtalks = [e for e in events if isinstance(e, OverTalk)]
    assert {o.started_by for o in overtalks} == {"agent"}
    assert overtalks[0].start_s == pytest.approx(3.0, abs=0.2)
    assert sum(o.duration_s for o in overtalks) == pytest.approx(1.8, abs=0.4)
    summary = analyser.summary()
    assert summary.overtalk_by_agent == len(overtalks)
    assert summary.overtalk_by_customer == 0
    assert summary.first_agent_speech_s == pytest.approx(3.0, abs=0.2)
    assert summary.talk_listen_ratio == pytest.approx(
        summary.agent_talk_s / summary.customer_talk_s
    )
    assert summary.agent_talk_s > summary.customer_talk_s


def test_customer_cutting_into_the_agent_and_dead_air_between_turns() -> None:
    customer, agent = _speech("customer.wav"), _speech("agent.wav")
    # agent 0.0-5.5 s; customer starts 4.5 s (over-talk by customer, ~1 s); then nobody
    # speaks from ~8.8 s until the agent answers at 15.0 s: ~6.2 s of dead air.
    tx = _place(22, (0.0, agent), (15.0, agent))
    rx = _place(22, (4.5, customer))
    analyser, events = _analyse(tx, rx)
    overtalks = [e for e in events if isinstance(e, OverTalk)]
    assert overtalks and {o.started_by for o in overtalks} == {"customer"}
    assert sum(o.duration_s for o in overtalks) == pytest.approx(1.0, abs=0.4)
    dead = [e for e in events if isinstance(e, DeadAir)]
    longest = max(dead, key=lambda d: d.duration_s)
    assert longest.start_s == pytest.approx(8.85, abs=0.4)
    assert longest.duration_s == pytest.approx(6.15, abs=0.4)
    assert analyser.summary().longest_dead_air_s == longest.duration_s


def _flags(tx: str, rx: str) -> list[tuple[ChannelLevels, ChannelLevels]]:
    """Periods of 0.1 s from strings: '1' speech, '0' silence."""
    return [
        (ChannelLevels(0.1, speech=a == "1"), ChannelLevels(0.1, speech=b == "1"))
        for a, b in zip(tx, rx, strict=True)
    ]


def test_overtalk_and_dead_air_durations_on_exact_flags() -> None:
    analyser = ConversationAnalyser(hangover_s=0.0)
    tx = "0000000000111111111100000000000000000000"
    rx = "0000011111111100000000000000000000001111"
    events = []
    for t, r in _flags(tx, rx):
        events += analyser.update(t, r)
    assert events[0] == DeadAir(0.0, pytest.approx(0.5))
    assert events[1] == OverTalk("agent", pytest.approx(1.0), pytest.approx(0.4))
    assert events[2] == DeadAir(pytest.approx(2.0), pytest.approx(1.6))
    assert analyser.current_dead_air_s == 0.0
    summary = analyser.summary()
    assert summary.first_agent_speech_s == pytest.approx(1.0)
    assert summary.agent_talk_s == pytest.approx(1.0)
    assert summary.customer_talk_s == pytest.approx(1.3)
    assert summary.overtalk_s == pytest.approx(0.4)
    # dead air is readable while it lasts, so a norm can warn before it ends
    for t, r in _flags("0" * 30, "0" * 30):
        analyser.update(t, r)
    assert analyser.current_dead_air_s == pytest.approx(3.0)


def test_ambient_level_is_the_leq_of_the_last_window() -> None:
    meter = AmbientMeter(window_s=10.0)
    for _ in range(100):
        meter.update(ChannelLevels(0.1, laeq_dbfs=-50.0))
    assert meter.full and meter.level_dbfs == pytest.approx(-50.0)
    for _ in range(50):
        meter.update(ChannelLevels(0.1, laeq_dbfs=-20.0))
    # half the window at -20, half at -50: 10 log10((1e-2 + 1e-5) / 2)
    assert meter.level_dbfs == pytest.approx(10 * np.log10((1e-2 + 1e-5) / 2), abs=1e-6)


def test_a_slammed_headset_is_one_impulse_and_speech_is_none() -> None:
    periods = ChannelMeter(RATE).feed(_speech("agent.wav"))
    click = np.zeros(RATE, dtype=np.int16)
    click[8000:8040] = 32767 * np.exp(-np.arange(40) / 8.0)
    click[8003] = -32768
    periods_click = ChannelMeter(RATE).feed(click)
    detector = ImpulseDetector(peak_min_dbfs=-1.0, crest_min_db=20.0)
    assert not any(detector.update(p) for p in periods)
    assert sum(detector.update(p) for p in periods_click) == 1
    assert max(p.clipping_pct for p in periods_click) > 0
