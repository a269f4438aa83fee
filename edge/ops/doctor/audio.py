"""The audio probes: the capture devices the config names are there (PortAudio), and the
microphone gives a signal (a second through the real audio driver; only levels come back)."""

from __future__ import annotations

from typing import Any

from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine, MicListener, MicReading
from edge.shell.config import AudioSection, SeatConfig

# Microphone signal: a live headset mic's self-noise and room sound sit well above this;
# digital silence (-100 dBov) or a muted/unplugged capsule sits below.
MIC_SILENT_DBOV = -70.0
MIC_PROBE_SECONDS = 1.0


def portaudio_devices() -> list[dict[str, Any]]:
    import sounddevice

    return [dict(d) for d in sounddevice.query_devices()]


def probe_microphone(audio: AudioSection, seconds: float) -> MicReading:
    """Capture `seconds` from the mic through the real audio driver; only levels come back."""
    import drivers.audio.capture as audio_driver

    driver_class = getattr(audio_driver, "SoundDeviceAudio", None)
    if driver_class is None:
        return MicReading(False, detail="this build has no real audio capture driver")
    listener = MicListener(audio, seconds)
    driver = driver_class(
        tx_device=audio.tx_device,
        samplerate=audio.samplerate,
        block_s=audio.block,
        levels_hz=audio.levels_hz,
    )
    driver.start(listener.feed)
    try:
        return listener.reading()
    finally:
        driver.stop()


def check_audio(config: SeatConfig, machine: Machine) -> Check:
    audio = config.audio
    if audio.backend == "virtual":
        return Check("audio", "OK", "virtual audio (simulated seat)")
    if audio.backend == "none":
        return Check(
            "audio", "WARN", "audio measurement off ([audio] backend = none)",
            "set [audio] backend = sounddevice to measure levels and enforce hearing limits",
        )  # fmt: skip
    try:
        devices = (machine.audio_devices or portaudio_devices)()
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


def check_microphone(config: SeatConfig, machine: Machine, audio_ok: bool) -> Check:
    audio = config.audio
    if audio.backend == "virtual":
        return Check("microphone", "OK", "virtual microphone (simulated seat)")
    if audio.backend == "none":
        return Check("microphone", "WARN", "not checked: audio measurement is off")
    if not audio_ok:
        return Check("microphone", "WARN", "not checked: the audio device is missing",
                     "fix the audio check first")  # fmt: skip
    try:
        reading = (machine.mic_probe or probe_microphone)(audio, MIC_PROBE_SECONDS)
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
