"""The arithmetic a run is done in: ``--precision fp32|tf32|bf16|auto`` resolved for a device,
refused where the device cannot give it, and set up around the loop (:func:`arithmetic`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import UsageError


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is tf32 on CUDA (tensor cores, 10-bit mantissa) and fp32 elsewhere."""
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "fp32"  # a no-op before Ampere: harmless
    return precision


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision asked for that ``device`` cannot give (it would silently run another):
    tf32 on anything but an Ampere or newer CUDA GPU, bf16 on a CUDA GPU without bfloat16. bf16
    runs on the CPU (torch's autocast) through the same code as on a GPU."""
    if precision == "tf32" and device.type != "cuda":
        raise UsageError(
            f"--precision tf32 needs a CUDA GPU (its tensor cores); this run is on {device.type}: "
            "use fp32 or bf16"
        )
    if precision == "tf32":
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            raise UsageError(
                "--precision tf32 needs an Ampere or newer GPU (compute capability 8.0); this "
                f"one is {major}.{minor}: use fp32"
            )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError("--precision bf16: this GPU has no bfloat16 arithmetic; use fp32")


@contextlib.contextmanager
def arithmetic(precision: str, device: torch.device) -> Iterator[None]:
    """fp32: exact (TF32 switched off, cuDNN's default is on); tf32: TF32 matmuls and
    convolutions on CUDA (a no-op elsewhere); bf16: autocast of the convolutions to bfloat16.

    cuDNN's autotuner (``torch.backends.cudnn.benchmark``) is left as the caller set it (off by
    default): measured on an H200, it took 34 GB at a 512 px run whose tensors need 1 GB, and
    nearly all of the GPU's 140 GB at 2048 px, in workspace for the algorithms it tries."""
    mode = resolve_precision(precision, device)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        if mode == "bf16":
            # No cast cache: cached casts made in one iteration would be stale in a replayed
            # CUDA graph (PyTorch's advice for autocast with graphs).
            with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
