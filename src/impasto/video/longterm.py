"""Ties of a frame to other stylised frames: warped targets and how far each pixel trusts them.

Ruder, Dosovitskiy and Brox (GCPR 2016; IJCV 2018, section 4.2) hold frame i not only to frame
i−1 (the short-term loss) but to frames i−j for a set J of distances (the long-term loss):

    L_long = λ · Σ_{j ∈ J, i−j in the shot} (1/D) Σ c_long^(i,i−j) ⊙ (x − ω_{i−j}(x^(i−j)))²

with ω_{i−j} the earlier output warped to frame i by the flow between the two *content* frames,
computed directly (not chained), and the certainty

    c_long^(i,i−j) = max(c^(i,i−j) − Σ_{l∈J, l<j} c^(i,i−l), 0)

so that each pixel is held to the *nearest* earlier frame that saw it (c^(i,i−j) is the
forward–backward consistency of :func:`impasto.flow.consistency`: 1 where the flow can be
trusted). A region hidden for a few frames and then uncovered is thus painted as it was before it
was hidden, rather than afresh, and slow drift is held back by frames further away. The nearest
tie (j = 1, or the keyframe a chunk starts from) keeps its full c: it is the short-term term.

:func:`certainty_weights` is that rule, a pure function; :func:`tie` makes one tie (warped
output and its c) from two content frames; :func:`sum_of_ties` is the loss of several ties as one
tensor function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from .. import flow
from ..flow import FlowMethod

__all__ = ["Tie", "certainty_weights", "stack_ties", "sum_of_ties", "tie"]

Array = npt.NDArray[np.float32]


def certainty_weights(certainties: Sequence[Array]) -> list[Array]:
    """Ruder et al.'s c_long for certainties ordered nearest frame first: the first is kept, and
    each later one loses what the nearer ones already cover, floored at 0. With c ∈ {0, 1} the
    results are disjoint masks: each pixel goes to the nearest frame that trusts it."""
    out: list[Array] = []
    covered: Array | None = None
    for c in certainties:
        c = np.asarray(c, dtype=np.float32)
        out.append(c.copy() if covered is None else np.maximum(c - covered, 0.0))
        covered = c.copy() if covered is None else covered + c
    return out


@dataclass
class Tie:
    """Another frame's output warped to this frame (H, W, 3) in [0, 255], its certainty (H, W)
    and how many frames away it is (negative: a later frame)."""

    distance: int
    warped: Array
    certainty: Array

    @property
    def trusted(self) -> float:
        """The share of pixels this tie holds."""
        return float(self.certainty.mean())


def tie(
    content: npt.NDArray[np.uint8],
    other_content: npt.NDArray[np.uint8],
    other_output: npt.NDArray[np.uint8],
    distance: int,
    method: FlowMethod = "dis",
) -> Tie:
    """The tie of a frame (``content``) to another (``other_content``, stylised as
    ``other_output``): the flows between the two content frames, both ways, give the warp and
    the forward–backward certainty."""
    backward = flow.optical_flow(content, other_content, method)  # this -> other: where to fetch
    forward = flow.optical_flow(other_content, content, method)
    warped = flow.warp(other_output, backward, sharp=True)  # bicubic: the strokes stay sharp
    return Tie(distance, warped, flow.consistency(backward, forward))


def stack_ties(
    ties: Sequence[Tie], device: torch.device, weights: Sequence[Array] | None = None
) -> tuple[Tensor, Tensor]:
    """Targets (n, 3, H, W) and certainties (n, 1, H, W) on ``device``, ``weights`` replacing
    the ties' own certainties when given (the long-term c_long)."""
    cs = weights if weights is not None else [t.certainty for t in ties]
    targets = torch.cat([flow.to_tensor(t.warped, device) for t in ties])
    certainty = torch.cat([flow.to_tensor(c, device) for c in cs])
    return targets, certainty


def sum_of_ties(x: Tensor, targets: Tensor, certainty: Tensor) -> Tensor:
    """(1/D) Σ_j Σ c_j ⊙ (x − ω_j)², D = 3HW: :func:`impasto.flow.temporal_loss` summed over
    the ties, in one pass. ``x`` (1, 3, H, W); ``targets`` (n, 3, H, W); ``certainty``
    (n, 1, H, W). Nothing is read back or built from Python values: a CUDA graph may hold it."""
    return flow.temporal_loss(x, targets, certainty)
