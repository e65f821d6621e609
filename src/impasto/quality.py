"""Measures of a finished picture, as pure tensor functions: chroma grain and the per-layer errors.

Neither is in the paper. They are the yardsticks ``benchmarks/bench_quality.py`` uses to choose
the defaults (docs/method.md, "Defaults, and why"):

* **Chroma grain**: how much pixel-scale colour noise an image holds. The I and Q (chroma)
  channels of YIQ, minus their Gaussian blur (σ = 1 px), as a root mean square over pixels of the
  2-vector (I, Q). A flat image scores 0; a painting's own strokes score a few levels (0..255
  scale), and the green–magenta speckle an unregularised L-BFGS run leaves several times more.
* **Per-layer style errors**: E_l of Gatys et al. (eq. 4) for each style layer separately, so a
  run that matches conv4_1 and leaves conv1_1 (colours, fine strokes) far off shows as such.
* **Per-layer sliced distances** (issue 21): E_l compares second moments, which favours the Gram
  loss; the sliced Wasserstein distance between the output's and the painting's features, each
  layer on its own *fixed* set of random directions (:func:`yardstick_directions`, seeded apart
  from any run's), compares whole distributions, which favours the sliced loss. A fair
  comparison reports both.
* **Palette distance**: the sliced Wasserstein distance between the output's and the painting's
  pixel colours (RGB, 0..255), as a root mean square displacement in levels: how far the
  colours of the picture are from the painting's, whatever their arrangement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .color import rgb_to_yiq
from .losses import sliced_wasserstein, style_layer_loss

__all__ = [
    "GRAIN_SIGMA",
    "YARDSTICK_SEED",
    "chroma_grain",
    "gaussian_kernel",
    "palette_distance",
    "sliced_distances",
    "style_errors",
    "yardstick_directions",
]

GRAIN_SIGMA = 1.0  # pixels: the blur that separates grain from strokes and edges
YARDSTICK_SEED = 20210619  # the yardstick's directions: no run draws from this seed


def gaussian_kernel(sigma: float) -> Tensor:
    """The normalised 1-D Gaussian taps (float64) for ``sigma``, radius ⌈3σ⌉."""
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, not {sigma}")
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W), borders reflected."""
    g = gaussian_kernel(sigma).to(x.dtype)
    r = (len(g) - 1) // 2
    c = x.shape[1]
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)  # (C, 1, 1, K)
    ky = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)  # (C, 1, K, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), kx, groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), ky, groups=c)


def chroma_grain(image: Tensor, sigma: float = GRAIN_SIGMA) -> float:
    """RMS over pixels of ‖(I, Q) − blur_σ(I, Q)‖ for an RGB image (B, 3, H, W) in 0..255.

    Each side must be longer than the blur's radius (4 px at σ = 1)."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB batch (B, 3, H, W), got {tuple(image.shape)}")
    chroma = rgb_to_yiq(image.double())[:, 1:]  # (B, 2, H, W): I and Q
    residual = chroma - _blur(chroma, sigma)
    return float(residual.pow(2).sum(dim=1).mean().sqrt())


def style_errors(
    features: Mapping[str, Tensor], target_grams: Mapping[str, Tensor]
) -> dict[str, float]:
    """E_l (paper eq. 4, unweighted) for every layer of ``target_grams``."""
    with torch.no_grad():
        return {
            name: float(style_layer_loss(features[name], target))
            for name, target in target_grams.items()
        }


def yardstick_directions(channels: int, count: int, seed: int = YARDSTICK_SEED) -> Tensor:
    """``count`` fixed random unit directions in R^channels (float32, on the CPU), the same at
    every call: (count, channels)."""
    gen = torch.Generator().manual_seed(seed + channels)
    d = torch.randn(count, channels, generator=gen, dtype=torch.float64)
    unit: Tensor = d / torch.linalg.vector_norm(d, dim=1, keepdim=True)
    return unit.float()


def sliced_distances(
    features: Mapping[str, Tensor], painting: Mapping[str, Tensor], directions: Mapping[str, Tensor]
) -> dict[str, float]:
    """Per layer of ``directions``, the sliced Wasserstein distance (squared, as the loss:
    :func:`impasto.losses.sliced_wasserstein`) between the output's responses (1, N, H, W) and
    all of the painting's (1, N, h, w), on those fixed directions (P, N)."""
    with torch.no_grad():
        return {
            name: float(
                sliced_wasserstein(
                    features[name], d, [painting[name].reshape(painting[name].shape[1], -1)]
                )
            )
            for name, d in directions.items()
        }


def palette_distance(image: Tensor, painting: Tensor, directions: Tensor) -> float:
    """√SW² between the pixel colours of ``image`` (1, 3, H, W) and ``painting`` (1, 3, h, w),
    both 0..255, on fixed ``directions`` (P, 3): a root mean square displacement in levels."""
    with torch.no_grad():
        sw = sliced_wasserstein(image, directions, [painting.reshape(3, -1)])
    return math.sqrt(float(sw))
