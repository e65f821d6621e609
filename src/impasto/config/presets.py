"""What the options a user leaves alone become: the presets' values, the default style weights,
the :class:`Auto` markers of a value left at its default, and the coarse-to-fine stages."""

from __future__ import annotations

import itertools
import math
from typing import Any

from ..errors import UsageError
from ..layers import MIN_SIDE
from .limits import MAX_STAGES

PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

# β when the user gives none: for the raw Caffe weights (the paper preset's, and the default
# preset's at 512 px), and for the normalised network, whose style losses are smaller by very
# different factors per layer (docs/method.md, "Defaults, and why").
STYLE_WEIGHT = 1e3
DEFAULT_STYLE_WEIGHT_512 = 1e4
NORMALIZED_STYLE_WEIGHT = 1e6

# What each preset gives the options a user leaves alone (docs/method.md, "Defaults, and why").
# "paper" is Gatys et al. as published: white noise, equal layer weights, no smoothness term, one
# scale. "default" departs from it where bench_quality.py measured that it pays: it starts from the
# photo, weighs the style layers by 1/N_l² (as the Lua reference's normalisation does implicitly),
# adds a total-variation term against L-BFGS's colour grain, and works coarse to fine above
# COARSE_TO_FINE_ABOVE pixels.
TV_WEIGHT = 20.0
COARSE_TO_FINE_ABOVE = 320
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"init": "content", "tv_weight": TV_WEIGHT, "scales": "auto", "iterations": 350},
    "paper": {"init": "noise", "tv_weight": 0.0, "scales": "one", "iterations": 500},
}


class Auto:
    """Marks an option left at its default, which ``__post_init__`` resolves from other options
    (the preset, the size, ``normalize_network``). A resolved value stays marked, so ``replace()``
    and ``to_dict()`` round trips resolve it again; a value the user gives is a plain one."""


class AutoWeight(float, Auto):
    """A float option left at its default."""


class AutoInt(int, Auto):
    """An integer option left at its default."""


class AutoStr(str, Auto):
    """A text option left at its default."""


class AutoScales(tuple[int, ...], Auto):
    """Coarse-to-fine stages left at their default."""


def scale_schedule(size: int, start: int = 256) -> tuple[int, ...]:
    """Longest sides from ``start`` growing by √2 up to ``size`` (Gatys et al. 2017): the last
    stage is ``size`` itself, and an intermediate stage within 20% of it is dropped; a size up to
    COARSE_TO_FINE_ABOVE is one stage."""
    if size <= COARSE_TO_FINE_ABOVE:
        return (size,)
    stages: list[int] = []
    s = float(min(start, size))
    while round(s) * 1.2 < size:
        stages.append(round(s))
        s *= math.sqrt(2)
    return (*stages, size)


def check_scales(scales: Any, size: int) -> tuple[int, ...]:
    """'auto' becomes the schedule for ``size``, 'one' (or None) one stage; explicit stages must
    grow to ``size``."""
    if scales is None:
        scales = ("one",)
    if isinstance(scales, str):
        scales = (scales,)
    if tuple(scales) == ("auto",):
        return scale_schedule(size)
    if tuple(scales) == ("one",):
        return (size,)
    try:
        stages = tuple(int(str(v)) for v in scales)
    except ValueError:
        raise UsageError(
            "--scales must be 'auto', 'one' or comma-separated sizes, not "
            f"{','.join(map(str, scales))}"
        ) from None
    if not stages or any(b <= a for a, b in itertools.pairwise(stages)) or stages[0] < MIN_SIDE:
        raise UsageError(f"--scales must be increasing sizes of at least {MIN_SIDE} pixels")
    if stages[-1] != size:
        stages = (*(s for s in stages if s < size), size)
    if len(stages) > MAX_STAGES:
        raise UsageError(f"--scales has {len(stages)} stages; at most {MAX_STAGES} are allowed")
    return stages
