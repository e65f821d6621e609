"""Measures of a finished picture, as pure tensor functions: chroma grain and the per-layer errors.

Neither is in the paper. They are the yardsticks ``benchmarks/bench_quality.py`` uses to choose
the defaults (docs/method.md, "Defaults, and why"):

* **Chroma grain**: how much pixel-scale colour noise an image holds. The I and Q (chroma)
  channels of YIQ, minus their Gaussian blur (σ = 1 px), as a root mean square over pixels of the
  2-vector (I, Q). A flat image scores 0; a painting's own strokes score a few levels (0..255
  scale), and the green–magenta speckle an unregularised L-BFGS run leaves several times more.
* **Per-layer style errors**: E_l of Gatys et al. (eq. 4) for each style layer separately, so a
  run that matches conv4_1 and leaves conv1_1 (colours, fine strokes) far off shows as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .color import rgb_to_yiq
from .losses import style_layer_loss

__all__ = ["GRAIN_SIGMA", "chroma_grain", "gaussian_kernel", "style_errors"]

GRAIN_SIGMA = 1.0  # pixels: the blur that separates grain from strokes and edges


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
