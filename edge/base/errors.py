"""The error kinds of the edge, all under `SeatboxError` (see `drivers.errors`)."""

from __future__ import annotations

from drivers.errors import DeviceError, ParseError, SeatboxError

__all__ = [
    "BrokerError",
    "ConfigError",
    "DeviceError",
    "ParseError",
    "SeatboxError",
    "UsageError",
]


class ConfigError(SeatboxError):
    """A config or profile value is wrong; the message names the file, the key and the need."""


class BrokerError(SeatboxError):
    """The broker cannot be reached, refused the credentials or the TLS handshake failed."""


class UsageError(SeatboxError):
    """The command line asks for what cannot be: a missing or conflicting option, a value out
    of range, a file named on it that cannot be read."""
