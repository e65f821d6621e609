"""Where a run may write: never onto, into or around what it reads.

Every command names its inputs (photos, paintings, a folder of frames, an --init image, weights)
and its outputs (the image, a folder of frames, a work directory, an animation, a plot, the
--save-every folder, a batch's every result). :func:`check_apart` refuses, before any work, an
output that is an input, sits inside an input folder, or is a folder holding an input; and two
outputs that are one path. Paths are compared resolved (symbolic links and ``..`` followed) and,
where both exist, by file identity (so a hard link is caught too). Each path is resolved once
and looked up in an index, so a batch of thousands of jobs is checked in a moment.

:func:`check_regular_file` is the one check that a path given where a file is read is not a
FIFO, a device or a socket: opening one of those blocks, or reads without end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .atomic import NAME_MAX
from .errors import InputError, UsageError

__all__ = [
    "Named",
    "check_apart",
    "check_distinct",
    "check_folder_exists",
    "check_name_length",
    "check_regular_file",
    "interrupted_path",
]

Named = tuple[str, "str | os.PathLike[str]"]
"""(what it is, for the message: "the content image", "--work-dir"; its path)."""

# How path a stands to path b, in the order a message prefers them for one b.
_IS, _INSIDE, _CONTAINS = "is", "is inside", "contains"
_RANK = {_IS: 0, _INSIDE: 1, _CONTAINS: 2}
_CONVERSE = {_IS: _IS, _INSIDE: _CONTAINS, _CONTAINS: _INSIDE}


def _text(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if "\0" in text:
        raise UsageError(f"the path {text!r} holds a NUL character")
    return text


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # it does not exist (yet)
        return None
    return st.st_dev, st.st_ino


def _folders(real: str) -> list[str]:
    """Every folder above a resolved path, nearest first (``/a/b/c`` -> ``/a/b``, ``/a``,
    ``/``)."""
    found: list[str] = []
    while True:
        up = os.path.dirname(real)
        if up == real:
            return found
        found.append(up)
        real = up


class _Index:
    """Named paths by resolved path, by file identity and by every folder above them. Paths
    are strings, and the folders of the paths resolved once each: a batch's thousands of
    outputs share one folder, and resolving it again for each was most of a large plan's
    time."""

    def __init__(self) -> None:
        self.items: list[Named] = []
        self.real: dict[str, int] = {}
        self.ids: dict[tuple[int, int], int] = {}
        self.below: dict[str, int] = {}  # a folder -> the first item inside it
        self._resolved: dict[str, str] = {}  # a folder as given -> resolved

    def resolve(self, path: str | os.PathLike[str]) -> str:
        """``path`` with symbolic links and ``..`` followed (``os.path.realpath``), its folder
        resolved once for all the paths in it."""
        text = _text(path)
        head, tail = os.path.split(text)
        if not tail or tail in (".", "..") or os.path.islink(text):
            return os.path.realpath(text)
        folder = self._resolved.get(head)
        if folder is None:
            folder = self._resolved[head] = os.path.realpath(head or os.curdir)
        return os.path.join(folder, tail)

    def add(self, item: Named) -> None:
        i = len(self.items)
        self.items.append(item)
        real = self.resolve(item[1])
        self.real.setdefault(real, i)
        ident = _identity(item[1])
        if ident is not None:
            self.ids.setdefault(ident, i)
        up = os.path.dirname(real)
        if up not in self.below:  # else every folder above it is there already
            for folder in _folders(real):
                self.below.setdefault(folder, i)

    def relation(self, path: str | os.PathLike[str]) -> tuple[int, str] | None:
        """The first item ``path`` is, is inside or contains (and how), or None."""
        real = self.resolve(path)
        hits: list[tuple[int, int, str]] = []
        for i in (self.real.get(real), self.ids.get(_identity(path) or (-1, -1))):
            if i is not None:
                hits.append((i, _RANK[_IS], _IS))
        for folder in _folders(real):
            i = self.real.get(folder)
            if i is not None:
                hits.append((i, _RANK[_INSIDE], _INSIDE))
        i = self.below.get(real)
        if i is not None:
            hits.append((i, _RANK[_CONTAINS], _CONTAINS))
        if not hits:
            return None
        i, _, how = min(hits)
        return i, how


def check_apart(inputs: Sequence[Named], outputs: Sequence[Named]) -> None:
    """Raise :class:`UsageError` (exit 2) when an output is, is inside or contains an input, or
    two outputs are, or hold, one another; :class:`InputError` (exit 3) when an output's name is
    longer than a file system takes (a run would fail only when it came to write it). Creates
    and reads nothing but the file system's metadata."""
    for _, out in outputs:
        check_name_length(out)
    index = _Index()
    for item in inputs:
        index.add(item)
    for out_name, out in outputs:
        hit = index.relation(out)
        if hit is not None:
            in_name, src = inputs[hit[0]]
            raise UsageError(
                f"{out_name} '{os.fspath(out)}' {hit[1]} {in_name} '{os.fspath(src)}'; "
                "pick another path, so as not to overwrite the input"
            )
    check_distinct(outputs)


def check_name_length(path: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` when a part of ``path`` is over :data:`NAME_MAX` bytes."""
    for part in os.fspath(path).split(os.sep):
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise InputError(
                f"cannot write '{os.fspath(path)}': File name too long ({size} bytes in one "
                f"name; at most {NAME_MAX})"
            )


def check_folder_exists(path: str | os.PathLike[str], what: str = "") -> None:
    """Raise :class:`UsageError` when the folder ``path`` goes into does not exist.

    The command line's outputs go into folders that exist: the writers would create the missing
    ones (the API, and a batch's results inside its folder, rely on that), so a mistyped folder
    (``-o /tmp/ouput/x.png``) would leave a stray tree behind. ``what`` names the option
    ("--plot "), or nothing for -o."""
    text = os.fspath(path)
    if "\0" in text:
        raise UsageError(f"the path {text!r} holds a NUL character")
    folder = Path(text.rstrip("/" + os.sep) or text).parent
    if not folder.exists():
        raise UsageError(
            f"cannot write {what}'{text}': the folder '{folder}' does not exist; create it "
            "first or name another"
        )


def check_distinct(outputs: Sequence[Named]) -> None:
    """Raise :class:`UsageError` when two of ``outputs`` are one path or one holds the other."""
    index = _Index()
    for b_name, b in outputs:
        hit = index.relation(b)
        if hit is not None:
            a_name, a = outputs[hit[0]]
            how = _CONVERSE[hit[1]]
            shown = f"{a_name} '{os.fspath(a)}' {how} {b_name} '{os.fspath(b)}'"
            raise UsageError(f"{shown}; pick separate paths")
        index.add((b_name, b))


def interrupted_path(out: Path) -> Path:
    """Where an interrupted run leaves its best image: ``OUT.interrupted.EXT`` beside ``OUT``
    (``photo.jpg`` -> ``photo.interrupted.jpg``), in the output's own format."""
    return out.with_name(f"{out.stem}.interrupted{out.suffix}")


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`UsageError` (exit 2) when ``path`` is a FIFO, a device or a socket, where
    ``what`` ("the style image", "the jobs file") is to be read: reading one would block or never
    end. Looks at the metadata only (``stat`` never opens the file); a missing path or a folder is
    left to the reader, which has its own words for them."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    for test, kind in _SPECIAL:
        if test(mode):
            raise UsageError(
                f"{what} '{os.fspath(path)}' is not a regular file (it is {kind}); name a file"
            )
