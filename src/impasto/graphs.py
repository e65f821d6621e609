"""One iteration of the loop captured as a CUDA graph and replayed, on NVIDIA GPUs.

Measured on an H200 (BENCHMARKS.md, "On a GPU"): at 512 px an iteration took 21 ms in tf32 and
26 ms in fp32, nearly the same at 288 px or in bf16, where the GPU's arithmetic for it is about
2 ms. The time goes to launching, one by one from Python, the ~1,400 operations of an iteration
(VGG forward and backward, the terms, L-BFGS). A CUDA graph records those launches once and
replays them in one call.

The loop is built for it: an iteration is a fixed sequence of operations on tensors of fixed
shapes, with no value read back to the host (:mod:`impasto.lbfgs` updates its state in place;
the best iterate and its loss are kept with ``torch.where``). So after a few eager iterations
(the first L-BFGS step differs from the others; cuBLAS, cuDNN and autograd initialise lazily,
and PyTorch asks for that warm-up on a side stream) one iteration is captured and every later
one is a replay that reads and writes the same memory. What a listener reads is copied out of
the graph's output after each replay.

Only L-BFGS runs graphed (Adam's step and learning-rate schedule keep state on the host). A
capture that fails (an operation that cannot be captured, say) leaves the run eager, with the
same results. ``IMPASTO_CUDA_GRAPHS=0`` in the environment turns graphs off, for comparison.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

WARMUP = 3
"""Eager iterations before the capture."""
ENABLED = os.environ.get("IMPASTO_CUDA_GRAPHS", "1") != "0"


def usable(device: torch.device, optimizer: str, iterations: int) -> bool:
    """Whether a run of ``iterations`` on ``device`` is worth capturing (at least a few
    replays after the warm-up)."""
    return ENABLED and device.type == "cuda" and optimizer == "lbfgs" and iterations > WARMUP + 2


class Warmup:
    """The eager iterations before a capture, on a side stream (as PyTorch's graphs require)."""

    def __init__(self) -> None:
        self.stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        self.stream.wait_stream(torch.cuda.current_stream())

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with torch.cuda.stream(self.stream):
            yield

    def done(self) -> None:
        torch.cuda.current_stream().wait_stream(self.stream)


class Replay:
    """``step`` captured once; calling replays it and returns its output (the same tensor every
    time, overwritten by each replay)."""

    def __init__(self, step: Callable[[], Tensor]) -> None:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = step()

    def __call__(self) -> Tensor:
        self.graph.replay()
        return self.out


def capture(step: Callable[[], Tensor]) -> Replay | None:
    """``step`` as a :class:`Replay`, or None where it cannot be captured (the caller goes on
    eagerly; nothing of the failed capture ran)."""
    try:
        return Replay(step)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError:
        torch.cuda.synchronize()
        return None
