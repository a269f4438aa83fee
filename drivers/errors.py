"""The root of every seatbox error, and the kinds every layer shares.

It lives here, in the lowest layer that raises, because `drivers` may not import `edge`;
`edge.base.errors` re-exports it with the edge's own kinds. The CLI turns any SeatboxError
into a message and an exit code in one place (`edge.cli`)."""

from __future__ import annotations


class SeatboxError(Exception):
    """Something the user can act on: the message names the file, field or device and what
    was expected. Anything else escaping is a bug."""

    # What `seatbox` prints before the message: None for the command's own prefix (usually
    # "seatbox <command>: "); a command sets it (`edge.cli.framed`) for a line worded otherwise.
    prefix: str | None = None


class ParseError(SeatboxError, ValueError):
    """Bytes from outside (a report, a frame, a payload, a command) are not what the format
    allows."""


class DeviceError(SeatboxError):
    """A device is missing, busy, refused or did not answer as it should."""
