"""The LD2410 driver against the emulator over real pseudo-terminal pairs.

Timers are short configured values (watchdog 0.5 s, back-off 0.05 s); tests poll real outcomes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ld2410_pty import emulated_radar
from support import wait_until

from drivers.base import Backoff
from drivers.radar.events import RadarReport, RadarStatus
from drivers.radar.ld2410 import (
    CMD_ENABLE_CONFIG,
    CMD_END_CONFIG,
    CMD_ENGINEERING_ON,
    CMD_READ_FIRMWARE,
    CMD_READ_PARAMETERS,
    CommandTimeout,
    LD2410Link,
    NotLD2410,
    engineering,
    open_serial,
    read_parameters,
    set_gate_sensitivity,
    set_max_gates,
)
from drivers.radar.uart import LD2410Radar, ReportThrottle, Watchdog

REPO = Path(__file__).parent.parent
FAST = {"watchdog": 0.5, "ack_timeout": 0.2, "backoff": 0.05, "backoff_max": 0.2}


class Sink:
    """Collects what the driver hands to the seat, from the driver's thread."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, item: object) -> None:
        with self._lock:
            self.items.append(item)

    def statuses(self) -> list[RadarStatus]:
        with self._lock:
            return [i for i in self.items if isinstance(i, RadarStatus)]

    def reports(self) -> list[RadarReport]:
        with self._lock:
            return [i for i in self.items if isinstance(i, RadarReport)]

    def after_last_status(self) -> list[object]:
        with self._lock:
            idx = max(i for i, item in enumerate(self.items) if isinstance(item, RadarStatus))
            return self.items[idx + 1 :]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def link_to() -> Iterator[list[LD2410Link]]:
    opened: list[LD2410Link] = []
    yield opened
    for link in opened:
        link.close()


def _link(path: str, opened: list[LD2410Link], ack_timeout: float = 0.5) -> LD2410Link:
    link = LD2410Link(open_serial(path), name=path, ack_timeout=ack_timeout)
    opened.append(link)
    return link


# --- commands ----------------------------------------------------------------------------


def test_configuration_round_trip_writes_and_reads_back_parameters(
    link_to: list[LD2410Link],
) -> None:
    with emulated_radar() as (emulator, path):
        link = _link(path, link_to)
        with link.configuration() as info:
            link.command(set_max_gates(3, 2, 30))
            link.command(set_gate_sensitivity(2, 60, 70))
            params = link.read_parameters()
            firmware = link.read_firmware()
        assert (info.protocol_version, info.buffer_size) == (1, 64)
        assert firmware.text == "V1.07.22091516"
        assert (params.max_moving_gate, params.max_still_gate) == (3, 2)
        assert params.no_one_duration_s == 30
        assert params.moving_sensitivity == (50, 50, 60, 30, 20, 15, 15, 15, 15)
        assert params.still_sensitivity == (0, 0, 70, 40, 30, 30, 20, 20, 20)
        # What crossed the wire: the vendor's encodings, wrapped in enable/end config.
        assert emulator.received[0].command == CMD_ENABLE_CONFIG
        assert emulator.received[-1].command == CMD_END_CONFIG
        assert emulator.received[1].encode() == bytes.fromhex(
            "FDFCFBFA1400 6000 0000 03000000 0100 02000000 0200 1E000000 04030201".replace(" ", "")
        )
        assert not emulator.config_mode


def test_a_refused_value_raises_with_the_command_name(link_to: list[LD2410Link]) -> None:
    from drivers.radar.ld2410 import Command, CommandFailed

    with emulated_radar() as (_emulator, path):
        link = _link(path, link_to)
        with link.configuration(), pytest.raises(CommandFailed, match="set_max_gates"):
            # Max gate 9 is beyond the module's range: it answers status 1.
            link.command(
                Command(
                    0x0060, bytes.fromhex("0000090000000100080000000200050000 00".replace(" ", ""))
                )
            )


def test_commands_outside_configuration_mode_get_no_answer_and_time_out(
    link_to: list[LD2410Link],
) -> None:
    with emulated_radar() as (_emulator, path):
        link = _link(path, link_to, ack_timeout=0.1)
        with pytest.raises(CommandTimeout, match="no answer to read_parameters within 0.1 s"):
            link.command(read_parameters())


def test_a_device_answering_as_an_ld2420_is_refused(link_to: list[LD2410Link], sink: Sink) -> None:
    with emulated_radar(protocol_version=2) as (_emulator, path):
        link = _link(path, link_to)
        with pytest.raises(NotLD2410, match="protocol version 2"):
            link.begin_configuration()
        link.close()  # the port is exclusive: free it for the driver
        link_to.clear()
        radar = LD2410Radar(path, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: sink.statuses(), 5, "a status")
        finally:
            radar.stop()
        assert sink.statuses()[0].ok is False
        assert "protocol version 2" in sink.statuses()[0].detail
        assert sink.reports() == []


# --- the driver --------------------------------------------------------------------------


def test_start_ends_a_stuck_configuration_mode_and_reports_presence(sink: Sink) -> None:
    with emulated_radar(stuck_config=True) as (emulator, path):
        assert emulator.config_mode  # streams nothing until end-config
        radar = LD2410Radar(path, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: sink.reports(), 5, "a report")
        finally:
            radar.stop()
        assert emulator.received[0].command == CMD_END_CONFIG
        assert [c.command for c in emulator.received[1:4]] == [
            CMD_ENABLE_CONFIG,
            CMD_READ_FIRMWARE,
            CMD_READ_PARAMETERS,
        ]
        assert sink.items[0] == RadarStatus(ok=True, detail=f"{path}: frames arriving")
        assert sink.reports()[0] == RadarReport(
            target="still", moving_cm=60, moving_energy=50, still_cm=60, still_energy=50
        )
        assert radar.info().firmware == "V1.07.22091516"
        assert radar.info().parameters is not None
        assert radar.info().parameters.no_one_duration_s == 5


def test_engineering_mode_brings_gate_energies(sink: Sink) -> None:
    with emulated_radar() as (emulator, path):
        radar = LD2410Radar(path, engineering_mode=True, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: any(r.moving_gates for r in sink.reports()), 5, "gates")
        finally:
            radar.stop()
        assert CMD_ENGINEERING_ON in [c.command for c in emulator.received]
        report = next(r for r in sink.reports() if r.moving_gates)
        assert len(report.moving_gates) == len(report.still_gates) == 9
        assert report.still_gates[1] == 50  # the emulator's target energy sits at gate 1


def test_reports_follow_target_changes_but_not_every_frame(sink: Sink) -> None:
    with emulated_radar(period=0.01) as (emulator, path):
        radar = LD2410Radar(path, report_interval=5.0, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: sink.reports(), 5, "first report")
            sent_before = emulator.frames_sent
            emulator.set_target("moving", 90, 70)
            wait_until(lambda: sink.reports()[-1].target == "moving", 5, "moving")
            emulator.set_target("none")
            wait_until(lambda: sink.reports()[-1].target == "none", 5, "none")
            wait_until(lambda: emulator.frames_sent > sent_before + 30, 5, "more frames")
        finally:
            radar.stop()
        # Three targets seen, one report each: the 100 Hz stream did not reach the seat.
        assert [r.target for r in sink.reports()] == ["still", "moving", "none"]


def test_report_throttle_sends_changes_at_once_and_the_latest_every_interval() -> None:
    throttle = ReportThrottle(interval=1.0)
    still = RadarReport("still", still_energy=40)
    still2 = RadarReport("still", still_energy=41)
    moving = RadarReport("moving", moving_energy=70)
    assert throttle.offer(still, 0.0) is still
    assert throttle.offer(still2, 0.1) is None
    assert throttle.offer(moving, 0.2) is moving  # a change does not wait
    assert throttle.offer(moving, 0.5) is None
    assert throttle.due(1.1) is None  # the latest was already sent
    assert throttle.offer(RadarReport("moving", moving_energy=71), 1.3) == RadarReport(
        "moving", moving_energy=71
    )


def test_watchdog_and_backoff_take_time_as_an_argument() -> None:
    dog = Watchdog(period=2.0)
    dog.arm(100.0)
    assert not dog.expired(102.0)
    assert dog.expired(102.01)
    backoff = Backoff(initial=0.5, maximum=4.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_silent_sensor_is_reported_lost_once_then_ok_when_frames_return(sink: Sink) -> None:
    with emulated_radar() as (emulator, path):
        radar = LD2410Radar(path, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: sink.reports(), 5, "first report")
            emulator.silent = True
            wait_until(lambda: any(not s.ok for s in sink.statuses()), 5, "radar lost")
            lost = [s for s in sink.statuses() if not s.ok]
            assert "no valid frame for 0.5 s" in lost[0].detail
            # The driver reopens the port (each reopen starts with end-config) ...
            reopens = sum(c.command == CMD_END_CONFIG for c in emulator.received)
            wait_until(
                lambda: sum(c.command == CMD_END_CONFIG for c in emulator.received) >= reopens + 3,
                10,
                "reopen attempts",
            )
            # ... without repeating the loss to the seat.
            assert len([s for s in sink.statuses() if not s.ok]) == 1
            emulator.silent = False
            wait_until(lambda: sink.statuses()[-1].ok, 10, "radar back")
            wait_until(lambda: sink.after_last_status(), 5, "a report after recovery")
        finally:
            radar.stop()
        assert [s.ok for s in sink.statuses()] == [True, False, True]
        assert isinstance(sink.after_last_status()[0], RadarReport)


def test_a_failing_sink_does_not_stop_the_driver(sink: Sink) -> None:
    calls: list[object] = []

    def flaky(item: object) -> None:
        calls.append(item)
        if len(calls) == 1:
            raise RuntimeError("queue full")
        sink(item)

    with emulated_radar() as (emulator, path):
        emulator.set_target("moving", 90, 70)
        radar = LD2410Radar(path, report_interval=0.05, **FAST)
        radar.start(flaky)
        try:
            wait_until(lambda: len(sink.reports()) >= 3, 5, "reports after the failure")
        finally:
            radar.stop()
    assert sink.statuses() == []  # the first status was lost to the failure; no reopen
    assert {r.target for r in sink.reports()} == {"moving"}


def test_garbage_on_the_line_does_not_disturb_presence(sink: Sink) -> None:
    with emulated_radar(garbage=True, seed=7) as (emulator, path):
        emulator.set_target("both", 80, 60, 70, 55)
        radar = LD2410Radar(path, report_interval=0.05, **FAST)
        radar.start(sink)
        try:
            wait_until(lambda: len(sink.reports()) >= 10, 10, "ten reports")
        finally:
            radar.stop()
        assert {r.target for r in sink.reports()} == {"both"}
        assert {(r.moving_cm, r.still_cm) for r in sink.reports()} == {(80, 70)}
        assert all(s.ok for s in sink.statuses())


def _emulator_process(link: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drivers.radar.ld2410_emulator",
            "--pty",
            str(link),
            "--period",
            "0.02",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the emulator prints once its pty is linked
    assert line.startswith("emulator: LD2410 on /dev/pts/"), line
    return proc


def test_port_loss_and_return_on_a_new_pty_at_the_same_link(tmp_path: Path, sink: Sink) -> None:
    link = tmp_path / "seatbox-radar"
    first = _emulator_process(link)
    second: subprocess.Popen[str] | None = None
    radar = LD2410Radar(str(link), **FAST)
    radar.start(sink)
    try:
        wait_until(lambda: sink.reports(), 10, "first report")
        first.send_signal(signal.SIGKILL)  # the module's end of the line vanishes
        first.wait(5)
        wait_until(lambda: not sink.statuses()[-1].ok, 10, "port loss")
        assert str(link) in sink.statuses()[-1].detail
        old_target = os.readlink(link)
        second = _emulator_process(link)
        assert os.readlink(link) != old_target or True  # the kernel may reuse the pts number
        wait_until(lambda: sink.statuses()[-1].ok, 10, "radar back")
        wait_until(lambda: sink.after_last_status(), 5, "a report after return")
    finally:
        radar.stop()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(5)
    assert [s.ok for s in sink.statuses()] == [True, False, True]


def test_a_missing_port_is_reported_and_retried(tmp_path: Path, sink: Sink) -> None:
    link = tmp_path / "not-yet"
    radar = LD2410Radar(str(link), **FAST)
    radar.start(sink)
    try:
        wait_until(lambda: sink.statuses(), 5, "a status")
        assert sink.statuses()[0].ok is False
        assert f"cannot open {link}" in sink.statuses()[0].detail
        with emulated_radar(str(link)):
            wait_until(lambda: sink.reports(), 10, "a report once the port appears")
            radar.stop()
    finally:
        radar.stop()
    assert [s.ok for s in sink.statuses()] == [False, True]


def test_engineering_command_constant_matches_frames() -> None:
    assert engineering(True).encode() == bytes.fromhex("FDFCFBFA02006200 04030201".replace(" ", ""))
