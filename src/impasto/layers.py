"""The layers of VGG-16/19 by name: which exist, how many filters each has, the least image side.

Kept apart from :mod:`impasto.vgg` (the network itself) and free of torch, so that the options
(:mod:`impasto.config`) and the command line's help can name and check layers without loading
torch. See :mod:`impasto.vgg` for the naming convention (``convB_L``, ``reluB_L``, ``poolB``).
"""

from __future__ import annotations

import difflib
import functools
from typing import Literal

from .errors import UsageError

__all__ = [
    "MIN_SIDE",
    "ModelName",
    "WeightsFormat",
    "canonical_layer",
    "channels",
    "conv_names",
    "layer_names",
]

ModelName = Literal["vgg19", "vgg16"]
WeightsFormat = Literal["auto", "keras", "torchvision", "caffe"]

# Convolutions per block (all 3x3, stride 1, padding 1), from Simonyan & Zisserman, table 1.
_BLOCKS: dict[str, tuple[tuple[int, int], ...]] = {
    # block: (number of convolutions, output channels)
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}

# The least side an image may have: four 2x2 poolings come before conv5_1.
MIN_SIDE = 16


def conv_names(model: ModelName) -> list[str]:
    """Convolution layer names in network order, e.g. ``['conv1_1', 'conv1_2', ...]``."""
    return [f"conv{b + 1}_{i + 1}" for b, (n, _) in enumerate(_BLOCKS[model]) for i in range(n)]


def layer_names(model: ModelName) -> list[str]:
    """Every layer name a user may ask for, in network order (conv, then pool per block)."""
    names: list[str] = []
    for b, (n, _) in enumerate(_BLOCKS[model]):
        names += [f"conv{b + 1}_{i + 1}" for i in range(n)] + [f"pool{b + 1}"]
    return names


def channels(layer: str, model: ModelName = "vgg19") -> int:
    """N_l, the number of filters of a (canonical) layer: 64 for conv1_1, 512 for conv5_1."""
    block = int(layer.removeprefix("conv").removeprefix("pool").split("_")[0])
    return _BLOCKS[model][block - 1][1]


@functools.cache
def _layer_names(model: ModelName) -> tuple[str, ...]:
    """:func:`layer_names`, made once (every config checks its layers against it)."""
    return tuple(layer_names(model))


@functools.lru_cache(maxsize=1024)  # every config canonicalises its layers: a batch, thousands
def canonical_layer(name: str, model: ModelName = "vgg19") -> str:
    """Map ``relu3_1`` to ``conv3_1``; raise :class:`UsageError` with a hint for unknown names."""
    key = name.strip().lower()
    if key.startswith("relu"):
        key = "conv" + key[4:]
    valid = _layer_names(model)
    if key not in valid:
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; valid layers: {', '.join(valid)}"
        raise UsageError(f"unknown layer '{name}' for {model}{hint}")
    return key
