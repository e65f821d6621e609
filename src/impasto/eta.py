"""How long a run has left, from its plan of coarse-to-fine stages.

An iteration costs in proportion to the pixels of its stage (the network's work grows with the
image), so the iterations of a 512 px stage cost four times those of a 256 px one. A rate per
iteration (what a progress bar measures) therefore says about half the real time while the first
of three stages runs; the rate per unit of work does not change from stage to stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .config import TransferConfig

# Below this many seconds of measurement, no estimate (the first steps warm caches up).
MIN_MEASURED_S = 0.5


@dataclass(frozen=True)
class WorkPlan:
    """The stages of a run as (longest side, iterations), coarse first, and the work they plan:
    one unit is one iteration at the last stage's size."""

    stages: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, config: TransferConfig, stages: int | None = None) -> WorkPlan:
        """The plan of ``config``; ``stages``, when given, is the number of stages the run
        reports (coarse stages too small for an image are left out: the smallest ones)."""
        plan = config.stage_plan()
        if stages is not None and 0 < stages < len(plan):
            plan = config.stage_plan(smallest=plan[-stages][0])
        return cls(tuple(plan))

    @classmethod
    def from_sizes(cls, stages: Sequence[tuple[int, int]]) -> WorkPlan:
        """From (longest side, iterations) per stage, as :func:`impasto.optimize.stage_plan`
        gives them (its Stage records)."""
        return cls(tuple((int(side), int(n)) for side, n in stages))

    def _cost(self, side: int) -> float:
        top = self.stages[-1][0]
        return (side / top) ** 2

    @property
    def iterations(self) -> int:
        return sum(n for _, n in self.stages)

    @property
    def total(self) -> float:
        """The whole run's work."""
        return sum(n * self._cost(side) for side, n in self.stages)

    def done(self, iteration: int) -> float:
        """The work of the first ``iteration`` iterations (counted across stages)."""
        work, left = 0.0, max(0, iteration)
        for side, n in self.stages:
            k = min(n, left)
            work += k * self._cost(side)
            left -= k
            if left == 0:
                break
        return work

    def seconds_left(self, iteration: int, elapsed: float) -> float | None:
        """Seconds the run still needs after ``iteration`` iterations took ``elapsed`` seconds,
        at the rate of work measured so far; None until there is something to measure."""
        work = self.done(iteration)
        if work <= 0 or elapsed < MIN_MEASURED_S:
            return None
        return max(0.0, (self.total - work) * elapsed / work)
