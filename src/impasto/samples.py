"""The style as samples of its features: what the sliced Wasserstein and relaxed-OT style losses
and the self-similarity content loss compare the output with (issue 21; docs/style-losses.md).

The Gram loss keeps one N x N matrix per layer of the painting. The losses that compare
distributions keep samples: per style layer and per region, up to :data:`SLICED_SAMPLES` of the
painting's feature vectors (N, S), drawn once per coarse-to-fine stage from a generator seeded
by the run's seed, on the device. A blend of several paintings is their mixture (each
painting's share of the samples is its blend weight), a region's samples are drawn from its part
of its painting in proportion to the part's guidance values, and the fine style gives the fine
layers' samples, as each does for the Gram matrices.

**Directions** (sliced loss). Each evaluation of the loss projects on a fresh set of P = N/8
orthonormal directions per layer, picked from a bank of :data:`DIRECTION_SETS` sets drawn at the
stage's start; a step counter on the device picks the set (``index_select``, incremented in
place), so an iteration reads nothing back to the host and can be captured as a CUDA graph and
replayed (impasto.graphs), each replay taking the next set. Heitz et al. draw new random
directions at every evaluation; a bank of 128 x N/8 directions per layer is the same in effect
(the loss sees 16 N directions of each layer in turn) and is seeded: the same seed on the same
device gives the same picture. A fixed set would match only P one-dimensional marginals (for
P < N, not even the covariances the Gram loss matches).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import TransferConfig
from .guidance import propagate, resize_masks
from .vgg import ModelName, channels, layer_names

# Style samples per layer and region for the sliced loss (all positions where there are fewer):
# the quantile function of 4096 samples is within 2% (in level) of the painting's own.
SLICED_SAMPLES = 4096
# Style samples per layer and region for the relaxed EMD, and pixels for its palette term: the
# cost of an evaluation grows with M x REMD_SAMPLES, M the output's positions, all of which we
# compare (Kolkin et al. compare 1024 random positions with 1024 samples at each step).
REMD_SAMPLES = 512
# Direction sets in the sliced loss's bank, cycled through one per evaluation: 128 sets of N/8
# directions show the loss 16 N directions of each layer in turn.
DIRECTION_SETS = 128
# Positions of a content layer compared by the self-similarity loss, at most: a larger layer is
# average-pooled to fit (its (M x M) matrices grow as the fourth power of the size).
SELF_SIMILARITY_POSITIONS = 4096


def projections(channels: int) -> int:
    """P, the directions a layer of N channels is projected on per evaluation: N/8 (Heitz et al.
    take N). Sorting the P x M projections is what the loss costs on a CPU: with N/2 an iteration
    at 512 px took 2.3x a Gram iteration (BENCHMARKS.md, "Style losses"). The directions change
    at every evaluation, so the loss still sees every direction of a layer within a few."""
    return max(4, channels // 8)


@dataclass(frozen=True)
class LayerSamples:
    """One style layer's samples: one (N, S_r) set per region (one set without regions), and
    the mean square of the painting's features, 1/``scale`` (0-dim), which makes the sliced
    loss and the moments of every layer a relative number (docs/style-losses.md). For the
    relaxed EMD, per region: about :data:`REMD_SAMPLES` of the samples (``few``), and the mean
    (N,) and covariance (N, N) of all of them."""

    regions: tuple[Tensor, ...]
    scale: Tensor
    few: tuple[Tensor, ...] = ()
    means: tuple[Tensor, ...] = ()
    covariances: tuple[Tensor, ...] = ()


@dataclass(frozen=True)
class Directions:
    """The bank of direction sets per layer (K, P, N), and the evaluation counter (1,) that picks
    the set: :meth:`current` reads it, :meth:`advance` moves it on, both on the device."""

    bank: Mapping[str, Tensor]
    counter: Tensor

    def current(self, layer: str) -> Tensor:
        bank = self.bank[layer]
        slot = self.counter.remainder(bank.shape[0])  # (1,): no value read back
        return bank.index_select(0, slot)[0]  # (P, N)

    def advance(self) -> None:
        self.counter.add_(1)


@dataclass(frozen=True)
class SampleTargets:
    """What the sliced and relaxed-OT losses compare with: per style layer its samples, the
    directions (sliced), and for the palette term (relaxed OT) the painting's pixels (3, S) in
    [0, 1] per region, with the output's regions at the pixels (R, H*W) when guided."""

    layers: Mapping[str, LayerSamples]
    directions: Directions | None = None
    pixels: tuple[Tensor, ...] = ()
    pixel_weights: Tensor | None = None


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` seeded by ``seed``: every sample and direction of a stage."""
    return torch.Generator(device=device).manual_seed(seed)


def sample_positions(
    weights: Tensor | None, count: int, mass: float, gen: torch.Generator, size: int
) -> Tensor:
    """Indices of at most ``count`` of ``size`` positions, drawn in proportion to ``weights``
    (size,) (None: uniformly), whose sum is ``mass``: all of them when they are fewer (a binary
    mask: each inside position once). Systematic sampling along a random permutation, so the
    counts are exact and no spatial period of the picture is favoured."""
    device = gen.device
    perm = torch.randperm(size, generator=gen, device=device)
    if weights is None:
        return perm[: min(count, size)]
    take = max(1, min(count, math.ceil(mass - 1e-6)))
    cumulative = torch.cumsum(weights.float()[perm], 0)
    offset = torch.rand(1, generator=gen, device=device)
    levels = (torch.arange(take, device=device) + offset) * (mass / take)
    picked = torch.searchsorted(cumulative, levels, right=True).clamp(max=size - 1)
    return perm[picked]


def positions(layer: str, size: tuple[int, int], model: ModelName = "vgg19") -> int:
    """M, the positions of ``layer`` for an input of ``size`` (W, H): each pooling up to it
    halves the sides, flooring (as VGG does)."""
    order = layer_names(model)
    pools = sum(1 for name in order[: order.index(layer) + 1] if name.startswith("pool"))
    return (size[0] >> pools) * (size[1] >> pools)


class Sampler:
    """Collects, painting by painting, the samples of one stage's targets (``prepare`` feeds it
    the features it computes for the Gram matrices): the unguided mixture of the blended styles,
    each region's samples, and the fine style's layers. ``sizes`` (W, H) are the paintings'."""

    def __init__(
        self,
        layers: Sequence[str],
        blend: Sequence[float],
        sizes: Sequence[tuple[int, int]],
        gen: torch.Generator,
        count: int = SLICED_SAMPLES,
        model: ModelName = "vgg19",
    ) -> None:
        self.layers = tuple(layers)
        total = float(sum(blend))
        self.shares = [w / total for w in blend]
        self.gen = gen
        self.count = count
        # The mixture's samples per layer: each painting's share is its blend weight, and the
        # total is what the painting with the least room for its share allows (at most count).
        self.mixed_count = {
            k: min(
                [count]
                + [
                    math.floor(positions(k, wh, model) / s)
                    for s, wh in zip(self.shares, sizes, strict=True)
                    if s > 0
                ]
            )
            for k in self.layers
        }
        self.mixed_pixels = min(
            [REMD_SAMPLES]
            + [
                math.floor(wh[0] * wh[1] / s)
                for s, wh in zip(self.shares, sizes, strict=True)
                if s > 0
            ]
        )
        self.mixture: dict[str, list[Tensor]] = {k: [] for k in self.layers}
        self.guided: dict[int, dict[str, Tensor]] = {}
        self.fine: dict[str, Tensor] = {}
        self.pixels_mixture: list[Tensor] = []
        self.guided_pixels: dict[int, Tensor] = {}
        self.fine_pixels: Tensor | None = None

    def _draw(self, f: Tensor, count: int, weights: Tensor | None = None) -> Tensor:
        """At most ``count`` samples (N, S) of a response (1, N, h, w), weighted by (1, 1, h, w)
        (None: uniformly)."""
        n = f.shape[1]
        flat = f.reshape(n, -1)
        w = None if weights is None else weights.reshape(-1)
        mass = flat.shape[1] if w is None else float(w.sum())
        if mass <= 0 or count <= 0:
            return flat[:, :0].float()
        idx = sample_positions(w, count, mass, self.gen, flat.shape[1])
        return flat.index_select(1, idx).float()

    def add_style(
        self,
        index: int,
        features: Mapping[str, Tensor],
        pixels: Tensor,
        parts: Mapping[int, Mapping[str, Tensor] | None] | None = None,
    ) -> None:
        """Painting ``index``'s features (1, N, h, w) per layer and its pixels (1, 3, H, W) in
        [0, 255]. ``parts`` maps each region painted from it to its part's guidance channels per
        layer and at the pixels ("pixels"), or to None for all of the painting."""
        share = self.shares[index]
        for k in self.layers:
            self.mixture[k].append(self._draw(features[k], round(self.mixed_count[k] * share)))
        self.pixels_mixture.append(self._draw(pixels / 255.0, round(self.mixed_pixels * share)))
        for r, guide in (parts or {}).items():
            # Where the part vanishes at a layer, the whole painting (as for its Gram matrix).
            part = {k: _present(None if guide is None else guide[k]) for k in self.layers}
            self.guided[r] = {k: self._draw(features[k], self.count, part[k]) for k in self.layers}
            c = _present(None if guide is None else guide["pixels"])
            self.guided_pixels[r] = self._draw(pixels / 255.0, REMD_SAMPLES, c)

    def add_fine(self, features: Mapping[str, Tensor], pixels: Tensor) -> None:
        """The fine style's features (its layers take its samples instead of the mixture's)."""
        for k, f in features.items():
            self.fine[k] = self._draw(f, self.count)
        self.fine_pixels = self._draw(pixels / 255.0, REMD_SAMPLES)

    def layer_samples(
        self, guided: bool, regions: int, moments: bool = False
    ) -> dict[str, LayerSamples]:
        """Per layer, the sets of ``regions`` regions (guided) or the one mixture; with
        ``moments``, the relaxed EMD's subsets and moments too."""
        out = {}
        for k in self.layers:
            mixed = self.fine[k] if k in self.fine else torch.cat(self.mixture[k], dim=1)
            if guided and self.guided:
                sets = tuple(self.guided[r][k] for r in range(regions))
            else:
                sets = tuple(mixed for _ in range(regions if guided else 1))
            everything = torch.cat(sets, dim=1)
            mean_square = everything.pow(2).mean() if everything.numel() else mixed.pow(2).mean()
            scale = 1.0 / mean_square.clamp(min=1e-12)
            if not moments:
                out[k] = LayerSamples(sets, scale)
                continue
            # Evenly strided, so a blend's subset keeps its proportions (sets are concatenated).
            few = tuple(s[:, :: max(1, s.shape[1] // REMD_SAMPLES)] for s in sets)
            means = tuple(s.mean(1) for s in sets)
            covs = tuple(torch.cov(s, correction=0) for s in sets)
            out[k] = LayerSamples(sets, scale, few, means, covs)
        return out

    def palette(self, guided: bool, regions: int) -> tuple[Tensor, ...]:
        if guided and self.guided_pixels:
            return tuple(self.guided_pixels[r] for r in range(regions))
        if self.fine_pixels is not None:
            mixed = self.fine_pixels  # the fine style's strokes and colours
        else:
            mixed = torch.cat(self.pixels_mixture, dim=1)
        return tuple(mixed for _ in range(regions if guided else 1))


def _present(weights: Tensor | None) -> Tensor | None:
    """``weights`` unless they cover nothing (then None: all positions)."""
    return weights if weights is not None and float(weights.sum()) > 0 else None


def direction_bank(
    layers: Mapping[str, int], gen: torch.Generator, sets: int = DIRECTION_SETS
) -> dict[str, Tensor]:
    """Per layer of N channels, ``sets`` sets of :func:`projections` orthonormal directions:
    (sets, P, N), the rows of each set orthonormal (a random rotation's, by QR)."""
    bank = {}
    for name, n in layers.items():
        p = projections(n)
        g = torch.randn(sets, n, p, generator=gen, device=gen.device)
        # (sets, N, P), orthonormal columns; Apple's MPS has no QR: there on the CPU, once.
        q, r = torch.linalg.qr(g.cpu() if g.device.type == "mps" else g)
        q, r = q.to(g.device), r.to(g.device)
        # Signs fixed by R's diagonal: a Haar-random set, not one biased by the algorithm.
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
        bank[name] = q.transpose(1, 2).contiguous()  # (sets, P, N)
    return bank


def pooled(features: Tensor, most: int = SELF_SIMILARITY_POSITIONS) -> Tensor:
    """A response (1, N, h, w) average-pooled by the least whole factor that leaves at most
    ``most`` positions (every position counts; the last cells may be partial)."""
    h, w = features.shape[2:]
    k = 1
    while math.ceil(h / k) * math.ceil(w / k) > most:
        k += 1
    if k == 1:
        return features
    return F.adaptive_avg_pool2d(features, (math.ceil(h / k), math.ceil(w / k)))


def style_part(
    config: TransferConfig, mask: Tensor | None, size: tuple[int, int], device: torch.device
) -> dict[str, Tensor] | None:
    """A part of a painting of ``size`` (W, H), its mask (1, 1, h, w) at any size, as guidance
    channels per style layer and at the pixels ("pixels"); None (all of it) for no mask."""
    if mask is None:
        return None
    at_size = resize_masks([mask], size).to(device)
    parts = propagate(at_size, config.style_layers, config.model, config.mask_propagation)
    return {**parts, "pixels": at_size}


def sample_targets(
    sampler: Sampler, config: TransferConfig, masks: Tensor | None, gen: torch.Generator
) -> SampleTargets:
    """The targets of ``config.style_loss`` from what ``sampler`` collected; ``masks`` are the
    guided regions over the output (R, 1, H, W), None unguided."""
    guided = masks is not None
    count = masks.shape[0] if masks is not None else 1
    remd = config.style_loss == "remd"
    layers = sampler.layer_samples(guided, count, moments=remd)
    if not remd:
        sizes = {k: channels(k, config.model) for k in config.style_layers}
        counter = torch.zeros(1, dtype=torch.long, device=gen.device)
        return SampleTargets(layers, Directions(direction_bank(sizes, gen), counter))
    weights = masks.reshape(count, -1) if masks is not None else None
    return SampleTargets(layers, None, sampler.palette(guided, count), weights)
