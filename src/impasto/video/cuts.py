"""Scene cuts: where a video's frames stop following one another, so that the next frame restarts.

A warm start across a cut carries the last shot's strokes into the new one (the warped previous
output is a picture of another place), and the temporal term would hold them there. Two signs of
a cut, both cheap, read from the pair of *content* frames at the size they are stylised at:

- **the flow is not trusted**: the share of pixels the forward–backward check of
  :func:`impasto.flow.consistency` keeps (the same check that weighs the temporal term), and
- **the colours jump**: the histogram intersection distance of the two frames' colours
  (1 − Σ min(h₁, h₂) over a joint RGB histogram of 8³ bins; 0 for the same colours, 1 for none
  in common).

A pair is a cut when the check trusts under :data:`TRUST_CUT` of the frame whatever the colours,
or under :data:`TRUST_LOW` while the colours move by more than :data:`COLOUR_JUMP`. Measured on
``bigbuckbunny.mp4`` at 256×144 (one shot of 132 frames, BENCHMARKS.md): consecutive frames trust
87–100% of the frame (median 97%) with colour distances under 0.023; jumps inside the shot (frame
0 to 60, 10 to 131) still trust 69–80% (the same place), distance under 0.15; joins to another
picture (tubingen, three paintings) trust 0.3–11.5%, distance 0.63–0.80. The thresholds sit
well inside those gaps. A jump inside one place (the same background, the character moved) is
not a cut here: its flow is trusted where it holds, and the temporal term already lets go of the
rest.

Pure functions on NumPy arrays; the flows are :func:`impasto.flow.optical_flow`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .. import flow
from ..flow import FlowMethod

__all__ = [
    "COLOUR_JUMP",
    "TRUST_CUT",
    "TRUST_LOW",
    "CutCheck",
    "check_pair",
    "colour_distance",
    "colour_histogram",
    "find_cuts",
    "is_cut",
]

TRUST_CUT = 0.10
"""Under this share of trusted pixels the pair is a cut whatever its colours."""
TRUST_LOW = 0.25
"""Under this share of trusted pixels, a colour jump (:data:`COLOUR_JUMP`) makes it a cut."""
COLOUR_JUMP = 0.15
"""Histogram intersection distance above which the colours have jumped."""
BINS = 8  # per channel: 512 joint bins, coarse enough that noise and grading shifts stay put

Image = npt.NDArray[np.uint8]


def colour_histogram(image: Image, bins: int = BINS) -> npt.NDArray[np.float64]:
    """The joint RGB histogram of an 8-bit (H, W, 3) image: ``bins``³ values summing to 1."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, not {image.shape}")
    q = image.astype(np.int64) * bins // 256  # (H, W, 3) bin of each channel
    index = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    counts = np.bincount(index.ravel(), minlength=bins**3).astype(np.float64)
    share: npt.NDArray[np.float64] = counts / counts.sum()
    return share


def colour_distance(first: Image, second: Image) -> float:
    """1 − Σ min(h₁, h₂): the share of one frame's colours the other lacks, in [0, 1]."""
    return float(1.0 - np.minimum(colour_histogram(first), colour_histogram(second)).sum())


def is_cut(trusted: float, colours: float) -> bool:
    """The rule (see the module notes): ``trusted`` the share of pixels the flow check keeps,
    ``colours`` the histogram distance."""
    return trusted < TRUST_CUT or (trusted < TRUST_LOW and colours > COLOUR_JUMP)


@dataclass(frozen=True)
class CutCheck:
    """What was measured between a frame and the one before it."""

    trusted: float  # share of pixels the forward–backward check trusts
    colours: float  # histogram intersection distance

    @property
    def cut(self) -> bool:
        return is_cut(self.trusted, self.colours)


def check_pair(
    previous: Image, current: Image, trust: npt.NDArray[np.float32] | None = None,
    method: FlowMethod = "dis",
) -> CutCheck:  # fmt: skip
    """Measure the pair; ``trust`` is their consistency weights (H, W) when the caller has them
    already (the frame loop does), else the flows are computed here."""
    if trust is None:
        backward = flow.optical_flow(current, previous, method)
        forward = flow.optical_flow(previous, current, method)
        trust = flow.consistency(backward, forward)
    return CutCheck(float(trust.mean()), colour_distance(previous, current))


def find_cuts(frames: Iterable[Image], method: FlowMethod = "dis") -> Iterator[int]:
    """The index of every frame that begins a new shot (never 0), holding two frames at a time:
    the same decisions the frame loop makes as it goes, for planning chunks before any work."""
    previous: Image | None = None
    for index, frame in enumerate(frames):
        if previous is not None and check_pair(previous, frame, method=method).cut:
            yield index
        previous = frame
