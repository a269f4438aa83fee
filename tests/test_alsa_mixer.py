"""Mute and receive-cap enforcement on the headset's ALSA mixer (drivers/audio/alsa_mixer.py).

Parsing and dB conversion run on `amixer` output of real devices (tests/data/alsa/README.md).
Enforcement runs for real through `amixer` on a real ALSA control device: the `pulse` control
plugin on a PulseAudio server this test starts (there is no sound card on a CI machine), checked
independently with `pactl`. What this cannot reach is a USB headset's own card: its dB cap is
tested on its real `amixer contents` output only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from seat_harness import Harness
from support import wait_until

from drivers.audio.alsa_mixer import (
    RESTORE_FILE_NAME,
    Control,
    DbRange,
    MixerEnforcer,
    MixerError,
    card_control,
    parse_contents,
    pick,
)
from drivers.audio.capture import SoundDeviceAudio
from drivers.audio.events import MixerStatus
from edge.api.payloads import event_payload

DATA = Path(__file__).parent / "data" / "alsa"
REPO = Path(__file__).parent.parent


def controls(name: str) -> dict[str, Control]:
    return {c.name: c for c in parse_contents((DATA / name).read_text())}


# --- real output: parsing and dB -----------------------------------------------------------------


def test_a_usb_devices_contents_parse_with_their_db_range() -> None:
    emeet = controls("emeet-c980-pro-contents.txt")
    assert sorted(emeet) == [
        "Headset Capture Switch",
        "Headset Capture Volume",
        "PCM Playback Switch",
        "PCM Playback Volume",
    ]
    volume = emeet["PCM Playback Volume"]
    assert (volume.numid, volume.type, volume.minimum, volume.maximum) == (4, "INTEGER", 0, 10240)
    assert volume.values == ("10240",)
    assert volume.db == DbRange("minmax", -2800, max_cdb=1200)
    switch = emeet["Headset Capture Switch"]
    assert (switch.numid, switch.type, switch.values) == (5, "BOOLEAN", ("on",))


def test_db_conversion_agrees_with_the_devices_own_range() -> None:
    # The kernel logged the device's range as -7168..3072 in 1/256 dB, res 1, mapped to raw
    # 0..10240: raw = 256 * dB + 7168. So 0 dB is raw 7168 and -6 dB raw 5632.
    volume = controls("emeet-c980-pro-contents.txt")["PCM Playback Volume"]
    assert volume.db_at(10240) == 12.0 and volume.db_at(0) == -28.0

    def true_db(raw: int) -> float:
        return (raw - 7168) / 256

    for db in (-28.0, -20.0, -6.0, -0.5, 0.0, 3.25, 11.99):
        raw = volume.raw_at_most(db)
        assert raw == int(256 * db + 7168)
        assert true_db(raw) <= db < true_db(raw + 1)  # never above the cap, by less than a step
        assert volume.db_at(raw) <= db
    assert volume.raw_at_most(12.0) == 10240
    assert volume.raw_at_most(-40.0) == 0  # below the range: the lowest value


def test_db_scale_and_linear_ranges_convert_as_alsa_lib_does() -> None:
    # Constructed (not captured): the formulas of alsa-lib's snd_tlv_convert_to_dB.
    scale = Control(
        1,
        "Master Playback Volume",
        0,
        "INTEGER",
        0,
        31,
        ("31",),
        DbRange("scale", -4650, step_cdb=150),
    )
    assert scale.db_at(31) == 0.0 and scale.db_at(0) == -46.5
    assert scale.raw_at_most(-6.0) == 27 and scale.raw_at_most(-5.9) == 27
    muted = Control(
        1,
        "X Playback Volume",
        0,
        "INTEGER",
        0,
        4,
        ("4",),
        DbRange("scale", -400, step_cdb=100, mute=True),
    )
    assert muted.db_at(0) == float("-inf") and muted.db_at(1) == -3.0
    linear = Control(
        1, "Y Playback Volume", 0, "INTEGER", 0, 100, ("100",), DbRange("linear", -4000, max_cdb=0)
    )
    assert linear.db_at(100) == 0.0 and linear.db_at(50) == pytest.approx(-6.0, abs=0.1)
    assert linear.db_at(linear.raw_at_most(-6.0)) <= -6.0


def test_the_headset_controls_are_found_by_their_usb_names() -> None:
    emeet = list(controls("emeet-c980-pro-contents.txt").values())
    from drivers.audio.alsa_mixer import CAPTURE_SWITCHES, PLAYBACK_VOLUMES

    assert (
        pick(emeet, "", CAPTURE_SWITCHES, " Capture Switch", "BOOLEAN").name
        == "Headset Capture Switch"
    )
    assert (
        pick(emeet, "", PLAYBACK_VOLUMES, " Playback Volume", "INTEGER").name
        == "PCM Playback Volume"
    )
    with pytest.raises(
        MixerError, match=r"no BOOLEAN control named 'Mic Capture Switch'; found \["
    ):
        pick(emeet, "Mic Capture Switch", CAPTURE_SWITCHES, " Capture Switch", "BOOLEAN")


def test_the_card_of_a_capture_device_is_found() -> None:
    cards = (DATA / "corsair-void-elite-cards.txt").read_text()
    # PortAudio's name for the headset's hardware device, and an asoundrc alias naming the card.
    assert card_control("CORSAIR VOID ELITE Wireless Gam: USB Audio (hw:2,0)", cards) == "hw:2"
    assert card_control("CORSAIR VOID ELITE Wireless Gam", cards) == "hw:2"
    assert card_control("hw:CARD=Gam,DEV=0", cards) == "hw:CARD=Gam"  # ALSA names as configured
    assert card_control("plughw:2,0", cards) == "hw:2"
    with pytest.raises(
        MixerError,
        match=r"cannot tell the ALSA card of capture device 'seat_in'.*set \[audio\] mixer",
    ):
        card_control("seat_in", cards)


# --- real amixer --------------------------------------------------------------------------------

needs_amixer = pytest.mark.skipif(
    shutil.which("amixer") is None,
    reason="amixer (alsa-utils) not installed: make test installs it",
)


@needs_amixer
def test_a_card_that_is_not_there_is_reported_not_raised() -> None:
    reports: list[tuple[bool, str]] = []
    enforcer = MixerEnforcer("hw:31", report=lambda ok, detail: reports.append((ok, detail)))
    enforcer.set_mute(True)
    assert enforcer.reconcile() is False
    assert enforcer.reconcile() is False  # the same failure is reported once
    assert reports == [
        (
            False,
            "amixer -D hw:31 contents: amixer: Control hw:31 open error: No such file or directory",
        )
    ]


def test_a_missing_amixer_is_reported_with_what_to_install() -> None:
    reports: list[tuple[bool, str]] = []
    enforcer = MixerEnforcer(
        "hw:0", report=lambda ok, d: reports.append((ok, d)), program="amixer-not-here"
    )
    enforcer.set_cap(-6.0)
    assert enforcer.reconcile() is False
    assert reports == [
        (False, "amixer-not-here: not found (install alsa-utils to enforce mute and receive caps)")
    ]


# --- a real ALSA control device: the pulse plugin on a PulseAudio server ----------------------------


@pytest.fixture
def pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PulseAudio server with a null sink, and `amixer -D pulse` reaching it (HOME, XDG)."""
    missing = [p for p in ("pulseaudio", "pactl", "amixer") if shutil.which(p) is None]
    plugin = list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_ctl_pulse.so"))
    if missing or not plugin:
        pytest.skip(
            f"needs pulseaudio, pactl, amixer and libasound2-plugins (make test installs them); missing {missing or 'the pulse ctl plugin'}"
        )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    subprocess.run(
        [
            "pulseaudio",
            "-n",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "--use-pid-file=yes",
            "-L",
            "module-native-protocol-unix",
            "-L",
            "module-null-sink sink_name=seatsink rate=16000 channels=1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        wait_until(lambda: pactl("info").returncode == 0, 15, "the PulseAudio server")
        assert pactl("set-default-source", "seatsink.monitor").returncode == 0
        yield tmp_path
    finally:
        subprocess.run(["pulseaudio", "-k"], capture_output=True, timeout=30)  # this server only


def pactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pactl", *args], capture_output=True, text=True, timeout=10, env=os.environ.copy()
    )


def source_muted() -> bool:
    """PulseAudio's own view of the mic (the default source), not amixer's."""
    out = pactl("get-source-mute", "@DEFAULT_SOURCE@").stdout.strip()
    assert out in ("Mute: yes", "Mute: no"), out
    return out == "Mute: yes"


def sink_volume() -> str:
    return pactl("get-sink-volume", "@DEFAULT_SINK@").stdout.split("/")[1].strip()


def test_mute_turns_the_capture_switch_off_and_release_puts_it_back(pulse: Path) -> None:
    reports: list[tuple[bool, str]] = []
    enforcer = MixerEnforcer("pulse", report=lambda ok, d: reports.append((ok, d)))
    assert not source_muted()
    enforcer.set_mute(True)
    assert enforcer.reconcile() and source_muted()
    # Someone switches the mic back on (headset button, pavucontrol): the next pass mutes again.
    assert pactl("set-source-mute", "@DEFAULT_SOURCE@", "0").returncode == 0
    assert enforcer.reconcile() and source_muted()
    enforcer.set_mute(False)
    assert enforcer.reconcile() and not source_muted()
    assert reports == []


def test_release_keeps_a_mic_that_was_muted_before_and_a_change_made_meanwhile(pulse: Path) -> None:
    enforcer = MixerEnforcer("pulse")
    pactl("set-source-mute", "@DEFAULT_SOURCE@", "1")
    enforcer.set_mute(True)
    enforcer.set_mute(False)
    assert enforcer.reconcile() and source_muted()  # it was muted before: stays muted
    pactl("set-source-mute", "@DEFAULT_SOURCE@", "0")
    enforcer.set_mute(True)
    assert enforcer.reconcile() and source_muted()
    enforcer.set_mute(False)
    assert enforcer.reconcile() and not source_muted()


def test_a_volume_without_a_db_range_cannot_be_capped_and_says_so(pulse: Path) -> None:
    reports: list[tuple[bool, str]] = []
    enforcer = MixerEnforcer("pulse", report=lambda ok, d: reports.append((ok, d)))
    before = sink_volume()
    enforcer.set_cap(-6.0)
    enforcer.set_mute(True)
    assert enforcer.reconcile() is False
    assert reports == [
        (
            False,
            "'Master Playback Volume' on pulse has no dB range (amixer shows no dB line): "
            "cannot cap the receive gain at -6.0 dB",
        )
    ]
    assert sink_volume() == before and source_muted()  # the mute went through all the same
    enforcer.set_cap(None)
    assert enforcer.reconcile() is True
    assert reports[-1] == (True, "mixer pulse")


def test_the_capture_driver_enforces_on_its_mixer_and_restores_at_stop(pulse: Path) -> None:
    got: list[object] = []
    audio = SoundDeviceAudio(
        "no-such-capture-device", mixer="pulse", mixer_recheck_s=0.2, retry_initial_s=5.0
    )
    audio.start(got.append)
    try:
        audio.set_mic_mute(True)
        wait_until(source_muted, 10, "the mic muted through the mixer")
        audio.set_rx_cap(-6.0)
        wait_until(lambda: any(isinstance(g, MixerStatus) for g in got), 10, "a MixerStatus")
    finally:
        audio.stop()
    assert not source_muted()  # stop puts back what the mute replaced
    failed, released = [g for g in got if isinstance(g, MixerStatus)]
    assert failed.ok is False and "cannot cap the receive gain at -6.0 dB" in failed.detail
    assert released == MixerStatus(ok=True, detail="mixer pulse")  # the cap was lifted at stop


def test_a_mixer_failure_becomes_an_event_a_supervisor_sees() -> None:
    from schema_support import validate

    h = Harness()
    h.at(1.0, MixerStatus(ok=False, detail="amixer -D hw:31 contents: no such card"))
    h.at(2.0, MixerStatus(ok=True, detail="mixer hw:31"))
    assert h.events("headset.mixer") == [
        (1.0, "headset.mixer_failed", {"detail": "amixer -D hw:31 contents: no such card"}),
        (2.0, "headset.mixer_restored", {"detail": "mixer hw:31"}),
    ]
    for _, event in h.effects:
        if hasattr(event, "type"):
            validate("event", event_payload("12-89abcdef", event))  # type: ignore[arg-type]


# --- what to put back survives a crash (restore_file in the state folder) ---------------------------

CRASHING_SEAT = """
import sys
from drivers.audio.alsa_mixer import MixerEnforcer
enforcer = MixerEnforcer("pulse", restore_file=sys.argv[1])
enforcer.set_mute(True)
assert enforcer.reconcile()
print("muted", flush=True)
sys.stdin.read()  # until the test kills us
"""


@pytest.mark.parametrize("mixer", ["pulse", "none"])
def test_a_mute_left_by_a_crash_is_put_back_at_the_next_start(
    pulse: Path, caplog: pytest.LogCaptureFixture, mixer: str
) -> None:
    """Also when enforcement was switched off ([audio] mixer = "none") before the restart."""
    state = pulse / "state"
    state.mkdir()
    record = state / RESTORE_FILE_NAME
    seat = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SEAT, str(record)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert seat.stdout is not None and seat.stdout.readline() == "muted\n"
    finally:
        seat.kill()  # SIGKILL while the mic is force-muted: no stop(), nothing put back
        seat.wait(10)
    assert source_muted()
    held = json.loads(record.read_text())
    assert held["device"] == "pulse" and held["volume"] is None
    assert (held["switch"]["before"], held["switch"]["written"]) == (["on"], ["off"])
    name = held["switch"]["name"]
    assert [p.name for p in state.iterdir()] == [RESTORE_FILE_NAME]  # no temp file left

    caplog.set_level(logging.INFO, logger="drivers.audio.alsa_mixer")
    audio = SoundDeviceAudio(
        "no-such-capture-device", mixer=mixer, mixer_recheck_s=0.2, retry_initial_s=5.0,
        mixer_restore_file=record,
    )  # fmt: skip
    audio.start(lambda item: None)
    try:
        wait_until(lambda: not source_muted(), 10, "the mic switched back on at start")
        wait_until(lambda: not record.exists(), 10, "the record removed once put back")
    finally:
        audio.stop()
    assert not source_muted()
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"headset mixer pulse: the last run ended without putting back {name!r} to on; "
        "putting it back"
    ) in messages
    assert f"headset mixer pulse: {name!r} restored to on" in messages


def test_the_record_follows_what_is_held_and_is_gone_after_a_clean_release(pulse: Path) -> None:
    record = pulse / RESTORE_FILE_NAME
    enforcer = MixerEnforcer("pulse", restore_file=record)
    assert enforcer.reconcile() and not record.exists()  # nothing held, no file
    enforcer.set_mute(True)
    assert enforcer.reconcile() and source_muted()
    assert json.loads(record.read_text())["switch"]["written"] == ["off"]
    enforcer.set_mute(False)
    assert enforcer.reconcile() and not source_muted()
    assert not record.exists()


def test_a_wanted_mute_at_restart_keeps_the_value_from_before_the_crash(pulse: Path) -> None:
    record = pulse / RESTORE_FILE_NAME
    crashed = MixerEnforcer("pulse", restore_file=record)
    crashed.set_mute(True)
    assert crashed.reconcile() and source_muted()  # and then the process dies
    restarted = MixerEnforcer("pulse", restore_file=record)
    restarted.recover()
    restarted.set_mute(True)  # the seat mutes again before the first pass (on hold)
    assert restarted.reconcile() and source_muted()
    assert json.loads(record.read_text())["switch"]["before"] == ["on"]  # not the forced "off"
    restarted.set_mute(False)
    assert restarted.reconcile() and not source_muted() and not record.exists()


def test_a_record_that_is_not_one_or_is_for_another_card_is_removed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / RESTORE_FILE_NAME
    record.write_text('{"device": "hw:2", "switch": {"numid": 5, "before": ["on"]}}')
    enforcer = MixerEnforcer("hw:2", restore_file=record)
    enforcer.recover()
    assert not record.exists()
    assert caplog.messages[-1].startswith(
        f"headset mixer: {record} is not a restore record (switch: expected numid, name, "
        "before and written"
    )
    record.write_text("{not json")
    enforcer.recover()
    assert not record.exists() and "is not a restore record" in caplog.messages[-1]
    record.write_text(
        json.dumps({"device": "hw:3", "volume": None, "switch": {
            "numid": 5, "name": "Mic Capture Switch", "before": ["on"], "written": ["off"]}})
    )  # fmt: skip
    enforcer.recover()  # configured for hw:2 now: that record belongs to another card
    assert not record.exists()
    assert caplog.messages[-1] == (
        f"headset mixer: {record} was written for hw:3, the mixer is now hw:2; removed"
    )
    assert enforcer.reconcile()  # nothing held: nothing to do, nothing raised
