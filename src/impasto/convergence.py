"""When a stage has converged: the best loss has stopped falling.

A coarse stage's last iterations buy little: the next, larger stage starts from its picture and
redoes the fine work anyway. :func:`converged` ends a stage when the best loss so far fell by
less than a fraction of itself over the last ``window`` iterations (the rule of artistic-videos
and others: a relative change over a window). The best loss, not the last one: L-BFGS's loss
is not monotone, and one bad step must not look like progress or like a stall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = ["WINDOW", "StageEnd", "converged", "relative_improvement"]

Reason = Literal["planned", "converged", "interrupted"]


@dataclass(frozen=True)
class StageEnd:
    """How one stage ended: at ``size`` px, after ``iterations`` of its ``planned``, and why."""

    size: int
    iterations: int
    planned: int
    reason: Reason

    def __str__(self) -> str:
        why = {"planned": "", "converged": " (settled)", "interrupted": " (interrupted)"}
        return f"{self.size} px: {self.iterations} of {self.planned} iterations{why[self.reason]}"


# Iterations over which the loss's fall is measured. Long enough that L-BFGS's uneven steps
# average out, short enough to stop a stage that has settled soon after it does.
WINDOW = 20


def relative_improvement(totals: Tensor, window: int = WINDOW) -> float:
    """(best before the last ``window`` values − best of all) / best of all, for the losses
    ``totals`` (1-D, one per iteration, oldest first); inf while there are no more than
    ``window`` of them (too early to say)."""
    if totals.numel() <= window:
        return float("inf")
    before = torch.min(totals[:-window])
    best = torch.min(totals)
    return float((before - best) / best.abs().clamp_min(torch.finfo(totals.dtype).tiny))


def converged(totals: Tensor, tolerance: float, window: int = WINDOW) -> bool:
    """Whether the best of ``totals`` fell by no more than ``tolerance`` (a fraction) of itself
    over the last ``window`` iterations; never with a tolerance of 0."""
    return tolerance > 0 and relative_improvement(totals, window) <= tolerance
