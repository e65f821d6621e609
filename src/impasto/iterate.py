"""One step of the loop on the device: the iterate and the optimiser's state (:class:`Iterate`),
the loss values kept per step (:class:`Rows`), their read-back on first use (:class:`Values`),
the divergence checks and the Step's picture of the iterate (:func:`renderer`). Nothing here
reads a value back to the host unless asked."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import TransferConfig
from .errors import DivergedError
from .lbfgs import HISTORY, DeviceLBFGS
from .objective import Objective
from .prepare import Prepared
from .records import TOTAL


class Iterate:
    """The loop's state on the device (the iterate, the iterate before the last step, the best
    one and its loss, the optimiser) and :meth:`step`. Every update is in place, so that a step
    can be captured as a CUDA graph and replayed (:mod:`impasto.graphs`)."""

    def __init__(
        self,
        objective: Objective,
        x0: Tensor,
        cfg: TransferConfig,
        device: torch.device,
    ) -> None:
        self.objective = objective
        # On CUDA, channels-last: cuDNN's tensor-core convolutions take NHWC.
        self.layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        x = x0.clone().contiguous(memory_format=self.layout)
        self.x = x.requires_grad_(True)
        self.before = x.detach().clone()
        self.best = x.detach().clone()
        self.best_loss = torch.full((), math.inf, device=device)
        self.lbfgs: DeviceLBFGS | None = None
        self.adam: torch.optim.Adam | None = None
        self.sched: torch.optim.lr_scheduler.StepLR | None = None
        if cfg.optimizer == "lbfgs":
            self.lbfgs = DeviceLBFGS(
                x.numel(),
                history=HISTORY,
                device=device,
                max_step=_LBFGS_MAX_STEP,
                min_cosine=_LBFGS_MIN_COSINE,
            )
        else:
            # fused on CUDA: one kernel, and the step count kept on the device, not the host.
            fused = device.type == "cuda"
            self.adam = torch.optim.Adam([self.x], lr=cfg.learning_rate, fused=fused)
            self.sched = torch.optim.lr_scheduler.StepLR(
                self.adam, cfg.lr_decay_every, cfg.lr_decay
            )

    @property
    def learning_rate(self) -> float | None:
        return float(self.adam.param_groups[0]["lr"]) if self.adam is not None else None

    def step(self) -> Tensor:
        """One step; returns (total, *terms) at the iterate before it, in fp32. The loss
        reported for a step is the objective before the update; the best iterate goes with it."""
        x = self.x
        self.before.copy_(x.detach())
        values = self.objective(x)
        (grad,) = torch.autograd.grad(values[0], x)
        if self.lbfgs is not None:
            self.lbfgs.step(x, grad)
        elif self.adam is not None and self.sched is not None:
            # The fused step wants the gradient laid out as the iterate (first GPU run).
            x.grad = grad.contiguous(memory_format=self.layout)
            self.adam.step()
            self.sched.step()
            with torch.no_grad():
                x.clamp_(0.0, 255.0)  # keep Adam's iterate a valid image
        row = torch.stack(values).detach().float()
        better = row[0] < self.best_loss  # False for NaN
        self.best.copy_(torch.where(better, self.before, self.best))
        self.best_loss.copy_(torch.where(better, row[0], self.best_loss))
        return row


def renderer(problem: Prepared, x: Tensor, show: tuple[int, int] | None) -> Callable[[], Tensor]:
    """The iterate as a picture, scaled to ``show`` (W, H) when given (a coarse stage)."""
    if show is None:
        return lambda: problem.render(x)
    w, h = show
    return lambda: F.interpolate(problem.render(x), size=(h, w), mode="bilinear")


# No pixel moves more than this many levels in one L-BFGS step. Without curvature pairs yet
# (torch's first step is scaled by 1/‖g‖₁, about 1e-11 here, too small to measure any), the next
# step is the raw gradient, millions of levels at 256 px from noise, and the run blows up; torch's
# LBFGS takes the same step. Normal steps stay well under it (at most 46 levels in a 256 px run
# from the content), so the cap changes nothing else.
_LBFGS_MAX_STEP = 64.0
# Curvature pairs whose s and y are nearly orthogonal measure rounding noise, not curvature (the
# first, tiny step in bf16): not kept (see impasto.lbfgs).
_LBFGS_MIN_COSINE = 0.01
# Steps between divergence checks: each check reads one flag back from the device.
CHECK_EVERY = 10


class Values:
    """One step's total and terms, read back from the device once, on first use."""

    def __init__(self, row: Tensor, labels: tuple[str, ...], iteration: int) -> None:
        self._row: Tensor | None = row
        self._labels = labels
        self._values: dict[str, float] | None = None
        self.iteration = iteration

    def __call__(self) -> dict[str, float]:
        if self._values is None:
            assert self._row is not None
            values = dict(zip(self._labels, self._row.tolist(), strict=True))
            self._values, self._row = values, None
            check_finite_value(values[TOTAL], self.iteration)
        return self._values


def check_finite_value(total: float, iteration: int) -> None:
    if not math.isfinite(total):
        raise DivergedError(
            f"the loss became {total} at iteration {iteration}; try --optimizer adam, a "
            "smaller --learning-rate or smaller --style-weight"
        )


def check_finite(history: tuple[int, Tensor], done_before: int) -> None:
    """Raise :class:`DivergedError` naming the first step whose loss is not finite, of the
    rows ``history`` (the step before the first, the rows)."""
    offset, rows = history
    if rows.numel() == 0:
        return
    bad = ~torch.isfinite(rows[:, 0])
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        check_finite_value(float(rows[first, 0]), done_before + offset + first + 1)


class Rows:
    """One row of loss values per step, on the device, in blocks allocated as the run goes:
    a run stopped early (or a huge --iterations) reserves nothing for the steps it never takes.
    Appending writes into the current block, so no value is read back to the host."""

    BLOCK = 256

    def __init__(self, width: int, device: torch.device) -> None:
        self.width, self.device = width, device
        self.blocks: list[Tensor] = []
        self.count = 0

    def append(self, row: Tensor) -> Tensor:
        """Stores a copy of ``row`` and returns it."""
        if self.count % self.BLOCK == 0:
            self.blocks.append(torch.zeros(self.BLOCK, self.width, device=self.device))
        stored = self.blocks[-1][self.count % self.BLOCK]
        stored.copy_(row)
        self.count += 1
        return stored

    def since(self, start: int) -> tuple[int, Tensor]:
        """(start, the rows of steps start+1 ... so far)."""
        first = start // self.BLOCK
        if first >= len(self.blocks):
            return start, torch.zeros(0, self.width, device=self.device)
        rows = (
            torch.cat(self.blocks[first:]) if len(self.blocks) - first > 1 else self.blocks[first]
        )
        return start, rows[start - first * self.BLOCK : self.count - first * self.BLOCK]
