"""Splitting a clip into chunks that workers paint at once, and tying them so the seams don't show.

A temporal video is a chain: frame k starts from frame k−1. To paint it on several workers at
once, the clip is cut into chunks, first at scene cuts (shots are independent) and then, within a
shot, into pieces of about ``length`` frames. Each chunk starts at a **keyframe**, painted before
the chunk's other frames:

- the first keyframe of a shot is painted afresh, as a still;
- a later keyframe is painted from the shot's previous keyframe (a tie ``length`` frames long:
  warm start and temporal term, like any warm frame), so the keyframes form a chain of their own,
  the only part of the work that runs in order;
- a chunk's other frames follow its keyframe as usual (short- and long-term terms), and the frames
  toward its end are also held, by a ``seam`` term that grows through the chunk, to the *next*
  keyframe warped back to them. The chunk's own chain is pulled onto the next keyframe gradually,
  so that the step from its last frame to the next chunk's keyframe is no larger than any other.

Both chunks on either side of a seam are thus tied to the same keyframe. :func:`plan_chunks`
makes the plan, :func:`seam_share` the seam term's weight (relative to λ) at each frame, and
:class:`Stretch` is a piece of work for a worker: frames painted in order from a root frame.
These are pure; :mod:`impasto.video.chunked` runs them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SEAM_POWER", "SEAM_WEIGHT", "Chunk", "Stretch", "plan_chunks", "seam_share"]

SEAM_WEIGHT = 4.0
"""The seam term's weight, relative to λ, at the next keyframe (it is reached only there).
Measured on bigbuckbunny (128x72, 12 frames, chunks of 4; BENCHMARKS.md, "Video"): the worst
seam's temporal error 3.66x the median inside chunks at 1, 2.33x at 4."""
SEAM_POWER = 1.0
"""How the seam term grows through a chunk: (position / length) ** SEAM_POWER."""


@dataclass(frozen=True)
class Chunk:
    """Frames ``start`` (the keyframe) to ``end`` − 1."""

    start: int
    end: int
    after: int | None  # the keyframe this one is painted from (same shot); None: afresh
    next_key: int | None  # the next chunk's keyframe when it is in the same shot

    @property
    def fresh(self) -> bool:
        return self.after is None


@dataclass(frozen=True)
class Stretch:
    """Work for one worker: paint ``frames`` (consecutive, in order) from ``root``, a frame
    painted already (None: the first frame is painted afresh); with ``seam``, each frame is also
    tied to that later keyframe. A chunk's keyframe is one stretch (its root the previous
    keyframe), the rest of the chunk another (its root the keyframe)."""

    root: int | None
    frames: range
    seam: int | None = None
    chunk_start: int = 0  # for the seam term's growth

    @property
    def needs(self) -> tuple[int, ...]:
        """Frames that must be painted before this stretch can start."""
        return tuple(i for i in (self.root, self.seam) if i is not None)


def plan_chunks(count: int, cuts: Sequence[int], length: int | None) -> list[Chunk]:
    """Chunks of ``count`` frames: a new one at every cut (the first frame of a shot), and each
    shot split into the fewest pieces of at most ``length`` frames, of near-equal sizes (None:
    a shot is one chunk)."""
    if length is not None and length < 1:
        raise ValueError(f"a chunk needs at least one frame, not {length}")
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < count), count]
    chunks: list[Chunk] = []
    for a, b in itertools.pairwise(bounds):
        pieces = 1 if length is None else math.ceil((b - a) / length)
        starts = [a + (b - a) * i // pieces for i in range(pieces)]
        ends = [*starts[1:], b]
        for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
            after = starts[i - 1] if i > 0 else None
            following = starts[i + 1] if i + 1 < pieces else None
            chunks.append(Chunk(s, e, after, following))
    return chunks


def stretches(chunk: Chunk) -> tuple[Stretch, Stretch | None]:
    """The chunk as two pieces of work: its keyframe, and the frames after it (None for a chunk
    of one frame)."""
    key = Stretch(chunk.after, range(chunk.start, chunk.start + 1), None, chunk.start)
    if chunk.end - chunk.start == 1:
        return key, None
    rest = Stretch(chunk.start, range(chunk.start + 1, chunk.end), chunk.next_key, chunk.start)
    return key, rest


def seam_share(index: int, chunk_start: int, next_key: int) -> float:
    """The seam term's weight at frame ``index`` relative to λ: growing from 0 at the chunk's
    keyframe to :data:`SEAM_WEIGHT` at the next keyframe."""
    position = (index - chunk_start) / (next_key - chunk_start)
    return float(SEAM_WEIGHT * position**SEAM_POWER)
