"""The objective as a list of named, weighted terms: α·content + β·style (+ TV, + temporal, ...).

A :class:`Term` is a name, a weight and a function of the iterate and its VGG features; the
:class:`Objective` asks the network for the layers its terms need, once per evaluation, and returns
every term weighted, in order, with their sum first. The loop stacks these into one device vector
per step and labels it with :attr:`Objective.names`; listeners read terms by name from a
:class:`~impasto.optimize.Step`. A new term (video's temporal term, say) is one more entry
in the list, and appears in every Step, Result, progress bar, plot and the server without
touching them.

Spatial control does not add a term: with regions the style term is guided (each region matched
to its own style's statistics) and keeps its name, so every listener reads it as before. Nor do
the other style and content losses (``--style-loss``, ``--content-loss``; docs/style-losses.md):
the style term is the Gram loss, the sliced Wasserstein loss or the relaxed-OT loss, the content
term the features loss or the self-similarity loss, each named "style" or "content".

This module owns what the terms are; the maths of each is a pure function in
:mod:`impasto.losses` (and :func:`impasto.flow.temporal_loss`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ContentLoss, StyleLoss, TransferConfig
from .losses import (
    content_loss,
    guided_style_loss,
    moment_loss,
    relaxed_emd,
    self_similarity_loss,
    sliced_wasserstein,
    style_loss,
    tv_loss,
)
from .samples import SampleTargets, pooled
from .vgg import VGG

Features = Mapping[str, Tensor]
TermFn = Callable[[Tensor, Features], Tensor]  # (iterate (1, 3, H, W) in [0, 255], features)


@dataclass(frozen=True)
class Term:
    """One part of the objective: ``weight · fn(x, features)``. A term of weight 0 is reported
    as 0 without being evaluated (and asks the network for none of its layers)."""

    name: str
    weight: float
    fn: TermFn
    layers: tuple[str, ...] = ()  # VGG layers ``fn`` reads from the features


@dataclass(frozen=True)
class Targets:
    """What the iterate is compared with: the content's features, the (blended) style Gram
    matrices, the weight of each style layer and, for spatial control, the guided targets."""

    content: Mapping[str, Tensor]
    style: Mapping[str, Tensor]
    layer_weights: Mapping[str, float]
    # With regions (masks): per style layer, the guidance channels (R, 1, h, w) over the output
    # and each region's per-position style statistics (R, N, N); the style term is then guided.
    guided: Mapping[str, tuple[Tensor, Tensor]] | None = None
    # For the sliced and relaxed-OT style losses: the painting's samples per style layer (and
    # region), with the directions or the palette (impasto.samples).
    samples: SampleTargets | None = None
    # For the self-similarity content loss: the content's (M, M) per content layer.
    self_similarity: Mapping[str, Tensor] | None = None


# Each loss is multiplied by a constant so that one β (and α) means about the same balance
# whichever loss is picked: at the default β, the sliced and relaxed-OT losses keep as much of
# the photo (content loss ½Σ(F − P)² of the result) as the Gram loss on the shared pairs, and at
# the Gram default's result the self-similarity loss is as large as the features loss (measured
# with benchmarks/bench_quality.py; BENCHMARKS.md, "Style losses"). So --style-weight, the
# studio's slider and a sweep of style_loss mean about the same strength for every loss.
STYLE_SCALE: dict[str, float] = {"gram": 1.0, "sliced": 1e9, "remd": 1.5e8}
CONTENT_SCALE: dict[str, float] = {"features": 1.0, "self-similarity": 1e8}


def translate(x: Tensor, dy: int, dx: int, reach: int) -> Tensor:
    """``x`` (B, C, H, W) moved down by ``dy`` and right by ``dx`` pixels (negative: up, left),
    the strip uncovered filled by reflection; ``|dy|, |dx| <= reach`` (and reach < H, W)."""
    if reach == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (reach, reach, reach, reach), mode="reflect")
    return padded[..., reach - dy : reach - dy + h, reach - dx : reach - dx + w]


# What the features of a jittered evaluation hold besides the iterate's own: the content's
# features under the same shift, under this prefix (read by the content term).
SHIFTED_TARGET = "target:"


@dataclass
class Jitter:
    """Random translations of the picture the network sees (issue 30). VGG's four 2x2 poolings
    put its responses on a lattice of 16 px; with the picture always in the same place, the
    gradient favours one phase of that lattice, and a fine grid (2 to 16 px) shows in the flat
    parts of the output. Every ``every`` evaluations the iterate is moved by a random
    (dy, dx) in [−reach, reach]², and the content compared with the photo moved alike (its
    features computed again, without gradient, for each new shift); the style statistics do not
    depend on where things are. Not in the paper: later work (e.g. Mordvintsev et al.'s
    feature visualisation) jitters to the same end."""

    reach: int
    content: Tensor  # (1, 3, H, W): the photo as the network sees it
    layers: tuple[str, ...]  # the content layers
    seed: int
    every: int = 1
    _calls: int = 0
    _shift: tuple[int, int] = (0, 0)
    _targets: dict[str, Tensor] = field(default_factory=dict)
    _gen: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)

    def next(self, vgg: VGG) -> tuple[tuple[int, int], dict[str, Tensor]]:
        """The shift for this evaluation and the content's features under it."""
        if self._calls % self.every == 0:
            d = torch.randint(-self.reach, self.reach + 1, (2,), generator=self._gen).tolist()
            shift = (int(d[0]), int(d[1]))
            if shift != self._shift or not self._targets:
                self._shift = shift
                with torch.no_grad():
                    seen = translate(self.content, *shift, self.reach)
                    feats = vgg(seen, self.layers)
                self._targets = {SHIFTED_TARGET + k: feats[k].detach() for k in self.layers}
        self._calls += 1
        return self._shift, self._targets


def jitter_for(config: TransferConfig, content: Tensor, seed: int) -> Jitter | None:
    """The jitter ``config`` asks for (None when off) over ``content``, the photo as the network
    sees it (1, 3, H, W); the reach at most the picture's shorter side less one (reflection)."""
    if config.jitter == 0:
        return None
    reach = min(config.jitter, min(content.shape[-2:]) - 1)
    return Jitter(reach, content, tuple(config.content_layers), seed, JITTER_EVERY)


# Evaluations per shift: a new one at every L-BFGS iteration (issue 30, BENCHMARKS.md).
JITTER_EVERY = 1


class Objective:
    """Named terms over one network. ``objective(x)`` is ``(total, *terms)``, each weighted,
    in the order of :attr:`names`. With a :class:`Jitter`, the network sees the iterate moved by
    the jitter's shift (the terms' features are of the moved picture, the content term's target
    the photo moved alike); the terms' pixels are the iterate's own."""

    def __init__(self, vgg: VGG, terms: Sequence[Term], jitter: Jitter | None = None) -> None:
        names = [t.name for t in terms]
        if len(set(names)) != len(names) or "total" in names:
            raise ValueError(f"term names must be distinct and not 'total': {names}")
        self.vgg = vgg
        self.terms = tuple(terms)
        self.names = tuple(names)
        self.jitter = jitter
        self._layers = {layer for t in self.terms if t.weight for layer in t.layers}

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        shifted: dict[str, Tensor] = {}
        seen = x
        if self.jitter is not None:
            (dy, dx), shifted = self.jitter.next(self.vgg)
            seen = translate(x, dy, dx, self.jitter.reach)
        # Only the network sees the moved picture: a term that reads pixels (TV, video's
        # temporal term, the palette) reads the iterate where it is.
        feats = self.vgg(seen, self._layers) if self._layers else {}
        if shifted:
            feats = {**feats, **shifted}
        zero = x.new_zeros(())
        values = [t.weight * t.fn(x, feats) if t.weight else zero for t in self.terms]
        total = values[0] if values else zero
        for v in values[1:]:
            total = total + v
        return (total, *values)


def transfer_terms(config: TransferConfig, targets: Targets) -> list[Term]:
    """The terms for ``config``: content (α), style (β) and TV, always in this order (a term
    that cannot apply, style without style images, has weight 0), the content and style terms
    those of ``config.content_loss`` and ``config.style_loss`` (Gatys et al.'s by default), each
    scaled by its constant above. With regions the style term is the guided one (Gatys et al.
    2017), under the same name."""
    content_layers = tuple(config.content_layers)
    style_layers = tuple(targets.layer_weights)

    def tv(x: Tensor, feats: Features) -> Tensor:
        return tv_loss(x)

    alpha = config.content_weight * CONTENT_SCALE[config.content_loss]
    beta = config.style_weight * STYLE_SCALE[config.style_loss] if targets.style else 0.0
    return [
        Term(
            "content",
            alpha,
            content_term(config.content_loss, content_layers, targets),
            content_layers,
        ),
        Term("style", beta, style_term(config.style_loss, targets), style_layers),
        Term("tv", config.tv_weight, tv),
    ]


def content_term(kind: ContentLoss, layers: tuple[str, ...], targets: Targets) -> TermFn:
    """The content loss ``kind`` over ``layers``: features (½Σ(F − P)², Gatys et al.) or
    self-similarity (Kolkin et al.), the latter times the layer's positions M, so that, as
    ½Σ(F − P)², it sums over the picture and α/β keeps its meaning at every size."""

    def features(x: Tensor, feats: Features) -> Tensor:
        total = x.new_zeros(())
        for name in layers:
            # With jitter, the photo's features under the iterate's shift (Jitter).
            target = feats.get(SHIFTED_TARGET + name, targets.content[name])
            total = total + content_loss(feats[name], target)
        return total

    def self_similar(x: Tensor, feats: Features) -> Tensor:
        if targets.self_similarity is None:
            raise ValueError("the self-similarity content loss needs its targets (prepare)")
        total = x.new_zeros(())
        for name in layers:
            f = feats[name]
            m = f.shape[2] * f.shape[3]
            total = total + m * self_similarity_loss(pooled(f), targets.self_similarity[name])
        return total

    return self_similar if kind == "self-similarity" else features


def style_term(kind: StyleLoss, targets: Targets) -> TermFn:
    """The style loss ``kind`` over the style layers, each weighted by w_l (guided with regions):
    gram (Gatys et al.), sliced (Heitz et al.; on a new set of directions at each evaluation) or
    remd (Kolkin et al.: relaxed EMD and moments per layer, and the palette)."""
    weights = targets.layer_weights
    guided = targets.guided

    def gram(x: Tensor, feats: Features) -> Tensor:
        if guided is not None:
            return guided_style_loss(feats, guided, weights)
        return style_loss(feats, targets.style, weights)

    def region_weights(name: str) -> Tensor | None:
        if guided is None:
            return None
        channels = guided[name][0]  # (R, 1, h, w)
        return channels.reshape(channels.shape[0], -1)

    def sliced(x: Tensor, feats: Features) -> Tensor:
        samples = _samples(targets)
        directions = samples.directions
        if directions is None:
            raise ValueError("the sliced loss needs its directions (prepare)")
        total = x.new_zeros(())
        for name, w in weights.items():
            layer = samples.layers[name]
            sw = sliced_wasserstein(
                feats[name], directions.current(name), layer.regions, region_weights(name)
            )
            total = total + w * layer.scale * sw
        directions.advance()
        return total

    def remd(x: Tensor, feats: Features) -> Tensor:
        samples = _samples(targets)
        total = x.new_zeros(())
        for name, w in weights.items():
            layer = samples.layers[name]
            f = feats[name]
            m = f.shape[2] * f.shape[3]
            flat = f.reshape(f.shape[1], m).float()  # (N, M)
            regions = region_weights(name)
            for r, few in enumerate(layer.few):
                t = None if regions is None else regions[r]
                share = 1.0 if t is None else t.sum() / m  # the region's μ_r / M
                emd = relaxed_emd(flat, few, weights=t)
                root = layer.scale.sqrt()
                moments = moment_loss(
                    flat * root, layer.means[r] * root, layer.covariances[r] * layer.scale, t
                )
                total = total + w * share * (emd + moments)
        # The palette: the output's colours against the painting's, in [0, 1]³.
        pixels = (x[0].reshape(3, -1) / 255.0).float()  # (3, H*W)
        for r, palette in enumerate(samples.pixels):
            pw = samples.pixel_weights
            t = None if pw is None else pw[r]
            share = 1.0 if t is None else t.sum() / t.numel()
            total = total + share * relaxed_emd(pixels, palette, "squared", t)
        return total

    return {"gram": gram, "sliced": sliced, "remd": remd}[kind]


def _samples(targets: Targets) -> SampleTargets:
    if targets.samples is None:
        raise ValueError("this style loss needs the painting's samples (prepare)")
    return targets.samples
