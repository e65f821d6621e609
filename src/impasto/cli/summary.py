"""The one line a command ends with, in one format for every command.

    wrote OUT (WxH) in 12.3 s on cpu: 350 iterations, loss 1.23e+05 = content 4.5e+04
    + style 7.1e+04 + tv 7e+03, seed 42; 3 stages (256, 362, 512 px): ...

The parts a command has, always in this order: what it wrote and its size, the time (and the
device), the iterations, the loss as the sum of every term (the last Step's values, what the
progress bar showed last), the seed, and a note on coarse-to-fine stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..convergence import StageEnd
from ..optimize import TOTAL, Result, Stage

__all__ = ["loss_sum", "result_line", "wrote_line"]


def loss_sum(row: Mapping[str, float]) -> str:
    """'loss T = a A + b B + ...': the total and every term of one Step (a history row), so
    that the terms shown add up to the total shown."""
    terms = " + ".join(f"{name} {value:.3g}" for name, value in row.items() if name != TOTAL)
    total = f"loss {row[TOTAL]:.4g}"
    return f"{total} = {terms}" if terms else total


def stages_note(stages: Sequence[Stage]) -> str:
    """Why a coarse-to-fine run's loss jumps: each stage's terms are sums over its pixels."""
    if len(stages) < 2:
        return ""
    sizes = ", ".join(str(s.size) for s in stages)
    return (
        f"; {len(stages)} stages ({sizes} px): the loss is the last stage's; it jumps up at "
        "each larger stage, whose sums run over more pixels"
    )


def ends_note(ends: Sequence[StageEnd]) -> str:
    """Which stages ended early because their loss had settled (--stop-change), and when."""
    early = [e for e in ends if e.reason == "converged"]
    if not early:
        return ""
    return "; settled early: " + ", ".join(f"{e.size} px after {e.iterations}" for e in early)


def wrote_line(
    out: Path | str,
    size: tuple[int, int],
    seconds: float,
    device: str | None = None,
    details: str = "",
) -> str:
    """'wrote OUT (WxH) in T s on DEVICE' and, after a colon, ``details``."""
    w, h = size
    on = f" on {device}" if device else ""
    line = f"wrote {out} ({w}x{h}) in {seconds:.1f} s{on}"
    return f"{line}: {details}" if details else line


def result_line(out: Path | str, result: Result, stages: Sequence[Stage] = ()) -> str:
    """The line of a command that ran one optimisation (transfer, mix-styles)."""
    parts = [f"{result.iterations} iterations"]
    if result.history:
        parts.append(loss_sum(result.history[-1]))
    parts.append(f"seed {result.seed}")
    details = ", ".join(parts) + stages_note(stages) + ends_note(result.stages)
    return wrote_line(out, result.image.size, result.elapsed, result.device, details)
