"""The radar probe: the LD2410 on its port sends valid frames and answers (drivers.radar.probe)."""

from __future__ import annotations

import os

from drivers.radar.ld2410 import RadarError
from drivers.radar.probe import RadarProbe, probe
from edge.ops.doctor.check import Check
from edge.ops.doctor.machine import Machine
from edge.shell.config import RadarSection, SeatConfig

LD2410_FRAMES = (
    "LD2410 frames (data F4 F3 F2 F1 ... F8 F7 F6 F5, answers FD FC FB FA ... 04 03 02 01)"
)


def check_radar(config: SeatConfig, machine: Machine) -> Check:
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
