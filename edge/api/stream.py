"""Trusting a seat's event stream: de-duplication by `(seat, boot_id, seq)`, gap detection and
the `cmd/resend` request that asks the seat's outbox for the missing range (docs/reliability.md).

Pure: no I/O, time is an argument. Events come in parsed (`edge.api.models.parse_event`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from edge.api.models import StreamError, StreamEvent
from edge.api.payloads import resend_request
from edge.api.topics import ROOT
from edge.base.schema import valid_id

# One resend asks for at most this many events; the seat answers a larger range in parts.
MAX_RESEND_SPAN = 1000
# A gap is asked for in at most this many requests per round (the first seqs first): one
# event with a huge seq must not make a consumer build millions of requests.
MAX_REQUESTS_PER_GAP = 10


def seat_topic(site: str, seat: str, kind: str) -> str:
    """The topic of one seat, for a consumer (a bad id is a `StreamError`); ids are checked
    so `+ # / .` never reach a topic or an ACL."""
    for what, value in (("site", site), ("seat", seat)):
        if not valid_id(value):  # fullmatch: `$` would accept a final newline
            raise StreamError(f"{what} id {value!r}: expected 1-64 of A-Z a-z 0-9 _ -")
    return f"{ROOT}/{site}/{seat}/{kind}"


# --- resend command ------------------------------------------------------------------------


@dataclass(frozen=True)
class ResendRequest:
    """`cmd/resend` payload `{"id", "boot_id", "from_seq", "to_seq"}` (inclusive range)."""

    site: str
    seat: str
    id: str
    boot_id: str
    from_seq: int
    to_seq: int

    @property
    def topic(self) -> str:
        return seat_topic(self.site, self.seat, "cmd/resend")

    def payload(self) -> bytes:
        return resend_request(self.id, self.boot_id, self.from_seq, self.to_seq)


# --- the tracker ---------------------------------------------------------------------------


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Accepted:
    verdict: Verdict
    event: StreamEvent
    gap_opened: tuple[int, int] | None = None  # missing seqs this event revealed (inclusive)


@dataclass
class _Gap:
    first: int
    last: int
    detected: float
    attempts: int = 0
    last_request: float | None = None


@dataclass
class _Stream:
    max_seen: int
    gaps: list[_Gap] = field(default_factory=list)
    reported_lost: list[tuple[int, int]] = field(default_factory=list)

    def missing(self, seq: int) -> _Gap | None:
        for gap in self.gaps:
            if gap.first <= seq <= gap.last:
                return gap
        return None

    def fill(self, seq: int) -> None:
        self.cut(seq, seq)

    def cut(self, first: int, last: int) -> None:
        """Remove `first..last` from the gaps, splitting a gap that spans it."""
        kept: list[_Gap] = []
        for gap in self.gaps:
            for a, b in (
                (gap.first, min(gap.last, first - 1)),
                (max(gap.first, last + 1), gap.last),
            ):
                if a <= b:
                    kept.append(_Gap(a, b, gap.detected, gap.attempts, gap.last_request))
        self.gaps = kept


@dataclass(frozen=True)
class GapInfo:
    site: str
    seat: str
    boot_id: str
    first: int
    last: int
    detected: float
    attempts: int


class StreamTracker:
    """Per `(site, seat, boot_id)`: which seqs arrived, which are missing, what to ask again.

    A stream first seen mid-way starts at its first seq (history before the subscriber joined
    is not a gap) unless the seat is already known from an earlier boot or `from_zero` is set.
    Gaps wait `reorder_s` (a broker may reorder across reconnects) before a resend is asked;
    unanswered requests are repeated every `retry_s`, at most `max_attempts` times, then the
    gap is given up and reported by `given_up()`.
    """

    def __init__(
        self,
        *,
        reorder_s: float = 2.0,
        retry_s: float = 10.0,
        max_attempts: int = 3,
        from_zero: bool = False,
    ) -> None:
        self.reorder_s = reorder_s
        self.retry_s = retry_s
        self.max_attempts = max_attempts
        self.from_zero = from_zero
        self._streams: dict[tuple[str, str, str], _Stream] = {}
        self._seats: set[tuple[str, str]] = set()
        self._given_up: list[GapInfo] = []
        self._request_counter = 0
        self.duplicates = 0

    def accept(self, site: str, seat: str, event: StreamEvent, now: float) -> Accepted:
        key = (site, seat, event.boot_id)
        stream = self._streams.get(key)
        gap_opened: tuple[int, int] | None = None
        if stream is None:
            known = self.from_zero or (site, seat) in self._seats
            start = 0 if known else event.seq
            stream = _Stream(max_seen=start - 1)
            self._streams[key] = stream
            self._seats.add((site, seat))
        seq = event.seq
        if seq > stream.max_seen:
            if seq > stream.max_seen + 1:
                gap_opened = (stream.max_seen + 1, seq - 1)
                stream.gaps.append(_Gap(gap_opened[0], gap_opened[1], now))
            stream.max_seen = seq
        elif stream.missing(seq) is not None:
            stream.fill(seq)
        elif any(a <= seq <= b for a, b in stream.reported_lost):
            stream.reported_lost = _without(stream.reported_lost, seq)
        else:
            self.duplicates += 1
            return Accepted(Verdict.DUPLICATE, event)
        if event.type == "outbox.loss":
            self._apply_loss(site, seat, event)
        return Accepted(Verdict.NEW, event, gap_opened)

    def resume(
        self,
        site: str,
        seat: str,
        boot_id: str,
        last: int,
        missing: list[tuple[int, int]],
        now: float,
    ) -> None:
        """Start from what a store already holds of a boot (a restarted consumer): seqs up to
        `last` are known apart from the `missing` ranges, which are gaps to ask for."""
        stream = _Stream(max_seen=last)
        stream.gaps = [_Gap(a, b, now) for a, b in missing if a <= b]
        self._streams[(site, seat, boot_id)] = stream
        self._seats.add((site, seat))

    def reopen(self, site: str, seat: str, boot_id: str, seq: int, now: float) -> None:
        """An accepted event the consumer could not keep (dropped before it was stored): a gap
        again, asked for like any other."""
        stream = self._streams.get((site, seat, boot_id))
        if stream is None or stream.missing(seq) is not None or seq > stream.max_seen:
            return
        for gap in stream.gaps:  # extend a neighbouring gap rather than add one per seq
            if gap.last + 1 == seq or gap.first - 1 == seq:
                gap.first, gap.last = min(gap.first, seq), max(gap.last, seq)
                gap.detected, gap.attempts, gap.last_request = now, 0, None
                return
        stream.gaps.append(_Gap(seq, seq, now))

    def _apply_loss(self, site: str, seat: str, event: StreamEvent) -> None:
        """The seat says these were dropped from its outbox: stop asking for them."""
        for item in event.data.get("ranges", []):
            if not isinstance(item, dict):
                continue
            boot, first, last = item.get("boot_id"), item.get("from_seq"), item.get("to_seq")
            if not (isinstance(boot, str) and isinstance(first, int) and isinstance(last, int)):
                continue
            stream = self._streams.get((site, seat, boot))
            if stream is None:
                continue
            for gap in list(stream.gaps):
                a, b = max(gap.first, first), min(gap.last, last)
                if a > b:
                    continue
                stream.reported_lost.append((a, b))
                stream.cut(a, b)

    def gaps(self) -> list[GapInfo]:
        return [
            GapInfo(site, seat, boot, g.first, g.last, g.detected, g.attempts)
            for (site, seat, boot), stream in self._with_gaps()
            for g in stream.gaps
        ]

    def _with_gaps(self) -> list[tuple[tuple[str, str, str], _Stream]]:
        """The streams that have gaps, in key order. Most streams have none: sorting only
        these keeps `due_resends` (every second, under the ingest's lock) and `gaps` from
        sorting every stream of a 10,000-seat site (bench/floor.py, issue 15)."""
        return sorted(item for item in self._streams.items() if item[1].gaps)

    def due_resends(self, now: float) -> list[ResendRequest]:
        """Requests to send now (on each request's `topic`), and gaps given up on."""
        requests: list[ResendRequest] = []
        for (site, seat, boot), stream in self._with_gaps():
            for gap in list(stream.gaps):
                if now - gap.detected < self.reorder_s:
                    continue
                if gap.last_request is not None and now - gap.last_request < self.retry_s:
                    continue
                if gap.attempts >= self.max_attempts:
                    stream.gaps.remove(gap)
                    self._given_up.append(
                        GapInfo(site, seat, boot, gap.first, gap.last, gap.detected, gap.attempts)
                    )
                    continue
                gap.attempts += 1
                gap.last_request = now
                first = gap.first
                for _ in range(MAX_REQUESTS_PER_GAP):
                    if first > gap.last:
                        break
                    last = min(gap.last, first + MAX_RESEND_SPAN - 1)
                    self._request_counter += 1
                    requests.append(
                        ResendRequest(
                            site, seat, f"resend-{self._request_counter}", boot, first, last
                        )
                    )
                    first = last + 1
        return requests

    def given_up(self) -> list[GapInfo]:
        """Gaps no resend filled: events lost for good (or dropped without a loss report)."""
        return list(self._given_up)


def _without(ranges: list[tuple[int, int]], seq: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if a <= seq <= b:
            out.extend(r for r in ((a, seq - 1), (seq + 1, b)) if r[0] <= r[1])
        else:
            out.append((a, b))
    return out
