"""Errors a user can cause, each with the exit code the command line gives it.

The command line catches :class:`ImpastoError` at the top and prints one line; the API lets it
propagate, so a notebook user sees the same message as an exception.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit codes of the ``impasto`` command; documented in the README."""

    OK = 0
    ERROR = 1  # a bug: anything not foreseen (shown with --traceback)
    USAGE = 2  # bad option, unknown layer, unsupported output extension
    INPUT = 3  # missing/corrupt/oversized image, unreadable weights, unwritable output
    RESOURCE = 4  # out of memory (host or GPU)
    DIVERGED = 5  # the loss became NaN or infinite
    FAILED_JOBS = 6  # impasto batch: some jobs failed (each recorded with its message)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + 15), handled as Ctrl-C is


class ImpastoError(Exception):
    """Base class: a problem we can explain to the user in one line."""

    exit_status: ExitStatus = ExitStatus.ERROR


class UsageError(ImpastoError, ValueError):
    """An option or argument that cannot work (the user must change the command)."""

    exit_status = ExitStatus.USAGE


class InputError(ImpastoError, OSError):
    """An input or output file that cannot be read or written as asked."""

    exit_status = ExitStatus.INPUT


class ResourceError(ImpastoError, MemoryError):
    """The machine ran out of memory (host or GPU)."""

    exit_status = ExitStatus.RESOURCE


class DivergedError(ImpastoError, ArithmeticError):
    """The objective became NaN or infinite during the optimisation."""

    exit_status = ExitStatus.DIVERGED


class Interrupted(ImpastoError):
    """The user pressed Ctrl-C (or the process got SIGTERM); carries where the best image so
    far was saved, if anywhere."""

    exit_status = ExitStatus.INTERRUPTED


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (FFmpeg's and Pillow's run to several), or its
    type's name when it has none: for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unreadable(what: str, exc: OSError) -> InputError:
    """One line for a file the operating system would not give us: 'cannot read WHAT: file not
    found' (or 'it is a directory', 'permission denied', its own words)."""
    why = {
        FileNotFoundError: "file not found",
        IsADirectoryError: "it is a directory",
        PermissionError: "permission denied",
    }.get(type(exc))
    return InputError(f"cannot read {what}: {why or exc.strerror or exc}")
