"""The audio norms at a seat from real speech, as a subscriber sees them.

- WAV scenarios: `seatbox simulate` plays speech files through the dsp meters, in simulated and
  in real time, and the speech norms fire.
- Real capture: `seatbox run` with `[audio] backend = "sounddevice"` captures speech through an
  ALSA `file` PCM (a test .asoundrc in the seat's HOME); its levels reach the seat's runtime and
  `speech.too_quiet` fires for the speech 20 dB down and not at the normal level.
- Privacy: no payload a seat publishes during either carries samples or audio bytes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from schema_support import errors
from support import Mosquitto, file_mic_asoundrc, wait_until

from drivers.audio.wavfile import read_audio
from dsp.meter import ChannelMeter, to_int16
from dsp.types import ChannelLevels
from edge.shell.config import load_profile
from edge.shell.scenario import load_scenario
from edge.sim import build as sim

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "config" / "scenarios"
AGENT = REPO / "tests" / "data" / "audio" / "agent.wav"
SPEECH_FILES = [SCENARIOS / "audio" / "agent.wav", SCENARIOS / "audio" / "customer.wav"]
RATE = 16000


def seatbox(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "seatbox"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())", *args]


def simulate_events(scenario: Path) -> list[dict[str, Any]]:
    run = subprocess.run(
        seatbox("--log-level", "WARNING", "simulate", str(scenario), "--fast", "--events-out", "-"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def of_type(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"].startswith(prefix)]


# --- WAV scenarios ---------------------------------------------------------------------------------


def test_a_quiet_agent_in_real_speech_is_too_quiet_at_its_measured_p56_level() -> None:
    events = simulate_events(SCENARIOS / "wav_quiet_agent.toml")
    quiet = of_type(events, "speech.")
    assert [e["type"] for e in quiet] == ["speech.too_quiet"]
    # The file 14 dB down, measured by the meters: P.56 of agent.wav is -27.1 dBov.
    assert -27.1 - 14 - 1.0 < quiet[0]["data"]["level_dbov"] < -36.0
    assert quiet[0]["data"]["utterance_s"] >= 1.0
    answered = of_type(events, "call.answered")[0]
    assert answered["ts"] < quiet[0]["ts"] < of_type(events, "call.ended")[0]["ts"]
    assert of_type(events, "greeting.") == []  # the agent spoke 0.5 s after the answer


def test_a_late_greeting_an_interruption_and_dead_air_in_real_speech() -> None:
    events = simulate_events(SCENARIOS / "wav_late_greeting.toml")
    kinds = [e["type"] for e in events]
    assert kinds.index("call.answered") < kinds.index("greeting.late") < kinds.index("call.ended")
    (late,) = of_type(events, "greeting.")
    # The agent's file starts 2.5 s after the answer and its first period is voiced.
    assert late["data"] == {"greet_s": 2.5, "limit_s": 2.0}
    (interrupt,) = of_type(events, "talk.")
    assert interrupt["data"]["by"] == "agent"
    dead = of_type(events, "call.dead_air")
    assert [d["data"]["severity"] for d in dead] == ["notice"]
    assert of_type(events, "speech.") == []  # the agent at a normal level: nothing to say
    ended = of_type(events, "call.ended")[0]["data"]
    assert ended["overtalk_s"] >= 1.0 and ended["talk_s"] > 3.0 and ended["listen_s"] > 3.0


def test_a_wav_scenario_in_real_time_gives_the_events_of_simulated_time(tmp_path: Path) -> None:
    (tmp_path / "speech.wav").write_bytes(AGENT.read_bytes())
    scenario_file = tmp_path / "quick.toml"
    scenario_file.write_text(
        '[seat]\nsite = "lab"\nid = "S-rt"\nstart = "2026-11-23T08:44:00+08:00"\n'
        + "".join(
            f'[[step]]\nt = "{t}"\ndo = "{do}"\n{extra}\n'
            for t, do, extra in [
                ("0s", "radar.present", ""),
                ("0.2s", "cti.ring", ""),
                ("0.4s", "cti.answer", ""),
                ("0.6s", "audio.tx", 'file = "speech.wav"\ngain_db = -20'),
                ("6.6s", "cti.end", ""),
                ("6.7s", "end", ""),
            ]
        )
    )
    scenario = load_scenario(scenario_file)
    profile = load_profile("default")
    played = {}
    for fast in (True, False):
        out = io.StringIO()
        runtime, _ = sim.build(scenario, fast=fast, events_out=out, profile=profile)
        runtime.run()
        played[fast] = [json.loads(line) for line in out.getvalue().splitlines()]
    simulated, real = played[True], played[False]
    assert [e["type"] for e in real] == [e["type"] for e in simulated]
    assert "speech.too_quiet" in [e["type"] for e in real]
    # What the meters measured is the same; when it happened, within the real clock's jitter.
    speech_data = [[e["data"] for e in of_type(run, "speech.")] for run in (real, simulated)]
    assert speech_data[0] == speech_data[1]
    for r, s in zip(real, simulated, strict=True):
        lag = (datetime.fromisoformat(r["ts"]) - datetime.fromisoformat(s["ts"])).total_seconds()
        assert 0 <= lag < 0.5, (r, s)


# --- privacy ---------------------------------------------------------------------------------------


class SiteMessages:
    """Every message under one site's topics, raw, as a subscriber receives them."""

    def __init__(self, broker: Mosquitto, site: str) -> None:
        self.base = f"seatbox/v1/{site}/"
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{self.base}#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_until(subscribed.is_set, 10, f"SUBACK for {self.base}#")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic[len(self.base) :], bytes(msg.payload)))

    def of(self, seat: str, leaf: str) -> list[Any]:
        """Decoded payloads of one seat's `leaf` topic (availability as text, others JSON)."""
        with self._lock:
            found = [p for t, p in self.messages if t == f"{seat}/{leaf}"]
        return [p.decode() if leaf == "availability" else json.loads(p) for p in found]

    def events(self, seat: str, prefix: str = "") -> list[dict[str, Any]]:
        return [e for e in self.of(seat, "event") if e["type"].startswith(prefix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def audio_probes(speech: list[np.ndarray]) -> list[bytes]:
    """Short runs of the speech's own samples, as int16 bytes and in the text forms that could
    carry them (base64, hex): a payload holding audio would hold some of these."""
    probes = []
    for samples in speech:
        loud = np.flatnonzero(np.abs(samples) > 3000)
        for start in loud[:: max(1, loud.size // 20)][:20]:
            raw = samples[start : start + 8].astype("<i2").tobytes()
            probes += [raw, base64.b64encode(raw)[:12], raw.hex().encode()]
    return probes


def assert_no_audio(messages: list[tuple[str, bytes]], speech: list[np.ndarray]) -> None:
    probes = audio_probes(speech)
    assert messages
    for topic, payload in messages:
        text = payload.decode("utf-8")  # raw audio bytes are not UTF-8 text
        value = text if topic.endswith("/availability") else json.loads(text)
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack += node.values()
            elif isinstance(node, list):
                numbers = [x for x in node if isinstance(x, int | float)]
                assert len(numbers) <= 8, f"{topic}: a list of {len(numbers)} numbers: {node[:10]}"
                stack += node
            elif isinstance(node, str):
                assert len(node) <= 512, f"{topic}: a {len(node)}-character string"
        leaked = [p for p in probes if p in payload]
        assert not leaked, f"{topic}: carries samples of the speech: {leaked[:3]}"


def speech_samples(path: Path, gain_db: float = 0.0) -> np.ndarray:
    return to_int16(read_audio(path).samples * 10.0 ** (gain_db / 20.0))


def test_nothing_published_during_a_wav_scenario_carries_audio(broker: Mosquitto) -> None:
    site = SiteMessages(broker, "lab")
    try:
        run = subprocess.run(
            seatbox(
                "--log-level",
                "WARNING",
                "simulate",
                str(SCENARIOS / "wav_late_greeting.toml"),
                "--fast",
                "--broker",
                broker.url,
            ),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert run.returncode == 0, run.stderr
        wait_until(
            lambda: "offline" in site.of("S-wavgreet", "availability"), 10, "availability offline"
        )
        wait_until(lambda: site.events("S-wavgreet", "call.ended"), 10, "call.ended")
    finally:
        site.close()
    levels = site.of("S-wavgreet", "levels")
    assert len(levels) >= 10  # a report a second of the 15 s call, from the measured speech
    assert any((lv["tx"]["active_level_dbov"] or -100) > -35 for lv in levels)
    for topic, payload in site.messages:
        leaf = topic.split("/", 1)[1]
        assert not errors(leaf, payload), (topic, errors(leaf, payload))
    assert_no_audio(site.messages, [speech_samples(p) for p in SPEECH_FILES])


# --- real capture through PortAudio and ALSA ------------------------------------------------------

LEAD_S = 2.0  # silence before the speech in the capture file
TAIL_S = 2.0  # and after it


class CapturedSeat:
    """`seatbox run` capturing its microphone from an ALSA file PCM, calls from a scenario."""

    def __init__(self, broker: Mosquitto, home: Path, seat: str, gain_db: float) -> None:
        self.seat = seat
        home.mkdir()
        silence = np.zeros(int(LEAD_S * RATE), dtype=np.int16)
        self.speech = speech_samples(AGENT, gain_db)
        samples = np.concatenate([silence, self.speech, np.zeros(int(TAIL_S * RATE), np.int16)])
        # The PortAudio worker queues 10 s of audio before it drops blocks; an ALSA file PCM
        # is not paced by a clock, so the whole file must fit in that queue.
        assert samples.size / RATE < 10.0
        raw = home / "mic.raw"
        samples.astype("<i2").tofile(raw)
        # After the file the PCM repeats its buffer; the file ends in silence, so that is silence.
        (home / ".asoundrc").write_text(file_mic_asoundrc(raw, RATE))
        # The call: ring and answer at once (before the speech is captured), hang up at 8 s.
        (home / "call.toml").write_text(
            f'[seat]\nsite = "cap"\nid = "{seat}"\nstart = "2026-11-23T08:44:00+08:00"\n'
            '[[step]]\nt = "0s"\ndo = "host.ring"\n'
            '[[step]]\nt = "0s"\ndo = "host.answer"\n'
            '[[step]]\nt = "8s"\ndo = "host.end"\n'
            '[[step]]\nt = "600s"\ndo = "end"\n'
        )
        config = home / "seat.toml"
        config.write_text(
            f'[seat]\nsite = "cap"\nid = "{seat}"\nprofile = "default"\n\n'
            f'[broker]\nurl = "{broker.url}"\n\n'
            '[headset]\ndevice = "virtual"\n\n[radar]\nbackend = "virtual"\n\n'
            f'[audio]\nbackend = "sounddevice"\ntx_device = "seat_mic"\nsamplerate = {RATE}\n\n'
            '[call]\nsources = ["simulate"]\nscenario = "call.toml"\n\n'
            f'[storage]\nstate_dir = "{home}"\n'
        )
        self.log = (home / "seat.log").open("wb")
        # PortAudio reads the ALSA configuration from HOME when it initialises.
        env = {**os.environ, "HOME": str(home)}
        self.proc = subprocess.Popen(
            seatbox("run", str(config)),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextmanager
def captured_seats(
    broker: Mosquitto, tmp: Path, **gains: float
) -> Iterator[dict[str, CapturedSeat]]:
    seats = {name: CapturedSeat(broker, tmp / name, name, gain) for name, gain in gains.items()}
    try:
        yield seats
    finally:
        for seat in seats.values():
            seat.stop()


def offline_periods(speech: np.ndarray) -> list[ChannelLevels]:
    """The capture file's periods through a fresh meter, as the seat's capture worker meters it."""
    meter = ChannelMeter(RATE)
    periods = meter.feed(np.concatenate([np.zeros(int(LEAD_S * RATE), np.int16), speech]))
    return periods + meter.feed(np.zeros(int(TAIL_S * RATE), np.int16))


def utterance_levels(periods: list[ChannelLevels]) -> list[float]:
    return [round(p.utterance_level_dbov, 1) for p in periods if p.utterance_s > 0]


def test_captured_speech_reaches_the_seat_and_the_speech_level_norm_fires(
    broker: Mosquitto, tmp_path: Path
) -> None:
    site = SiteMessages(broker, "cap")
    try:
        with captured_seats(broker, tmp_path, **{"S-quiet": -20.0, "S-normal": 0.0}) as seats:
            for name, seat in seats.items():
                wait_until(
                    lambda name=name, seat=seat: (  # type: ignore[misc]
                        site.events(name, "call.ended") or seat.proc.poll() is not None
                    ),
                    60,
                    f"{name}: the end of its call",
                )
                assert seat.proc.poll() is None, seat.log_text()
            logs = {name: seat.log_text() for name, seat in seats.items()}
            speech = [seat.speech for seat in seats.values()]
        messages = list(site.messages)
    finally:
        site.close()

    for name in ("S-quiet", "S-normal"):
        info = site.of(name, "info")[-1]
        assert info["devices"]["audio"] == "SoundDeviceAudio", logs[name]
        kinds = [e["type"] for e in site.events(name)]
        assert "headset.audio_lost" not in kinds, logs[name]
        assert kinds.index("call.answered") < kinds.index("call.ended"), kinds
        # The captured speech reached the seat during the call: its levels reports.
        levels = [lv for lv in site.of(name, "levels") if lv["call"] == 1]
        assert levels, f"{name}: no levels during the call"

    offline = {
        "S-quiet": offline_periods(speech_samples(AGENT, -20.0)),
        "S-normal": offline_periods(speech_samples(AGENT)),
    }
    for name, periods in offline.items():
        # All the captured speech reached the seat while the call was up, sample-exact: the
        # call's talk time is the active speech time the meter finds in the file.
        (ended,) = site.events(name, "call.ended")
        talk_s = sum(p.active_s for p in periods)
        assert ended["data"]["talk_s"] == pytest.approx(talk_s, abs=0.002), logs[name]
    quiet_levels = utterance_levels(offline["S-quiet"])
    normal_levels = utterance_levels(offline["S-normal"])
    assert all(level < -36.0 for level in quiet_levels), quiet_levels
    assert all(-36.0 <= level <= -16.0 for level in normal_levels), normal_levels

    too_quiet = site.events("S-quiet", "speech.")
    assert [e["type"] for e in too_quiet] == ["speech.too_quiet"], site.events("S-quiet")
    # The level of an utterance as the meter measured it from the file: the capture is bit-exact.
    assert too_quiet[0]["data"]["level_dbov"] in quiet_levels
    assert site.events("S-normal", "speech.") == []
    loudest = {
        name: max(lv["tx"]["active_level_dbov"] or -100.0 for lv in site.of(name, "levels"))
        for name in ("S-quiet", "S-normal")
    }
    assert loudest["S-normal"] - loudest["S-quiet"] == pytest.approx(20.0, abs=1.5)

    assert_no_audio(messages, speech)
