"""The paper's experiments as pictures: reconstructions (Fig. 4) and the α/β x layers grid (Fig. 5).

Each panel is an ordinary :class:`~impasto.optimize.Transfer` with a particular configuration, so
these share the core loop, its callbacks and its error handling; one VGG is loaded for all panels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from .config import MAX_WEIGHT, PAPER_STYLE_LAYERS, TransferConfig
from .errors import UsageError
from .optimize import Step, Transfer
from .prepare import ImageLike, build_network
from .vgg import VGG

DEFAULT_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class Panel:
    """One cell of a contact sheet."""

    label: str
    image: PIL.Image.Image
    loss: float
    interrupted: bool = False  # Ctrl-C (or SIGTERM) ended it early: the panels stop here


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


# --- contact sheets ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _font(size: int) -> PIL.ImageFont.ImageFont | PIL.ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's own files (it has α and β; Pillow's default font draws
    boxes for them), else Pillow's default."""
    try:
        from matplotlib import font_manager

        path = font_manager.findfont("DejaVu Sans", fallback_to_default=False)
        return PIL.ImageFont.truetype(path, size)
    except (ImportError, ValueError, OSError):
        pass
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return PIL.ImageFont.load_default()


def fit_label(text: str, width: int, size: int, least: int = 9) -> tuple[str, int]:
    """``text`` at the largest font size from ``size`` down to ``least`` px that fits in
    ``width`` pixels; cut short with an ellipsis at ``least`` when nothing fits. Returns the
    text drawn and its font size."""
    measure = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    for px in range(size, least - 1, -1):
        if measure.textlength(text, font=_font(px)) <= width:
            return text, px
    font = _font(least)
    cut = text
    while cut and measure.textlength(cut + "…", font=font) > width:
        cut = cut[:-1]
    return (cut.rstrip(" ,=") + "…" if cut else "…"), least


def contact_sheet(
    rows: Sequence[Sequence[Panel]],
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    gap: int = 8,
    col_labels: Sequence[str] | None = None,
) -> PIL.Image.Image:
    """Lay panels out in a labelled grid on white: a label under each panel (none when every
    panel's is empty), column labels above (``col_labels``), row labels left. Every label is
    fitted to its room (a smaller font, then an ellipsis): none runs into the next."""
    if not rows or not all(rows):
        raise ValueError("a contact sheet needs at least one panel per row")
    cell_w = max(p.image.width for row in rows for p in row)
    cell_h = max(p.image.height for row in rows for p in row)
    font_px = max(10, min(18, cell_w // 12))
    font = _font(font_px)
    labelled = any(p.label for row in rows for p in row)
    label_h = font_px + 6 if labelled else 0
    measure = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    left = 0
    if row_labels:
        widest = max(int(measure.textlength(t, font=font)) for t in row_labels)
        left = min(widest, max(cell_w, 120)) + 2 * gap  # long ones are fitted to this
    top = label_h + gap if title else 0
    head = font_px + 6 + gap if col_labels else 0
    ncols = max(len(row) for row in rows)
    width = left + ncols * (cell_w + gap) + gap
    height = top + head + len(rows) * (cell_h + label_h + gap) + gap
    sheet = PIL.Image.new("RGB", (width, height), "white")
    draw = PIL.ImageDraw.Draw(sheet)

    def text(xy: tuple[int, int], words: str, room: int) -> None:
        shown, px = fit_label(words, room, font_px)
        draw.text(xy, shown, fill="black", font=_font(px))

    if title:
        text((gap, gap // 2), title, width - 2 * gap)
    for c, label in enumerate(col_labels or ()):
        text((left + gap + c * (cell_w + gap), top + gap), label, cell_w)
    for r, row in enumerate(rows):
        y = top + head + gap + r * (cell_h + label_h + gap)
        if row_labels:
            text((gap, y + cell_h // 2), row_labels[r], left - 2 * gap)
        for c, panel in enumerate(row):
            x = left + gap + c * (cell_w + gap)
            sheet.paste(panel.image, (x, y))
            if panel.label:
                text((x, y + cell_h + 2), panel.label, cell_w)
    return sheet
