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
* **Grid score** (issue 30): how much a square lattice at VGG's pooling periods (2, 4, 8 and
  16 px) stands out in the flat parts of a picture: the power of the luminance at those
  periods' frequencies against the power at the frequencies around them. 1 = no lattice.
* **Edge preservation** (issue 30): the correlation between the photo's and the output's
  gradient magnitudes at full resolution: 1 = every edge of the photo is where it was, as
  strong relative to the others; 0 = none is.
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
    "GRID_PERIODS",
    "GRID_TILE",
    "YARDSTICK_SEED",
    "chroma_grain",
    "edge_preservation",
    "gaussian_kernel",
    "grid_score",
    "grid_scores",
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


# --- the grid (issue 30) ------------------------------------------------------------------------
#
# A lattice of period p (lines every p pixels, or a pattern repeating every p pixels) puts its
# power at the frequencies k/p cycles per pixel along x and y. VGG-19 has four 2x2 poolings, so a
# lattice left by the network has periods 2, 4, 8 and 16 px. The score looks at square tiles of
# GRID_TILE px (a multiple of 16, so that every such frequency falls on an FFT bin), in the flat
# parts of the picture (the tiles with the least structure, judged on a reference: the photo),
# each tile's luminance less its best-fitting plane, times a 2-D Hann window. The tiles' mean
# power spectrum is folded onto one axis: per horizontal frequency, the mean over the vertical
# ones (vertical lines), and the same transposed (horizontal lines), the two averaged. The score
# at period p is the power at frequency 1/p against the (geometric) mean power two and three
# bins away on either side (a Hann window spreads a pure frequency over its bin and the next
# ones, and no further), each plus the power of 8-bit quantisation noise (variance 1/12
# level²), so that a picture with nothing at those frequencies (a smooth gradient) scores 1 and
# not a ratio of rounding errors.

GRID_PERIODS = (2, 4, 8, 16)  # pixels: the pooling lattice's periods in VGG-19
GRID_TILE = 64  # pixels: the side of the tiles whose spectra are averaged
_QUANTISATION = 1.0 / 12.0  # level²: the variance of rounding to whole levels


def _luminance(image: Tensor) -> Tensor:
    """Y of YIQ (float64) of an RGB batch (B, 3, H, W): (B, H, W)."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB batch (B, 3, H, W), got {tuple(image.shape)}")
    return rgb_to_yiq(image.double())[:, 0]


def _tiles(y: Tensor, tile: int) -> Tensor:
    """Square tiles of ``tile`` px of (B, H, W), half overlapping: (B·T, tile, tile)."""
    h, w = y.shape[-2:]
    if h < tile or w < tile:
        raise ValueError(f"the grid score needs a picture of at least {tile}x{tile} px")
    step = tile // 2
    return y.unfold(1, tile, step).unfold(2, tile, step).reshape(-1, tile, tile)


def _structure(tiles: Tensor) -> Tensor:
    """How much each tile (T, t, t) holds at scales above the lattice's: the mean gradient
    magnitude of its luminance blurred with σ = 4 px (T,)."""
    blurred = _blur(tiles.unsqueeze(1), 4.0)[:, 0]
    dx = blurred[:, :, 1:] - blurred[:, :, :-1]
    dy = blurred[:, 1:, :] - blurred[:, :-1, :]
    return dx.abs().mean(dim=(1, 2)) + dy.abs().mean(dim=(1, 2))


def grid_scores(
    image: Tensor,
    reference: Tensor | None = None,
    flat_share: float = 0.5,
    tile: int = GRID_TILE,
    periods: tuple[int, ...] = GRID_PERIODS,
) -> dict[int, float]:
    """Per period p, the power of the luminance of ``image`` (1, 3, H, W), 0..255, at frequency
    1/p against its spectral neighbourhood, in the ``flat_share`` of its tiles that are flattest
    in ``reference`` (the same size; the image itself if None). 1: no lattice. A cosine of
    amplitude A and period p along one axis, over white noise of variance σ², scores
    1 + A²·(Σh)² / (8·(σ² + 1/12)·Σh²) at p (h the 1-D Hann window): 1 + 5.33·A²/(σ² + 1/12)
    with 64 px tiles; four times that excess at p = 2 (the Nyquist frequency, where +1/p and
    -1/p are one bin)."""
    if tile % 16 or tile < 32:
        raise ValueError(f"the tile must be a multiple of 16 px of at least 32, not {tile}")
    if not 0 < flat_share <= 1:
        raise ValueError(f"flat_share must be in (0, 1], not {flat_share}")
    tiles = _tiles(_luminance(image), tile)  # (T, t, t)
    judged = tiles if reference is None else _tiles(_luminance(reference), tile)
    if judged.shape != tiles.shape:
        raise ValueError("the reference must be the size of the image")
    keep = max(1, round(flat_share * len(tiles)))
    flat = tiles[_structure(judged).argsort()[:keep]]
    hann = torch.hann_window(tile, periodic=True, dtype=torch.float64)
    window = hann[:, None] * hann[None, :]  # (t, t)
    # Each tile less its best-fitting plane: a smooth gradient across a tile (a sky) would
    # otherwise leak, through the window, into the low bins around the 16 px period.
    t = torch.arange(tile, dtype=torch.float64) - (tile - 1) / 2
    ramp_x, ramp_y = t.view(1, 1, -1), t.view(1, -1, 1)
    slope_x = (flat * ramp_x).sum(dim=(1, 2), keepdim=True) / (tile * t.pow(2).sum())
    slope_y = (flat * ramp_y).sum(dim=(1, 2), keepdim=True) / (tile * t.pow(2).sum())
    centred = flat - flat.mean(dim=(1, 2), keepdim=True) - slope_x * ramp_x - slope_y * ramp_y
    power = torch.fft.fft2(centred * window).abs().pow(2).mean(dim=0)  # (t, t): [fy, fx]
    # Per frequency bin k (0..t/2), the mean over the other axis, both axes averaged, ±k folded.
    along = 0.5 * (power.mean(dim=0) + power.mean(dim=1))  # (t,)
    folded = 0.5 * (along + along.roll(-1).flip(0))  # bin k and bin −k ≡ t − k
    floor = _QUANTISATION * float(window.pow(2).sum())  # quantisation noise's power per bin
    scores: dict[int, float] = {}
    for p in periods:
        k = tile // p
        # Two and three bins either side, folded at t/2; bins 0 and 1 hold the tile's mean
        # (spread by the window) and are left out. A geometric mean, as the spectrum of
        # strokes falls steeply with frequency.
        around = [k + d if k + d <= tile // 2 else tile - (k + d) for d in (-3, -2, 2, 3)]
        near = float(folded[[b for b in around if b >= 2]].log().mean().exp())
        scores[p] = (float(folded[k]) + floor) / (near + floor)
    return scores


def grid_score(image: Tensor, reference: Tensor | None = None, flat_share: float = 0.5) -> float:
    """The strongest of :func:`grid_scores` over VGG's pooling periods: 1 = no lattice."""
    return max(grid_scores(image, reference, flat_share).values())


def _gradient_magnitude(y: Tensor) -> Tensor:
    """|∇y| of (B, H, W) by central differences (Sobel-free: full resolution), borders
    replicated: (B, H, W)."""
    padded = F.pad(y.unsqueeze(1), (1, 1, 1, 1), mode="replicate")[:, 0]
    dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return torch.sqrt(dx * dx + dy * dy)


def edge_preservation(image: Tensor, photo: Tensor) -> float:
    """Pearson correlation over pixels between the gradient magnitudes of the luminance of
    ``image`` and of ``photo`` (both (1, 3, H, W), 0..255, the same size): 1 when the output's
    edges are the photo's (up to brightness and contrast), 0 when they are unrelated."""
    if image.shape != photo.shape:
        raise ValueError(
            f"edge preservation compares pictures of one size, not {tuple(image.shape)} "
            f"and {tuple(photo.shape)}"
        )
    a = _gradient_magnitude(_luminance(image)).flatten()
    b = _gradient_magnitude(_luminance(photo)).flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(torch.sqrt(a.pow(2).sum() * b.pow(2).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0
