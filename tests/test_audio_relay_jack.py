"""The relay's added delay per direction, sample-exact, through a real JACK server.

The issue's target: at most 20 ms added one-way delay per direction. What the relay adds is
measured as what a listener at each far end hears: `tests/jack_relay.py` plays the agent's
voice and the customer's voice into the relay through JACK and records what comes out, each
sample numbered by the server's frame time, once with the relay between the ports and once
with a plain wire in its place; the difference is the relay's (its capture period, its drift
buffer, the block it is working on, and PortAudio's own hand-over). The relay runs with the
defaults a seat gets from `[bridge]` (5 ms periods, 11 ms drift buffers) and its meters on.

JACK's dummy driver gives one period of device buffering per side; a box's two USB devices
add their ALSA buffers (`device_latency`) to these figures: docs/bridge.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from jack_relay import JackServer, JackUnavailable, after_warm_up, measure

SECONDS = 12
TARGET_S = 0.020  # the added one-way delay, per direction


@pytest.fixture(scope="module")
def jack() -> Iterator[JackServer]:
    try:
        with JackServer() as server:
            yield server
    except JackUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def wire(jack: JackServer) -> dict[str, Any]:
    ends, _ = measure(jack, 4, wire=True)
    return ends


def kept_real_time(relay: dict[str, Any]) -> bool:
    """No underrun or overrun of the relay's buffers after its warm-up."""
    counts = [*after_warm_up(relay, "underruns").values()]
    counts += after_warm_up(relay, "overruns").values()
    return len(counts) == 4 and not any(counts)


@pytest.fixture(scope="module")
def relayed(jack: JackServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run in which the machine let the audio keep real time: on this shared machine a
    busy neighbour can starve the callbacks (the buffers then underrun and the jitter buffer
    grows its target, as it should); such a run does not judge the relay's delay, so it is
    run again once, then the test says plainly that it could not be judged now."""
    for _ in range(2):
        ends, relay = measure(jack, SECONDS)
        assert relay is not None
        if kept_real_time(relay):
            return ends, relay
    pytest.skip(
        "this machine starved the audio twice (after the warm-up: underruns "
        f"{after_warm_up(relay, 'underruns')}, overruns {after_warm_up(relay, 'overruns')}, "
        f"PortAudio xruns {after_warm_up(relay, 'device_xruns')}): the delay cannot be judged now"
    )


def test_the_wire_gives_the_graphs_own_delay(wire: dict[str, Any]) -> None:
    # The two far ends run one after the other in each cycle: the direction from the first to
    # the second arrives in the same cycle, the other one period later (hs runs first here).
    for direction in ("tx", "rx"):
        delays = wire[direction]
        assert delays and max(delays) - min(delays) < 1e-4, wire
    assert sorted(round(wire[d][0], 4) for d in ("tx", "rx")) == [0.0, 0.005], wire


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_the_relay_adds_at_most_20_ms_per_direction_and_the_delay_does_not_grow(
    wire: dict[str, Any], relayed: tuple[dict[str, Any], dict[str, Any]], direction: str
) -> None:
    ends, relay = relayed
    delays = ends[direction][1:]  # per second the relay ran, but its first
    assert len(delays) >= SECONDS - 4, ends
    added = [d - statistics.median(wire[direction]) for d in delays]
    assert 0 < max(added) <= TARGET_S, (direction, added)
    # One clock: the drift buffer holds its fill; the delay stays within a millisecond.
    assert max(delays) - min(delays) < 0.001, (direction, delays)


def test_the_relayed_audio_feeds_the_seats_meters(
    relayed: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, relay = relayed
    assert relay["meter_drops"] == 0
    assert 0.8 * relay["audio_s"] * 10 <= relay["levels"] <= relay["audio_s"] * 10 + 1, relay
