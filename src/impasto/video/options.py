"""How the frames of a video are tied together: :class:`VideoOptions`, beside TransferConfig.

Like :class:`~impasto.config.TransferConfig`, every field carries its default, type and help; the
``impasto video`` flags are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..config import (
    MAX_ITERATIONS,
    MAX_WEIGHT,
    STYLE_WEIGHT,
    TransferConfig,
    check_bounds,
    check_choices,
    option,
)
from ..flow import FlowMethod

TEMPORAL_WEIGHT = 1e8
"""λ of the temporal loss at β = 10³ (see the module docstring and BENCHMARKS.md); by default λ
follows β (``VideoOptions.temporal_weight_for``), so the measured balance holds at every β."""

FRAME_ITERATIONS_FRACTION = 5
"""Frames after the first get ``iterations // FRAME_ITERATIONS_FRACTION`` iterations by default."""


@dataclass(frozen=True)
class VideoOptions:
    """How frames are tied together; the transfer itself is set by :class:`TransferConfig`."""

    temporal: bool = option(
        True,
        "temporal consistency: start each frame from the previous output warped by optical flow "
        "and penalise departures from it (--no-temporal: each frame on its own, the naive method)",
    )
    temporal_weight: float | None = option(
        None,
        "λ, weight of the temporal loss λ·mean(c·(x − warped previous)²) in pixel levels² "
        f"(default: {TEMPORAL_WEIGHT / STYLE_WEIGHT:g}·β, i.e. {TEMPORAL_WEIGHT:g} at β = "
        f"{STYLE_WEIGHT:g}, so the balance with the style holds at every size and preset)",
        bounds=(0, MAX_WEIGHT),
    )
    frame_iterations: int | None = option(
        None,
        f"iterations of each frame after the first (default: --iterations/"
        f"{FRAME_ITERATIONS_FRACTION}); --no-temporal gives every frame --iterations",
        bounds=(1, MAX_ITERATIONS),
    )
    flow: FlowMethod = option("dis", "optical flow: dis (fast) or farneback (smoother, slower)")

    def __post_init__(self) -> None:
        check_choices(self)
        check_bounds(self)

    def temporal_weight_for(self, config: TransferConfig) -> float:
        """λ: given, or proportional to the run's β (measured as 1e8 at β = 1e3)."""
        if self.temporal_weight is not None:
            return self.temporal_weight
        return TEMPORAL_WEIGHT * config.style_weight / STYLE_WEIGHT

    def iterations(self, index: int, config: TransferConfig) -> int:
        """Iterations of frame ``index``: all for the first frame and in naive mode."""
        if index == 0 or not self.temporal:
            return config.iterations
        if self.frame_iterations is not None:
            return self.frame_iterations
        return max(1, config.iterations // FRAME_ITERATIONS_FRACTION)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
