"""How much memory a transfer needs, how much the device has, and the one-line refusal.

Runs that cannot fit are refused before anything large is allocated, with a size that fits;
running out anyway (the estimate is rough) becomes the same kind of :class:`ResourceError`.
"""

from __future__ import annotations

import math

import psutil
import torch

from . import imageio
from .config import TransferConfig
from .errors import ResourceError
from .lbfgs import HISTORY
from .samples import SELF_SIMILARITY_POSITIONS, positions
from .vgg import MIN_SIDE

# Measured on the CPU (torch 2.13, VGG-19 to conv5_1): the saved activations and gradients of one
# forward+backward take about 1.8 KB per output pixel; we budget 2 KB. L-BFGS keeps HISTORY pairs
# of image-sized fp32 vectors (2 x HISTORY x 3 x 4 bytes per pixel); Adam two moment buffers.
_ACTIVATION_BYTES_PER_PIXEL = 2048
_FIXED_BYTES = 600 * 2**20  # weights (80 MB), torch's own arenas, Python, the images
# Spatial control: each region keeps its guidance-weighted copy of every style layer's features
# for the backward pass (64 + 128/4 + 256/16 + 512/64 + 512/256 = 122 floats per output pixel
# with the default layers) and makes its product and gradient in passing. Measured on the CPU
# (384x288, peak RSS): three regions took 0.76 KB per output pixel per region more than an
# unguided run; we budget 1 KB.
_GUIDED_BYTES_PER_PIXEL = 1024
# The style and content losses other than the paper's (issue 21), measured the same way (peak RSS
# over a Gram run's, 384x288, unguided and with two regions): the sliced loss's sorted projections
# and their indices took 1.4-1.6 KB per output pixel with N/2 directions (fewer now, N/8: the
# budget is kept), the relaxed EMD's nearest neighbours, gathered samples and moments 2.8-3.0 KB
# (the regions' work is done one region at a time); the
# self-similarity loss keeps about 13 copies of its (M, M) matrix for M positions of the content
# layer, 48 bytes an entry. We budget 2 KB, 3.5 KB and 64 bytes, and 0.5 KB per pixel per region.
_STYLE_LOSS_BYTES_PER_PIXEL = {"gram": 0, "sliced": 2048, "remd": 3584}
_DISTRIBUTION_GUIDED_BYTES_PER_PIXEL = 512
_SELF_SIMILARITY_BYTES_PER_ENTRY = 64
# Each step's loss values: a row on the device and, in Result.history, a dict of Python floats
# (about 0.45 KB with five terms, by tracemalloc); we budget 1 KB per iteration.
_BYTES_PER_ITERATION = 1024


def output_size(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(W, H) of an image of ``size`` scaled to ``longest`` (at least VGG's MIN_SIDE)."""
    return imageio.fit_longest(size, max(MIN_SIDE, longest))


def estimate_memory(size: tuple[int, int], config: TransferConfig, regions: int = 0) -> int:
    """Bytes a transfer of output size (W, H) needs, roughly (the peak, not the average), with
    ``regions`` guided style regions (spatial control; 0 without)."""
    pixels = size[0] * size[1]
    per_pixel = _ACTIVATION_BYTES_PER_PIXEL + regions * _GUIDED_BYTES_PER_PIXEL
    per_pixel += 2 * HISTORY * 3 * 4 if config.optimizer == "lbfgs" else 2 * 3 * 4
    if config.style_loss != "gram":
        per_pixel += _STYLE_LOSS_BYTES_PER_PIXEL[config.style_loss]
        per_pixel += regions * _DISTRIBUTION_GUIDED_BYTES_PER_PIXEL
    style_pixels = pixels * config.style_scale**2  # forward only, no gradients kept
    steps = config.iterations * _BYTES_PER_ITERATION
    fixed = _FIXED_BYTES + _self_similarity_bytes(size, config)
    return int(fixed + steps + pixels * per_pixel + style_pixels * 1024)


def _self_similarity_bytes(size: tuple[int, int], config: TransferConfig) -> int:
    """The self-similarity loss's (M, M) matrices, M the positions of each content layer (at most
    SELF_SIMILARITY_POSITIONS: a larger layer is pooled)."""
    if config.content_loss != "self-similarity":
        return 0
    total = 0
    for layer in config.content_layers:
        m = min(positions(layer, size, config.model), SELF_SIMILARITY_POSITIONS)
        total += m * m * _SELF_SIMILARITY_BYTES_PER_ENTRY
    return total


def available_memory(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes, or None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        # psutil reads it on Linux, macOS and Windows alike (MemAvailable on Linux).
        return int(psutil.virtual_memory().available)
    return None


def peak_memory(device: torch.device) -> int | None:
    """The most bytes allocated on ``device`` so far (CUDA only; None where it cannot be read).
    Reads the allocator's counters: no device synchronisation."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None


def check_memory(
    size: tuple[int, int],
    config: TransferConfig,
    device: torch.device,
    smallest: int = MIN_SIDE,
    regions: int = 0,
) -> None:
    """Raise :class:`ResourceError` naming a size that fits when the estimate exceeds what the
    device has free (or ``--max-memory``). ``smallest`` is the least --size the images allow
    (an extreme aspect ratio needs a large one): advice never goes below it."""
    limit = memory_limit(config, device)
    need = estimate_memory(size, config, regions)
    if limit is None or need <= limit:
        return
    fits = largest_fitting_size(size, config, limit, regions)
    if fits >= max(MIN_SIDE, smallest):
        advice = f"try --size {fits} or less"
    else:
        advice = too_little_memory(size, config, smallest, regions, limit)
    raise ResourceError(
        f"--size {config.size} ({size[0]}x{size[1]}) needs about {need / 2**30:.1f} GiB but "
        f"{limit / 2**30:.1f} GiB is available on {device.type}; {advice}"
    )


# An image whose long side is more than this many times its short side is "extreme": only then
# is cropping it the advice (a 4:3 photo needs a --size only a third above VGG's least).
EXTREME_ASPECT = 2.0


def too_little_memory(
    size: tuple[int, int], config: TransferConfig, smallest: int, regions: int, limit: int
) -> str:
    """Advice when not even the least --size the image allows fits in ``limit`` bytes: crop an
    image of an extreme shape; otherwise raise --max-memory when it is the limit, or free
    memory."""
    least = max(MIN_SIDE, smallest)
    need = estimate_memory(imageio.fit_longest(size, least), config, regions) / 2**30
    at_least = f"--size {least}, the least this image allows, needs about {need:.1f} GiB"
    if smallest > EXTREME_ASPECT * MIN_SIDE:
        return f"{at_least}: crop the image to a less extreme aspect ratio"
    if config.max_memory is not None and limit <= int(config.max_memory * 2**30):
        return f"{at_least}: raise --max-memory"
    return f"{at_least}: free some memory, or run on a device with more"


def memory_limit(config: TransferConfig, device: torch.device) -> int | None:
    """Bytes a run may take on ``device``: what is free, capped by --max-memory."""
    limit = available_memory(device)
    if config.max_memory is not None:
        cap = int(config.max_memory * 2**30)
        limit = cap if limit is None else min(limit, cap)
    return limit


def fits_memory(
    size: tuple[int, int], config: TransferConfig, device: torch.device, regions: int = 0
) -> bool:
    limit = memory_limit(config, device)
    return limit is None or estimate_memory(size, config, regions) <= limit


def largest_fitting_size(
    size: tuple[int, int], config: TransferConfig, limit: int, regions: int = 0
) -> int:
    """The largest --size (up to ``config.size``) whose estimate is within ``limit`` bytes, for
    an image shaped like ``size``; 0 when none is. A search, not a formula: rounding makes an
    extreme aspect ratio's pixel count grow unevenly with the size."""
    lo, hi = 0, config.size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_memory(imageio.fit_longest(size, max(MIN_SIDE, mid)), config, regions) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def out_of_memory(size: int) -> ResourceError:
    """The error for running out of memory at ``--size size``, suggesting a smaller size."""
    smaller = max(MIN_SIDE, int(size / math.sqrt(2)))
    return ResourceError(f"out of memory at --size {size}; try --size {smaller} or less")
