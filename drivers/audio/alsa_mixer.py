"""The headset's own ALSA mixer: force its capture switch off, cap its playback volume in dB.

A USB Audio Class headset is an ALSA card of its own with mixer controls named by the kernel's
USB audio driver (`sound/usb/mixer.c`): `PCM Playback Volume` with a dB range (TLV
`dBminmax`), `Mic Capture Switch` or `Headset Capture Switch`, ... This module drives them
through `amixer` (alsa-utils) on the card's control device:

- `parse_contents` reads `amixer -D DEV contents` (every control: numid, name, type, range,
  values, dB range); `Control.db_at` / `Control.raw_at_most` convert between raw values and dB
  exactly as alsa-lib's `snd_tlv_convert_to_dB` does (integer centi-dB for dBscale/dBminmax).
- `MixerEnforcer` keeps a wanted state (mic muted or not, a receive cap in dB or none) and
  reconciles the card with it on every change and every `recheck_s` (so a volume raised with
  the headset's own buttons is capped again), remembering the values it replaced and putting
  them back on release, unless someone changed the control since. Failures are reported to a
  callback (the driver turns them into a `MixerStatus` input and the seat into an event), never
  raised into the caller. The values to put back are also kept in a small file (`restore_file`,
  in the seat's state folder), so a start after a crash puts them back too.

Why `amixer` and not pyalsaaudio: pyalsaaudio has no aarch64 wheel (a box would need gcc and
libasound2-dev) and Debian 12's python3-alsaaudio 0.8.4 predates its dB API; alsa-utils is a
Debian package, its `contents`/`cset` output and syntax have been stable for 20 years, and a
subprocess cannot crash the seat.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drivers.errors import DeviceError
from drivers.files import write_atomically

log = logging.getLogger(__name__)

# Preferred control names, most specific first (sound/usb/mixer.c terminal names).
CAPTURE_SWITCHES = ("Mic Capture Switch", "Headset Capture Switch", "Capture Switch")
PLAYBACK_VOLUMES = (
    "PCM Playback Volume",
    "Headset Playback Volume",
    "Headphone Playback Volume",
    "Speaker Playback Volume",
    "Master Playback Volume",
)
DB_MUTE = -9999999  # SND_CTL_TLV_DB_GAIN_MUTE, centi-dB
# The seat keeps the values to put back in <state_dir>/RESTORE_FILE_NAME (edge/shell/wiring.py).
RESTORE_FILE_NAME = "mixer-restore.json"


class MixerError(DeviceError):
    """A mixer action failed; the message says which device, control and what was expected."""


# --- parsing `amixer contents` ----------------------------------------------------------------


@dataclass(frozen=True)
class DbRange:
    """A control's dB information (ALSA TLV), in centi-dB as alsa-lib keeps it.

    `kind` is `scale` (min + step per raw unit), `minmax` / `minmaxmute` (min..max spread
    linearly in dB over the raw range) or `linear` (min..max spread linearly in amplitude).
    """

    kind: str
    min_cdb: int
    max_cdb: int = 0  # minmax, linear
    step_cdb: int = 0  # scale
    mute: bool = False  # the lowest raw value is silence (scale mute=1, minmaxmute)


@dataclass(frozen=True)
class Control:
    numid: int
    name: str
    index: int
    type: str  # BOOLEAN, INTEGER, ENUMERATED, ...
    minimum: int
    maximum: int
    values: tuple[str, ...]
    db: DbRange | None = None

    @property
    def ints(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.values)

    def db_at(self, raw: int) -> float:
        """The dB of a raw value (alsa-lib `snd_tlv_convert_to_dB`); -inf for a mute value."""
        if self.db is None:
            raise MixerError(f"control {self.name!r} has no dB range")
        db, lo, hi = self.db, self.minimum, self.maximum
        if db.kind == "scale":
            if raw <= lo and db.mute:
                return -math.inf
            return (db.min_cdb + (raw - lo) * db.step_cdb) / 100.0
        if db.kind in ("minmax", "minmaxmute"):
            if raw <= lo and db.mute:
                return -math.inf
            if hi <= lo:
                return db.min_cdb / 100.0
            return (int((db.max_cdb - db.min_cdb) * (raw - lo) / (hi - lo)) + db.min_cdb) / 100.0
        if db.kind == "linear":
            if raw <= lo:
                return -math.inf if db.min_cdb <= DB_MUTE else db.min_cdb / 100.0
            if raw >= hi:
                return db.max_cdb / 100.0
            vmin = 0.0 if db.min_cdb <= DB_MUTE else 10.0 ** (db.min_cdb / 2000.0)
            vmax = 10.0 ** (db.max_cdb / 2000.0)
            val = (vmax - vmin) * (raw - lo) / (hi - lo) + vmin
            return int(2000.0 * math.log10(val)) / 100.0
        raise MixerError(f"control {self.name!r}: dB range of kind {db.kind!r} is not supported")

    def raw_at_most(self, max_db: float) -> int:
        """The highest raw value at or below `max_db` (the lowest if none is): alsa-lib's
        `snd_tlv_convert_from_dB` rounding down, in integer centi-dB for dBscale and dBminmax."""
        if self.db is None:
            raise MixerError(f"control {self.name!r} has no dB range")
        db, lo, hi = self.db, self.minimum, self.maximum
        cdb = math.floor(max_db * 100 + 1e-6)
        if db.kind in ("scale", "minmax", "minmaxmute"):
            top = db.min_cdb + db.step_cdb * (hi - lo) if db.kind == "scale" else db.max_cdb
            if cdb <= db.min_cdb or top <= db.min_cdb:
                return lo
            if cdb >= top:
                return hi
            return (cdb - db.min_cdb) * (hi - lo) // (top - db.min_cdb) + lo
        if self.db_at(lo) > max_db:
            return lo
        while lo < hi:  # linear: db_at rises with raw, bisect for the last value <= max_db
            mid = (lo + hi + 1) // 2
            if self.db_at(mid) <= max_db + 1e-9:
                lo = mid
            else:
                hi = mid - 1
        return lo


_HEAD = re.compile(r"^numid=(\d+),iface=(\w+),name='(.*)'(?:,index=(\d+))?(?:,device=\d+)?\s*$")
_INFO = re.compile(r"^\s+; type=(\w+),access=[^,]*,values=(\d+)(?:,min=(-?\d+),max=(-?\d+))?")
_VALUES = re.compile(r"^\s+: values=(.*)$")
_CDB = r"(-?\d+)\.(\d\d)dB"
_TLV = re.compile(r"^\s+\| (dBscale|dBminmax|dBminmaxmute|dBlinear|dBrange)-(.*)$")


def _cdb(text: str) -> int:
    match = re.fullmatch(_CDB, text.strip())
    if not match:
        raise ValueError(f"not a dB value: {text!r}")
    whole, frac = match.groups()
    sign = -1 if whole.startswith("-") else 1
    return int(whole) * 100 + sign * int(frac)


def _parse_tlv(kind: str, rest: str) -> DbRange | None:
    fields = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    if kind == "dBscale":
        return DbRange(
            "scale",
            _cdb(fields["min"]),
            step_cdb=_cdb(fields["step"]),
            mute=fields.get("mute", "0").strip() == "1",
        )
    if kind in ("dBminmax", "dBminmaxmute"):
        return DbRange(
            kind[2:].lower(),
            _cdb(fields["min"]),
            max_cdb=_cdb(fields["max"]),
            mute=kind == "dBminmaxmute",
        )
    if kind == "dBlinear":
        return DbRange("linear", _cdb(fields["min"]), max_cdb=_cdb(fields["max"]))
    return None  # dBrange: several ranges; treated as "no usable dB range"


def parse_contents(text: str) -> list[Control]:
    """Controls from `amixer contents` (or `cget`) output; lines it does not know are skipped."""
    controls: list[Control] = []
    head: tuple[int, str, int] | None = None
    info: tuple[str, int, int] = ("", 0, 0)
    values: tuple[str, ...] = ()
    db: DbRange | None = None

    def flush() -> None:
        if head is not None:
            controls.append(
                Control(head[0], head[1], head[2], info[0], info[1], info[2], values, db)
            )

    for line in text.splitlines():
        if m := _HEAD.match(line):
            flush()
            head = (int(m.group(1)), m.group(3), int(m.group(4) or 0))
            info, values, db = ("", 0, 0), (), None
        elif head is None:
            continue
        elif m := _INFO.match(line):
            info = (m.group(1), int(m.group(3) or 0), int(m.group(4) or 1))
        elif m := _VALUES.match(line):
            values = tuple(v.strip() for v in m.group(1).split(","))
        elif m := _TLV.match(line):
            try:
                db = _parse_tlv(m.group(1), m.group(2))
            except (KeyError, ValueError):
                db = None
    flush()
    return controls


def pick(
    controls: Sequence[Control], wanted: str, preferred: Sequence[str], suffix: str, kind: str
) -> Control:
    """The control named `wanted` (when given), else the first preferred name, else any `suffix`."""
    typed = [c for c in controls if c.type == kind]
    if wanted:
        for control in typed:
            if control.name == wanted:
                return control
        raise MixerError(
            f"no {kind} control named {wanted!r}; found {sorted({c.name for c in typed})}"
        )
    for name in preferred:
        for control in typed:
            if control.name == name:
                return control
    for control in typed:
        if control.name.endswith(suffix):
            return control
    raise MixerError(
        f"no {kind} control ending in {suffix!r}; found {sorted({c.name for c in controls})}"
    )


# --- which card -------------------------------------------------------------------------------

_HW = re.compile(r"\(hw:(\d+),\d+\)")
_HW_NAME = re.compile(r"\b(?:plug)?hw:(?:CARD=)?([A-Za-z0-9_]+)")
_CARD = re.compile(r"^\s*(\d+) \[(\S+)\s*\]: (\S+) - (.*)$")


def card_control(device_name: str, cards_text: str = "") -> str:
    """The ALSA control device (`hw:N`) of the card a PortAudio capture device belongs to.

    PortAudio names ALSA hardware devices `<card name>: <pcm name> (hw:N,M)`; other names
    (an asoundrc alias) are matched against /proc/asound/cards (`cards_text`, read when empty).
    """
    match = _HW.search(device_name)
    if match:
        return f"hw:{match.group(1)}"
    match = _HW_NAME.search(device_name)  # an ALSA name: hw:CARD=Headset,DEV=0, plughw:1,0
    if match:
        return f"hw:{match.group(1)}" if match.group(1).isdigit() else f"hw:CARD={match.group(1)}"
    if not cards_text:
        try:
            cards_text = Path("/proc/asound/cards").read_text()
        except OSError:
            cards_text = ""
    for line in cards_text.splitlines():
        card = _CARD.match(line)
        if card and (card.group(2) in device_name or card.group(4).strip() in device_name):
            return f"hw:{card.group(1)}"
    raise MixerError(
        f"cannot tell the ALSA card of capture device {device_name!r} (no '(hw:N,M)' in its "
        "name and no card of that name in /proc/asound/cards); set [audio] mixer, e.g. hw:CARD=J40"
    )


# --- amixer -----------------------------------------------------------------------------------


class Amixer:
    """`amixer -D device` as a function: contents in, values out; errors as MixerError."""

    def __init__(self, device: str, program: str = "amixer", timeout: float = 3.0) -> None:
        self.device = device
        self.program = program
        self.timeout = timeout

    def _run(self, *args: str) -> str:
        command = [self.program, "-D", self.device, *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError:
            raise MixerError(
                f"{self.program}: not found (install alsa-utils to enforce mute and receive caps)"
            ) from None
        except subprocess.TimeoutExpired:
            raise MixerError(
                f"amixer -D {self.device} {args[0]}: no answer in {self.timeout} s"
            ) from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise MixerError(f"amixer -D {self.device} {args[0]}: {last}")
        return done.stdout

    def contents(self) -> list[Control]:
        controls = parse_contents(self._run("contents"))
        if not controls:
            raise MixerError(f"amixer -D {self.device} contents: no controls")
        return controls

    def set(self, control: Control, values: Sequence[str]) -> None:
        self._run("cset", f"numid={control.numid}", ",".join(values))


# --- enforcing --------------------------------------------------------------------------------


@dataclass
class _Held:
    """A control the enforcer changed: what it was, what we wrote (to restore only if unchanged)."""

    numid: int
    before: tuple[str, ...]
    written: tuple[str, ...]
    name: str = ""  # checked when restoring after a restart: numids belong to one card

    @classmethod
    def from_json(cls, raw: Any, key: str) -> _Held | None:
        if raw is None:
            return None
        try:
            held = cls(
                int(raw["numid"]),
                tuple(str(v) for v in raw["before"]),
                tuple(str(v) for v in raw["written"]),
                str(raw["name"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{key}: expected numid, name, before and written ({exc!r})") from exc
        if not held.before or len(held.before) != len(held.written):
            raise ValueError(f"{key}: expected as many 'before' as 'written' values")
        return held


Report = Callable[[bool, str], None]  # (ok, detail)


class MixerEnforcer:
    """Keeps the headset's mixer at the wanted mute and receive cap, in its own thread.

    `set_mute` / `set_cap` only record what is wanted and wake the thread, so the seat's core
    thread never waits for amixer. `report(ok, detail)` is called when enforcement fails (once
    per distinct failure) and when it works again after a failure.
    """

    def __init__(
        self,
        device: str = "",
        *,
        capture_switch: str = "",
        playback_volume: str = "",
        report: Report | None = None,
        recheck_s: float = 5.0,
        program: str = "amixer",
        restore_file: str | Path | None = None,
    ) -> None:
        self.device = device
        self.capture_switch = capture_switch
        self.playback_volume = playback_volume
        self.report = report or (lambda ok, detail: None)
        self.recheck_s = recheck_s
        self.program = program
        # What to put back survives a crash here: written before the mixer is changed, removed
        # once everything is put back (None: kept in memory only).
        self.restore_file = Path(restore_file) if restore_file is not None else None
        self.muted = False
        self.cap_db: float | None = None
        self._held_switch: _Held | None = None
        self._held_volume: _Held | None = None
        self._persisted: tuple[str, _Held | None, _Held | None] | None = None
        self._persist_error = ""
        self._failure = ""
        self._device_error = ""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- wanted state (any thread) --------------------------------------------------------------

    def set_mute(self, muted: bool) -> None:
        self.muted = muted
        self._wake.set()

    def set_cap(self, max_gain_db: float | None) -> None:
        self.cap_db = max_gain_db
        self._wake.set()

    def set_device(self, device: str, error: str = "") -> None:
        """The card the capture device belongs to (re-plugged: maybe another number; the old
        card's held values are forgotten), or "" with why it could not be found."""
        with self._lock:
            self._device_error = error
            if device != self.device:
                self.device = device
                self._held_switch = self._held_volume = None
                self._persist()
        self._wake.set()

    def recover(self) -> None:
        """Take over what a previous run replaced and did not put back (it crashed): the next
        pass restores it unless it is wanted again (then it is put back on release)."""
        if self.restore_file is None:
            return
        try:
            text = self.restore_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("headset mixer: cannot read %s: %s", self.restore_file, exc)
            return
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or not isinstance(raw.get("device"), str):
                raise ValueError("device: expected the ALSA control device it was written on")
            device = raw["device"]
            switch = _Held.from_json(raw.get("switch"), "switch")
            volume = _Held.from_json(raw.get("volume"), "volume")
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            log.warning(
                "headset mixer: %s is not a restore record (%s); removed", self.restore_file, exc
            )
            with contextlib.suppress(OSError):
                self.restore_file.unlink()
            return
        with self._lock:
            if self.device and device != self.device:
                log.warning(
                    "headset mixer: %s was written for %s, the mixer is now %s; removed",
                    self.restore_file,
                    device,
                    self.device,
                )
                with contextlib.suppress(OSError):
                    self.restore_file.unlink()
                return
            self.device = device
            self._held_switch, self._held_volume = switch, volume
            self._persisted = (device, switch, volume)
            held = ", ".join(
                f"{h.name!r} to {','.join(h.before)}" for h in (switch, volume) if h is not None
            )
            log.warning(
                "headset mixer %s: the last run ended without putting back %s; putting it back",
                device,
                held or "anything",
            )
        self._wake.set()

    # -- the thread ------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audio-mixer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release everything (restore what was replaced), then end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self.muted, self.cap_db = False, None
        self.reconcile()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.reconcile()
            self._wake.wait(self.recheck_s)
            self._wake.clear()

    # -- one pass ---------------------------------------------------------------------------------

    def reconcile(self) -> bool:
        """Bring the card to the wanted state now; False (and a report) when that failed."""
        with self._lock:
            wanted = self.muted or self.cap_db is not None
            if not wanted and self._held_switch is None and self._held_volume is None:
                return True  # nothing to enforce or to put back: no amixer run every recheck
            try:
                if not self.device:
                    if wanted and self._device_error:
                        raise MixerError(self._device_error)
                    return True  # no card yet: applied when the capture device is opened
                amixer = Amixer(self.device, self.program)
                controls = {c.numid: c for c in amixer.contents()}
                self._reconcile_switch(amixer, controls)
                self._reconcile_volume(amixer, controls)
            except MixerError as exc:
                detail = str(exc)
                if detail != self._failure:
                    self._failure = detail
                    log.error("headset mixer: %s", detail)
                    self.report(False, detail)
                return False
            finally:
                self._persist()  # what was put back leaves the file
            if self._failure:
                self._failure = ""
                log.info("headset mixer on %s: enforcing again", self.device)
                self.report(True, f"mixer {self.device}")
            return True

    def _reconcile_switch(self, amixer: Amixer, controls: dict[int, Control]) -> None:
        held = self._held_switch
        if self.muted:
            switch = pick(
                list(controls.values()),
                self.capture_switch,
                CAPTURE_SWITCHES,
                " Capture Switch",
                "BOOLEAN",
            )
            off = tuple("off" for _ in switch.values)
            if held is None:
                self._held_switch = _Held(switch.numid, switch.values, off, switch.name)
                self._persist()  # before the change: a crash after it still knows the way back
            if switch.values != off:
                amixer.set(switch, off)
                log.info("headset mixer %s: %r off (mic muted)", self.device, switch.name)
        elif held is not None:
            self._restore(amixer, controls, held)  # kept for the next pass if this fails
            self._held_switch = None

    def _reconcile_volume(self, amixer: Amixer, controls: dict[int, Control]) -> None:
        held = self._held_volume
        if self.cap_db is not None:
            volume = pick(
                list(controls.values()),
                self.playback_volume,
                PLAYBACK_VOLUMES,
                " Playback Volume",
                "INTEGER",
            )
            if volume.db is None:
                raise MixerError(
                    f"{volume.name!r} on {self.device} has no dB range (amixer shows no dB line): "
                    f"cannot cap the receive gain at {self.cap_db:+.1f} dB"
                )
            limit = volume.raw_at_most(self.cap_db)
            capped = tuple(str(min(v, limit)) for v in volume.ints)
            before = (
                held.before if held is not None and held.numid == volume.numid else volume.values
            )
            self._held_volume = _Held(volume.numid, before, capped, volume.name)
            self._persist()  # before the change: a crash after it still knows the way back
            if capped != volume.values:
                amixer.set(volume, capped)
                log.info(
                    "headset mixer %s: %r capped at %.2f dB (raw %d, asked %+.1f dB)",
                    self.device,
                    volume.name,
                    volume.db_at(limit),
                    limit,
                    self.cap_db,
                )
        elif held is not None:
            self._restore(amixer, controls, held)
            self._held_volume = None

    def _persist(self) -> None:
        """Keep the held values in `restore_file` (lock held); no file when nothing is held."""
        if self.restore_file is None:
            return
        state = (self.device, self._held_switch, self._held_volume)
        if state == self._persisted:
            return
        try:
            if self._held_switch is None and self._held_volume is None:
                self.restore_file.unlink(missing_ok=True)
            else:
                record = {
                    "device": self.device,
                    "switch": asdict(self._held_switch) if self._held_switch else None,
                    "volume": asdict(self._held_volume) if self._held_volume else None,
                }
                write_atomically(self.restore_file, json.dumps(record, indent=1) + "\n")
        except OSError as exc:
            detail = f"cannot keep {self.restore_file}: {exc}"
            if detail != self._persist_error:  # once per cause
                self._persist_error = detail
                log.error(
                    "headset mixer: %s (a crash now would leave the mute/cap in place)", detail
                )
            return
        self._persist_error = ""
        self._persisted = state

    def _restore(self, amixer: Amixer, controls: dict[int, Control], held: _Held) -> None:
        control = controls.get(held.numid)
        if control is None or (held.name and control.name != held.name):
            log.info(
                "headset mixer %s: %r is not there any more; nothing to put back",
                self.device,
                held.name or held.numid,
            )
            return
        if control.values != held.written:
            log.info(
                "headset mixer %s: %r changed since it was set; left as it is",
                self.device,
                control.name,
            )
            return
        if held.before != control.values:
            amixer.set(control, held.before)
            log.info(
                "headset mixer %s: %r restored to %s",
                self.device,
                control.name,
                ",".join(held.before),
            )
