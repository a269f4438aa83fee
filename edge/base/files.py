"""Reading configs, profiles, scenarios and secrets safely: regular files only, a size cap,
UTF-8, and a ConfigError saying why not (docs/reliability.md)."""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from edge.base.errors import ConfigError

# Configs, profiles and scenarios are a few KiB; anything past this is a mistake (a log, an
# image, /dev/zero) and is refused before it is read (docs/reliability.md).
MAX_CONFIG_BYTES = 1024 * 1024


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_small_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or ConfigError saying why not.

    Opened non-blocking and checked with fstat before reading, so a FIFO, a device or a
    folder is refused at once instead of hanging or filling the memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied (run as the seatbox user or root)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: symlink loop; expected a regular file") from None
        raise ConfigError(
            f"{path}: cannot open ({exc.strerror}); expected a regular file"
        ) from None
    except ValueError:  # a NUL in the path
        raise ConfigError(f"{path!r}: a path cannot contain NUL") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
            raise ConfigError(f"{path}: is {kind}; expected a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{path}: {info.st_size} bytes; expected at most {_size(limit)}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ConfigError(f"{path}: more than {_size(limit)}; expected at most {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 text (a UTF-8 BOM is allowed); UTF-16 and other encodings are named, not guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: is UTF-16 text; expected UTF-8 (save it as UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: byte {exc.start} is not UTF-8; expected UTF-8 text (save it as UTF-8)"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: contains NUL bytes (UTF-16 or binary?); expected UTF-8 text")
    return text.removeprefix("\ufeff")


def read_text(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    return decode_text(path, read_small_file(path, limit))


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file of at most MAX_CONFIG_BYTES, UTF-8; every failure is a ConfigError."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
