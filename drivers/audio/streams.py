"""What the capture and the bridge's audio relay share: finding a PortAudio device by name,
keeping a set of streams open, reopening them with back-off when a device goes away, and
closing them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from drivers.audio.events import AudioStatus
from drivers.base import Backoff


def load_meters() -> None:
    """Load the meters' modules (numpy, scipy's filter design, the dsp meters) in the worker
    thread before any stream opens: loaded once the streams run, they held the interpreter for
    a few hundred ms while the first callbacks waited (the relay's drift buffers underran)."""
    import drivers.audio.levels  # noqa: F401


def find_device(sd: Any, name: str, kind: str = "input") -> int:
    """Index of the `kind` ("input"/"output") device named `name` (exact, else the one whose
    name contains it); LookupError naming the devices there are."""
    key = f"max_{kind}_channels"
    devices = [d for d in sd.query_devices() if d[key] > 0]
    for device in devices:
        if device["name"] == name:
            return int(device["index"])
    matches = [d for d in devices if name in d["name"]]
    if len(matches) == 1:
        return int(matches[0]["index"])
    names = ", ".join(repr(d["name"]) for d in devices) or "none"
    if matches:
        raise LookupError(f"{kind} device {name!r} is ambiguous; {kind} devices: {names}")
    raise LookupError(f"{kind} device {name!r} not found; {kind} devices: {names}")


def close_streams(streams: list[Any], log: logging.Logger) -> None:
    for s in streams:
        try:
            s.abort(ignore_errors=True)
            s.close(ignore_errors=True)
        except Exception as exc:  # closing a vanished device may fail; nothing to do
            log.debug("closing audio stream: %s", exc)


def keep_open(
    *,
    what: str,
    stop: threading.Event,
    backoff: Backoff,
    open_streams: Callable[[bool], list[Any]],
    serve: Callable[[list[Any]], str],
    emit: Callable[[object], None],
    log: logging.Logger,
    prefix: str = "",
) -> None:
    """Until `stop`: open the streams (`open_streams(rescan)`, rescanning the devices after the
    first try), `serve` them until they fail (it returns why, "" on stop), close them, and try
    again with back-off. A lost device is reported once (`AudioStatus(ok=False)`, `prefix` +
    why) until the streams open again; `serve` reports the good news itself."""
    lost_reported = False
    first = True
    while not stop.is_set():
        try:
            streams = open_streams(not first)
        except Exception as exc:  # PortAudio raises various errors for a missing device
            first = False
            if not lost_reported:
                emit(AudioStatus(ok=False, detail=f"{prefix}{exc}"))
                lost_reported = True
            delay = backoff.next_delay()
            log.warning("%s unavailable (%s); retrying in %.1f s", what, exc, delay)
            stop.wait(delay)
            continue
        first = False
        backoff.reset()
        lost_reported = False
        detail = serve(streams)
        close_streams(streams, log)
        if detail:
            emit(AudioStatus(ok=False, detail=f"{prefix}{detail}"))
            lost_reported = True
            log.warning("%s lost: %s", what, detail)
