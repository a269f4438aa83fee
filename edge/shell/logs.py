"""Logging set-up: readable text on a terminal, one JSON object per line for log shippers.

Secrets never reach a log line: config values are masked before they are formatted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

# syslog(3) priorities; journald reads a `<N>` line prefix as the priority (sd-daemon(3)).
_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


class SeatFilter(logging.Filter):
    """Stamps every record with the seat's site and id, so each log line names its seat."""

    def __init__(self) -> None:
        super().__init__()
        self.site: str | None = None
        self.seat: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.seat is not None and getattr(record, "seat", None) is None:
            record.seat = self.seat
            record.site = self.site
        return True


SEAT_FILTER = SeatFilter()


def bind_seat(site: str, seat: str) -> None:
    """Called once the config is loaded: from here on every record carries site and seat."""
    SEAT_FILTER.site = site
    SEAT_FILTER.seat = seat


class TextFormatter(logging.Formatter):
    """Readable lines with `[site/seat]`; under systemd, journald adds the time itself."""

    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        seat = getattr(record, "seat", None)
        where = f" [{getattr(record, 'site', '')}/{seat}]" if seat is not None else ""
        text = f"{record.levelname}{where} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.journal:
            return f"<{_PRIORITY.get(record.levelname, 6)}>{text}"
        return f"{self.formatTime(record)} {text}"


def under_journald() -> bool:
    """systemd sets JOURNAL_STREAM to stderr's device:inode when stderr is the journal."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        info = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{info.st_dev}:{info.st_ino}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("seat", "site"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(journal=under_journald()))
    handler.addFilter(SEAT_FILTER)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # paho and amqtt are chatty at INFO; their warnings still come through.
    logging.getLogger("amqtt").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("transitions").setLevel(logging.WARNING)
