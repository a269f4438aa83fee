"""The bridge's audio relay: the headset's audio to and from the PC through the USB gadget.

    headset mic  -> gate -> tx meters -> [drift buffer] -> gadget playback (the PC's microphone)
    gadget capture (the PC's speaker) -> [drift buffer] -> gain cap -> peak limiter -> rx meters
                                                                             -> headset earpiece

Four one-way PortAudio streams, two per device and so two per clock: the headset's (mic in,
earpiece out) and the gadget ALSA card's (the PC's speaker in, the PC's microphone out). Each
capture callback writes into one direction's `DriftBuffer`; each playback callback reads from
the other's, whose controller resamples so that the two USB clocks' drift never grows the
delay (one-way streams, not duplex: PortAudio's ALSA duplex over two PCMs failed in poll here).
The sample processing (gate, cap, limiter) and the meters' input happen in the headset's two
callbacks, so the tx and rx meter periods share one clock; the meters themselves (P.56, VAD,
A-weighting) run in a worker thread, which hands `AudioLevels` to the seat's sink exactly as
the capture backend does (`AudioStatus` for a lost device, with re-opening and back-off).
The worker meters at 16 kHz, as the capture path does, at about half the CPU of metering at
48 kHz (bench/bridge.py): each channel is decimated (`dsp.decimate`: anti-alias low-pass,
flat to 6 kHz) when the relay's rate is a multiple of 16 kHz above it (else metered at the
relay's rate). So the meters' peak (`peak_dbfs`, clipping) is that of the 16 kHz signal, as
the capture path's is; the receive path's per-sample peak limit is enforced at the relay's
rate by the limiter regardless. A `tap` sees the undecimated blocks. The callbacks append
their blocks to a deque that the worker drains every METER_POLL_S.

Enforcement for the seat's runtime, effective in the next audio period:
- `set_mic_mute(muted)` (the seat's `SetMicMute`: hold-mute or the agent's mute) and
  `set_hold(on)` (a direct hold from the bridge's HID relay): the gate is closed while either
  is on; it closes within one period (2 ms raised-cosine ramp) and a resume reopens it to the
  agent's own mute;
- `set_peak_limit_dbfs(dbfs)`: the per-sample ceiling of the receive path
  (`dsp.limiter.peak_ceiling_dbfs(profile peak limit, headset sensitivity)`);
- `set_rx_cap(db)` (the seat's `SetRxCap`: the daily dose cap, a peak cap): a gain limit on
  the receive samples, reached by a 20 ms ramp.

Importing this module loads neither numpy nor PortAudio; `start` does, in the worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivers.audio.events import AudioStatus
from drivers.audio.streams import close_streams, find_device, keep_open, load_meters
from drivers.base import Backoff, Sink

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from drivers.audio.events import AudioLevels
    from drivers.audio.levels import LevelsPipeline
    from dsp.decimate import Decimator
    from dsp.drift import DriftBuffer
    from dsp.gate import MicGate
    from dsp.limiter import GainCap, PeakLimiter

log = logging.getLogger(__name__)

# A tap sees each processed block: ("tx" | "rx", first frame index, float samples -1..1).
Tap = Callable[[str, int, "npt.NDArray[np.float64]"], None]

METER_QUEUE_S = 5.0  # audio the meter worker may fall behind by before blocks are dropped
METER_POLL_S = 0.05  # the meter worker drains the callbacks' blocks this often
METER_RATE = 16000  # the seat's meters run at the capture path's rate


@dataclass(frozen=True)
class RelaySide:
    """One device (one clock): PortAudio names of its capture and playback devices.

    `open_rate` opens the device at another rate than the relay's nominal one while the relay
    still treats it as nominal: it simulates a device clock off by open_rate/rate - 1 (tests
    and the benchmark: 48010 Hz is +208 ppm). 0: the nominal rate.
    """

    input: str
    output: str
    open_rate: int = 0


@dataclass
class GateChange:
    """One change of the mic gate, in frames of the headset stream: told at `told_frame`,
    complete (fully closed or open) at `settled_frame` (None until the callback ran)."""

    closed: bool
    told_frame: int
    settled_frame: int | None = None


@dataclass
class RelayStats:
    frames: int = 0  # headset-stream frames relayed
    underruns: dict[str, int] = field(default_factory=dict)  # per direction, drift buffer
    overruns: dict[str, int] = field(default_factory=dict)
    device_xruns: dict[str, int] = field(default_factory=dict)  # per side, PortAudio flags
    ppm: dict[str, float] = field(default_factory=dict)  # learnt clock difference
    buffer_ms: dict[str, float] = field(default_factory=dict)  # drift buffer fill now
    meter_drops: int = 0
    limiter_min_gain: float = 1.0


class AudioRelay:
    """The bridge's audio path; implements the seat's `Audio` protocol (levels to the sink)."""

    def __init__(
        self,
        headset: RelaySide,
        pc: RelaySide,
        samplerate: int = 48000,
        period_s: float = 0.005,
        latency_s: float = 0.011,
        device_latency_s: float = 0.0,
        levels_hz: float = 10.0,
        vad_mode: int = 2,
        meters: bool = True,
        tap: Tap | None = None,
        record: bool = False,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        stall_s: float = 2.0,
    ) -> None:
        if not (headset.input and headset.output and pc.input and pc.output):
            raise ValueError(
                "audio relay: PortAudio device names are needed for the headset and the gadget"
            )
        if latency_s < 2 * period_s:
            raise ValueError(
                f"audio relay latency: expected at least two periods ({2 * period_s:.3f} s), "
                f"got {latency_s}"
            )
        self.headset, self.pc = headset, pc
        self.samplerate = samplerate
        self.period = max(1, int(round(period_s * samplerate)))
        self.latency_s = latency_s
        self.device_latency_s = device_latency_s
        self.levels_period_s = 1.0 / levels_hz
        self.vad_mode = vad_mode
        self.meters = meters
        self.tap = tap
        # Tests and the benchmark: every block each stream saw, with its first frame and the
        # monotonic time of its callback ("mic_in", "mic_gated", "pc_out", "pc_in", "ear_out").
        self.record = record
        self.recorded: dict[str, list[tuple[int, float, Any]]] = {}
        self.retry_initial_s, self.retry_max_s, self.stall_s = retry_initial_s, retry_max_s, stall_s
        self.mic_muted = False
        self.held = False
        self.rx_cap_db: float | None = None
        self.peak_limit_dbfs: float | None = None
        self.gate_changes: list[GateChange] = []
        self.stats = RelayStats()
        self._lock = threading.Lock()  # the drift buffers and the gate bookkeeping
        # Blocks for the meter worker: the callbacks append, the worker drains it every
        # METER_POLL_S (no wake-up per block: 800 a second cost more than the meters).
        self._meter_blocks: deque[tuple[str, int, Any]] = deque()
        self._max_meter_blocks = max(1, int(METER_QUEUE_S * samplerate / self.period))
        self._stop = threading.Event()
        self._failed = threading.Event()
        self._failure = ""
        self._last_callback = 0.0
        self._pc_frames = self._pc_in_frames = self._ear_frames = 0
        self.streams: list[Any] = []
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None
        self._dsp: _Dsp | None = None
        self.running = threading.Event()  # set while both streams run

    # -- the seat's Audio protocol and enforcement hooks ----------------------------------

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audio-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._sink = None

    def set_mic_mute(self, muted: bool) -> None:
        """What the seat wants (agent mute or hold-mute): closes the gate within one period."""
        self.mic_muted = muted
        self._apply_gate()

    def set_hold(self, on: bool) -> None:
        """The call is on hold (the bridge's HID relay sees the PC's Hold LED): the gate closes
        within one period; on resume it reopens to the agent's own mute (`set_mic_mute`)."""
        self.held = on
        self._apply_gate()

    def set_rx_cap(self, max_gain_db: float | None) -> None:
        self.rx_cap_db = max_gain_db
        dsp = self._dsp
        if dsp is not None:
            dsp.cap.set_cap_db(max_gain_db)

    def set_peak_limit_dbfs(self, dbfs: float | None) -> None:
        """No receive sample above `dbfs` (full scale 1.0) from the next period on."""
        self.peak_limit_dbfs = dbfs
        dsp = self._dsp
        if dsp is not None:
            dsp.limiter.set_ceiling_dbfs(dbfs)

    @property
    def gate_closed(self) -> bool:
        return self.mic_muted or self.held

    def _apply_gate(self) -> None:
        with self._lock:
            closed = self.gate_closed
            dsp = self._dsp
            if dsp is None or dsp.gate.closed == closed:
                return  # not running (applied when the streams open) or no change
            dsp.gate.set_closed(closed)
            self.gate_changes.append(GateChange(closed, self.stats.frames))
            del self.gate_changes[:-64]  # the recent ones are enough to check the timing

    # -- worker ---------------------------------------------------------------------------

    def _emit(self, item: object) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink(item)
        except Exception:  # a failing consumer must not end the relay
            log.exception("audio sink failed on %s", type(item).__name__)

    def _run(self) -> None:
        if self.meters:
            load_meters()
        keep_open(
            what="audio relay",
            stop=self._stop,
            backoff=Backoff(self.retry_initial_s, self.retry_max_s),
            open_streams=lambda rescan: self._open(rescan=rescan),
            serve=self._serve,
            emit=self._emit,
            log=log,
            prefix="audio relay: ",
        )

    def _serve(self, streams: list[Any]) -> str:
        names = f"{self.headset.input} <-> {self.pc.output}"
        self._emit(AudioStatus(ok=True, detail=f"audio relay: {names}"))
        self.running.set()
        try:
            return self._meter_loop()
        finally:
            self.running.clear()

    def _open(self, rescan: bool) -> list[Any]:
        import sounddevice as sd

        if rescan:
            sd._terminate()
            sd._initialize()
        self._failed.clear()
        self._failure = ""
        self._meter_blocks.clear()
        self._pc_frames = self._pc_in_frames = self._ear_frames = 0
        self.recorded = {}
        dsp = _Dsp(self)
        with self._lock:
            self._dsp = dsp
            dsp.gate.set_closed(self.gate_closed)
            dsp.gate.gain = 0.0 if self.gate_closed else 1.0
        dsp.cap.set_cap_db(self.rx_cap_db)
        dsp.limiter.set_ceiling_dbfs(self.peak_limit_dbfs)
        latency: float | str = self.device_latency_s or "low"
        opened: list[Any] = []
        try:
            for side, kind, callback in (
                (self.headset, "input", self._mic_callback),
                (self.headset, "output", self._ear_callback),
                (self.pc, "input", self._speaker_callback),
                (self.pc, "output", self._pc_mic_callback),
            ):
                name = side.input if kind == "input" else side.output
                make = sd.InputStream if kind == "input" else sd.OutputStream
                opened.append(
                    make(
                        device=find_device(sd, name, kind),
                        channels=1,
                        samplerate=side.open_rate or self.samplerate,
                        blocksize=self.period,
                        dtype="float32",
                        latency=latency,
                        callback=callback,
                        finished_callback=self._finished_for(name),
                    )
                )
            self._last_callback = time.monotonic()
            for stream in opened:
                stream.start()
        except Exception:
            close_streams(opened, log)
            raise
        self.streams = opened
        return opened

    def _finished_for(self, name: str) -> Callable[[], None]:
        def finished() -> None:
            if not self._stop.is_set():
                self._failure = f"stream of {name!r} stopped"
                self._failed.set()

        return finished

    def _xrun(self, side: str, status: Any) -> None:
        if status:
            self.stats.device_xruns[side] = self.stats.device_xruns.get(side, 0) + 1

    # The four callbacks: the headset's (mic in, earpiece out) run on its clock, the
    # gadget's (the PC's speaker in, the PC's mic out) on the PC's USB clock.

    def _mic_callback(self, indata: Any, frames: int, t: Any, status: Any) -> None:
        dsp = self._dsp
        if dsp is None:
            return
        now = time.monotonic()
        self._last_callback = now
        self._xrun("headset", status)
        mic = indata[:, 0].astype("float64")
        with self._lock:
            first = self.stats.frames
            tx = dsp.gate.process(mic)
            if dsp.gate.settled_at is not None:
                for change in self.gate_changes:
                    if change.settled_frame is None:
                        change.settled_frame = first + dsp.gate.settled_at
            dsp.tx.write(tx, now)
            self.stats.frames = first + frames
        self._to_meters("tx", first, tx)
        if self.record:
            self._keep("mic_in", first, now, mic)
            self._keep("mic_gated", first, now, tx)

    def _ear_callback(self, outdata: Any, frames: int, t: Any, status: Any) -> None:
        dsp = self._dsp
        if dsp is None:
            outdata.fill(0)
            return
        now = time.monotonic()
        self._xrun("headset", status)
        with self._lock:
            received = dsp.rx.read(frames, now)
        rx = dsp.limiter.process(dsp.cap.process(received))
        outdata[:, 0] = rx
        first = self._ear_frames
        self._ear_frames += frames
        self._to_meters("rx", first, rx)
        if self.record:
            self._keep("ear_out", first, now, rx)

    def _speaker_callback(self, indata: Any, frames: int, t: Any, status: Any) -> None:
        dsp = self._dsp
        if dsp is None:
            return
        now = time.monotonic()
        self._xrun("pc", status)
        speaker = indata[:, 0].astype("float64")
        with self._lock:
            dsp.rx.write(speaker, now)
        if self.record:
            self._keep("pc_in", self._pc_in_frames, now, speaker)
        self._pc_in_frames += frames

    def _pc_mic_callback(self, outdata: Any, frames: int, t: Any, status: Any) -> None:
        dsp = self._dsp
        if dsp is None:
            outdata.fill(0)
            return
        now = time.monotonic()
        self._xrun("pc", status)
        with self._lock:
            sent = dsp.tx.read(frames, now)
        outdata[:, 0] = sent
        if self.record:
            self._keep("pc_out", self._pc_frames, now, sent)
        self._pc_frames += frames

    def _to_meters(self, channel: str, first: int, block: Any) -> None:
        if not (self.meters or self.tap is not None):
            return
        if len(self._meter_blocks) >= self._max_meter_blocks:
            self.stats.meter_drops += 1  # the meter worker fell behind: drop, never block
            return
        self._meter_blocks.append((channel, first, block))

    def _keep(self, name: str, first: int, now: float, block: Any) -> None:
        self.recorded.setdefault(name, []).append((first, now, block))

    def _meter_loop(self) -> str:
        """Meter the relayed blocks until stopped ("") or a device is lost (the reason)."""
        meters = (
            RelayMeters(self.samplerate, self.levels_period_s, self.vad_mode)
            if self.meters
            else None
        )
        blocks = self._meter_blocks
        while not self._stop.wait(METER_POLL_S):
            if self._failed.is_set():
                return self._failure
            self._update_stats()
            if not blocks and time.monotonic() - self._last_callback > self.stall_s:
                return f"no audio callbacks for {self.stall_s:.1f} s"
            while blocks:
                channel, first, block = blocks.popleft()
                if self.tap is not None:
                    self.tap(channel, first, block)
                if meters is not None:
                    for levels in meters.feed(channel, block):
                        self._emit(levels)
        self._update_stats()
        return ""

    def _update_stats(self) -> None:
        dsp = self._dsp
        if dsp is None:
            return
        for name, buf in (("tx", dsp.tx), ("rx", dsp.rx)):
            self.stats.underruns[name] = buf.underruns
            self.stats.overruns[name] = buf.overruns
            self.stats.ppm[name] = buf.ppm
            self.stats.buffer_ms[name] = 1000.0 * buf.fill / self.samplerate
        self.stats.limiter_min_gain = dsp.limiter.min_gain


def meter_rate(samplerate: int) -> int:
    """The rate the relay meters at: METER_RATE when `samplerate` is a multiple of it."""
    return METER_RATE if samplerate % METER_RATE == 0 else samplerate


class RelayMeters:
    """The meter worker's meters: both channels' relayed blocks in, `AudioLevels` out.

    Each channel has its own `Decimator` down to `meter_rate`, fed once per meter period: the
    blocks of a channel are kept until they complete its next period (the decimated sample
    that closes it), then decimated and metered together. The decimator's output does not
    depend on the block sizes, nor do the meters', so the levels are those of decimating and
    metering every block, out with the same block. One call per 100 ms rather than one per 5 ms
    block saves the calls' fixed cost, most of the decimation's at 5 ms blocks.
    """

    def __init__(self, samplerate: int, period_s: float, vad_mode: int = 2) -> None:
        import numpy as np

        from drivers.audio.levels import LevelsPipeline
        from dsp.decimate import Decimator
        from dsp.meter import to_int16

        rate = meter_rate(samplerate)
        self.factor = samplerate // rate
        self.pipeline: LevelsPipeline = LevelsPipeline(rate, period_s, vad_mode)
        self._to_int16, self._concatenate = to_int16, np.concatenate
        self._decimators: dict[str, Decimator] = {
            "tx": Decimator(self.factor),
            "rx": Decimator(self.factor),
        }
        self._held: dict[str, list[npt.NDArray[np.float64]]] = {"tx": [], "rx": []}
        self._seen = {"tx": 0, "rx": 0}  # input samples of each channel so far
        self._due = {"tx": self._next_due(0), "rx": self._next_due(0)}

    def _next_due(self, seen: int) -> int:
        """The input sample count with which the next meter period completes: the decimator
        has ceil(seen / factor) samples out, and the period closes on sample (boundary - 1)."""
        done = -(-seen // self.factor)
        period = self.pipeline.tx.period
        boundary = (done // period + 1) * period
        return (boundary - 1) * self.factor + 1

    def feed(self, channel: str, block: npt.NDArray[np.float64]) -> list[AudioLevels]:
        held = self._held[channel]
        held.append(block)
        self._seen[channel] += block.shape[0]
        if self._seen[channel] < self._due[channel]:
            return []
        samples = held[0] if len(held) == 1 else self._concatenate(held)
        held.clear()
        self._due[channel] = self._next_due(self._seen[channel])
        decimated = self._decimators[channel].process(samples)
        return self.pipeline.feed(channel, self._to_int16(decimated))


class _Dsp:
    """The relay's sample processing state for one opening of the streams."""

    def __init__(self, relay: AudioRelay) -> None:
        from dsp.drift import DriftBuffer
        from dsp.gate import MicGate
        from dsp.limiter import GainCap, PeakLimiter

        rate = relay.samplerate
        self.gate: MicGate = MicGate(rate)
        self.cap: GainCap = GainCap(rate)
        self.limiter: PeakLimiter = PeakLimiter(rate)
        self.tx: DriftBuffer = DriftBuffer(rate, relay.latency_s)
        self.rx: DriftBuffer = DriftBuffer(rate, relay.latency_s)
