"""SIGTERM handled as Ctrl-C is, for the length of one command.

``timeout``, ``kill``, systemd and job schedulers stop a process with SIGTERM, whose default
action ends it on the spot: no message, no best-image-so-far, temporary files left behind. While
:func:`terminating_as_interrupt` is active, SIGTERM raises :class:`Terminated` (a
:class:`KeyboardInterrupt`) wherever the program is, so every command's Ctrl-C path runs: the
best image is saved as ``OUT.interrupted.EXT``, a video keeps its finished frames, the server
stops cleanly. The command then exits 143 (128 + SIGTERM) rather than Ctrl-C's 130. A second
SIGTERM while the first is being handled is ignored, so the clean-up can finish; SIGKILL remains
the way to stop at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "terminated", "terminating_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM where Ctrl-C raises KeyboardInterrupt."""


_received = False


def _handle(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received:
        return  # already stopping: let the clean-up finish
    _received = True
    raise Terminated


def terminated() -> bool:
    """True once SIGTERM has arrived during the current command."""
    return _received


@contextlib.contextmanager
def terminating_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only; elsewhere, where
    Python cannot install handlers, the block runs unchanged). The old handler is put back after."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = False
    previous = signal.signal(signal.SIGTERM, _handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _received = False
