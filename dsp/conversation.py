"""Two-channel conversation analysis from per-period voice flags: over-talk and who started it,
dead air, talk/listen ratio, time to the agent's first words, ambient level between calls.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from dsp.types import SILENCE_DB, ChannelLevels

Party = Literal["agent", "customer", "both"]
# Gaps in a talk spurt shorter than this are bridged, like P.56's 0.2 s hangover
# (ITU-T P.56 §B.1), so an over-talk or a dead-air span is not split at every word.
SPURT_HANGOVER_S = 0.2


@dataclass(frozen=True, slots=True)
class OverTalk:
    """Both parties speaking at once, and who started speaking into the other."""

    started_by: Party
    start_s: float  # since the analyser's start (answer)
    duration_s: float


@dataclass(frozen=True, slots=True)
class DeadAir:
    """Neither party speaking."""

    start_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    seconds: float
    agent_talk_s: float
    customer_talk_s: float
    overtalk_s: float
    overtalk_by_agent: int
    overtalk_by_customer: int
    dead_air_s: float  # total of ended and current dead-air spans
    longest_dead_air_s: float
    first_agent_speech_s: float | None  # from answer to the agent's first words

    @property
    def talk_listen_ratio(self) -> float | None:
        """Agent talk time over customer talk time; None before the customer spoke."""
        if self.customer_talk_s <= 0:
            return None
        return self.agent_talk_s / self.customer_talk_s


class _Spurt:
    """A channel's talk spurt: speech flags with short gaps bridged."""

    def __init__(self, hangover_s: float) -> None:
        self.hangover_s = hangover_s
        self.talking = False
        self.since = 0.0
        self._quiet_s = 0.0

    def update(self, speech: bool, now: float, period_s: float) -> bool:
        if speech:
            if not self.talking:
                self.talking, self.since = True, now
            self._quiet_s = 0.0
        elif self.talking:
            self._quiet_s += period_s
            if self._quiet_s > self.hangover_s + 1e-9:
                self.talking = False
        return self.talking


class ConversationAnalyser:
    """Fed one (tx, rx) pair of `ChannelLevels` per period from the answer of a call.

    `update()` returns the over-talk and dead-air spans that ended in this period; the
    current spans are readable at any time so a norm can act before they end.
    """

    def __init__(self, hangover_s: float = SPURT_HANGOVER_S) -> None:
        self._agent = _Spurt(hangover_s)
        self._customer = _Spurt(hangover_s)
        self.now = 0.0
        self._agent_talk = 0.0
        self._customer_talk = 0.0
        self._overtalk_total = 0.0
        self._by = {"agent": 0, "customer": 0, "both": 0}
        self._dead_total = 0.0
        self._dead_longest = 0.0
        self._first_agent: float | None = None
        self._overtalk: tuple[Party, float] | None = None
        self._dead_since: float | None = 0.0

    @property
    def current_overtalk(self) -> OverTalk | None:
        if self._overtalk is None:
            return None
        party, since = self._overtalk
        return OverTalk(party, since, self.now - since)

    @property
    def current_dead_air_s(self) -> float:
        return 0.0 if self._dead_since is None else self.now - self._dead_since

    def update(self, tx: ChannelLevels, rx: ChannelLevels) -> list[OverTalk | DeadAir]:
        period = tx.period_s
        start = self.now
        end = start + period
        agent = self._agent.update(tx.speech, start, period)
        customer = self._customer.update(rx.speech, start, period)
        self.now = end
        ended: list[OverTalk | DeadAir] = []
        if tx.speech:
            self._agent_talk += period
            if self._first_agent is None:
                self._first_agent = start
        if rx.speech:
            self._customer_talk += period
        if agent and customer:
            if self._overtalk is None:
                self._overtalk = (self._starter(), start)
            self._overtalk_total += period
        elif self._overtalk is not None:
            party, since = self._overtalk
            self._by[party] += 1
            ended.append(OverTalk(party, since, start - since))
            self._overtalk = None
        if agent or customer:
            if self._dead_since is not None:
                span = start - self._dead_since
                self._close_dead(span)
                if span > 0:
                    ended.append(DeadAir(self._dead_since, span))
                self._dead_since = None
        elif self._dead_since is None:
            self._dead_since = start
        return ended

    def _starter(self) -> Party:
        """Who spoke into the other: the one whose talk spurt began later."""
        if self._agent.since > self._customer.since:
            return "agent"
        if self._customer.since > self._agent.since:
            return "customer"
        return "both"

    def _close_dead(self, span: float) -> None:
        self._dead_total += span
        self._dead_longest = max(self._dead_longest, span)

    def summary(self) -> ConversationSummary:
        current = self.current_dead_air_s
        return ConversationSummary(
            seconds=self.now,
            agent_talk_s=self._agent_talk,
            customer_talk_s=self._customer_talk,
            overtalk_s=self._overtalk_total,
            overtalk_by_agent=self._by["agent"],
            overtalk_by_customer=self._by["customer"],
            dead_air_s=self._dead_total + current,
            longest_dead_air_s=max(self._dead_longest, current),
            first_agent_speech_s=self._first_agent,
        )


class AmbientMeter:
    """Running A-weighted level of the mic over a sliding window, while no call is active."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._periods: deque[tuple[float, float]] = deque()  # (seconds, energy)
        self._seconds = 0.0
        self._energy = 0.0

    def reset(self) -> None:
        self._periods.clear()
        self._seconds = self._energy = 0.0

    def update(self, tx: ChannelLevels) -> float:
        """Add one period; returns LAeq over the last `window_s` seconds (dBFS(A))."""
        energy = 10.0 ** (tx.laeq_dbfs / 10.0) * tx.period_s if tx.laeq_dbfs > SILENCE_DB else 0.0
        self._periods.append((tx.period_s, energy))
        self._seconds += tx.period_s
        self._energy += energy
        while self._periods and self._seconds - self._periods[0][0] >= self.window_s - 1e-9:
            seconds, old = self._periods.popleft()
            self._seconds -= seconds
            self._energy -= old
        return self.level_dbfs

    @property
    def full(self) -> bool:
        """The window is covered (so a sustained level can be judged)."""
        return self._seconds >= self.window_s - 1e-9

    @property
    def level_dbfs(self) -> float:
        if self._seconds <= 0 or self._energy <= 1e-10 * self._seconds:
            return SILENCE_DB
        return 10.0 * math.log10(self._energy / self._seconds)


class ImpulseDetector:
    """Impulsive events (a headset slammed on the desk): a near-full-scale peak with a high crest
    factor in one period; one event per impulse (a refractory time swallows the ringing)."""

    def __init__(
        self, peak_min_dbfs: float, crest_min_db: float, refractory_s: float = 1.0
    ) -> None:
        self.peak_min_dbfs = peak_min_dbfs
        self.crest_min_db = crest_min_db
        self.refractory_s = refractory_s
        self._quiet_for = math.inf

    def update(self, levels: ChannelLevels) -> bool:
        hit = levels.peak_dbfs >= self.peak_min_dbfs and levels.crest_db >= self.crest_min_db
        if hit and self._quiet_for >= self.refractory_s:
            self._quiet_for = 0.0
            return True
        self._quiet_for += levels.period_s
        return False
