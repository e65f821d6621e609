"""Where a run may write: never onto, into or around what it reads.

Every command names its inputs (photos, paintings, a folder of frames, an --init image, weights)
and its outputs (the image, a folder of frames, a work directory, an animation, a plot, the
--save-every folder, a batch's every result). :func:`check_apart` refuses, before any work, an
output that is an input, sits inside an input folder, or is a folder holding an input; and two
outputs that are one path. Paths are compared resolved (symbolic links and ``..`` followed) and,
where both exist, by file identity (so a hard link is caught too). Each path is resolved once
and looked up in an index, so a batch of thousands of jobs is checked in a moment.
"""

from __future__ import annotations

import os
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
    "interrupted_path",
]

Named = tuple[str, "str | os.PathLike[str]"]
"""(what it is, for the message: "the content image", "--work-dir"; its path)."""

# How path a stands to path b, in the order a message prefers them for one b.
_IS, _INSIDE, _CONTAINS = "is", "is inside", "contains"
_RANK = {_IS: 0, _INSIDE: 1, _CONTAINS: 2}
_CONVERSE = {_IS: _IS, _INSIDE: _CONTAINS, _CONTAINS: _INSIDE}


def _real(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if "\0" in text:
        raise UsageError(f"the path {text!r} holds a NUL character")
    return Path(os.path.realpath(text))


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # it does not exist (yet)
        return None
    return st.st_dev, st.st_ino


class _Index:
    """Named paths by resolved path, by file identity and by every folder above them."""

    def __init__(self) -> None:
        self.items: list[Named] = []
        self.real: dict[Path, int] = {}
        self.ids: dict[tuple[int, int], int] = {}
        self.below: dict[Path, int] = {}  # a folder -> the first item inside it

    def add(self, item: Named) -> None:
        i = len(self.items)
        self.items.append(item)
        real = _real(item[1])
        self.real.setdefault(real, i)
        ident = _identity(item[1])
        if ident is not None:
            self.ids.setdefault(ident, i)
        for folder in real.parents:
            self.below.setdefault(folder, i)

    def relation(self, path: str | os.PathLike[str]) -> tuple[int, str] | None:
        """The first item ``path`` is, is inside or contains (and how), or None."""
        real = _real(path)
        hits: list[tuple[int, int, str]] = []
        for i in (self.real.get(real), self.ids.get(_identity(path) or (-1, -1))):
            if i is not None:
                hits.append((i, _RANK[_IS], _IS))
        for folder in real.parents:
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
    for part in Path(path).parts:
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
