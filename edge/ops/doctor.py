"""The box's self-check: one small function per check, each saying OK / WARN / FAIL and what to do.

`run_checks` is what `seatbox doctor` prints and what the service publishes in `info` at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import grp
import json
import logging
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from drivers.hid.descriptor import DescriptorError
from drivers.hid.hidraw import enumerate_sysfs
from drivers.hid.layout import LED_USAGES, TelephonyLayout, layout_from_bytes
from drivers.radar.ld2410 import RadarError
from drivers.radar.probe import RadarProbe, probe
from edge.base.errors import ConfigError
from edge.ops.provision import check_broker
from edge.shell.config import AudioSection, RadarSection, SeatConfig, load_config
from edge.shell.config_check import load_seat
from edge.shell.outbox.store import DEFAULT_MEMORY_BYTES, RECOVER_FREE_BYTES

log = logging.getLogger(__name__)

Status = Literal["OK", "WARN", "FAIL"]
CHECK_NAMES = (
    "config",
    "broker",
    "headset",
    "audio",
    "microphone",
    "radar",
    "clock",
    "disk",
    "outbox",
    "permissions",
)
SERVICE_USER = "seatbox"

# Outbox budget: a day of a busy seat's events is a few MB; below these the outbox may
# have to drop events while the broker is away.
DISK_FAIL_BYTES = 20 * 1024 * 1024
DISK_WARN_BYTES = 100 * 1024 * 1024

# Microphone signal: a live headset mic's self-noise and room sound sit well above this;
# digital silence (-100 dBov) or a muted/unplugged capsule sits below.
MIC_SILENT_DBOV = -70.0
MIC_PROBE_SECONDS = 1.0

# The seat's outbox (edge.shell.runtime.open_outbox opens <state_dir>/outbox.sqlite).
OUTBOX_FILE = "outbox.sqlite"
# Connected, the pump publishes an event within milliseconds, and a lost connection is retried
# at least every 30 s (edge/shell/mqtt/link.py, reconnect max_delay): an unacknowledged event older than
# 5 min means the broker has been out of reach for many attempts, or the seat is not running.
OUTBOX_BACKLOG_WARN_S = 300.0
# The budget drops events once full (docs/reliability.md): above 80 % a longer outage will
# start dropping informational events, time to look before it happens.
OUTBOX_USAGE_WARN = 0.80
# quick_check reads every page: ~0.1 s for a full 64 MB outbox on a Pi 4's SD card; stop and
# say "not checked" rather than hold up doctor (or the seat's start) on a dying disk.
OUTBOX_CHECK_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def checks_json(checks: Iterable[Check]) -> dict[str, list[dict[str, str]]]:
    """The `doctor --json` document and the `checks` part of `info`."""
    return {"checks": [check.to_dict() for check in checks]}


def worst(checks: Iterable[Check]) -> Status:
    statuses = {check.status for check in checks}
    return "FAIL" if "FAIL" in statuses else "WARN" if "WARN" in statuses else "OK"


# --- what the checks look at (tests point these at a scratch tree) -------------------------


@dataclass(frozen=True)
class ClockState:
    synchronised: bool | None  # None: cannot tell
    detail: str


@dataclass(frozen=True)
class MicReading:
    """What the microphone produced during the probe: levels only (dsp/ measured them)."""

    ok: bool
    rms_dbov: float = -100.0
    detail: str = ""


@dataclass(frozen=True)
class Host:
    sys_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    service_user: str = SERVICE_USER
    broker_timeout: float = 10.0
    clock: Callable[[], ClockState] = field(default=lambda: kernel_clock_state())
    mic_probe: Callable[[AudioSection, float], MicReading] = field(
        default=lambda audio, seconds: probe_microphone(audio, seconds)
    )
    audio_devices: Callable[[], list[dict[str, Any]]] = field(default=lambda: portaudio_devices())
    wall_clock: Callable[[], float] = time.time  # epoch seconds, as the outbox stamps events


# --- headset --------------------------------------------------------------------------------


def is_telephony_headset(descriptor: bytes) -> bool:
    """True when the descriptor has a Telephony collection with a Hook Switch or Phone Mute
    (drivers.hid.layout, the parser the seat itself uses)."""
    try:
        return layout_from_bytes(descriptor).telephony
    except DescriptorError:
        return False


@dataclass(frozen=True)
class HidNode:
    name: str  # hidraw0
    path: Path  # /dev/hidraw0
    product: str
    usb_id: str  # 0b0e:2453
    layout: TelephonyLayout | None  # None: the descriptor could not be parsed
    problem: str = ""  # why not

    @property
    def telephony(self) -> bool:
        return self.layout is not None and self.layout.telephony


def hid_nodes(host: Host) -> list[HidNode]:
    """The hidraw nodes from sysfs (as the kernel lists them), laid out by drivers.hid."""
    nodes = []
    for candidate in enumerate_sysfs(host.sys_root, host.dev_root):
        info = candidate.info
        product = info.product or "unknown"
        if info.manufacturer and not product.startswith(info.manufacturer):
            product = f"{info.manufacturer} {product}"
        layout: TelephonyLayout | None = None
        problem = ""
        try:
            layout = layout_from_bytes(candidate.descriptor)
        except DescriptorError as exc:
            problem = str(exc)
        path = Path(candidate.path)
        usb_id = f"{info.vendor_id:04x}:{info.product_id:04x}"
        nodes.append(HidNode(path.name, path, product, usb_id, layout, problem))
    return nodes


def missing_controls(layout: TelephonyLayout) -> list[str]:
    """What the seat uses of a headset and this one lacks, each with what it costs."""
    missing = []
    if "hook_switch" not in layout.inputs:
        missing.append("no hook switch: answering and ending calls on the headset is not seen")
    if "phone_mute" not in layout.inputs and "consumer_mute" not in layout.inputs:
        missing.append("no mute button: the agent has to mute in the softphone")
    if "off_hook" not in layout.leds:
        missing.append("no off-hook LED: the headset cannot show the call")
    if "mute" not in layout.leds and "microphone" not in layout.leds:
        missing.append("no mute LED: the headset cannot show that the mic is muted")
    return missing


def _open_error(path: Path) -> str:
    """Open the node read+write and close it again: "" or why it failed (a stale node, a
    security module); hidraw allows many openers, so a running seat is not disturbed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    return ""


def check_headset(config: SeatConfig, host: Host) -> Check:
    device = config.headset.device
    if device == "virtual":
        return Check("headset", "OK", "virtual headset (simulated seat)")
    if device == "none":
        return Check(
            "headset", "WARN", "no headset configured ([headset] device = none)",
            "set [headset] device = auto to use the seat's USB headset",
        )  # fmt: skip
    nodes = hid_nodes(host)
    telephony = [n for n in nodes if n.telephony]
    if device != "auto":
        match = [n for n in nodes if str(n.path) == device or n.name == Path(device).name]
        if not match:
            return Check(
                "headset", "FAIL", f"{device} not present",
                "plug in the headset, or set [headset] device = auto",
            )  # fmt: skip
        if match[0].layout is None:
            return Check(
                "headset", "FAIL",
                f"{device} ({match[0].product}, {match[0].usb_id}): its report descriptor "
                f"cannot be read ({match[0].problem})",
                "send the descriptor (docs/headsets.md: how to save it) with this message",
            )  # fmt: skip
        if not match[0].telephony:
            return Check(
                "headset", "FAIL",
                f"{device} ({match[0].product}, {match[0].usb_id}) has no telephony controls",
                "use a headset with call controls (HID Telephony page), or set device = auto",
            )  # fmt: skip
        telephony = match
    if not telephony:
        others = ", ".join(f"{n.name} {n.product} ({n.usb_id})" for n in nodes) or "none"
        return Check(
            "headset", "FAIL", f"no telephony headset found (HID devices: {others})",
            "plug the headset's USB cable into the box; a gaming or plain audio headset has no "
            "call buttons and cannot be used",
        )  # fmt: skip
    first = telephony[0]
    assert first.layout is not None  # telephony
    more = f" (+{len(telephony) - 1} more)" if len(telephony) > 1 else ""
    found = f"{first.product} ({first.usb_id}) at {first.path}{more}"
    if not first.path.exists():
        return Check(
            "headset", "FAIL", f"{found}: the kernel lists {first.name} but {first.path} is missing",
            "udevadm trigger, or replug the headset",
        )  # fmt: skip
    who = service_identity(host)
    if not can_access(first.path, who, os.R_OK | os.W_OK):
        info = first.path.stat()
        return Check(
            "headset", "FAIL",
            f"{found}: {who.name} cannot read and write it ({stat.filemode(info.st_mode)} "
            f"group {_group_name(info.st_gid)}): no buttons, no LEDs",
            "install the udev rules (sudo make install), then replug the headset or run "
            "udevadm trigger",
        )  # fmt: skip
    if os.geteuid() in (0, who.uid):  # we can speak for the service user: try it for real
        problem = _open_error(first.path)
        if problem:
            return Check("headset", "FAIL", f"{found}: cannot open it: {problem}",
                         "replug the headset; if it stays, reboot the box")  # fmt: skip
    missing = missing_controls(first.layout)
    if missing:
        return Check(
            "headset", "WARN", f"{found}: {'; '.join(missing)}",
            "a headset with full call control works best (docs/headsets.md); "
            "seatbox headset list shows what this one has",
        )  # fmt: skip
    leds = "/".join(name for name in LED_USAGES if name in first.layout.leds)
    return Check(
        "headset",
        "OK",
        f"{found}: hook switch, mute, LEDs {leds}; {who.name} can read and write it",
    )


# --- audio ----------------------------------------------------------------------------------


def portaudio_devices() -> list[dict[str, Any]]:
    import sounddevice

    return [dict(d) for d in sounddevice.query_devices()]


def probe_microphone(audio: AudioSection, seconds: float) -> MicReading:
    """Capture `seconds` from the mic through the real audio driver; only levels come back."""
    import drivers.audio.capture as audio_driver

    driver_class = getattr(audio_driver, "SoundDeviceAudio", None)
    if driver_class is None:
        return MicReading(False, detail="this build has no real audio capture driver")
    levels: list[float] = []
    failure: list[str] = []
    enough = threading.Event()
    wanted = max(1, int(seconds * audio.levels_hz))

    def sink(item: object) -> None:
        tx = getattr(item, "tx", None)
        if tx is not None:
            levels.append(float(tx.rms_dbov))
            if len(levels) >= wanted:
                enough.set()
        elif getattr(item, "ok", True) is False:
            failure.append(str(getattr(item, "detail", "capture failed")))
            enough.set()

    driver = driver_class(
        tx_device=audio.tx_device,
        samplerate=audio.samplerate,
        block_s=audio.block,
        levels_hz=audio.levels_hz,
    )
    driver.start(sink)
    try:
        enough.wait(seconds + 5.0)  # device start-up plus the capture itself
    finally:
        driver.stop()
    if failure and not levels:
        return MicReading(False, detail=failure[0])
    if not levels:
        return MicReading(
            False, detail=f"no audio from {audio.tx_device!r} within {seconds + 5:g} s"
        )
    return MicReading(True, rms_dbov=max(levels))


def check_audio(config: SeatConfig, host: Host) -> Check:
    audio = config.audio
    if audio.backend == "virtual":
        return Check("audio", "OK", "virtual audio (simulated seat)")
    if audio.backend == "none":
        return Check(
            "audio", "WARN", "audio measurement off ([audio] backend = none)",
            "set [audio] backend = sounddevice to measure levels and enforce hearing limits",
        )  # fmt: skip
    try:
        devices = host.audio_devices()
    except OSError as exc:
        return Check(
            "audio", "FAIL", f"PortAudio is not available ({exc})",
            "install it: apt-get install libportaudio2",
        )  # fmt: skip
    inputs = [d for d in devices if int(d.get("max_input_channels", 0)) > 0]
    names = ", ".join(repr(d["name"]) for d in inputs) or "none"
    if not audio.tx_device:
        return Check(
            "audio", "FAIL", f"[audio] tx_device is empty (capture devices: {names})",
            "set [audio] tx_device to the headset's capture device name from this list",
        )  # fmt: skip
    missing = []
    for key in ("tx_device", "rx_device"):
        wanted = getattr(audio, key)
        if wanted and not any(wanted == d["name"] or wanted in d["name"] for d in inputs):
            missing.append(f"[audio] {key} {wanted!r}")
    if missing:
        return Check(
            "audio", "FAIL", f"{' and '.join(missing)} not found (capture devices: {names})",
            "plug in the headset; or set the device names to ones listed here",
        )  # fmt: skip
    rx = f", rx {audio.rx_device!r}" if audio.rx_device else ""
    return Check("audio", "OK", f"tx {audio.tx_device!r}{rx} present")


def check_microphone(config: SeatConfig, host: Host, audio_ok: bool) -> Check:
    audio = config.audio
    if audio.backend == "virtual":
        return Check("microphone", "OK", "virtual microphone (simulated seat)")
    if audio.backend == "none":
        return Check("microphone", "WARN", "not checked: audio measurement is off")
    if not audio_ok:
        return Check("microphone", "WARN", "not checked: the audio device is missing",
                     "fix the audio check first")  # fmt: skip
    try:
        reading = host.mic_probe(audio, MIC_PROBE_SECONDS)
    except Exception as exc:  # a driver failure is a finding, not a doctor crash
        reading = MicReading(False, detail=f"{type(exc).__name__}: {exc}")
    if not reading.ok:
        return Check(
            "microphone", "FAIL", f"capture from {audio.tx_device!r} failed: {reading.detail}",
            "replug the headset; check no other program holds the device",
        )  # fmt: skip
    if reading.rms_dbov < MIC_SILENT_DBOV:
        return Check(
            "microphone", "WARN",
            f"silent: {reading.rms_dbov:.1f} dBov RMS (below {MIC_SILENT_DBOV:g} dBov)",
            "check the headset's mute switch and boom; speak into the mic and run doctor again",
        )  # fmt: skip
    return Check("microphone", "OK", f"signal {reading.rms_dbov:.1f} dBov RMS")


# --- radar ----------------------------------------------------------------------------------

LD2410_FRAMES = (
    "LD2410 frames (data F4 F3 F2 F1 ... F8 F7 F6 F5, answers FD FC FB FA ... 04 03 02 01)"
)


def check_radar(config: SeatConfig, host: Host) -> Check:
    radar = config.radar
    if radar.backend == "virtual":
        return Check("radar", "OK", "virtual radar (simulated seat)")
    if radar.backend == "none":
        return Check(
            "radar", "WARN", "no presence radar ([radar] backend = none): away is not measured",
            "connect the LD2410 and set [radar] backend = ld2410",
        )  # fmt: skip
    if not radar.port:
        return Check(
            "radar", "FAIL", "[radar] port is empty", "set [radar] port (e.g. /dev/seatbox-radar)"
        )
    if not os.path.exists(radar.port):
        return Check(
            "radar", "FAIL", f"{radar.port} not present",
            "check the radar's USB-serial adapter is plugged in and 61-seatbox-radar.rules "
            "is installed (sudo make install)",
        )  # fmt: skip
    try:
        # About 1.3 s: a second of frames, then the firmware version (drivers.radar.probe).
        heard = probe(radar.port, radar.baudrate)
    except RadarError as exc:
        if "exclusively lock" in str(exc):
            return Check(
                "radar", "WARN", f"{radar.port} not probed: another program holds it "
                "(the running seat?)",
                "the seat's own radar status is in its state (radar.ok); to probe the radar "
                "here, systemctl stop seatbox, run doctor, systemctl start seatbox",
            )  # fmt: skip
        return Check(
            "radar", "FAIL", str(exc),
            "check the permissions check below and that nothing else uses the port",
        )  # fmt: skip
    return radar_verdict(heard, radar)


def radar_verdict(heard: RadarProbe, radar: RadarSection) -> Check:
    port, during = heard.port, f"{heard.listened_s:.1f} s"
    if heard.not_ld2410:
        return Check("radar", "FAIL", heard.not_ld2410,
                     "seatbox reads an HLK-LD2410, LD2410B or LD2410C")  # fmt: skip
    if not heard.data_frames:
        if heard.firmware or heard.answered:
            firmware = f" (firmware {heard.firmware})" if heard.firmware else ""
            return Check(
                "radar", "FAIL",
                f"{port}: the LD2410{firmware} answers commands but sent no report in {during}",
                "power-cycle the radar (a frozen module answers but does not measure)",
            )  # fmt: skip
        if heard.received:
            return Check(
                "radar", "FAIL",
                f"{port}: {heard.received} bytes in {during} but no valid frame; expected "
                f"{LD2410_FRAMES} at {radar.baudrate} baud",
                "a wrong baud rate or another device on this port: the LD2410 ships at 256000 "
                "baud ([radar] baudrate); check [radar] port names the radar's adapter",
            )  # fmt: skip
        return Check(
            "radar", "FAIL",
            f"{port}: nothing received in {during} and no answer to end-config "
            f"({heard.command_error or 'no answer'})",
            "check the radar's 5 V supply and wiring (radar TX to adapter RX, RX to TX, ground); "
            "power-cycle it",
        )  # fmt: skip
    kinds = " and ".join(f"{kind} frames" for kind in sorted(heard.frames))
    stream = f"{kinds} at {heard.rate:.0f}/s"
    if heard.firmware:
        found = f"{port}: LD2410 firmware {heard.firmware}, {stream}"
    else:
        found = f"{port}: LD2410 {stream}, firmware not read ({heard.command_error})"
    if heard.was_in_config_mode:
        found += " (it was left in configuration mode; ended it)"
    if heard.noisy:
        return Check(
            "radar", "WARN",
            f"{found}; but {heard.stray} of {heard.received} bytes were not part of a valid "
            f"frame ({heard.malformed} cut short or garbled): expected only {LD2410_FRAMES}",
            "noise on the serial line: a loose or long cable, a missing ground, or boot "
            "messages on a Pi UART (use a USB-serial adapter)",
        )  # fmt: skip
    return Check("radar", "OK", found)


# --- clock ----------------------------------------------------------------------------------


class _Timex(ctypes.Structure):
    # struct timex (adjtimex(2)); only the head is read, the tail is room for the kernel.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


STA_UNSYNC = 0x0040  # adjtimex(2): clock not synchronised
TIME_ERROR = 5  # adjtimex(2) return: clock not synchronised
# timedated's rule (NTPSynchronized): maxerror below 16 s counts as synchronised.
MAX_SYNC_ERROR_US = 16_000_000


def kernel_clock_state() -> ClockState:
    """Ask the kernel (adjtimex, read-only) like timedatectl does; fall back to timedatectl."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
        if state == -1:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        synced = (
            state != TIME_ERROR
            and not timex.status & STA_UNSYNC
            and timex.maxerror < MAX_SYNC_ERROR_US
        )
        return ClockState(synced, f"kernel: maxerror {timex.maxerror / 1e6:.1f} s")
    except (OSError, AttributeError) as exc:
        # The service's ProtectClock= filters adjtimex (EPERM): ask timedated instead.
        if isinstance(exc, OSError) and exc.errno not in (errno.EPERM, errno.ENOSYS, None):
            log.debug("adjtimex: %s", exc)
    return timedatectl_state()


def timedatectl_state() -> ClockState:
    if not shutil.which("timedatectl"):
        return ClockState(None, "cannot read the clock state (no adjtimex, no timedatectl)")
    result = subprocess.run(
        ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    value = result.stdout.strip()
    if result.returncode != 0 or value not in ("yes", "no"):
        return ClockState(None, f"timedatectl: {(result.stderr or value).strip() or 'no answer'}")
    return ClockState(value == "yes", "timedatectl NTPSynchronized")


def check_clock(host: Host) -> Check:
    state = host.clock()
    if state.synchronised is None:
        return Check(
            "clock", "WARN", f"synchronisation unknown ({state.detail})",
            "check NTP: timedatectl timesync-status (attendance times depend on the clock)",
        )  # fmt: skip
    if not state.synchronised:
        return Check(
            "clock", "FAIL", f"not synchronised ({state.detail}): attendance times would be wrong",
            "enable NTP: timedatectl set-ntp true; make sure the site's NTP server is reachable",
        )  # fmt: skip
    return Check("clock", "OK", f"synchronised ({state.detail})")


# --- disk and permissions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gids: frozenset[int]


def service_identity(host: Host) -> Identity:
    """The service user when it exists (doctor run as root checks for it), else ourselves."""
    try:
        user = pwd.getpwnam(host.service_user)
        gids = frozenset(os.getgrouplist(user.pw_name, user.pw_gid))
        return Identity(user.pw_name, user.pw_uid, gids)
    except KeyError:
        uid = os.geteuid()
        name = pwd.getpwuid(uid).pw_name if uid >= 0 else str(uid)
        return Identity(name, uid, frozenset(os.getgroups()) | {os.getegid()})


def can_access(path: Path, who: Identity, want: int) -> bool:
    """Would `who` get `want` (os.R_OK | os.W_OK ...) on path by its mode bits?"""
    info = path.stat()
    if who.uid == 0:
        return True
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == who.uid:
        bits = mode >> 6
    elif info.st_gid in who.gids:
        bits = mode >> 3
    else:
        bits = mode
    return (bits & want) == want


def check_disk(config: SeatConfig, host: Host) -> Check:
    state = Path(config.storage.state_dir)
    if not state.is_dir():
        return Check(
            "disk", "FAIL", f"state folder {state} does not exist",
            "run sudo make install (or systemd-tmpfiles --create /etc/tmpfiles.d/seatbox.conf)",
        )  # fmt: skip
    who = service_identity(host)
    if not can_access(state, who, os.W_OK | os.X_OK):
        return Check(
            "disk", "FAIL", f"{state} is not writable by {who.name}",
            f"chown {who.name} {state} (systemd-tmpfiles --create sets it)",
        )  # fmt: skip
    fs = os.statvfs(state)
    free = fs.f_bavail * fs.f_frsize
    free_mb = free / (1024 * 1024)
    if free < DISK_FAIL_BYTES:
        return Check(
            "disk", "FAIL", f"{free_mb:.0f} MB free in {state}: the outbox cannot keep events",
            "free space: old tapes in /var/lib/seatbox/tapes, the journal (journalctl --vacuum)",
        )  # fmt: skip
    if free < DISK_WARN_BYTES:
        return Check(
            "disk", "WARN", f"only {free_mb:.0f} MB free in {state}",
            "free space before the outbox fills: old tapes, journal (journalctl --vacuum-size)",
        )  # fmt: skip
    return Check("disk", "OK", f"{free_mb:.0f} MB free in {state}")


# --- outbox -----------------------------------------------------------------------------------


class OutboxUnreadable(Exception):
    """The outbox file is there but SQLite cannot read it as an outbox (damaged, foreign)."""


@dataclass(frozen=True)
class OutboxReading:
    pending: int  # stored, not yet acknowledged by the broker
    oldest_pending: float | None  # epoch seconds the oldest of them was stored
    used_bytes: int  # what the disk budget counts (edge.shell.outbox.store: the sum of `size`)
    lost: dict[str, int]  # drops not yet reported in an outbox.loss event, by event type
    integrity_checked: bool  # False: quick_check did not finish within OUTBOX_CHECK_S
    lost_disk_full: dict[str, int] = field(default_factory=dict)  # dropped from memory


def _fingerprint(path: Path) -> tuple[int, int, int, int]:
    info = path.stat()
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def read_outbox(path: Path, limit_s: float = OUTBOX_CHECK_S) -> OutboxReading:
    """Read the seat's outbox without writing anything, not even files next to it.

    With a seat running (its -wal file exists) a `mode=ro` connection is one more WAL reader,
    which never blocks the writer. Without one, `mode=ro` would create -wal and -shm files
    owned by whoever runs doctor, so the file is read `immutable` instead, and read again the
    ordinary way if a seat opened it meanwhile.
    """
    wal = Path(f"{path}-wal")
    quiet = not wal.exists()
    before = _fingerprint(path) if quiet else None
    reading = _query_outbox(path, quiet, limit_s)
    if quiet and (wal.exists() or _fingerprint(path) != before):
        reading = _query_outbox(path, not wal.exists(), limit_s)
    return reading


def _query_outbox(path: Path, immutable: bool, limit_s: float) -> OutboxReading:
    uri = path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    try:
        db = sqlite3.connect(uri, uri=True, timeout=1.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise OutboxUnreadable(f"cannot open it ({exc})") from exc
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not {"entry", "meta"} <= tables:
            raise OutboxUnreadable("not a seatbox outbox (no `entry` and `meta` tables)")
        checked = True
        started = time.monotonic()
        # quick_check past the limit is interrupted (SQLITE_INTERRUPT, "interrupted").
        db.set_progress_handler(lambda: int(time.monotonic() - started > limit_s), 10_000)
        try:
            problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            checked, problems = False, ["ok"]
        db.set_progress_handler(None, 0)  # the counts below are one index or table scan each
        if problems != ["ok"]:
            raise OutboxUnreadable(f"integrity check failed: {'; '.join(problems)}")
        pending, oldest = db.execute(
            "SELECT COUNT(*), MIN(created) FROM entry WHERE acked IS NULL"
        ).fetchone()
        used = db.execute("SELECT COALESCE(SUM(size), 0) FROM entry").fetchone()[0]
        records = dict(
            db.execute("SELECT key, value FROM meta WHERE key IN ('loss', 'loss.disk_full')")
        )
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        raise OutboxUnreadable(str(exc)) from exc
    finally:
        db.close()
    lost = {key: _loss_record(key, records.get(key)) for key in ("loss", "loss.disk_full")}
    return OutboxReading(
        int(pending), oldest, int(used), lost["loss"], checked, lost["loss.disk_full"]
    )


def _loss_record(key: str, text: object) -> dict[str, int]:
    if not text:
        return {}
    try:
        return {str(k): int(v) for k, v in json.loads(str(text))["dropped"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # The seat would set this outbox aside at start (edge.shell.outbox.store reads the record).
        raise OutboxUnreadable(f"its loss record (meta '{key}') is not readable: {exc}") from exc


def _set_aside(state: Path) -> list[Path]:
    """Damaged outboxes the seat kept (edge.shell.outbox.store: `outbox.sqlite.corrupt-<UTC time>`)."""
    return sorted(
        p for p in state.glob(f"{OUTBOX_FILE}.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    )


def _free_bytes(path: Path) -> int:
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def check_outbox(config: SeatConfig, host: Host) -> Check:
    state = Path(config.storage.state_dir)
    if not state.is_dir():
        return Check("outbox", "WARN", "not checked: the state folder is missing",
                     "see the disk check")  # fmt: skip
    free = _free_bytes(state)
    if free < RECOVER_FREE_BYTES:
        return Check(
            "outbox", "FAIL",
            f"the disk holding {state} is full ({free // 1024} KiB free): the outbox cannot "
            f"write. A running seat holds new events in memory (up to "
            f"{_megabytes(DEFAULT_MEMORY_BYTES)}, then drops informational ones first and "
            "reports them in outbox.loss) and writes them once "
            f"{_megabytes(RECOVER_FREE_BYTES)} are free; a restart or power cut before then "
            "loses what it holds",
            "free space on that file system now (old tapes in tapes/, the journal: "
            "journalctl --vacuum-size=50M); the seat's state `storage` and "
            "systemctl status seatbox say when it has written them",
        )  # fmt: skip
    kept = _set_aside(state)
    check = _check_outbox_file(config, host, state)
    if not kept or check.status == "FAIL":
        return check
    names = ", ".join(f"{p.name} ({_megabytes(p.stat().st_size)})" for p in kept)
    problem = (
        f"the seat found its outbox damaged and set it aside: {names}; events not yet "
        "published from it were not sent (the seat reported this in an outbox.reset event)"
    )
    fix = (
        f"to salvage them: sqlite3 {kept[-1]} .recover > salvage.sql; when done, delete "
        f"{state}/{OUTBOX_FILE}.corrupt-*; a disk that damages files again: check dmesg"
    )
    detail = problem if check.status == "OK" else f"{problem}; {check.detail}"
    return Check("outbox", "WARN", detail, fix if check.status == "OK" else f"{fix}; {check.fix}")


def _check_outbox_file(config: SeatConfig, host: Host, state: Path) -> Check:
    path = state / OUTBOX_FILE
    if not path.exists() or path.stat().st_size == 0:
        return Check("outbox", "OK", f"no outbox yet in {state} (the seat creates it at start)")
    who = service_identity(host)
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    denied = [p for p in files if not can_access(p, who, os.R_OK | os.W_OK)]
    if denied:
        listed = ", ".join(
            f"{p.name} ({stat.filemode(p.stat().st_mode)} {_user_name(p.stat().st_uid)})"
            for p in denied
        )
        return Check(
            "outbox", "FAIL", f"{who.name} cannot write {listed} in {state}: "
            "the seat cannot store its events",
            f"chown {who.name}: {path}* (a seat once started as root leaves root's files)",
        )  # fmt: skip
    if not all(os.access(p, os.R_OK) for p in files):
        me = pwd.getpwuid(os.geteuid()).pw_name
        return Check("outbox", "WARN", f"not checked: {me} cannot read {path}",
                     f"run doctor as root or as {who.name}")  # fmt: skip
    try:
        reading = read_outbox(path)
    except OutboxUnreadable as exc:
        return Check(
            "outbox", "FAIL", f"{path} is damaged: {exc}",
            "systemctl restart seatbox: the seat keeps the file as "
            f"{OUTBOX_FILE}.corrupt-<UTC time> (with its -wal, -shm) and starts a new outbox. "
            f"Events not yet published are in that file (sqlite3 <file> .recover can salvage "
            "them)",
        )  # fmt: skip
    budget = int(config.storage.outbox_budget_mb * 1024 * 1024)
    usage = reading.used_bytes / budget
    summary = f"{reading.pending} pending"
    age = 0.0
    if reading.oldest_pending is not None:
        age = max(0.0, host.wall_clock() - reading.oldest_pending)
        summary += f" (oldest {_duration_text(age)})"
    summary += (
        f", {_megabytes(reading.used_bytes)} of the {_megabytes(budget)} budget ({usage:.0%})"
    )
    problems: list[str] = []
    fixes: list[str] = []
    if reading.pending and age > OUTBOX_BACKLOG_WARN_S:
        replay = reading.pending / config.broker.replay_rate
        problems.append(
            f"{reading.pending} events not acknowledged by the broker, the oldest stored "
            f"{_duration_text(age)} ago"
        )
        fixes.append(
            "check the broker check and that the seat runs (systemctl status seatbox); once "
            f"connected it sends the backlog at [broker] replay_rate (about {_duration_text(replay)})"
        )
    if usage > OUTBOX_USAGE_WARN:
        problems.append(f"{usage:.0%} of the disk budget used")
        fixes.append(
            "at 100 % informational events are dropped first: get the broker back; if outages "
            "this long are normal, raise [storage] outbox_budget_mb"
        )
    if reading.lost:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(reading.lost.items()))
        problems.append(
            f"{sum(reading.lost.values())} events dropped by the budget, not yet reported ({kinds})"
        )
        fixes.append("the seat reports them in an outbox.loss event once the broker is back")
    if reading.lost_disk_full:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(reading.lost_disk_full.items()))
        problems.append(
            f"{sum(reading.lost_disk_full.values())} events dropped while the disk was full, "
            f"not yet reported ({kinds})"
        )
        fixes.append("the seat reports them in an outbox.loss event once the broker is back")
    if not reading.integrity_checked:
        problems.append(f"integrity not checked: quick_check took over {OUTBOX_CHECK_S:g} s")
        fixes.append("a slow or failing disk: check dmesg for I/O errors")
    if problems:
        return Check("outbox", "WARN", f"{'; '.join(problems)} ({summary})", "; ".join(fixes))
    return Check("outbox", "OK", f"{summary}, integrity ok")


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def device_nodes(config: SeatConfig, host: Host) -> list[Path]:
    nodes: list[Path] = []
    if config.headset.device == "auto":
        nodes += [n.path for n in hid_nodes(host) if n.telephony]
    elif config.headset.device not in ("virtual", "none"):
        nodes.append(Path(config.headset.device))
    if config.radar.backend == "ld2410" and config.radar.port:
        nodes.append(Path(config.radar.port))
    if config.audio.backend == "sounddevice":
        snd = host.dev_root / "snd"
        nodes += sorted(p for p in snd.glob("pcmC*c") if not p.is_dir())
    return nodes


def check_permissions(config: SeatConfig, host: Host) -> Check:
    nodes = [p for p in device_nodes(config, host) if p.exists()]
    if not nodes:
        simulated = config.headset.device == "virtual" and config.radar.backend != "ld2410"
        detail = (
            "no device nodes to open (simulated seat)" if simulated else "no device nodes found"
        )
        return Check("permissions", "OK" if simulated else "WARN", detail,
                     "" if simulated else "see the headset, audio and radar checks")  # fmt: skip
    who = service_identity(host)
    denied = []
    for node in nodes:
        if not can_access(node, who, os.R_OK | os.W_OK):
            info = node.stat()
            group = _group_name(info.st_gid)
            denied.append(f"{node} ({stat.filemode(info.st_mode)} group {group})")
    if denied:
        return Check(
            "permissions", "FAIL", f"{who.name} cannot open: {', '.join(denied)}",
            "install the udev rules (sudo make install), then replug the device or run "
            "udevadm trigger; the service user needs groups seatbox, audio and dialout",
        )  # fmt: skip
    return Check("permissions", "OK", f"{who.name} can open {len(nodes)} device node(s)")


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# --- running them -----------------------------------------------------------------------------


def not_checked(name: str, why: str) -> Check:
    return Check(name, "WARN", f"not checked: {why}", "fix the config first")


def run_checks_for(
    config: SeatConfig, host: Host | None = None, *, broker: bool = True
) -> list[Check]:
    """Every check but `config` on an already-loaded config (the runtime's entry point);
    `broker=False` leaves out the broker check (it can take its whole timeout)."""
    host = host or Host()
    checks = [broker_check(config, host)] if broker else []
    checks.append(check_headset(config, host))
    audio = check_audio(config, host)
    checks += [
        audio,
        check_microphone(config, host, audio.status == "OK"),
        check_radar(config, host),
        check_clock(host),
        check_disk(config, host),
        check_outbox(config, host),
        check_permissions(config, host),
    ]
    return checks


def broker_check(config: SeatConfig, host: Host | None = None) -> Check:
    host = host or Host()
    broker = check_broker(config.broker, config.client_id, timeout=host.broker_timeout)
    return Check("broker", "OK" if broker.ok else "FAIL", broker.detail, broker.fix)


def run_checks(config_path: str | os.PathLike[str], host: Host | None = None) -> list[Check]:
    """All checks, in CHECK_NAMES order; a broken config is the first FAIL and names the problem."""
    host = host or Host()
    fix = "correct the config (seatbox config check FILE)"
    try:
        # The verdict of `seatbox config check` and `seatbox run` (one validation).
        config = load_seat(config_path).config
        first = Check(
            "config", "OK", f"{config_path}: seat {config.seat.site}/{config.seat.id}, "
            f"profile {config.seat.profile}",
        )  # fmt: skip
    except ConfigError as exc:
        first = Check("config", "FAIL", str(exc), fix)
        try:
            # The file itself is sound and only what it names on the box is wrong: the other
            # checks still run and say what a missing value should be (capture devices).
            config = load_config(config_path)
        except ConfigError:
            return [
                first,
                *(
                    check_clock(host)
                    if name == "clock"
                    else not_checked(name, "the config is invalid")
                    for name in CHECK_NAMES[1:]
                ),
            ]
    return [first, *run_checks_for(config, host)]
