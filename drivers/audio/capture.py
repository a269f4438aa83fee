"""The real audio backend: capture of the headset path through PortAudio (sounddevice).

Importing this module loads neither numpy nor PortAudio nor the dsp filters (scipy): the
capture worker thread loads them when it starts, after the seat has told systemd READY.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.audio.alsa_mixer import MixerEnforcer, MixerError, card_control
from drivers.audio.events import AudioStatus, MixerStatus
from drivers.audio.streams import close_streams, find_device, keep_open, load_meters
from drivers.base import Backoff, Sink

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

QUEUE_SECONDS = 10.0  # audio the capture worker may fall behind by before blocks are dropped


@dataclass(frozen=True)
class _Stream:
    """One PortAudio input stream and which of its channels feed tx and rx."""

    device: str
    channels: dict[str, int]  # "tx"/"rx" -> channel index in the stream


class SoundDeviceAudio:
    """Capture of the headset path through PortAudio (sounddevice), devices chosen by name.

    The PortAudio callback only copies blocks onto a bounded queue; one worker thread runs
    the meters and hands `AudioLevels` to the sink at `levels_hz`, paced by the device clock.
    A lost device (open failure, stream error, no data for `stall_s`) is reported as
    `AudioStatus(ok=False)` and reopened with exponential back-off; `AudioStatus(ok=True)`
    follows when it is back. Same device name for tx and rx: one stereo stream (0 = tx,
    1 = rx). Empty rx device: the receive channel is not captured and reads as silence.
    """

    def __init__(
        self,
        tx_device: str,
        rx_device: str = "",
        samplerate: int = 16000,
        block_s: float = 0.02,
        levels_hz: float = 10.0,
        vad_mode: int = 2,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        stall_s: float = 2.0,
        mixer: str = "auto",
        mixer_capture_switch: str = "",
        mixer_playback_volume: str = "",
        mixer_recheck_s: float = 5.0,
        mixer_restore_file: str | Path | None = None,
    ) -> None:
        if not tx_device:
            raise ValueError("audio.tx_device: a PortAudio capture device name is needed")
        self.samplerate = samplerate
        self.blocksize = max(1, int(round(block_s * samplerate)))
        self.period_s = 1.0 / levels_hz
        self.vad_mode = vad_mode
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stall_s = stall_s
        if rx_device == tx_device:
            self._streams = [_Stream(tx_device, {"tx": 0, "rx": 1})]
        else:
            self._streams = [_Stream(tx_device, {"tx": 0})]
            if rx_device:
                self._streams.append(_Stream(rx_device, {"rx": 0}))
        self._capture_rx = bool(rx_device)
        self.mic_muted = False
        self.rx_cap_db: float | None = None
        self.dropped_blocks = 0
        # Blocks waiting for the worker, bounded per channel (10 s of audio each) so a flood
        # on one channel can never crowd out the other.
        self._queue: queue.Queue[tuple[str, npt.NDArray[np.int16]]] = queue.Queue()
        self._pending = {"tx": 0, "rx": 0}
        self._max_pending = max(1, int(QUEUE_SECONDS * samplerate / self.blocksize))
        self._failed = threading.Event()
        self._failure = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None
        # Enforcement on the headset's own ALSA mixer (drivers/audio/alsa_mixer.py): "auto" finds the
        # card of the tx capture device when it is opened, "none" only records the requests.
        self._auto_mixer = mixer == "auto"
        self.mixer: MixerEnforcer | None = None
        self._leftover: MixerEnforcer | None = None
        enforcer = MixerEnforcer(
            "" if self._auto_mixer or mixer == "none" else mixer,
            capture_switch=mixer_capture_switch,
            playback_volume=mixer_playback_volume,
            report=lambda ok, detail: self._emit(MixerStatus(ok=ok, detail=detail)),
            recheck_s=mixer_recheck_s,
            restore_file=mixer_restore_file,
        )
        if mixer != "none":
            self.mixer = enforcer
        else:
            # Not enforcing; but a run that enforced and crashed may have left the mic muted:
            # its record is still put back at start (then nothing more is done on the mixer).
            self._leftover = enforcer

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stop.clear()
        if self.mixer is not None:
            self.mixer.start()
        elif self._leftover is not None:
            self._leftover.recover()
            self._leftover.reconcile()  # puts back what the record holds; a failure is reported
        self._thread = threading.Thread(target=self._run, name="audio-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self.mixer is not None:
            self.mixer.stop()  # puts back what mute and cap replaced
        self._sink = None

    def set_mic_mute(self, muted: bool) -> None:
        # The headset's capture switch goes off (when a mixer is reachable): the box's own tx
        # meter then reads silence too, which no norm needs while muted.
        self.mic_muted = muted
        if self.mixer is not None:
            self.mixer.set_mute(muted)

    def set_rx_cap(self, max_gain_db: float | None) -> None:
        self.rx_cap_db = max_gain_db
        if self.mixer is not None:
            self.mixer.set_cap(max_gain_db)

    # -- worker ----------------------------------------------------------------------------

    def _emit(self, item: object) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink(item)
        except Exception:  # a failing consumer must not end the capture thread
            log.exception("audio sink failed on %s", type(item).__name__)

    def _run(self) -> None:
        load_meters()
        keep_open(
            what="audio capture",
            stop=self._stop,
            backoff=Backoff(self.retry_initial_s, self.retry_max_s),
            open_streams=lambda rescan: self._open(rescan=rescan),
            serve=self._serve,
            emit=self._emit,
            log=log,
        )

    def _serve(self, streams: list[Any]) -> str:
        self._emit(AudioStatus(ok=True, detail=", ".join(s.device for s in self._streams)))
        return self._measure(streams)

    def _open(self, rescan: bool) -> list[Any]:
        import sounddevice as sd

        if rescan:
            # PortAudio lists devices once per initialisation: re-initialise to see a headset
            # that came back (also reloads the ALSA configuration).
            sd._terminate()
            sd._initialize()
        self._failed.clear()
        self._failure = ""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._pending = {"tx": 0, "rx": 0}
        opened: list[Any] = []
        try:
            for stream in self._streams:
                device = find_device(sd, stream.device)
                if self.mixer is not None and self._auto_mixer and "tx" in stream.channels:
                    name = str(sd.query_devices(device)["name"])
                    try:
                        self.mixer.set_device(card_control(name))
                    except MixerError as exc:
                        self.mixer.set_device("", str(exc))
                channels = max(stream.channels.values()) + 1
                s = sd.InputStream(
                    device=device,
                    channels=channels,
                    samplerate=self.samplerate,
                    blocksize=self.blocksize,
                    dtype="int16",
                    callback=self._callback_for(stream),
                    finished_callback=self._finished_for(stream),
                )
                opened.append(s)
            for s in opened:
                s.start()
        except Exception:
            close_streams(opened, log)
            raise
        return opened

    def _callback_for(self, stream: _Stream) -> Callable[..., None]:
        routes = list(stream.channels.items())

        def callback(indata: npt.NDArray[np.int16], frames: int, time: Any, status: Any) -> None:
            for channel, index in routes:
                if self._pending[channel] >= self._max_pending:
                    self.dropped_blocks += 1  # the worker fell behind: drop, never block
                    continue
                self._pending[channel] += 1
                self._queue.put_nowait((channel, indata[:, index].copy()))

        return callback

    def _finished_for(self, stream: _Stream) -> Callable[[], None]:
        def finished() -> None:
            if not self._stop.is_set():
                self._failure = f"capture stream of {stream.device!r} stopped"
                self._failed.set()

        return finished

    def _measure(self, streams: list[Any]) -> str:
        """Run the meters until stopped ("") or the device is lost (the reason)."""
        import numpy as np

        from drivers.audio.levels import LevelsPipeline

        pipeline = LevelsPipeline(self.samplerate, self.period_s, self.vad_mode)
        silence = np.zeros(self.blocksize, dtype=np.int16)
        last_data = time.monotonic()
        while not self._stop.is_set():
            if self._failed.is_set():
                return self._failure
            try:
                channel, block = self._queue.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() - last_data > self.stall_s:
                    names = ", ".join(repr(s.device) for s in self._streams)
                    return f"no audio from {names} for {self.stall_s:.1f} s"
                continue
            self._pending[channel] -= 1
            last_data = time.monotonic()
            out = pipeline.feed(channel, block)
            if channel == "tx" and not self._capture_rx:
                out += pipeline.feed("rx", silence[: block.shape[0]])
            for levels in out:
                self._emit(levels)
        return ""
