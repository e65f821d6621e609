"""The ETA model: an iteration costs in proportion to its stage's pixels."""

from __future__ import annotations

import pytest

from impasto.config import TransferConfig
from impasto.eta import MIN_MEASURED_S, WorkPlan


def test_the_estimate_is_exact_when_work_goes_at_one_rate() -> None:
    """A run whose every pixel-iteration takes the same time: at every iteration of every
    stage, the seconds left are the true seconds left (a per-iteration rate would say half of
    them or less in the first stage)."""
    config = TransferConfig(size=512, iterations=300)
    plan = WorkPlan.of(config)
    assert len(plan.stages) == 3 and plan.iterations == 300
    per_unit = 0.2  # seconds per iteration at 512 px
    sides = [side for side, n in plan.stages for _ in range(n)]
    clock = [0.0]
    for side in sides:
        clock.append(clock[-1] + per_unit * (side / 512) ** 2)
    total = clock[-1]
    for i in range(30, 300, 7):
        left = plan.seconds_left(i, clock[i])
        assert left == pytest.approx(total - clock[i], rel=1e-9), i
    first_stage = plan.stages[0][1]
    naive = clock[first_stage // 2] / (first_stage // 2) * (300 - first_stage // 2)
    assert naive < 0.6 * (total - clock[first_stage // 2])  # what the issue saw


def test_no_estimate_before_there_is_a_rate() -> None:
    plan = WorkPlan.of(TransferConfig(size=256, iterations=10))
    assert plan.stages == ((256, 10),)
    assert plan.seconds_left(0, 5.0) is None
    assert plan.seconds_left(3, MIN_MEASURED_S / 2) is None
    assert plan.seconds_left(5, 2.0) == pytest.approx(2.0)
    assert plan.seconds_left(10, 4.0) == 0.0


def test_a_run_that_left_out_coarse_stages() -> None:
    """A run reporting fewer stages than the config plans (an image too small for the
    coarsest) is estimated on the stages it runs, the iterations shared among them."""
    config = TransferConfig(size=512, iterations=300)
    two = WorkPlan.of(config, stages=2)
    assert [side for side, _ in two.stages] == [side for side, _ in WorkPlan.of(config).stages][1:]
    assert two.iterations == 300
    assert WorkPlan.of(config, stages=3) == WorkPlan.of(config)
