"""Where a run may write: never onto, into or around what it reads.

Every command names its inputs (photos, paintings, a folder of frames, an --init image, weights)
and its outputs (the image, a folder of frames, a work directory, an animation, a plot, the
--save-every folder). :func:`check_apart` refuses, before any work, an output that is an input,
sits inside an input folder, or is a folder holding an input; and two outputs that are one path.
Paths are compared resolved (symbolic links and ``..`` followed) and, where both exist, by file
identity (so a hard link is caught too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError

__all__ = ["Named", "check_apart"]

Named = tuple[str, "str | os.PathLike[str]"]
"""(what it is, for the message: "the content image", "--work-dir"; its path)."""


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _relation(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> str | None:
    """How path ``a`` stands to path ``b``: "is", "is inside", "contains", or None (apart)."""
    ra, rb = _real(a), _real(b)
    if ra == rb or _same_file(a, b):
        return "is"
    if rb in ra.parents:
        return "is inside"
    if ra in rb.parents:
        return "contains"
    return None


def check_apart(inputs: Sequence[Named], outputs: Sequence[Named]) -> None:
    """Raise :class:`UsageError` (exit 2) when an output is, is inside or contains an input, or
    two outputs are, or hold, one another. Creates and reads nothing but the file system's
    metadata."""
    for out_name, out in outputs:
        for in_name, src in inputs:
            how = _relation(out, src)
            if how is not None:
                raise UsageError(
                    f"{out_name} '{os.fspath(out)}' {how} {in_name} '{os.fspath(src)}'; "
                    "pick another path, so as not to overwrite the input"
                )
    for i, (a_name, a) in enumerate(outputs):
        for b_name, b in outputs[i + 1 :]:
            how = _relation(a, b)
            if how is not None:
                shown = f"{a_name} '{os.fspath(a)}' {how} {b_name} '{os.fspath(b)}'"
                raise UsageError(f"{shown}; pick separate paths")
