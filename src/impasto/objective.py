"""The objective as a list of named, weighted terms: α·content + β·style (+ TV, + temporal, ...).

A :class:`Term` is a name, a weight and a function of the iterate and its VGG features; the
:class:`Objective` asks the network for the layers its terms need, once per evaluation, and returns
every term weighted, in order, with their sum first. The loop stacks these into one device vector
per step and labels it with :attr:`Objective.names`; listeners read terms by name from a
:class:`~impasto.optimize.Step`. A new term (video's temporal term, say) is one more entry
in the list, and appears in every Step, Result, progress bar, plot and the server without
touching them.

Spatial control does not add a term: with regions the style term is guided (each region matched
to its own style's statistics) and keeps its name, so every listener reads it as before.

This module owns what the terms are; the maths of each is a pure function in
:mod:`impasto.losses` (and :func:`impasto.flow.temporal_loss`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from .config import TransferConfig
from .losses import content_loss, guided_style_loss, style_loss, tv_loss
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


class Objective:
    """Named terms over one network. ``objective(x)`` is ``(total, *terms)``, each weighted,
    in the order of :attr:`names`."""

    def __init__(self, vgg: VGG, terms: Sequence[Term]) -> None:
        names = [t.name for t in terms]
        if len(set(names)) != len(names) or "total" in names:
            raise ValueError(f"term names must be distinct and not 'total': {names}")
        self.vgg = vgg
        self.terms = tuple(terms)
        self.names = tuple(names)
        self._layers = {layer for t in self.terms if t.weight for layer in t.layers}

    def __call__(self, x: Tensor) -> tuple[Tensor, ...]:
        feats = self.vgg(x, self._layers) if self._layers else {}
        zero = x.new_zeros(())
        values = [t.weight * t.fn(x, feats) if t.weight else zero for t in self.terms]
        total = values[0] if values else zero
        for v in values[1:]:
            total = total + v
        return (total, *values)


def transfer_terms(config: TransferConfig, targets: Targets) -> list[Term]:
    """Gatys et al.'s terms for ``config``: content (α), style (β) and TV, always in this order
    (a term that cannot apply, style without style images, has weight 0). With regions the style
    term is the guided one (Gatys et al. 2017), under the same name."""
    content_layers = tuple(config.content_layers)
    style_layers = tuple(targets.layer_weights)

    def content(x: Tensor, feats: Features) -> Tensor:
        total = x.new_zeros(())
        for name in content_layers:
            total = total + content_loss(feats[name], targets.content[name])
        return total

    def style(x: Tensor, feats: Features) -> Tensor:
        if targets.guided is not None:
            return guided_style_loss(feats, targets.guided, targets.layer_weights)
        return style_loss(feats, targets.style, targets.layer_weights)

    def tv(x: Tensor, feats: Features) -> Tensor:
        return tv_loss(x)

    beta = config.style_weight if targets.style else 0.0
    return [
        Term("content", config.content_weight, content, content_layers),
        Term("style", beta, style, style_layers),
        Term("tv", config.tv_weight, tv),
    ]
