"""The PC side of the HID relay: the gadget's /dev/hidgN (stdlib only: runs in the QEMU guest).

    pc = HidgDevice("auto")        # the hidg node of the configured gadget, or a path
    data = pc.read_report()        # the softphone's latest output report, or None
    pc.write_report(b"\\x01\\x01")  # an input report; False when the PC cannot take it
    pc.pc_connected                # False until a write succeeds, after ESHUTDOWN, node gone

With `no_out_endpoint=1` (drivers/gadget/configfs.py) f_hid keeps only the latest SET_REPORT:
a read returns it once (report ID first), then EAGAIN until the PC writes again. Nothing here
raises an OSError: the PC not connected or not configured (write: ESHUTDOWN), the gadget not
bound yet or removed (no node, ENODEV), a write still pending (EAGAIN) are states the caller
reads (`pc_connected`, `problem`), so a reader thread never dies of them. The node is opened
lazily and, after a failure, reopened on the next call (a rebuilt gadget's new node).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Callable
from pathlib import Path

from drivers.gadget.configfs import CONFIGFS_ROOT, Gadget, GadgetSpec

# A read that finds nothing new, or a write the PC has not yet collected.
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)
# f_hid's answer while the function's endpoint is disabled: the PC is not connected or has not
# configured the device (unplugged, suspended, or not yet enumerated).
_NOT_CONFIGURED = (errno.ESHUTDOWN,)
# Bigger than any canonical report; f_hid returns one report per read.
_READ_SIZE = 64


def open_node(path: str) -> int:
    """The node opened as the relay uses it: read and write, non-blocking."""
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def find_hidg(gadget: str = "seatbox", root: Path = CONFIGFS_ROOT) -> str | None:
    """The /dev/hidgN of the gadget's HID function as configfs names it, or None when the
    gadget or its node is not there (not built, or not bound: f_hid makes the node at bind)."""
    try:
        return Gadget(GadgetSpec(name=gadget), root=root).hid_device()
    except (OSError, ValueError):
        return None


class HidgDevice:
    """One gadget HID node, non-blocking; `hid_device` is "auto" or a /dev/hidgN path."""

    def __init__(
        self,
        hid_device: str = "auto",
        gadget: str = "seatbox",
        root: Path = CONFIGFS_ROOT,
        opener: Callable[[str], int] = open_node,
    ) -> None:
        """`opener` opens a node path to a non-blocking fd (tests hand a socket pair's end)."""
        self.hid_device = hid_device
        self._opener = opener
        self.gadget = gadget
        self.root = Path(root)
        self.path: str | None = None
        self.pc_connected = False
        self.problem = "not opened yet"  # why pc_connected is False, for state and logs
        self._fd: int | None = None

    # --- the node -----------------------------------------------------------------------

    def _node(self) -> str | None:
        if self.hid_device != "auto":
            return self.hid_device
        return find_hidg(self.gadget, self.root)

    def _open(self) -> int | None:
        if self._fd is not None:
            return self._fd
        path = self._node()
        if path is None:
            self._down(f"no hidg node: gadget {self.gadget!r} not built or not bound")
            return None
        try:
            self._fd = self._opener(path)
        except OSError as err:
            self._down(f"cannot open {path}: {err.strerror or err}")
            return None
        self.path = path
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _down(self, problem: str) -> None:
        self.pc_connected = False
        self.problem = problem

    def _lost(self, err: OSError) -> None:
        """The node failed in a way a retry on the same fd will not fix: close it."""
        self.close()
        self._down(f"{self.path or 'hidg'}: {err.strerror or err}")

    def fileno(self) -> int | None:
        """The open fd (for a select loop), opening the node if needed; None without one."""
        return self._open()

    # --- reports ------------------------------------------------------------------------

    def read_report(self) -> bytes | None:
        """The PC's latest output report (report ID first) not read before, or None."""
        fd = self._open()
        if fd is None:
            return None
        try:
            data = os.read(fd, _READ_SIZE)
        except OSError as err:
            if err.errno not in _AGAIN:
                self._lost(err)
            return None
        if not data:  # f_hid never reads zero bytes: the node is gone
            self._lost(OSError(errno.ENODEV, "end of file"))
            return None
        return data

    def wait_report(self, timeout: float) -> bytes | None:
        """Like `read_report`, waiting up to `timeout` seconds for the PC to write."""
        fd = self._open()
        if fd is None:
            return None
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except (OSError, ValueError) as err:  # ValueError: the fd was closed meanwhile
            self.close()
            self._down(f"{self.path or 'hidg'}: {err}")
            return None
        return self.read_report() if ready else None

    def write_report(self, data: bytes, timeout: float = 0.0) -> bool:
        """Write one input report (report ID first). True when the kernel took it; False when
        the PC cannot take it now, with `pc_connected` and `problem` saying why. f_hid holds
        one report at a time until the PC polls it: up to `timeout` seconds are waited for
        the previous one to go (a press and its release are two reports)."""
        fd = self._open()
        if fd is None:
            return False
        try:
            written = os.write(fd, data)
        except OSError as err:
            if err.errno in _AGAIN and timeout > 0 and self._writable(fd, timeout):
                return self.write_report(data)
            if err.errno in _AGAIN:
                # The previous report is still waiting for the PC's poll: connected, busy.
                self.problem = "previous input report not yet collected by the PC"
                return False
            if err.errno in _NOT_CONFIGURED:
                # Closed too: if the gadget is rebuilt meanwhile, the next call opens its node.
                self.close()
                self._down("the PC has not configured the gadget (not connected)")
                return False
            self._lost(err)
            return False
        if written != len(data):
            self.problem = f"short write: {written} of {len(data)} bytes"
            return False
        self.pc_connected = True
        self.problem = ""
        return True

    def _writable(self, fd: int, timeout: float) -> bool:
        try:
            _, ready, _ = select.select([], [fd], [], timeout)
        except (OSError, ValueError):
            return False
        return bool(ready)
