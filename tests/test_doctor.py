"""`seatbox doctor`: every check listed, OK for a simulated seat, problems named with a fix.

Headset detection runs on real report descriptors laid out as sysfs lays them out.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from disk_support import fill, garble_data_pages, small_tmpfs
from ld2410_pty import emulated_radar
from support import Mosquitto

from drivers.radar.ld2410 import CMD_ENABLE_CONFIG, CMD_END_CONFIG, CMD_READ_FIRMWARE, open_serial
from drivers.radar.ld2410_emulator import open_pty
from edge.ops.doctor import CHECK_NAMES, Check, ClockState, Machine, MicReading, run_checks
from edge.ops.doctor.audio import check_microphone
from edge.ops.doctor.clock import check_clock, kernel_clock_state
from edge.ops.doctor.headset import check_headset, is_telephony_headset
from edge.ops.doctor.outbox import OUTBOX_BACKLOG_WARN_S, check_outbox
from edge.ops.doctor.permissions import check_permissions
from edge.ops.doctor.radar import check_radar
from edge.shell.config import SeatConfig, load_config
from edge.shell.outbox.inspect import read_outbox
from edge.shell.outbox.store import Outbox

DATA = Path(__file__).parent / "data" / "ops"
SEATBOX = str(Path(sys.executable).parent / "seatbox")


def descriptor(name: str) -> bytes:
    return bytes.fromhex((DATA / f"{name}.hex").read_text().strip())


def seatbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SEATBOX, *args], capture_output=True, text=True, timeout=60, check=False)


def provision(tmp_path: Path, *extra: str, broker: str = "embedded") -> Path:
    out = tmp_path / "seatbox.toml"
    result = seatbox("provision", "--site", "lab", "--seat", "s1", "--broker", broker,
                     "--output", str(out), "--no-check", *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    out.write_text(out.read_text().replace('"/var/lib/seatbox"', f'"{state}"'))
    return out


def fake_hidraw(root: Path, name: str, desc: bytes, hid_name: str, hid_id: str) -> Path:
    """sysfs and /dev entries of one hidraw node, laid out as the kernel has them."""
    device = root / "sys/class/hidraw" / name / "device"
    device.mkdir(parents=True)
    (device / "report_descriptor").write_bytes(desc)
    (device / "uevent").write_text(f"HID_ID={hid_id}\nHID_NAME={hid_name}\n")
    node = root / "dev" / name
    node.parent.mkdir(exist_ok=True)
    node.write_bytes(b"")
    return node


def machine_at(root: Path, **kw: object) -> Machine:
    return Machine(sys_root=root / "sys", dev_root=root / "dev", **kw)  # type: ignore[arg-type]


SYNCED = ClockState(True, "test clock")


def test_telephony_collection_is_found_first_or_last_and_not_in_a_gaming_headset() -> None:
    assert is_telephony_headset(descriptor("jabra_biz2400_ii"))
    assert is_telephony_headset(descriptor("poly_bt700_dongle"))
    assert not is_telephony_headset(descriptor("logitech_g535_wireless"))
    assert not is_telephony_headset(b"\x05\x0b\x09")  # cut short: no crash, no headset


def test_doctor_json_on_a_simulated_seat_lists_every_check_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = provision(tmp_path, "--simulate")
    checks = run_checks(config, Machine(clock=lambda: SYNCED))
    assert [c.name for c in checks] == list(CHECK_NAMES)
    assert {c.name: c.status for c in checks} == dict.fromkeys(CHECK_NAMES, "OK")
    assert "virtual" in {c.name: c.detail for c in checks}["headset"]
    # The command itself: the exact JSON shape; its exit code follows this box's real clock.
    result = seatbox("doctor", str(config), "--json")
    document = json.loads(result.stdout)
    assert list(document) == ["checks"]
    assert [c["name"] for c in document["checks"]] == list(CHECK_NAMES)
    for check in document["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("OK", "WARN", "FAIL")
    clock = next(c for c in document["checks"] if c["name"] == "clock")
    fails = [c["name"] for c in document["checks"] if c["status"] == "FAIL"]
    assert fails in ([], ["clock"])
    assert result.returncode == (1 if fails else 0), (clock, result.stderr)


def test_doctor_on_a_broken_config_names_the_problem_and_exits_1(tmp_path: Path) -> None:
    config = provision(tmp_path, "--simulate")
    config.write_text(config.read_text().replace('backend = "virtual"', 'backend = "alsa"', 1))
    result = seatbox("doctor", str(config), "--json")
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert list(checks) == list(CHECK_NAMES)
    assert checks["config"]["status"] == "FAIL"
    assert (
        f"{config}: [audio] backend: expected one of 'virtual', 'sounddevice'"
        in (checks["config"]["detail"])
    )
    assert checks["config"]["fix"].startswith("correct the config")
    assert checks["broker"]["detail"] == "not checked: the config is invalid"


def test_doctor_gives_the_config_the_verdict_of_config_check_and_still_runs_the_rest(
    tmp_path: Path,
) -> None:
    """A config `seatbox run` refuses only on the box (an ld2410 radar without a port) fails in
    doctor with the words of `config check`, and the other checks still say what they see."""
    config = provision(tmp_path, "--simulate")
    text = config.read_text()
    assert '[radar]\nbackend = "virtual"' in text
    config.write_text(text.replace('[radar]\nbackend = "virtual"', '[radar]\nbackend = "ld2410"'))
    check = seatbox("config", "check", str(config))
    assert check.returncode == 2
    checks = {c.name: c for c in run_checks(config, Machine(clock=lambda: SYNCED))}
    assert checks["config"].status == "FAIL"
    assert checks["config"].detail == check.stderr.strip().removeprefix("seatbox config check: ")
    assert "[radar] port: required for backend ld2410" in checks["config"].detail
    assert checks["headset"].status == "OK" and "not checked" not in checks["audio"].detail


def test_text_output_says_what_to_do(tmp_path: Path) -> None:
    result = seatbox("doctor", str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert f"FAIL  config       {tmp_path / 'missing.toml'}: file not found" in result.stdout
    assert "fix: correct the config" in result.stdout
    assert result.stdout.rstrip().endswith("overall: FAIL")


def test_broker_check_connects_with_the_seat_credentials(broker: Mosquitto, tmp_path: Path) -> None:
    config = provision(tmp_path, "--simulate", broker=broker.url)
    checks = {c.name: c for c in run_checks(config, Machine(clock=lambda: SYNCED))}
    assert checks["broker"].status == "OK"
    assert checks["broker"].detail == f"connected to 127.0.0.1:{broker.port}"
    broker_down = provision(tmp_path, "--simulate", broker="mqtt://127.0.0.1:1")
    checks = {c.name: c for c in run_checks(broker_down, Machine(clock=lambda: SYNCED))}
    assert checks["broker"].status == "FAIL"
    assert "connection refused" in checks["broker"].detail


def test_headset_check_finds_the_telephony_node_among_others(tmp_path: Path) -> None:
    config = load_config(provision(tmp_path))  # real devices: headset auto
    fake_hidraw(tmp_path, "hidraw0", descriptor("logitech_g535_wireless"),
                "Logitech G535", "0003:0000046D:00000AC4")  # fmt: skip
    machine = machine_at(tmp_path, service_user="nobody")
    check = check_headset(config, machine)
    assert check.status == "FAIL"
    assert "no telephony headset found (HID devices: hidraw0 Logitech G535 (046d:0ac4))" in (
        check.detail
    )
    node = fake_hidraw(tmp_path, "hidraw1", descriptor("jabra_biz2400_ii"),
                       "GN Netcom A/S Jabra BIZ 2400 II", "0003:00000B0E:00002453")  # fmt: skip
    os.chmod(node, 0o660)  # as the kernel leaves it without our udev rule: root's group
    check = check_headset(config, machine)
    assert check.status == "FAIL"
    assert check.detail == (
        f"GN Netcom A/S Jabra BIZ 2400 II (0b0e:2453) at {node}: nobody cannot read and write "
        "it (-rw-rw---- group root): no buttons, no LEDs"
    )
    assert "udev rules" in check.fix
    os.chmod(node, 0o666)
    check = check_headset(config, machine)
    assert check.status == "OK"
    assert check.detail == (
        f"GN Netcom A/S Jabra BIZ 2400 II (0b0e:2453) at {node}: hook switch, mute, LEDs "
        "off_hook/mute/ring/hold/microphone/ringer; nobody can read and write it"
    )


def test_headset_check_reads_the_layout_of_a_collection_placed_last(tmp_path: Path) -> None:
    config = load_config(provision(tmp_path))
    node = fake_hidraw(tmp_path, "hidraw3", descriptor("poly_bt700_dongle"),
                       "Poly BT700", "0003:0000047F:000002E6")  # fmt: skip
    os.chmod(node, 0o666)
    check = check_headset(config, machine_at(tmp_path, service_user="nobody"))
    assert (check.status, check.detail) == (
        "OK",
        f"Poly BT700 (047f:02e6) at {node}: hook switch, mute, LEDs off_hook/mute/ring/hold; "
        "nobody can read and write it",
    )


def test_a_headset_without_hook_switch_or_leds_is_a_warning_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    # Constructed (no such device is in tests/data): a Telephony Headset collection holding
    # only a Phone Mute button, no Hook Switch and no LEDs.
    mute_only = bytes.fromhex(
        "050b 0905 a101 8501 1500 2501 7501 9501 092f 8106 9507 8101 c0".replace(" ", "")
    )
    config = load_config(provision(tmp_path))
    node = fake_hidraw(tmp_path, "hidraw0", mute_only, "Acme Mute", "0003:00001234:00005678")
    os.chmod(node, 0o666)
    check = check_headset(config, machine_at(tmp_path, service_user="nobody"))
    assert check.status == "WARN"
    assert check.detail == (
        f"Acme Mute (1234:5678) at {node}: no hook switch: answering and ending calls on the "
        "headset is not seen; no off-hook LED: the headset cannot show the call; no mute LED: "
        "the headset cannot show that the mic is muted"
    )
    assert "seatbox headset list" in check.fix


def test_a_configured_headset_with_a_broken_descriptor_or_a_dead_node_is_a_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = fake_hidraw(tmp_path, "hidraw2", descriptor("jabra_biz2400_ii")[:40],
                       "Jabra", "0003:00000B0E:00002453")  # fmt: skip
    path = provision(tmp_path)
    path.write_text(path.read_text().replace('device = "auto"', f'device = "{node}"'))
    config = load_config(path)
    check = check_headset(config, machine_at(tmp_path))
    assert check.status == "FAIL"
    assert check.detail == (
        f"{node} (Jabra, 0b0e:2453): its report descriptor cannot be read "
        "(byte 40: Collection opened at byte 4 is never closed)"
    )
    # A node that is there but does not open (ENXIO, as a device gone stale): a socket file.
    auto = load_config(provision(tmp_path))
    fake_hidraw(tmp_path / "b", "hidraw5", descriptor("jabra_biz2400_ii"),
                "Jabra", "0003:00000B0E:00002453").unlink()  # fmt: skip
    monkeypatch.chdir(tmp_path / "b/dev")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind("hidraw5")  # relative: the socket path limit is 108 bytes
    os.chmod("hidraw5", 0o666)
    try:
        check = check_headset(auto, machine_at(tmp_path / "b", service_user="nobody"))
    finally:
        server.close()
    if os.geteuid() == 0:  # the real open is tried only for the service user or root
        assert (check.status, check.detail.split(": ", 1)[1]) == (
            "FAIL", "cannot open it: No such device or address"
        )  # fmt: skip


def test_permissions_check_names_nodes_the_service_user_cannot_open(tmp_path: Path) -> None:
    config = load_config(provision(tmp_path, "--radar-port", str(tmp_path / "dev/ttyUSB0")))
    node = fake_hidraw(tmp_path, "hidraw1", descriptor("jabra_biz2400_ii"),
                       "Jabra", "0003:00000B0E:00002453")  # fmt: skip
    radar = tmp_path / "dev/ttyUSB0"
    radar.write_bytes(b"")
    os.chmod(radar, 0o666)
    # A user that exists on every system and is neither root nor the file's owner.
    machine = machine_at(tmp_path, service_user="nobody")
    os.chmod(node, 0o600)  # as the kernel leaves hidraw nodes without our udev rule
    check = check_permissions(config, machine)
    assert check.status == "FAIL"
    assert f"nobody cannot open: {node} (-rw-------" in check.detail
    assert "udev rules" in check.fix
    os.chmod(node, 0o666)
    check = check_permissions(config, machine)
    assert (check.status, check.detail) == ("OK", "nobody can open 2 device node(s)")


def radar_config(tmp_path: Path, port: str) -> SeatConfig:
    return load_config(provision(tmp_path, "--radar-port", port))


def test_radar_check_reads_frames_and_firmware_of_an_ld2410(tmp_path: Path) -> None:
    with emulated_radar() as (emulator, port):
        config = radar_config(tmp_path, port)
        started = time.monotonic()
        check = check_radar(config, Machine())
        took = time.monotonic() - started
    assert check.status == "OK", check
    match = re.fullmatch(rf"{port}: LD2410 firmware V1\.07\.22091516, basic frames at (\d+)/s",
                         check.detail)  # fmt: skip
    assert match and int(match.group(1)) >= 10, check.detail  # the emulator sends 50/s
    assert took < 2.0  # a second of frames, then three answers of ~10 ms
    assert [c.command for c in emulator.received] == [
        CMD_ENABLE_CONFIG, CMD_READ_FIRMWARE, CMD_END_CONFIG
    ]  # fmt: skip


def test_radar_check_ends_a_configuration_mode_left_behind(tmp_path: Path) -> None:
    with emulated_radar(stuck_config=True, engineering=True) as (_emulator, port):
        check = check_radar(radar_config(tmp_path, port), Machine())
    assert check.status == "OK", check
    assert re.fullmatch(
        rf"{port}: LD2410 firmware V1\.07\.22091516, engineering frames at \d+/s "
        r"\(it was left in configuration mode; ended it\)",
        check.detail,
    ), check.detail


def test_radar_check_warns_of_noise_between_frames(tmp_path: Path) -> None:
    with emulated_radar(garbage=True, seed=3) as (_emulator, port):
        check = check_radar(radar_config(tmp_path, port), Machine())
    assert check.status == "WARN", check
    assert re.search(r"bytes were not part of a valid frame \(\d+ cut short or garbled\): expected "
                     r"only LD2410 frames \(data F4 F3 F2 F1", check.detail)  # fmt: skip
    assert "noise on the serial line" in check.fix


def test_radar_check_fails_on_a_port_that_sends_only_garbage(tmp_path: Path) -> None:
    master, slave, port = open_pty()
    noise = random.Random(7)
    stop = threading.Event()

    def babble() -> None:  # another serial device, or the radar at another baud rate
        while not stop.wait(0.01):
            os.write(master, bytes(noise.randrange(0xF0) for _ in range(32)))

    writer = threading.Thread(target=babble, daemon=True)
    writer.start()
    try:
        check = check_radar(radar_config(tmp_path, port), Machine())
    finally:
        stop.set()
        writer.join()
        os.close(master)
        os.close(slave)
    assert check.status == "FAIL", check
    assert re.fullmatch(
        rf"{port}: \d+ bytes in 1\.\d s but no valid frame; expected LD2410 frames "
        r"\(data F4 F3 F2 F1 \.\.\. F8 F7 F6 F5, answers FD FC FB FA \.\.\. 04 03 02 01\) "
        r"at 256000 baud",
        check.detail,
    ), check.detail
    assert "256000" in check.fix


def test_radar_check_names_a_silent_a_missing_a_busy_and_a_foreign_radar(tmp_path: Path) -> None:
    with emulated_radar(silent=True) as (_emulator, port):
        check = check_radar(radar_config(tmp_path, port), Machine())
    assert check.status == "FAIL"
    assert check.detail.startswith(f"{port}: nothing received in 1.0 s and no answer to end-config")
    assert "5 V supply" in check.fix
    with emulated_radar(protocol_version=2) as (_emulator, port):
        check = check_radar(radar_config(tmp_path, port), Machine())
    assert (check.status, check.detail) == (
        "FAIL",
        f"{port}: enable-config answered protocol version 2, an LD2410/B/C answers 1 "
        "(is this an LD2420?)",
    )
    with emulated_radar() as (_emulator, port):
        seat = open_serial(port)  # the running seat holds the port exclusively
        try:
            check = check_radar(radar_config(tmp_path, port), Machine())
        finally:
            seat.close()
    assert (check.status, check.detail) == (
        "WARN", f"{port} not probed: another program holds it (the running seat?)"
    )  # fmt: skip
    check = check_radar(radar_config(tmp_path, str(tmp_path / "ttyUSB9")), Machine())
    assert (check.status, check.detail) == ("FAIL", f"{tmp_path / 'ttyUSB9'} not present")


def test_clock_states_map_to_ok_fail_warn() -> None:
    assert check_clock(Machine(clock=lambda: SYNCED)).status == "OK"
    unsynced = check_clock(Machine(clock=lambda: ClockState(False, "kernel")))
    assert unsynced.status == "FAIL" and "attendance" in unsynced.detail
    unknown = check_clock(Machine(clock=lambda: ClockState(None, "no timedated")))
    assert unknown.status == "WARN" and "timedatectl" in unknown.fix


def test_kernel_clock_state_agrees_with_adjtimex_of_this_machine() -> None:
    state = kernel_clock_state()
    assert state.synchronised in (True, False)  # adjtimex is readable here
    assert state.detail.startswith("kernel: maxerror")


def test_microphone_silent_is_a_warning_and_a_capture_failure_a_fail(tmp_path: Path) -> None:
    config = load_config(provision(tmp_path))
    silent = Machine(mic_probe=lambda audio, s: MicReading(True, rms_dbov=-95.0))
    check = check_microphone(config, silent, audio_ok=True)
    assert check.status == "WARN" and "silent: -95.0 dBov" in check.detail
    speaking = Machine(mic_probe=lambda audio, s: MicReading(True, rms_dbov=-38.2))
    assert check_microphone(config, speaking, audio_ok=True).detail == "signal -38.2 dBov RMS"
    broken = Machine(mic_probe=lambda audio, s: MicReading(False, detail="device busy"))
    assert check_microphone(config, broken, audio_ok=True).status == "FAIL"


def test_audio_check_lists_the_capture_devices_when_the_configured_one_is_missing(
    tmp_path: Path,
) -> None:
    from edge.ops.doctor.audio import check_audio

    config_path = provision(tmp_path)
    text = config_path.read_text().replace(
        'backend = "sounddevice"', 'backend = "sounddevice"\ntx_device = "Jabra BIZ"'
    )
    config_path.write_text(text)
    config = load_config(config_path)
    devices = [{"name": "Poly BT700: USB Audio (hw:1,0)", "max_input_channels": 1}]
    check = check_audio(config, Machine(audio_devices=lambda: devices))
    assert check.status == "FAIL"
    assert "[audio] tx_device 'Jabra BIZ' not found" in check.detail
    assert "'Poly BT700: USB Audio (hw:1,0)'" in check.detail
    devices.append({"name": "Jabra BIZ 2400 II: USB Audio (hw:2,0)", "max_input_channels": 1})
    assert check_audio(config, Machine(audio_devices=lambda: devices)).status == "OK"


# --- outbox: real databases written by edge.shell.outbox.store.Outbox -----------------------------------

T0 = 1_790_000_000.0  # the wall clock the outboxes below store their events at


def outbox_config(tmp_path: Path, budget_mb: float = 64.0) -> tuple[SeatConfig, Path]:
    path = provision(tmp_path, "--simulate")
    path.write_text(path.read_text() + f"outbox_budget_mb = {budget_mb}\n")
    config = load_config(path)
    return config, Path(config.storage.state_dir) / "outbox.sqlite"


def open_outbox(path: Path, budget_mb: float = 64.0) -> Outbox:
    return Outbox(
        path, "seatbox/v1/lab/s1/event", budget_bytes=int(budget_mb * 1024 * 1024),
        clock=lambda: T0,
    )  # fmt: skip


def at(seconds: float) -> Machine:
    return Machine(wall_clock=lambda: T0 + seconds)


def folder(path: Path) -> dict[str, str]:
    """Every file next to the outbox with a digest of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.parent.iterdir()}


def test_outbox_check_reports_what_is_pending_and_writes_nothing(tmp_path: Path) -> None:
    config, path = outbox_config(tmp_path)
    assert check_outbox(config, at(0)) == Check(
        "outbox", "OK", f"no outbox yet in {path.parent} (the seat creates it at start)"
    )
    outbox = open_outbox(path)
    outbox.add_events([("call.ring", {}, None), ("call.answer", {}, None), ("mute.on", {}, None)])
    outbox.ack([outbox.pending(1)[0].id])
    outbox.close()
    before = folder(path)
    check = check_outbox(config, at(40))
    assert check.status == "OK"
    assert check.detail == (
        "2 pending (oldest 40 s), 0.0 MB of the 64.0 MB budget (0%), integrity ok"
    )
    # No -wal or -shm created by the reader, not a byte changed: a stopped seat's outbox
    # is exactly as the seat left it.
    assert folder(path) == before == {"outbox.sqlite": before["outbox.sqlite"]}


def test_outbox_check_reads_a_running_seats_outbox_without_getting_in_its_way(
    tmp_path: Path,
) -> None:
    config, path = outbox_config(tmp_path)
    seat = open_outbox(path)  # open: its -wal holds the events, not yet checkpointed
    try:
        seat.add_events([("call.ring", {}, None)] * 5)
        assert Path(f"{path}-wal").exists()
        assert check_outbox(config, at(2)).detail.startswith("5 pending (oldest 2 s)")
        seat.add_event("call.answer", {})  # the seat still writes: nothing was left locked
        assert seat.stats().pending == 6
        assert check_outbox(config, at(2)).detail.startswith("6 pending")
    finally:
        seat.close()


def test_an_old_backlog_is_a_warning_with_the_replay_time(tmp_path: Path) -> None:
    config, path = outbox_config(tmp_path)
    outbox = open_outbox(path)
    outbox.add_events([("presence.away", {}, None)] * 1200)
    outbox.close()
    young = check_outbox(config, at(OUTBOX_BACKLOG_WARN_S - 1))
    assert young.status == "OK"
    check = check_outbox(config, at(45 * 60))
    assert check.status == "WARN"
    assert check.detail.startswith(
        "1200 events not acknowledged by the broker, the oldest stored 45 min ago "
        "(1200 pending (oldest 45 min), 0.3 MB of the 64.0 MB budget (0%))"
    )
    # 1200 events at the default replay_rate of 200/s.
    assert "systemctl status seatbox" in check.fix and "(about 6 s)" in check.fix


def test_an_outbox_near_its_budget_is_a_warning(tmp_path: Path) -> None:
    budget_mb = 0.05
    config, path = outbox_config(tmp_path, budget_mb)
    outbox = open_outbox(path, budget_mb)
    budget = outbox.budget_bytes
    while outbox.stats().bytes <= 0.82 * budget:
        entry = outbox.add_event("call.ring", {"caller": "x" * 200})
        outbox.ack([entry.id])  # acknowledged copies kept for resends count too
    used = outbox.stats().bytes
    outbox.close()
    check = check_outbox(config, at(1))
    assert check.status == "WARN"
    assert check.detail.startswith(f"{used / budget:.0%} of the disk budget used (0 pending, ")
    assert "raise [storage] outbox_budget_mb" in check.fix


def test_a_loss_not_yet_reported_is_a_warning_until_the_seat_reports_it(tmp_path: Path) -> None:
    budget_mb = 0.016  # the smallest budget the config accepts
    config, path = outbox_config(tmp_path, budget_mb)
    outbox = open_outbox(path, budget_mb)
    for _ in range(150):  # a broker outage: nothing is acknowledged
        outbox.add_event("mute.on", {"by": "agent"})
    outbox.close()
    check = check_outbox(config, at(10))
    assert check.status == "WARN"
    outbox = open_outbox(path, budget_mb)
    report = outbox.flush_loss()  # what the seat publishes once the broker is back
    assert report is not None
    total = json.loads(report.payload)["data"]["total"]
    assert total > 0
    assert check.detail.startswith(
        f"{total} events dropped by the budget, not yet reported (mute.on {total})"
    )
    assert "outbox.loss" in check.fix
    outbox.close()
    assert "dropped" not in check_outbox(config, at(10)).detail


def test_a_damaged_outbox_is_a_fail_that_says_how_to_start_over(tmp_path: Path) -> None:
    config, path = outbox_config(tmp_path)
    outbox = open_outbox(path)
    outbox.add_events([("call.ring", {"n": n}, None) for n in range(2000)])
    outbox.close()
    image = bytearray(path.read_bytes())
    page = int.from_bytes(image[16:18], "big")  # SQLite header: page size at offset 16
    image[20 * page : 21 * page] = b"\x5a" * page  # one table page overwritten
    path.write_bytes(image)
    check = check_outbox(config, at(1))
    assert (check.status, check.detail) == (
        "FAIL", f"{path} is damaged: database disk image is malformed"
    )  # fmt: skip
    assert check.fix.startswith("systemctl restart seatbox: the seat keeps the file as ")
    path.write_bytes(b"not a database at all" * 100)
    check = check_outbox(config, at(1))
    assert (check.status, check.detail) == ("FAIL", f"{path} is damaged: file is not a database")
    path.unlink()
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    check = check_outbox(config, at(1))
    assert check.status == "FAIL"
    assert check.detail.endswith("not a seatbox outbox (no `entry` and `meta` tables)")


def test_a_damaged_outbox_the_seat_set_aside_is_a_warning_naming_the_kept_file(
    tmp_path: Path,
) -> None:
    """Issue 12 fault 6: the seat keeps a damaged outbox beside the new one; doctor says so,
    where it is and how to salvage what was unsent in it."""
    config, path = outbox_config(tmp_path)
    outbox = open_outbox(path)
    outbox.add_events([("greeting.late", {"n": n}, None) for n in range(2000)])
    outbox.close()
    garble_data_pages(path)
    fresh = Outbox(path, "seatbox/v1/lab/s1/event", clock=lambda: T0)  # what the seat does
    fresh.close()
    [kept] = [p for p in path.parent.glob("outbox.sqlite.corrupt-*")]
    check = check_outbox(config, at(1))
    assert check.status == "WARN"
    assert check.detail.startswith(
        f"the seat found its outbox damaged and set it aside: {kept.name} ("
    )
    assert f"sqlite3 {kept} .recover" in check.fix
    kept.unlink()
    assert check_outbox(config, at(1)).status == "OK"


def test_a_full_disk_is_a_fail_that_says_the_seat_holds_events_in_memory(
    tmp_path: Path,
) -> None:
    """Issue 12 fault 5: a really full disk (not the budget) is named as such."""
    with small_tmpfs(tmp_path / "disk", 4096) as disk:
        config, path = outbox_config(tmp_path)
        state = Path(config.storage.state_dir)
        state.rmdir()
        state.symlink_to(disk)
        open_outbox(path).close()
        filler = fill(disk)
        check = check_outbox(config, at(1))
        assert check.status == "FAIL"
        assert check.detail.startswith(f"the disk holding {state} is full (")
        assert "holds new events in memory" in check.detail
        assert "a restart or power cut before then loses what it holds" in check.detail
        assert check.fix.startswith("free space on that file system now")
        filler.unlink()
        assert check_outbox(config, at(1)).status == "OK"


def test_an_integrity_check_that_overruns_its_time_says_so(tmp_path: Path) -> None:
    config, path = outbox_config(tmp_path)
    outbox = open_outbox(path)
    outbox.add_events([("call.ring", {"n": n}, None) for n in range(2000)])
    outbox.close()
    reading = read_outbox(path, limit_s=0.0)
    assert (reading.integrity_checked, reading.pending) == (False, 2000)
    assert read_outbox(path).integrity_checked


def test_an_outbox_the_service_user_cannot_write_is_a_fail(tmp_path: Path) -> None:
    config, path = outbox_config(tmp_path)
    open_outbox(path).close()
    os.chmod(path, 0o644)  # as a seat once started by root leaves it
    check = check_outbox(config, Machine(service_user="nobody", wall_clock=lambda: T0))
    assert check.status == "FAIL"
    assert check.detail.startswith("nobody cannot write outbox.sqlite (-rw-r--r-- ")
    assert check.fix.startswith(f"chown nobody: {path}*")
    os.chmod(path, 0o666)
    assert (
        check_outbox(config, Machine(service_user="nobody", wall_clock=lambda: T0)).status == "OK"
    )
