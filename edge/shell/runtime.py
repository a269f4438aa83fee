"""The imperative shell: one queue of stamped inputs, one core thread, effects carried out.

Drivers (real or virtual) feed the queue through `sink`; timers (scenario steps, virtual audio
periods, identify blinks) and the core's deadlines run on the same loop, in real or simulated time.
The runtime builds none of its parts: `edge.shell.wiring.build_seat` opens the outbox, makes the
MQTT link and hands them in as `Parts`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import queue
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO, Any

from drivers.audio.interface import Audio
from drivers.hid.interface import Headset
from drivers.host.interface import CallHost
from drivers.radar.interface import Radar
from edge import __version__
from edge.api.payloads import event_payload, info_thresholds
from edge.core.clock import Clock, Instant
from edge.core.effects import (
    Effect,
    Event,
    IdentifyHeadset,
    Levels,
    Reply,
    ScreenLock,
    SetLeds,
    SetMicMute,
    SetRxCap,
)
from edge.core.inputs import Input, Tick
from edge.core.profile import Profile
from edge.core.seat import leds_for, new_seat, next_deadline, step
from edge.core.snapshot import key, snapshot
from edge.shell.config import SeatConfig, config_digest
from edge.shell.mqtt.commands import Command, reply_payload
from edge.shell.mqtt.link import SeatLink
from edge.shell.outbox.store import Outbox, OutboxHealth
from edge.shell.tape import Recorder

log = logging.getLogger(__name__)

# Blink period of `cmd/identify` on the headset's Ring LED.
IDENTIFY_BLINK_S = 0.5


@dataclass
class Devices:
    """The seat's devices; any may be None (a seat without a radar works without it)."""

    headset: Headset | None = None
    host: CallHost | None = None
    radar: Radar | None = None
    audio: Audio | None = None
    extra: list[Any] = field(default_factory=list)  # other input sources (CTI twin, ...)

    def all(self) -> list[Any]:
        return [d for d in (self.headset, self.host, self.radar, self.audio, *self.extra) if d]


@dataclass
class Parts:
    """What the seat's effects go out through, built by the wiring and handed in; a seat
    without a broker has no link, one without a state directory no outbox."""

    boot_id: str
    outbox: Outbox | None = None
    link: SeatLink | None = None
    recorder: Recorder | None = None  # `--record TAPE`
    events_out: IO[str] | None = None  # events as JSON lines (`simulate --events-out`)


@dataclass(order=True)
class _Timer:
    at: float
    order: int
    callback: Callable[[], object] = field(compare=False)
    every: float | None = field(default=None, compare=False)
    first: float = field(default=0.0, compare=False)
    count: int = field(default=0, compare=False)


class Runtime:
    """One seat: the core state, its inputs and the carrying-out of its effects."""

    def __init__(
        self,
        config: SeatConfig,
        profile: Profile,
        devices: Devices,
        clock: Clock,
        parts: Parts,
        start: Instant | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self.devices = devices
        self.clock = clock
        self.site, self.seat = config.seat.site, config.seat.id
        self.boot_id = parts.boot_id
        self.outbox = parts.outbox
        self.link = parts.link
        self.recorder = parts.recorder
        self.events_out = parts.events_out
        self.queue: queue.Queue[tuple[Instant, Input]] = queue.Queue()
        self._timers: list[_Timer] = []
        self._order = itertools.count()
        self._stopping = False
        start = start or clock.now()
        self.state = new_seat(profile, start)
        # When the outbox last changed between ok / disk_full / disk_error (state `storage`).
        self._storage_since = start
        self._state_key: Any = None
        # The core thread publishes state on change, paho's thread on (re)birth: one at a time,
        # each from the newest state, so an older snapshot never lands last in the retained slot.
        self._state_lock = threading.Lock()
        self.progress_hooks: list[Callable[[Instant], object]] = []
        # Read-only looks at the inputs as drivers deliver them (the start's microphone check
        # listens to the seat's own capture); called on the drivers' threads, must be quick.
        self.taps: list[Callable[[object], None]] = []
        self.close_hooks: list[
            Callable[[], object]
        ] = []  # first thing at close (dose_store, day_store)
        self.effects_seen: list[Effect] = []  # for tests and replay comparisons (bounded by caller)
        self.keep_effects = False
        self.checks: list[dict[str, str]] = []  # doctor's checks at start, for `info`
        self._hung = False

    # --- inputs --------------------------------------------------------------------------------

    def sink(self, item: object) -> None:
        """Drivers call this from any thread: the input is stamped now and queued."""
        self.queue.put((self.clock.now(), item))  # type: ignore[arg-type]
        if self.taps:  # empty but for the start's microphone check: no copy per input
            for tap in tuple(self.taps):
                tap(item)

    def on_command(self, command: Command) -> None:
        """A valid command for the core, from the link on paho's network thread: queued,
        never worked on there (the link answers rebirth and resend itself)."""
        if command.input is not None:
            self.sink(command.input)

    # --- timers --------------------------------------------------------------------------------

    def at(self, mono: float, callback: Callable[[], object], every: float | None = None) -> None:
        heapq.heappush(self._timers, _Timer(mono, next(self._order), callback, every, first=mono))

    def every(
        self, period: float, callback: Callable[[], object], first: float | None = None
    ) -> None:
        self.at(self.clock.now().mono + (period if first is None else first), callback, period)

    # --- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.link:
            self.link.start()
        self.start_devices()

    def start_devices(self) -> None:
        for device in self.devices.all():
            device.start(self.sink)

    def stop(self) -> None:
        self._stopping = True

    def hang(self) -> None:
        """Stop processing as a hung core would (SIGUSR2): the watchdog must notice."""
        log.warning("core told to hang (SIGUSR2): the systemd watchdog should restart the service")
        self._hung = True

    def status_line(self) -> str:
        f = self.state.facts
        line = f"call {f.call.state}, {f.presence.state}, {'muted' if f.mute.muted else 'mic on'}"
        line += f", {len(f.violations)} violation(s)" if f.violations else ""
        return line + (self.link.delivery_status() if self.link is not None else "")

    def close(self) -> None:
        for hook in self.close_hooks:
            try:
                hook()
            except Exception:  # a failing hook must not keep the devices open
                log.exception("close hook failed")
        for device in self.devices.all():
            try:
                device.stop()
            except Exception as exc:  # a device failing to stop must not keep the seat up
                log.warning("stopping %s: %s", type(device).__name__, exc)
        if self.link:
            self.link.stop()
        if self.outbox:
            self.outbox.close()
        if self.recorder:
            self.recorder.close()

    def run(self, until: float | None = None) -> None:
        """Process inputs, timers and deadlines until stopped or until mono time `until`."""
        self.start()
        try:
            self.loop(until)
        finally:
            self.close()

    def loop(self, until: float | None = None) -> None:
        while True:
            while self._hung and not self._stopping:
                self.clock.sleep_until(self.clock.now().mono + 0.5)
            now = self.clock.now()
            if not self._stopping:
                self._fire_timers(now)
            if self._drain():
                continue
            # Inputs of an instant come first, then the deadlines due at that instant.
            deadline = next_deadline(self.state, now)
            if deadline is not None and now.mono >= deadline - 1e-9:
                self.process(now, Tick())
                continue
            if self._stopping or (until is not None and now.mono >= until):
                return
            wake = min(
                (
                    t
                    for t in (deadline, self._timers[0].at if self._timers else None, until)
                    if t is not None
                ),
                default=None,
            )
            self._wait(now, wake)

    def _wait(self, now: Instant, wake: float | None) -> None:
        if self.clock.realtime:
            timeout = 0.5 if wake is None else max(0.0, min(wake - now.mono, 0.5))
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                return
            self.process(*item)
        elif wake is not None:
            self.clock.sleep_until(wake)
        else:
            # Simulated time with nothing scheduled: only outside inputs can wake us.
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                return
            self.process(*item)

    def _fire_timers(self, now: Instant) -> None:
        while self._timers and self._timers[0].at <= now.mono + 1e-9:
            timer = heapq.heappop(self._timers)
            if timer.every is not None:
                # From the first time and a count, so a 0.1 s period does not drift over a day.
                count = timer.count + 1
                again = replace(
                    timer,
                    at=timer.first + count * timer.every,
                    order=next(self._order),
                    count=count,
                )
                heapq.heappush(self._timers, again)
            timer.callback()

    def _drain(self) -> bool:
        handled = False
        while True:
            try:
                at, item = self.queue.get_nowait()
            except queue.Empty:
                return handled
            self.process(at, item)
            handled = True

    def process(self, at: Instant, inp: Input) -> list[Effect]:
        """One input through the core, then its effects carried out (the core thread only)."""
        self.state, effects = step(self.state, inp, at)
        if self.recorder:
            self.recorder.record(at, inp, effects)
        for effect in effects:
            try:
                self._execute(effect)
            except Exception:  # a failing device write must not stop the seat
                log.exception("carrying out %s failed", type(effect).__name__)
        if self.keep_effects:
            self.effects_seen.extend(effects)
        self._publish_state(at)
        for hook in self.progress_hooks:
            hook(at)
        return effects

    # --- effects -------------------------------------------------------------------------------

    def _execute(self, effect: Effect) -> None:
        d = self.devices
        match effect:
            case SetLeds(leds=leds):
                if d.headset:
                    d.headset.write_leds(leds)
            case SetMicMute(muted=muted):
                if d.audio:
                    d.audio.set_mic_mute(muted)
            case SetRxCap(max_gain_db=cap):
                if d.audio:
                    d.audio.set_rx_cap(cap)
            case Event():
                self._emit(effect)
            case Levels():
                if self.link:
                    self.link.publish_levels(effect)
            case Reply(name=name, request_id=request_id, ok=ok, error=error, data=data):
                if self.link:
                    self.link.reply(name, reply_payload(request_id, ok, error, data))
            case ScreenLock(reason=reason):
                self._screen_lock(reason)
            case IdentifyHeadset(seconds=seconds):
                self._identify(seconds)

    def _emit(self, event: Event) -> None:
        # With an outbox the event is numbered and on disk before anything else sees it.
        wire = self.link.publish_event(event) if self.link else event_payload(self.boot_id, event)
        if self.events_out is not None and wire is not None:
            self.events_out.write(json.dumps(wire, ensure_ascii=False) + "\n")
            self.events_out.flush()

    def _screen_lock(self, reason: str) -> None:
        command = self.config.hooks.screen_lock
        if not command:
            log.info(
                "screen lock requested (%s); no [hooks] screen_lock command configured", reason
            )
            return
        try:
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            log.error("[hooks] screen_lock: cannot run %s: %s", command[0], exc)

    def _identify(self, seconds: float) -> None:
        headset = self.devices.headset
        if headset is None:
            return
        blinks = int(seconds / IDENTIFY_BLINK_S)

        def blink(n: int) -> Callable[[], None]:
            def run() -> None:
                leds = leds_for(self.state.facts)
                on = n % 2 == 0 and n < blinks
                headset.write_leds(replace(leds, ring=leds.ring or on))

            return run

        start = self.clock.now().mono
        for n in range(blinks + 1):
            self.at(start + n * IDENTIFY_BLINK_S, blink(n))

    # --- what the broker sees --------------------------------------------------------------------

    def _storage(self) -> dict[str, Any]:
        """The `storage` part of `state`: can events be kept on disk before they go out?"""
        since = self._storage_since.iso_utc()
        if self.outbox is None:
            return {"outbox": "off", "held": 0, "since": since}
        health = self.outbox.health()
        return {"outbox": health.state, "held": health.held, "since": since}

    def on_storage(self, health: OutboxHealth) -> None:
        """The outbox began or stopped holding events in memory (any thread): say so."""
        now = self.clock.now()
        self._storage_since = now  # the outbox logged the change itself, once
        self._publish_state(now)

    def _publish_state(self, at: Instant) -> None:
        with self._state_lock:
            snap = snapshot(self.state, at, self.site, self.seat, self._storage())
            state_key = key(snap)
            if state_key != self._state_key:
                self._state_key = state_key
                if self.link:
                    self.link.publish_state(snap)

    def info(self) -> dict[str, Any]:
        headset = self.devices.headset.info() if self.devices.headset else None
        return {
            "version": __version__,
            "boot_id": self.boot_id,
            "site": self.site,
            "seat": self.seat,
            "profile": self.profile.name,
            "profile_digest": self.profile.digest,
            "config_digest": config_digest(self.config),
            "headset": None
            if headset is None
            else {
                "manufacturer": headset.manufacturer,
                "product": headset.product,
                "serial": headset.serial,
                "firmware": headset.firmware,
                "vendor_id": f"{headset.vendor_id:04x}",
                "product_id": f"{headset.product_id:04x}",
                "usb_path": headset.usb_path,
                "telephony": headset.telephony,
            },
            "checks": self.checks,
            "thresholds": info_thresholds(self.profile.to_dict()),
            "devices": {
                "radar": type(self.devices.radar).__name__ if self.devices.radar else None,
                "audio": type(self.devices.audio).__name__ if self.devices.audio else None,
                "host": type(self.devices.host).__name__ if self.devices.host else None,
            },
        }

    def publish_info(self) -> None:
        """`info` again (e.g. the start's checks finished); sent at the next connect if offline."""
        if self.link is not None and self.link.connected.is_set():
            self.link.publish_info(self.info())

    def birth(self) -> None:
        """Birth after every (re)connect and on `cmd/rebirth` (the link calls this): info and
        the current state, so subscribers are current."""
        if not self.link:
            return
        self.link.publish_info(self.info())
        with self._state_lock:
            snap = snapshot(self.state, self.clock.now(), self.site, self.seat, self._storage())
            self._state_key = key(snap)
            self.link.publish_state(snap)
