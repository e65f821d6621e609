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

__all__ = [
    "Terminated",
    "deferred",
    "forget_unhandled_interrupt",
    "terminated",
    "terminating_as_interrupt",
]


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


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM for the length of the block and deliver them after it (the
    handlers in place then raise as usual): for the seconds the command families take to import
    torch and the rest. A KeyboardInterrupt raised inside an import does not always come out as
    one: numpy's C code turns it into an ImportError, a class body into a RuntimeError, a
    weakref callback of the import machinery prints it as 'Exception ignored' and goes on, and
    one raised inside a string exec (dataclasses make their methods so) leaves a flag that makes
    ``python -m impasto`` end by SIGINT after its clean stop (see
    :func:`forget_unhandled_interrupt`). Main thread only; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        signal.raise_signal(held[0])  # now, to the handler in place: a clean KeyboardInterrupt


def forget_unhandled_interrupt() -> None:
    """Clear CPython's note of an unhandled KeyboardInterrupt, once one has been handled.

    CPython (3.11, 3.12) notes a KeyboardInterrupt that leaves code run by a string ``exec`` or
    ``eval`` as unhandled even when a caller catches it, and under ``python -m`` it then ends the
    process by SIGINT instead of with the exit status the program chose. Every string ``exec``
    starts by clearing that note, so an empty one does: harmless where there is no such note."""
    exec("pass", {})
