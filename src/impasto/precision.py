"""The arithmetic a run is done in: ``--precision fp32|tf32|bf16|auto`` resolved for a device,
refused where the device cannot give it, and set up around the loop (:func:`arithmetic`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import UsageError

# CPU flags of bfloat16 arithmetic in hardware: AVX512-BF16 (dot products) or AMX (tile matrix
# units). oneDNN runs bf16 convolutions on them at about twice fp32's speed (BENCHMARKS.md,
# "Time to quality"); without them it emulates bf16 and gains nothing.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 in hardware (``BF16_CPU_FLAGS``, read from Linux's
    ``cpuinfo``); False where that cannot be read (other systems: fp32 there)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BF16_CPU_FLAGS & set(line.partition(":")[2].split()))
    return False


def resolve_precision(precision: str, device: torch.device, preset: str = "default") -> str:
    """``auto`` is tf32 on CUDA (tensor cores, 10-bit mantissa); on a CPU, bf16 where it has
    bfloat16 in hardware (:func:`cpu_has_bf16`) and fp32 elsewhere. The paper preset stays in
    fp32 on a CPU (the paper's arithmetic)."""
    if precision == "auto":
        if device.type == "cuda":
            return "tf32"  # a no-op before Ampere: harmless
        if device.type == "cpu" and preset != "paper" and cpu_has_bf16():
            return "bf16"
        return "fp32"
    return precision


def memory_format(mode: str, device: torch.device) -> torch.memory_format:
    """The layout of the image (and, on a CPU, the network's filters) for arithmetic ``mode``
    (resolved): channels-last on CUDA (cuDNN's tensor-core convolutions take NHWC) and for bf16
    on a CPU (oneDNN's bf16 convolutions: 1.2x faster a step at 512 px than with contiguous
    filters, measured); contiguous for fp32 on a CPU, where it did not pay."""
    if device.type == "cuda" or (device.type == "cpu" and mode == "bf16"):
        return torch.channels_last
    return torch.contiguous_format


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


def lay_out_filters(network: torch.nn.Module, layout: torch.memory_format) -> None:
    """Lay ``network``'s 4-D filters out as ``layout``, in place (a no-op where they are
    already): the values are unchanged, so a network shared by runs in other arithmetic gives
    them the same numbers."""
    for p in network.parameters():
        if p.dim() == 4 and not p.is_contiguous(memory_format=layout):
            p.data = p.data.contiguous(memory_format=layout)


def layout(
    network: torch.nn.Module, precision: str, preset: str, device: torch.device
) -> torch.memory_format:
    """The image's layout for a run (:func:`memory_format`); on a CPU the network's filters are
    laid out to match first (oneDNN's bf16 convolutions want them channels-last)."""
    fmt = memory_format(resolve_precision(precision, device, preset), device)
    if device.type == "cpu":
        lay_out_filters(network, fmt)
    return fmt


@contextlib.contextmanager
def arithmetic(precision: str, device: torch.device, preset: str = "default") -> Iterator[None]:
    """fp32: exact (TF32 switched off, cuDNN's default is on); tf32: TF32 matmuls and
    convolutions on CUDA (a no-op elsewhere); bf16: autocast of the convolutions to bfloat16
    (the image, Gram matrices, losses and L-BFGS's state stay fp32: autocast runs only the
    convolutions and matrix products in bf16, and the losses cast their inputs to fp32).

    cuDNN's autotuner (``torch.backends.cudnn.benchmark``) is left as the caller set it (off by
    default): measured on an H200, it took 34 GB at a 512 px run whose tensors need 1 GB, and
    nearly all of the GPU's 140 GB at 2048 px, in workspace for the algorithms it tries."""
    mode = resolve_precision(precision, device, preset)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        if mode == "bf16":
            # No cast cache on CUDA: cached casts made in one iteration would be stale in a
            # replayed CUDA graph (PyTorch's advice for autocast with graphs). On a CPU (no
            # graphs) the filters are cast once per stage instead of in every step.
            cache = device.type != "cuda"
            with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
