"""The day's hearing dose survives a restart of the service on the same day, and only then.

Core level: a `RestoreDose` input on the fake-clock harness. Shell level: `DoseStore` on a
runtime in simulated time, and `seatbox run` processes on a real broker, as a supervisor sees it.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from schema_support import validate
from seat_harness import MONDAY_0844, TZ, Harness
from support import mosquitto, wait_until

from drivers.audio.events import AudioLevels
from dsp.exposure import P0_SQ_PA2
from dsp.types import ChannelLevels
from edge.core.effects import Event, SetRxCap
from edge.core.inputs import RestoreDose, decode, encode
from edge.core.seat import step
from edge.core.snapshot import snapshot
from edge.shell.dose_store import FILE_NAME, DoseStore
from edge.shell.runtime import Runtime
from edge.shell.scenario import load_scenario
from edge.shell.tape import Recorder, load_tape, replay
from edge.sim import build as sim

REPO = Path(__file__).resolve().parent.parent
DAY = MONDAY_0844.date().isoformat()  # 2026-11-23, Asia/Shanghai

# Receive noise at -20 dBFS RMS (peak -10 dBFS, under the 102 dB SPL peak limit on the default
# 110 dB/FS sensitivity): -21 dB(A)FS -> 89 dB(A) at the ear, 100 % of the 80 dB(A) dose in ~1 h.
LOUD = ChannelLevels(period_s=10.0, rms_dbov=-20.0, peak_dbfs=-10.0, laeq_dbfs=-21.0)
SILENT = ChannelLevels(period_s=10.0)


def loud_for(h: Harness, start: float, seconds: float) -> None:
    """Feed `seconds` of loud receive audio in 10 s periods from `start` (harness time)."""
    t = start
    while t < start + seconds - 1e-9:
        h.at(t, AudioLevels(tx=SILENT, rx=LOUD))
        t += LOUD.period_s


def saved(h: Harness) -> RestoreDose:
    """What the shell would have written before a restart."""
    state = h.state.norms["hearing"]
    return RestoreDose(day=state.day, exposure_pa2s=state.exposure_pa2s, seconds=state.seconds)


# --- the core -----------------------------------------------------------------------------------


def test_a_restored_dose_continues_as_if_the_service_had_never_stopped() -> None:
    straight = Harness()
    loud_for(straight, 0.0, 2400)
    loud_for(straight, 2400.0, 2400)

    before = Harness()
    loud_for(before, 0.0, 2400)
    assert before.types("hearing.dose") == []  # 40 min: ~2/3 of the dose
    # The service restarts at 11:00 the same day; this run's clock starts there.
    after = Harness(start=MONDAY_0844 + timedelta(hours=2, minutes=16))
    after.at(0.0, saved(before))
    assert after.state.norms["hearing"].dose_pct == pytest.approx(
        before.state.norms["hearing"].dose_pct, rel=1e-12
    )
    loud_for(after, 0.0, 2400)

    expected = straight.state.norms["hearing"]
    got = after.state.norms["hearing"]
    assert got.dose_pct == pytest.approx(expected.dose_pct, rel=1e-9)
    assert got.seconds == expected.seconds == 4800.0
    assert 100.0 < got.dose_pct < 150.0
    # The limit is reached in the second run at the same total exposure time as straight through:
    # 100 % at 89 dB(A) takes 8 h / 10^0.9 = 3626 s, within the 10 s period fed at t = 3620.
    [(t_straight, _, data)] = straight.events("hearing.dose")
    [(t_after, _, data_after)] = after.events("hearing.dose")
    assert t_straight <= 28800 / 10**0.9 < t_straight + LOUD.period_s
    assert t_after == t_straight - 2400.0
    assert data_after == data


def test_a_dose_of_another_day_is_ignored() -> None:
    yesterday = RestoreDose(day="2026-11-22", exposure_pa2s=5000.0, seconds=20000.0)
    h = Harness()
    h.at(0.0, yesterday)
    state = h.state.norms["hearing"]
    assert (state.energy, state.seconds, state.dose_pct, state.restored) == (0.0, 0.0, 0.0, False)
    loud_for(h, 0.0, 600)
    assert h.state.norms["hearing"].dose_pct == pytest.approx(
        100.0 * 600 / 3600 * 10 ** ((89.0 - 80.0) / 10) / 8, rel=1e-9
    )


def test_a_restore_just_before_midnight_does_not_leak_into_the_next_day() -> None:
    h = Harness(start=datetime(2026, 11, 23, 23, 59, 0, tzinfo=TZ))
    h.at(0.0, RestoreDose(day=DAY, exposure_pa2s=500.0, seconds=3600.0))
    assert h.state.norms["hearing"].exposure_pa2s == pytest.approx(500.0, rel=1e-12)
    loud_for(h, 60.0, 10)  # 00:00:00 on Tuesday: a new day, a new dose
    state = h.state.norms["hearing"]
    assert state.day == "2026-11-24" and state.seconds == 10.0


def test_only_the_first_restore_of_a_day_counts() -> None:
    h = Harness()
    h.at(0.0, RestoreDose(day=DAY, exposure_pa2s=100.0, seconds=600.0))
    h.at(1.0, RestoreDose(day=DAY, exposure_pa2s=100.0, seconds=600.0))
    assert h.state.norms["hearing"].exposure_pa2s == pytest.approx(100.0, rel=1e-12)


def test_a_restored_dose_over_the_limit_caps_the_receive_gain_again_without_a_second_event() -> (
    None
):
    full = 1152.0  # Pa^2 s: 100 % of 80 dB(A) over 8 h
    h = Harness()
    h.at(0.0, RestoreDose(day=DAY, exposure_pa2s=1.5 * full, seconds=7200.0))
    assert h.state.norms["hearing"].dose_pct == pytest.approx(150.0, rel=1e-3)
    assert h.of(SetRxCap) == [(0.0, SetRxCap(-6.0))]  # the profile's dose_cap_db
    assert h.state.facts.rx_cap == -6.0
    assert h.types("hearing.") == []  # the run before the restart published hearing.dose


def test_restore_goes_on_a_tape_and_replays_exactly(tmp_path: Path) -> None:
    h = Harness()
    start = h.instant(0.0)
    tape = tmp_path / "dose.tape"
    recorder = Recorder(tape, h.profile, "lab", "S-dose", "boot", start)
    state = h.state
    inputs = [RestoreDose(day=DAY, exposure_pa2s=1100.0, seconds=1.0 / 3.0)]
    inputs += [AudioLevels(tx=SILENT, rx=LOUD)] * 30
    for n, inp in enumerate(inputs):
        at = h.instant(n * 10.0)
        state, effects = step(state, inp, at)
        recorder.record(at, inp, effects)
    recorder.close()
    assert decode(json.loads(json.dumps(encode(inputs[0])))) == inputs[0]  # floats exactly
    loaded = load_tape(tape)
    assert loaded.lines[0].input == inputs[0]
    replayed = [effects for _, effects in replay(loaded)]
    assert replayed == [line.effects for line in loaded.lines]
    assert any(isinstance(e, Event) and e.type == "hearing.dose" for e in sum(replayed, []))


# --- the shell: DoseStore on a runtime in simulated time ----------------------------------------


def scenario_file(tmp: Path, name: str, rx_noise_dbfs: float, minutes: float) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        '[seat]\nsite = "lab"\nid = "S-dose"\nprofile = "default"\n'
        'start = "2026-11-23T09:00:00+08:00"\n\n'
        f'[[step]]\nt = "0s"\ndo = "audio.rx"\nsilence = true\nnoise_dbfs = {rx_noise_dbfs}\n\n'
        f'[[step]]\nt = "{minutes}m"\ndo = "end"\n'
    )
    return path


def seat_run(scenario: Path, start: datetime, state_dir: Path, save_every: float = 3600) -> Runtime:
    """One run of the service in simulated time: restore, play, stop (saving at close).

    Saving hourly by default, so that what a run leaves on disk was written at its close.
    """
    runtime, _ = sim.build(load_scenario(scenario), fast=True, start=start)
    DoseStore(state_dir, "lab", "S-dose", save_every=save_every).attach(runtime)
    return runtime


def published_hearing(runtime: Runtime) -> dict[str, Any]:
    """`today.hearing` of the retained state a supervisor would get now (schema-checked)."""
    snap = snapshot(runtime.state, runtime.clock.now(), "lab", "S-dose")
    validate("state", json.dumps(snap))
    return snap["today"]["hearing"]  # type: ignore[no-any-return]


def test_the_dose_continues_across_a_restart_of_the_runtime(tmp_path: Path) -> None:
    loud = scenario_file(tmp_path, "loud", rx_noise_dbfs=-20.0, minutes=25)
    quiet = scenario_file(tmp_path, "quiet", rx_noise_dbfs=-100.0, minutes=1)
    nine = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)

    first = seat_run(loud, nine, tmp_path)
    first.run()
    end_of_first = published_hearing(first)
    assert end_of_first["dose_pct"] > 35.0  # 25 min at 89 dB(A): ~42 %
    saved_file = json.loads((tmp_path / FILE_NAME).read_text())
    assert saved_file["day"] == "2026-11-23" and saved_file["seconds"] == pytest.approx(
        1500.0, abs=1.0
    )

    # Restarted at 14:00 the same day: the supervisor sees the morning's dose at once.
    second = seat_run(quiet, nine + timedelta(hours=5), tmp_path)
    assert published_hearing(second) == end_of_first
    second.run()
    third = seat_run(loud, nine + timedelta(hours=6), tmp_path)
    assert published_hearing(third) == end_of_first  # the quiet minute added ~nothing
    third.run()
    assert published_hearing(third)["dose_pct"] == pytest.approx(
        2 * end_of_first["dose_pct"], abs=0.02
    )


def test_the_dose_is_saved_every_interval_while_running(tmp_path: Path) -> None:
    loud = scenario_file(tmp_path, "loud", rx_noise_dbfs=-20.0, minutes=5)
    runtime = seat_run(loud, datetime(2026, 11, 23, 9, 0, tzinfo=TZ), tmp_path, save_every=60.0)
    seen: list[tuple[float, float]] = []

    def look() -> None:
        data = json.loads((tmp_path / FILE_NAME).read_text())
        seen.append((runtime.clock.now().mono, data["seconds"]))

    runtime.at(150.0, look)  # 2.5 min in: the file holds the dose as of the 2-minute save
    runtime.run()
    assert seen == [(150.0, pytest.approx(120.0, abs=1.0))]
    assert json.loads((tmp_path / FILE_NAME).read_text())["seconds"] == pytest.approx(
        300.0, abs=1.0
    )


def test_a_dose_file_of_yesterday_is_ignored_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loud = scenario_file(tmp_path, "loud", rx_noise_dbfs=-20.0, minutes=5)
    nine = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
    seat_run(loud, nine, tmp_path).run()
    assert json.loads((tmp_path / FILE_NAME).read_text())["day"] == "2026-11-23"

    caplog.set_level(logging.INFO, logger="edge.shell.dose_store")
    tuesday = seat_run(loud, nine + timedelta(days=1), tmp_path)
    assert published_hearing(tuesday) == {"lex_8h_dba": None, "dose_pct": 0.0}
    assert (
        f"{tmp_path / FILE_NAME}: ignored: the dose of 2026-11-23, expected today's (2026-11-24)"
        in caplog.text
    )
    tuesday.run()
    assert json.loads((tmp_path / FILE_NAME).read_text())["day"] == "2026-11-24"


@pytest.mark.parametrize(
    ("content", "logged"),
    [
        ("{not json", "not JSON"),
        ('{"format": "seatbox/hearing-dose", "version": 2}', "version 2, expected version 1"),
        ('["day", 3]', "format 'list', expected format 'seatbox/hearing-dose'"),
        (
            '{"format": "seatbox/hearing-dose", "version": 1, "site": "lab", "seat": "S-dose",'
            ' "day": "2026-11-23", "exposure_pa2s": -4, "seconds": 10}',
            "'exposure_pa2s' must be a number >= 0, got -4",
        ),
        (
            '{"format": "seatbox/hearing-dose", "version": 1, "site": "lab", "seat": "S-other",'
            ' "day": "2026-11-23", "exposure_pa2s": 4, "seconds": 10}',
            "the hearing dose of seat lab/S-other, expected seat lab/S-dose",
        ),
    ],
)
def test_a_bad_dose_file_is_ignored_and_named_and_the_seat_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str, logged: str
) -> None:
    (tmp_path / FILE_NAME).write_text(content)
    caplog.set_level(logging.WARNING, logger="edge.shell.dose_store")
    runtime = seat_run(
        scenario_file(tmp_path, "loud", -20.0, 2), datetime(2026, 11, 23, 9, 0, tzinfo=TZ), tmp_path
    )
    assert f"{tmp_path / FILE_NAME}: ignored: " in caplog.text and logged in caplog.text
    assert published_hearing(runtime)["dose_pct"] == 0.0
    runtime.run()
    assert published_hearing(runtime)["dose_pct"] > 0.0
    assert json.loads((tmp_path / FILE_NAME).read_text())["version"] == 1  # replaced


def test_saving_is_atomic_and_a_failure_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DoseStore(tmp_path / "state", "lab", "S-dose", save_every=60.0)
    h = Harness()
    loud_for(h, 0.0, 60)
    assert store.save(h.state.norms["hearing"], h.instant(60.0))
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [FILE_NAME]  # no temp left
    restored = store.load(DAY)
    assert restored == saved(h)

    blocked = DoseStore(tmp_path / "a-file" / "state", "lab", "S-dose", save_every=60.0)
    (tmp_path / "a-file").write_text("not a directory")
    caplog.set_level(logging.ERROR, logger="edge.shell.dose_store")
    loud_for(h, 60.0, 20)
    assert not blocked.save(h.state.norms["hearing"], h.instant(80.0))
    loud_for(h, 80.0, 20)
    assert not blocked.save(h.state.norms["hearing"], h.instant(100.0))
    assert caplog.text.count("cannot save the hearing dose") == 1


# --- the service: `seatbox run` twice on a real broker ----------------------------------------


def midday_zone() -> str:
    """An Etc/GMT zone where it is now about noon, so the two runs share one local day."""
    offset = 12 - datetime.now(UTC).hour  # local = UTC + offset
    offset = max(-12, min(14, offset))
    return "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")  # POSIX sign is inverted


class StateWatcher:
    """A supervisor's subscription to one seat's retained `state` (schema-checked)."""

    def __init__(self, port: int, topic: str) -> None:
        self.states: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        state = validate("state", msg.payload)
        with self._lock:
            self.states.append(state)

    def last(self) -> dict[str, Any] | None:
        with self._lock:
            return self.states[-1] if self.states else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_seat(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def test_seatbox_run_restarted_the_same_day_publishes_the_dose_it_had(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    file = state_dir / FILE_NAME
    (tmp_path / "loud.toml").write_text(
        '[seat]\nsite = "lab"\nid = "S-dose"\nprofile = "default"\n'
        'start = "2026-11-23T09:00:00+08:00"\n\n'
        '[[step]]\nt = "0s"\ndo = "audio.rx"\nsilence = true\nnoise_dbfs = -20\n\n'
        '[[step]]\nt = "1h"\ndo = "end"\n'
    )

    def config(name: str, sources: str, scenario: str, broker_url: str) -> Path:
        path = tmp_path / f"seat-{name}.toml"
        path.write_text(
            f'[seat]\nsite = "lab"\nid = "S-dose"\ntimezone = "{midday_zone()}"\n\n'
            f'[broker]\nurl = "{broker_url}"\n\n'
            '[headset]\ndevice = "virtual"\n\n[audio]\nbackend = "virtual"\n\n'
            '[radar]\nbackend = "virtual"\n\n'
            f'[call]\nsources = {sources}\nscenario = "{scenario}"\n\n'
            f'[storage]\nstate_dir = "{state_dir}"\ndose_save_every = "1s"\n'
        )
        return path

    def saved_seconds() -> float:
        try:
            return float(json.loads(file.read_text())["seconds"])
        except (OSError, ValueError, KeyError):
            return 0.0

    log = tmp_path / "seat.log"
    procs: list[subprocess.Popen[bytes]] = []
    with mosquitto(tmp_path) as broker:
        watcher = StateWatcher(broker.port, "seatbox/v1/lab/S-dose/state")
        try:
            # Run 1: loud receive audio (89 dB(A) at the ear) in real time, saved every second.
            procs.append(run_seat(config("loud", '["simulate"]', "loud.toml", broker.url), log))
            wait_until(lambda: watcher.last() is not None, 20, "the first run's state")
            wait_until(lambda: saved_seconds() >= 2.0, 20, "2 s of receive audio saved")
            procs[0].send_signal(signal.SIGTERM)
            assert procs[0].wait(20) == 0, log.read_text()
            at_stop = json.loads(file.read_text())  # written again at the stop
            assert at_stop["seconds"] >= 2.0 and at_stop["exposure_pa2s"] > 0
            energy = at_stop["exposure_pa2s"] / P0_SQ_PA2

            # Run 2, the same day, receive channel quiet: it starts from where run 1 stopped.
            watcher.states.clear()
            procs.append(run_seat(config("quiet", '["cti"]', "", broker.url), log))
            wait_until(lambda: watcher.last() is not None, 20, "the second run's state")
            hearing = watcher.last()["today"]["hearing"]  # type: ignore[index]
            assert hearing == {
                "lex_8h_dba": round(10 * math.log10(energy / 28800), 1),
                "dose_pct": round(100 * at_stop["exposure_pa2s"] / 1152.0, 2),
            }
            assert hearing["dose_pct"] > 0.0
            procs[1].send_signal(signal.SIGTERM)
            assert procs[1].wait(20) == 0, log.read_text()
            assert f"{file}: restored today's hearing dose" in log.read_text()
        finally:
            watcher.close()
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
