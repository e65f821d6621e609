"""L-BFGS that stays on the device: no ``.item()``, no host round trip inside an iteration.

``torch.optim.LBFGS`` keeps its curvature pairs in Python lists and reads several scalars back to
the host every step (the curvature test, the step size, the descent check): on a GPU each read
stalls the queue until the step has finished. Here the history lives in one preallocated buffer
and every decision is a tensor operation (``torch.where``), so a step is a fixed sequence of
kernels that the host can queue ahead of the device.

The search direction uses the compact representation of Byrd, Nocedal and Schnabel (1994),
"Representations of quasi-Newton matrices and their use in limited memory methods", eq. (2.6):

    H g = γ g + S p₁ − γ Y v,   v = R⁻¹ Sᵀg,   p₁ = R⁻ᵀ((D + γ YᵀY) v − γ Yᵀg)

with S, Y the stored steps and gradient changes (oldest to newest), R the upper triangle of SᵀY,
D its diagonal and γ = sᵀy / yᵀy of the newest pair. It is the same matrix as the classic
two-loop recursion that torch uses, computed with two passes over the history (one matrix
product in, one out) instead of 2m dot products. SᵀY and YᵀY are updated one row and column per
step. Empty slots hold zero vectors and a unit diagonal in R, so they drop out of the formula.

The iteration is torch's with ``lr=1``, ``max_iter=1`` and no line search (what the paper's Lua
reference and most peers run): the first step is scaled by min(1, 1/‖g‖₁), later steps take the
full quasi-Newton step and a pair with sᵀy ≤ 1e-10 is not stored. ``tests/test_lbfgs.py`` checks
it against torch's. Three additions, each for a case where torch's would fail:

- ``max_step`` caps how far any coordinate moves in one step (a trust region in the max norm),
  which keeps the step after a rejected or missing curvature pair (the raw gradient) from
  throwing the iterate to infinity;
- ``min_cosine``: a pair is stored only when y is not nearly orthogonal to s (sᵀy >
  min_cosine·‖s‖‖y‖; impasto's loop uses 0.01). A pair from a step below the arithmetic's
  resolution measures noise, not curvature: in bf16 the first step (about 10⁻⁴ pixel levels) left
  the gradient unchanged but for rounding, that pair (cosine 0.001) was stored, and its absurd
  scale γ wrecked every later step. Real pairs of a transfer have cosines of 0.15-0.98 (measured
  in fp32 and bf16). Refusing a pair makes the next step the raw gradient, so this is safe only
  with ``max_step`` (torch keeps such a pair, and its tiny γ happens to keep that step small);
- where the direction is not a descent direction, torch skips the update, and since nothing then
  changes, skips every later one too (the run stalls for good); here the pairs are forgotten and
  the step goes down the gradient, scaled as the first step is.
"""

from __future__ import annotations

import torch
from torch import Tensor

_CURVATURE_EPS = 1e-10  # torch's threshold for keeping a pair
HISTORY = 100  # curvature pairs kept: torch's default, as is the Lua reference's


class DeviceLBFGS:
    """Minimise over one flat parameter vector; call :meth:`step` with x and its gradient.

    >>> opt = DeviceLBFGS(x.numel(), history=100, device=x.device)
    >>> for _ in range(n):
    ...     g = grad(f(x), x)
    ...     opt.step(x, g)   # updates x in place
    """

    def __init__(
        self,
        numel: int,
        history: int = HISTORY,
        lr: float = 1.0,
        device: torch.device | str = "cpu",
        max_step: float | None = None,
        min_cosine: float = 0.0,
    ) -> None:
        if history < 1:
            raise ValueError("history must be at least 1")
        m = history
        self.m, self.lr, self.max_step, self.min_cosine = m, lr, max_step, min_cosine
        f32 = torch.float32
        # Rows 0..m-1 hold the steps s, rows m..2m-1 the gradient changes y, slot by slot.
        self.buf = torch.zeros(2 * m, numel, device=device, dtype=f32)
        self.sy = torch.zeros(m, m, device=device, dtype=f32)  # SᵀY, slot order
        self.yy = torch.zeros(m, m, device=device, dtype=f32)  # YᵀY, slot order
        # Slots oldest to newest; empty ones first. The next pair goes into order[0].
        self.order = torch.arange(m, device=device)
        self.filled = torch.zeros(m, dtype=torch.bool, device=device)
        self.gamma = torch.ones((), device=device, dtype=f32)  # H₀ = γI
        self.prev_g = torch.zeros(numel, device=device, dtype=f32)
        self.prev_step = torch.zeros(numel, device=device, dtype=f32)  # t·d of the last update
        self.started = False  # a first step has been taken (prev_g and prev_step hold it)

    # --- the iteration ------------------------------------------------------------------------
    # Every piece of state is a preallocated tensor updated in place (copy_), and after the first
    # step the sequence of operations never changes: a step can be captured once as a CUDA graph
    # and replayed (impasto.optimize), reading and writing the same memory each time.
    @torch.no_grad()
    def step(self, x: Tensor, g: Tensor) -> None:
        """One L-BFGS iteration from ``x`` with gradient ``g``; updates ``x`` in place."""
        flat_g = g.reshape(-1).float()
        if not self.started:
            d = -flat_g
            t = torch.clamp(1.0 / flat_g.abs().sum(), max=1.0) * self.lr
        else:
            self._remember(self.prev_step, flat_g - self.prev_g)
            d = -self._h_times(flat_g)
            t = torch.full((), self.lr, device=flat_g.device)
        # Not a descent direction: forget the pairs and step down the gradient (see above).
        descent = torch.dot(flat_g, d) < 0
        restart = torch.clamp(1.0 / flat_g.abs().sum(), max=1.0) * self.lr
        d = torch.where(descent, d, -flat_g)
        t = torch.where(descent, t, restart)
        self.filled.copy_(self.filled & descent)
        if self.max_step is not None:
            # A trust region in the max norm: no coordinate moves further than max_step.
            t = t * torch.clamp(self.max_step / (t * d.abs().max()).clamp_min(1e-30), max=1.0)
        step = d * t
        x.add_(step.view_as(x).to(x.dtype))
        self.prev_g.copy_(flat_g)
        self.prev_step.copy_(step)
        self.started = True

    def _remember(self, s: Tensor, y: Tensor) -> None:
        """Store the pair (s, y) when its curvature sᵀy is positive enough; else change nothing."""
        m = self.m
        ys = torch.dot(y, s)
        keep = (ys > _CURVATURE_EPS) & (ys > self.min_cosine * s.norm() * y.norm())
        # The slot as a 1-element index: indexing with a 0-dim tensor (sy[:, slot]) reads its
        # value back to the host, a wait for the GPU (seen on an H200: 4 such waits a step).
        slot = self.order[:1].clone()  # order is updated in place below
        rows = torch.cat([slot, slot + m])
        old = self.buf.index_select(0, rows)
        self.buf.index_copy_(0, rows, torch.where(keep, torch.stack([s, y]), old))
        # One pass over the history for the new row and column of SᵀY and YᵀY.
        prod = self.buf @ torch.stack([s, y], dim=1)  # (2m, 2): [S; Y] times [s, y]
        s_y, y_s, y_y = prod[:m, 1], prod[m:, 0], prod[m:, 1]  # Sᵀy, Yᵀs, Yᵀy
        sy_col = torch.where(keep, s_y, self.sy.index_select(1, slot).view(m))
        self.sy.index_copy_(1, slot, sy_col.view(m, 1))
        sy_row = torch.where(keep, y_s, self.sy.index_select(0, slot).view(m))
        self.sy.index_copy_(0, slot, sy_row.view(1, m))
        yy_new = torch.where(keep, y_y, self.yy.index_select(1, slot).view(m))
        self.yy.index_copy_(1, slot, yy_new.view(m, 1))
        self.yy.index_copy_(0, slot, yy_new.view(1, m))
        self.filled.copy_(self.filled | (keep & (torch.arange(m, device=s.device) == slot)))
        rolled = torch.cat([self.order[1:], slot])
        self.order.copy_(torch.where(keep, rolled, self.order))
        newest = y_y.index_select(0, slot).view(())  # y_y of the pair just stored
        self.gamma.copy_(torch.where(keep, ys / newest.clamp_min(1e-30), self.gamma))

    def _h_times(self, g: Tensor) -> Tensor:
        """H g by the compact representation (see the module docstring)."""
        m, order = self.m, self.order
        filled = self.filled[order]  # chronological
        ab = self.buf @ g  # (2m,): Sᵀg, Yᵀg in slot order
        a, b = ab[:m][order], ab[m:][order]
        sy = self.sy[order][:, order]
        yy = self.yy[order][:, order]
        both = filled[:, None] & filled[None, :]
        r = torch.where(both, sy, torch.zeros_like(sy)).triu()
        r = r + torch.diag((~filled).to(g.dtype))  # empty slots: unit diagonal, zero vectors
        diag = torch.where(filled, torch.diagonal(sy), torch.zeros_like(a))
        gamma = self.gamma
        v = torch.linalg.solve_triangular(r, a.view(m, 1), upper=True)
        yy = torch.where(both, yy, torch.zeros_like(yy))
        rhs = diag.view(m, 1) * v + gamma * (yy @ v - b.view(m, 1))
        p1 = torch.linalg.solve_triangular(r.T, rhs, upper=False)
        coef = torch.cat([p1.view(m), -gamma * v.view(m)])  # chronological
        # Back to slot order for the product with the buffer.
        slot_coef = torch.empty_like(coef)
        slot_coef[torch.cat([order, order + m])] = coef
        direction: Tensor = gamma * g + self.buf.T @ slot_coef
        return direction
