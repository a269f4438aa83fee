"""Audio in the headset path: per-period levels of the mic (tx) and receive (rx) channels.

`AudioLevels` is the typed input; audio samples never leave dsp/, only these summaries.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from drivers.alsa_mixer import MixerEnforcer, MixerError, card_control
from drivers.base import Backoff, Sink
from drivers.wavfile import read_audio
from dsp.meter import ChannelMeter, resample, to_int16
from dsp.types import ChannelLevels

log = logging.getLogger(__name__)

QUEUE_SECONDS = 10.0  # audio the capture worker may fall behind by before blocks are dropped


@dataclass(frozen=True, slots=True)
class AudioLevels:
    """Both channels over one reporting period (10 Hz by default)."""

    tx: ChannelLevels  # microphone: the agent
    rx: ChannelLevels  # receive: the customer


@dataclass(frozen=True, slots=True)
class AudioStatus:
    """The audio path: `ok=False` when a capture device was lost (`headset.audio_lost`)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MixerStatus:
    """Enforcement on the headset's own mixer: `ok=False` when muting or capping failed.

    Reported once per distinct failure, and `ok=True` when it works again.
    """

    ok: bool
    detail: str = ""


class Audio(Protocol):
    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...

    def set_mic_mute(self, muted: bool) -> None: ...

    def set_rx_cap(self, max_gain_db: float | None) -> None: ...


# The virtual twin reports unchanged silence once a second instead of at the levels rate.
STEADY_SUMMARY_S = 1.0
# A slammed headset on a channel playing a file: this many full-scale samples in one period.
IMPACT_SAMPLES = 8


@dataclass(frozen=True, slots=True)
class VirtualChannel:
    """What a virtual channel is playing: speech at an active level, or silence with noise."""

    speech: bool = False
    level_dbov: float = -26.0  # active speech level while speaking
    noise_dbfs: float = -70.0  # ambient / line noise while not speaking
    clipping_pct: float = 0.0

    def levels(self, period_s: float, gain_db: float = 0.0) -> ChannelLevels:
        if self.speech:
            level = self.level_dbov + gain_db
            # Typical running speech: ~90 % activity (P.56 reference vectors), crest ~15 dB.
            return ChannelLevels(
                period_s=period_s,
                speech=True,
                active_s=0.9 * period_s,
                active_level_dbov=level,
                rms_dbov=level - 0.46,
                peak_dbfs=min(0.0, level + 15.0),
                clipping_pct=self.clipping_pct,
                laeq_dbfs=level - 1.0,
            )
        noise = self.noise_dbfs + gain_db
        return ChannelLevels(
            period_s=period_s,
            rms_dbov=noise,
            peak_dbfs=min(0.0, noise + 10.0),
            laeq_dbfs=noise - 1.0,
        )


@lru_cache(maxsize=16)
def _load_samples(path: str, samplerate: int) -> npt.NDArray[np.float64]:
    """A WAV's first channel at `samplerate`, -1..1 (cached: looping scenarios replay files)."""
    audio = read_audio(path, raw_rate=samplerate)
    samples = audio.samples
    if audio.samplerate != samplerate:
        samples = resample(samples, audio.samplerate, samplerate)
    samples.setflags(write=False)
    return samples


@dataclass(eq=False)
class WavChannel:
    """A channel playing a WAV file: each period of its samples goes through the channel's
    dsp meter, as captured audio would. After the end (unless looping) it plays digital
    silence, still through the meter, so an utterance ends as it would on a real line."""

    path: str
    samples: npt.NDArray[np.int16]
    loop: bool = False
    pos: int = 0

    @classmethod
    def load(
        cls, path: str | Path, samplerate: int, gain_db: float = 0.0, loop: bool = False
    ) -> WavChannel:
        samples = _load_samples(str(path), samplerate)
        if gain_db:
            samples = samples * 10.0 ** (gain_db / 20.0)  # to_int16 clips, as a mic would
        return cls(str(path), to_int16(samples), loop)

    @property
    def ended(self) -> bool:
        return not self.loop and self.pos >= self.samples.shape[0]

    def next_block(self, n: int) -> npt.NDArray[np.int16]:
        block = np.zeros(n, dtype=np.int16)
        total = self.samples.shape[0]
        filled = 0
        while filled < n and total and (self.loop or self.pos < total):
            chunk = self.samples[self.pos : self.pos + n - filled]
            block[filled : filled + chunk.shape[0]] = chunk
            filled += chunk.shape[0]
            self.pos += chunk.shape[0]
            if self.loop and self.pos >= total:
                self.pos = 0
        return block


class VirtualAudio:
    """Virtual twin of the audio path: scenario steps set what each channel plays.

    A channel plays generated levels (`VirtualChannel`: speech at a level, or noise) or a WAV
    file (`play`), whose samples go through that channel's `ChannelMeter` (P.56, VAD, peak,
    A-weighting), the meter the capture driver uses. `tick()` is called once per period by
    the runtime's scheduler (real or simulated time) and hands one `AudioLevels` to the sink,
    as the real capture worker does at 10 Hz.
    """

    def __init__(self, period_s: float = 0.1, samplerate: int = 16000, vad_mode: int = 2) -> None:
        self.period_s = period_s
        self.samplerate = samplerate
        self.vad_mode = vad_mode
        self.tx: VirtualChannel | WavChannel = VirtualChannel()
        self.rx: VirtualChannel | WavChannel = VirtualChannel()
        self.mic_muted = False
        self.rx_cap_db: float | None = None
        self._meters: dict[str, ChannelMeter] = {}
        self._impact_pending = False
        self._sink: Sink | None = None
        self._last: AudioLevels | None = None
        self._pending_s = 0.0

    def start(self, sink: Sink) -> None:
        self._sink = sink
        sink(AudioStatus(ok=True, detail="virtual"))

    def stop(self) -> None:
        self._sink = None

    def set_mic_mute(self, muted: bool) -> None:
        self.mic_muted = muted

    def set_rx_cap(self, max_gain_db: float | None) -> None:
        self.rx_cap_db = max_gain_db

    def impact(self) -> None:
        """A headset slammed on the desk: one period with a full-scale, peaky click."""
        self._impact_pending = True

    def play(
        self, channel: str, path: str | Path, gain_db: float = 0.0, loop: bool = False
    ) -> None:
        """Play a WAV file (any PCM width or float, resampled) on "tx" or "rx" from the next
        period, `gain_db` applied to its samples. A file after a file continues the meter."""
        playing = WavChannel.load(path, self.samplerate, gain_db, loop)
        if not isinstance(self._channel(channel), WavChannel):
            self._meter(channel).reset()  # samples again after generated levels: a fresh meter
        setattr(self, channel, playing)

    def silence(self, channel: str) -> None:
        """Stop what the channel plays: generated silence at the default noise floor."""
        setattr(self, channel, VirtualChannel())

    def playing(self, channel: str) -> bool:
        """Whether a file is still playing on the channel (a looping one always is)."""
        current = self._channel(channel)
        return isinstance(current, WavChannel) and not current.ended

    def _channel(self, channel: str) -> VirtualChannel | WavChannel:
        if channel == "tx":
            return self.tx
        if channel == "rx":
            return self.rx
        raise ValueError(f"audio channel must be 'tx' or 'rx', got {channel!r}")

    def _meter(self, channel: str) -> ChannelMeter:
        if channel not in self._meters:
            self._meters[channel] = ChannelMeter(self.samplerate, self.period_s, self.vad_mode)
        return self._meters[channel]

    def _measure(self, channel: str, wav: WavChannel, gain_db: float, click: bool) -> ChannelLevels:
        meter = self._meter(channel)
        block = wav.next_block(meter.period)
        if gain_db < 0:
            block = to_int16(block.astype(np.float64) / 32768.0 * 10.0 ** (gain_db / 20.0))
        if click:
            block[:IMPACT_SAMPLES] = 32767  # the mic's capsule driven to the rail
        (levels,) = meter.feed(block)  # one block is exactly one period
        return levels

    def tick(self) -> None:
        if self._sink is None:
            return
        # The box measures the mic before its own gate, so hold-mute does not hide speech.
        click, self._impact_pending = self._impact_pending, False
        if isinstance(self.tx, WavChannel):
            tx = self._measure("tx", self.tx, 0.0, click)
        elif click:
            tx = ChannelLevels(
                period_s=self.period_s,
                rms_dbov=-28.0,
                peak_dbfs=-0.2,
                clipping_pct=0.05,
                laeq_dbfs=-30.0,
            )
        else:
            tx = self.tx.levels(self.period_s)
        rx_gain = min(0.0, self.rx_cap_db) if self.rx_cap_db is not None else 0.0
        if isinstance(self.rx, WavChannel):
            rx = self._measure("rx", self.rx, rx_gain, False)
        else:
            rx = self.rx.levels(self.period_s, rx_gain)
        levels = AudioLevels(tx=tx, rx=rx)
        steady = not (tx.speech or rx.speech) and levels == self._last
        self._last = levels
        if steady and self._pending_s + self.period_s < STEADY_SUMMARY_S - 1e-9:
            # Unchanged non-speech periods are summed into one report a second, as a
            # long-period block would be: the seat learns the same, at a tenth of the inputs.
            self._pending_s += self.period_s
            return
        if steady:
            period = self._pending_s + self.period_s
            levels = AudioLevels(tx=replace(tx, period_s=period), rx=replace(rx, period_s=period))
        self._pending_s = 0.0
        self._sink(levels)


class LevelsPipeline:
    """Both channels' dsp meters; blocks in, `AudioLevels` out once both have a period.

    The capture backend's pairing of the two channels' `ChannelMeter`s (the virtual twin
    meters each file-playing channel with the same `ChannelMeter`, so both measure alike).
    """

    def __init__(self, samplerate: int, period_s: float, vad_mode: int = 2) -> None:
        self.samplerate = samplerate
        self.tx = ChannelMeter(samplerate, period_s, vad_mode)
        self.rx = ChannelMeter(samplerate, period_s, vad_mode)
        self._tx_ready: deque[ChannelLevels] = deque()
        self._rx_ready: deque[ChannelLevels] = deque()

    @property
    def period_s(self) -> float:
        return self.tx.period_s

    def feed(self, channel: str, block: npt.NDArray[np.int16]) -> list[AudioLevels]:
        if channel == "tx":
            self._tx_ready.extend(self.tx.feed(block))
        else:
            self._rx_ready.extend(self.rx.feed(block))
        out = []
        while self._tx_ready and self._rx_ready:
            out.append(AudioLevels(tx=self._tx_ready.popleft(), rx=self._rx_ready.popleft()))
        return out


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
        # Enforcement on the headset's own ALSA mixer (drivers/alsa_mixer.py): "auto" finds the
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
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        lost_reported = False
        first = True
        while not self._stop.is_set():
            try:
                streams = self._open(rescan=not first)
            except Exception as exc:  # PortAudio raises various errors for a missing device
                first = False
                if not lost_reported:
                    self._emit(AudioStatus(ok=False, detail=str(exc)))
                    lost_reported = True
                delay = backoff.next_delay()
                log.warning("audio capture unavailable (%s); retrying in %.1f s", exc, delay)
                self._stop.wait(delay)
                continue
            first = False
            backoff.reset()
            lost_reported = False
            self._emit(AudioStatus(ok=True, detail=", ".join(s.device for s in self._streams)))
            detail = self._measure(streams)
            self._close(streams)
            if detail:
                self._emit(AudioStatus(ok=False, detail=detail))
                lost_reported = True
                log.warning("audio capture lost: %s", detail)

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
                device = _find_input_device(sd, stream.device)
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
            self._close(opened)
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

    @staticmethod
    def _close(streams: list[Any]) -> None:
        for s in streams:
            try:
                s.abort(ignore_errors=True)
                s.close(ignore_errors=True)
            except Exception as exc:  # closing a vanished device may fail; nothing to do
                log.debug("closing audio stream: %s", exc)


def _find_input_device(sd: Any, name: str) -> int:
    """Index of the input device named `name` (exact, else unique substring match)."""
    devices = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    for device in devices:
        if device["name"] == name:
            return int(device["index"])
    matches = [d for d in devices if name in d["name"]]
    if len(matches) == 1:
        return int(matches[0]["index"])
    names = ", ".join(repr(d["name"]) for d in devices) or "none"
    if matches:
        raise LookupError(f"audio device {name!r} is ambiguous; input devices: {names}")
    raise LookupError(f"audio device {name!r} not found; input devices: {names}")
