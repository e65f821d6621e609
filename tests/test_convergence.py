"""Stopping a stage once it has settled: the rule's known answers, and a real run stopping."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from impasto import Transfer, TransferConfig
from impasto.convergence import StageEnd, converged, relative_improvement
from impasto.vgg import VGG


def test_the_improvement_is_the_best_loss_fall_over_the_window() -> None:
    # Best before the last 2 values: 10; best of all: 8 -> (10 - 8) / 8.
    totals = torch.tensor([12.0, 10.0, 11.0, 8.0])
    assert relative_improvement(totals, window=2) == pytest.approx(0.25)
    # A worse last value (L-BFGS is not monotone) changes nothing: the best is what counts.
    worse = torch.tensor([12.0, 10.0, 11.0, 8.0, 30.0])
    assert relative_improvement(worse, window=1) == pytest.approx(0.0)
    assert relative_improvement(totals, window=4) == math.inf  # too early to say


def test_converged_needs_a_fall_no_larger_than_the_tolerance() -> None:
    flat = torch.tensor([100.0] * 25 + [99.95] * 15)
    assert converged(flat, tolerance=1e-3, window=20)  # 0.05% over 20 iterations
    assert not converged(flat, tolerance=1e-4, window=20)
    falling = torch.linspace(100.0, 50.0, 40)
    assert not converged(falling, tolerance=1e-3, window=20)
    assert not converged(flat, tolerance=0.0, window=20)  # 0: never


@pytest.mark.slow
def test_a_stage_that_settles_ends_early_and_says_so(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    common = {"size": 48, "scales": (32, 48), "iterations": 100, "seed": 1, "device": "cpu"}
    common["precision"] = "fp32"  # the same path twice, step for step
    whole = TransferConfig(**common, stop_change=0)
    full = Transfer(content_path, [style_path], whole, vgg=vgg19).run()
    assert [(e.size, e.reason) for e in full.stages] == [(32, "planned"), (48, "planned")]
    first = full.stages[0].iterations
    totals = torch.tensor([row["total"] for row in full.history[:first]])
    # The loss is checked every 10 iterations: a tolerance the first stage meets at one check
    # (its improvement there) and at none before stops the same run exactly there.
    checks = range(10, first, 10)
    falls = [relative_improvement(totals[:k]) for k in checks]
    at = next(k for j, k in enumerate(checks) if falls[j] < min([1.0, *falls[:j]]))
    tolerance = falls[checks.index(at)]
    cfg = TransferConfig(**common, stop_change=tolerance * (1 + 1e-6))
    early = Transfer(content_path, [style_path], cfg, vgg=vgg19).run()
    assert early.stages[0] == StageEnd(32, at, first, "converged")
    assert early.iterations == at + early.stages[1].iterations < full.iterations
    assert len(early.history) == early.iterations
    # The same steps; a stage's last row is the loss of the image it returns (one final loss).
    assert [r["total"] for r in early.history[: at - 1]] == pytest.approx(totals[: at - 1].tolist())
    assert converged(totals[:at], cfg.stop_change)


@pytest.mark.slow
def test_the_last_stage_runs_every_planned_iteration(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    """A coarse stage only prepares the next; the output's own stage is what the user asked
    for, so it is never cut short (one-stage runs neither: video frames, the studio's 256 px)."""
    cfg = TransferConfig(size=48, scales=(32, 48), iterations=90, seed=1, stop_change=0.99)
    ends = Transfer(content_path, [style_path], cfg.replace(device="cpu"), vgg=vgg19).run().stages
    assert ends[0].reason == "converged" and ends[0].iterations < ends[0].planned
    assert ends[1] == StageEnd(48, cfg.stage_plan()[1][1], cfg.stage_plan()[1][1], "planned")
    one = cfg.replace(scales="one", iterations=30, device="cpu")
    (only,) = Transfer(content_path, [style_path], one, vgg=vgg19).run().stages
    assert only == StageEnd(48, 30, 30, "planned")
