"""No source file longer than the house allows: run by `make lint`.

A long file is one that has taken on a second concern; the fix is a split along that concern
(docs/development.md, "Rules the tools keep"), not a raised limit. Counts the lines of every
source file (Python, JavaScript, CSS, HTML) below the folders given, and names each one over the
limit, one line each; exits 1 if there is any.

    python scripts/check_lengths.py src            # the limit: 600 lines
    python scripts/check_lengths.py --max 400 src/impasto/video
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

MAX_LINES = 600
SOURCE_SUFFIXES = frozenset({".py", ".js", ".css", ".html"})


def source_files(root: Path) -> Iterator[Path]:
    """The source files below ``root`` (or ``root`` itself), in a stable order."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def too_long(roots: Sequence[Path], limit: int = MAX_LINES) -> list[tuple[Path, int]]:
    """(file, lines) of every source file below ``roots`` longer than ``limit`` lines."""
    found = []
    for root in roots:
        for path in source_files(root):
            n = line_count(path)
            if n > limit:
                found.append((path, n))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="folders (or files) to check")
    parser.add_argument("--max", type=int, default=MAX_LINES, help="the most lines a file may have")
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.roots if not r.exists()]
    if missing:
        print(f"check_lengths: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = too_long(args.roots, args.max)
    for path, n in found:
        print(f"{path}: {n} lines, over the limit of {args.max}: split it along its concerns")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
