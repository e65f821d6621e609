"""The paper's experiments as pictures: reconstructions (Fig. 4) and the α/β x layers grid (Fig. 5).

Each panel is an ordinary :class:`~impasto.optimize.Transfer` with a particular configuration, so
these share the core loop, its callbacks and its error handling; one VGG is loaded for all panels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .config import MAX_WEIGHT, PAPER_STYLE_LAYERS, TransferConfig
from .errors import UsageError
from .layout import Panel, contact_sheet
from .optimize import Step, Transfer
from .prepare import ImageLike, build_network
from .vgg import VGG

__all__ = [
    "DEFAULT_RATIOS",
    "Panel",
    "PanelCallback",
    "contact_sheet",
    "growing_sets",
    "ratio_grid",
    "reconstruct_content",
    "reconstruct_style",
]

DEFAULT_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


PanelCallback = Callable[[int, int, str], Callable[[Step], None] | None]
"""Called before each panel with (index, count, label); may return a step listener."""


def growing_sets(layers: Sequence[str]) -> list[tuple[str, ...]]:
    """{l1}, {l1, l2}, ... : the style layer sets of Figures 4 and 5."""
    return [tuple(layers[: i + 1]) for i in range(len(layers))]


def _run(
    content: ImageLike,
    styles: Sequence[ImageLike],
    cfg: TransferConfig,
    vgg: VGG,
    label: str,
    on_step: Callable[[Step], None] | None,
) -> Panel:
    result = Transfer(content, styles, cfg, vgg=vgg).run(on_step=on_step)
    return Panel(label, result.image, result.final_loss, result.interrupted)


def reconstruct_content(
    image: ImageLike,
    config: TransferConfig,
    layers: Sequence[str] = PAPER_STYLE_LAYERS,
    on_panel: PanelCallback | None = None,
) -> list[Panel]:
    """From white noise, match the image's responses at each layer alone (paper Fig. 4, top).
    An interrupted panel is the last one returned."""
    base = config.replace(preset="paper", style_weight=0.0, content_weight=1.0, init="noise")
    vgg = build_network(base)
    panels = []
    for i, layer in enumerate(layers):
        cfg = base.replace(content_layers=(layer,))
        listener = on_panel(i, len(layers), layer) if on_panel else None
        panels.append(_run(image, [], cfg, vgg, cfg.content_layers[0], listener))
        if panels[-1].interrupted:
            break
    return panels


def reconstruct_style(
    image: ImageLike,
    config: TransferConfig,
    layers: Sequence[str] = PAPER_STYLE_LAYERS,
    on_panel: PanelCallback | None = None,
) -> list[Panel]:
    """From white noise, match the Gram matrices of growing layer sets (paper Fig. 4, bottom).

    The image serves as its own "content" only to fix the output size: the content weight is 0.
    An interrupted panel is the last one returned.
    """
    base = config.replace(
        preset="paper", content_weight=0.0, style_weight=1.0, init="noise", style_layer_weights=None
    )
    vgg = build_network(base)
    sets = growing_sets(layers)
    panels = []
    for i, subset in enumerate(sets):
        cfg = base.replace(style_layers=subset)
        label = "+".join(cfg.style_layers) if len(subset) < 3 else f"{subset[0]}…{subset[-1]}"
        listener = on_panel(i, len(sets), label) if on_panel else None
        panels.append(_run(image, [image], cfg, vgg, label, listener))
        if panels[-1].interrupted:
            break
    return panels


def ratio_grid(
    content: ImageLike,
    style: ImageLike,
    config: TransferConfig,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    layers: Sequence[str] = PAPER_STYLE_LAYERS,
    on_panel: PanelCallback | None = None,
) -> list[list[Panel]]:
    """Rows: growing style-layer sets; columns: α/β ratios (KTH report Fig. 5). An interrupted
    panel is the last one returned (its row cut short there)."""
    if not ratios or any(not (math.isfinite(r) and r >= 1 / MAX_WEIGHT) for r in ratios):
        raise UsageError(f"--ratios must be finite numbers of at least {1 / MAX_WEIGHT:g}")
    # The paper's objective (equal layer weights, no TV unless given, one scale), started
    # where the configuration says.
    base = config.replace(
        preset="paper", content_weight=1.0, style_layer_weights=None, init=str(config.init)
    )
    vgg = build_network(base)
    sets = growing_sets(layers)
    rows: list[list[Panel]] = []
    count = len(sets) * len(ratios)
    for r, subset in enumerate(sets):
        row = []
        for c, ratio in enumerate(ratios):
            cfg = base.replace(style_layers=subset, style_weight=1.0 / ratio)
            label = f"α/β={ratio:g}"
            listener = on_panel(r * len(ratios) + c, count, label) if on_panel else None
            row.append(_run(content, [style], cfg, vgg, label, listener))
            if row[-1].interrupted:
                return [*rows, row]
        rows.append(row)
    return rows
