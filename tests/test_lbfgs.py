"""The device-resident L-BFGS against torch.optim.LBFGS and against plain gradient descent."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from impasto import Transfer, TransferConfig
from impasto.lbfgs import DeviceLBFGS
from impasto.vgg import VGG

Objective = Callable[[Tensor], Tensor]


def bumpy_quadratic(n: int = 40) -> Objective:
    """A convex, not quadratic, ill-conditioned function: ½xᵀAx − bᵀx + 0.01Σx⁴ with A's
    eigenvalues spread from 0.01 to 10 (slow going for gradient descent)."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen))
    a = q @ torch.diag(torch.logspace(-2, 1, n)) @ q.T
    b = torch.randn(n, generator=gen)
    return lambda x: 0.5 * x @ a @ x - b @ x + 0.01 * x.pow(4).sum()


def run_torch(f: Objective, x0: Tensor, steps: int, history: int) -> list[float]:
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1, max_iter=1, history_size=history, tolerance_grad=0, tolerance_change=0
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = f(x)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    values = []
    for _ in range(steps):
        values.append(float(opt.step(closure).detach()))  # type: ignore[no-untyped-call]
    return values


def run_ours(f: Objective, x0: Tensor, steps: int, history: int) -> list[float]:
    x = x0.clone().requires_grad_(True)
    opt = DeviceLBFGS(x.numel(), history=history)
    values = []
    for _ in range(steps):
        loss = f(x)
        (g,) = torch.autograd.grad(loss, x)
        values.append(float(loss.detach()))
        opt.step(x, g)
    return values


@pytest.mark.parametrize("history", [5, 100])  # 5: the oldest pairs get evicted
def test_matches_torch_lbfgs_step_by_step(history: int) -> None:
    f = bumpy_quadratic()
    x0 = torch.zeros(40)
    theirs = run_torch(f, x0, 30, history)
    ours = run_ours(f, x0, 30, history)
    for i, (a, b) in enumerate(zip(theirs, ours, strict=True)):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-4), f"step {i + 1}: {b} vs {a}"
    assert ours[-1] < ours[0] - 1  # and it really minimised


def test_beats_gradient_descent_on_the_same_budget() -> None:
    f = bumpy_quadratic()
    x0 = torch.zeros(40)
    ours = run_ours(f, x0, 15, 100)[-1]
    x = x0.clone().requires_grad_(True)
    for _ in range(15):
        (g,) = torch.autograd.grad(f(x), x)
        with torch.no_grad():
            x -= 0.19 * g  # about the largest stable step: 2 / (largest eigenvalue of A)
    assert ours < float(f(x).detach()) - 1.0


def test_flat_directions_store_no_pair_and_stay_finite() -> None:
    # A linear objective has y = 0 every step: no pair may be stored (sᵀy = 0), and the step
    # must stay the scaled steepest descent instead of dividing by zero.
    c = torch.linspace(-1, 1, 10)
    x = torch.zeros(10, requires_grad=True)
    opt = DeviceLBFGS(10, history=3)
    for _ in range(4):
        (g,) = torch.autograd.grad(c @ x, x)
        opt.step(x, g)
    assert not bool(opt.filled.any())
    assert torch.isfinite(x).all()
    assert float((c @ x).detach()) < 0


def test_a_pair_that_measures_noise_is_not_stored() -> None:
    """A step far below the arithmetic's resolution changes the gradient by rounding only: y
    nearly orthogonal to s. With min_cosine such a pair is not kept; torch's rule (sᵀy > 1e-10)
    keeps it; a pair with real curvature is kept either way."""
    n = 1000
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(n, generator=gen)

    def second_step(y_of: Callable[[Tensor], Tensor], min_cosine: float) -> DeviceLBFGS:
        opt = DeviceLBFGS(n, history=5, min_cosine=min_cosine)
        x = torch.zeros(n)
        opt.step(x, g)
        opt.step(x, g + y_of(opt.prev_step.clone()))
        return opt

    def noise(s: Tensor) -> Tensor:  # orthogonal to s but for a sliver: cos(s, y) = 1e-3
        z = torch.randn(n, generator=gen)
        unit = s / s.norm()
        z = z - (z @ unit) * unit
        return z + 1e-3 * z.norm() * unit

    assert int(second_step(noise, 0.01).filled.sum()) == 0
    assert int(second_step(noise, 0.0).filled.sum()) == 1  # torch's rule
    assert int(second_step(lambda s: 2 * s, 0.01).filled.sum()) == 1  # a quadratic: y = 2s


def test_a_direction_that_is_not_descent_restarts_instead_of_stalling() -> None:
    """Bad pairs can make H·g point uphill. torch then skips every later step (nothing changes,
    so the same direction comes back); here the pairs are dropped and x moves downhill."""
    f = bumpy_quadratic()
    x = torch.zeros(40, requires_grad=True)
    opt = DeviceLBFGS(40, history=10)
    for _ in range(4):
        (g,) = torch.autograd.grad(f(x), x)
        opt.step(x, g)
    assert bool(opt.filled.any())
    opt.gamma.neg_()  # H₀ = γI turned negative definite: H·g points uphill
    values = []
    for _ in range(6):
        loss = f(x)
        values.append(float(loss.detach()))
        (g,) = torch.autograd.grad(loss, x)
        before = x.detach().clone()
        opt.step(x, g)
        assert not torch.equal(before, x.detach())  # never a skipped (frozen) step
    assert values[-1] < values[0]


@pytest.mark.slow
def test_matches_torch_lbfgs_on_a_real_transfer(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    cfg = TransferConfig(
        preset="paper",
        init="content",
        size=48,
        iterations=1,
        seed=0,
        style_weight=1e4,
        device="cpu",
    )
    t = Transfer(content_path, [style_path], cfg, vgg=vgg19)

    def objective(x: Tensor) -> Tensor:
        return t.objective(x)[0]

    theirs = run_torch(objective, t.problem.x0, 12, 100)
    ours = run_ours(objective, t.problem.x0, 12, 100)
    assert ours[-1] < 0.5 * ours[0]
    # The same algorithm in another order of float operations: close, not bit-equal.
    assert ours[-1] == pytest.approx(theirs[-1], rel=0.02)


def test_max_step_bounds_every_coordinate_move() -> None:
    f = bumpy_quadratic()
    x = torch.full((40,), 50.0, requires_grad=True)  # far out: raw steps would be huge
    opt = DeviceLBFGS(40, history=10, max_step=0.5)
    for _ in range(5):
        (g,) = torch.autograd.grad(f(x), x)
        before = x.detach().clone()
        opt.step(x, g)
        assert float((x.detach() - before).abs().max()) <= 0.5 + 1e-6


@pytest.mark.slow
def test_transfer_from_noise_at_256_px_does_not_blow_up() -> None:
    """From noise at 256 px the gradient is millions of levels: the second step (still without
    curvature pairs) used to throw the image to ~1e6 and the loss to NaN (torch's LBFGS too)."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    cfg = TransferConfig(size=256, iterations=4, seed=0, init="noise", device="cpu")
    t = Transfer(examples / "tubingen.jpg", [examples / "starry_night.jpg"], cfg)
    result = t.run()
    first = result.history[0]["total"]
    assert all(math.isfinite(row["total"]) for row in result.history)
    assert result.final_loss < 0.8 * first
