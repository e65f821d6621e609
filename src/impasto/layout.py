"""Labelled figures laid out from measured text: every contact sheet, grid and figure goes here.

A label is fitted to the room it has: at the largest font size that fits on one line, else
wrapped at spaces (or at ``_``, ``-``, ``,`` and ``.`` inside long file names) onto a few lines,
smaller if need be; an ellipsis only when even the smallest size on the most lines does not fit.
Heights and widths come from the font's own measurements (Pillow's ``getlength``, ``getmetrics``
and ``textbbox``), so no caption runs into another, into a panel or off the canvas; the sheet
returns the boxes it drew so that tests can check exactly that.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

__all__ = [
    "Fitted",
    "Panel",
    "Sheet",
    "contact_sheet",
    "fit_all",
    "fit_text",
    "font",
    "lay_out",
]

Font = PIL.ImageFont.ImageFont | PIL.ImageFont.FreeTypeFont
Box = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive

LEAST_PX = 9  # the smallest font size a label is shrunk to


@dataclass
class Panel:
    """One cell of a contact sheet."""

    label: str
    image: PIL.Image.Image
    loss: float
    interrupted: bool = False  # Ctrl-C (or SIGTERM) ended it early: the panels stop here


@functools.lru_cache(maxsize=32)
def font(size: int) -> Font:
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


def _line_height(f: Font) -> int:
    if isinstance(f, PIL.ImageFont.FreeTypeFont):
        ascent, descent = f.getmetrics()
        return int(ascent + descent)
    box = f.getbbox("Ågj")
    return int(box[3]) + 1


def _width(text: str, f: Font) -> float:
    return float(f.getlength(text))


@dataclass(frozen=True)
class Fitted:
    """A label as it will be drawn: its lines, font size and measured size in pixels."""

    lines: tuple[str, ...]
    px: int
    width: int
    height: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _measured(lines: Sequence[str], px: int) -> Fitted:
    f = font(px)
    width = max((int(_width(line, f)) + 1 for line in lines), default=0)
    return Fitted(tuple(lines), px, width, _line_height(f) * len(lines))


_BREAK = re.compile(r"(?<=[_\-,./×])")  # inside a long word, a line may break after these


def _wrap(text: str, f: Font, room: int) -> list[str]:
    """Greedy lines no wider than ``room``, broken at spaces; a word too wide for a line of its
    own is broken after ``_-,./×``, and a piece still too wide between letters."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        joined = f"{line} {word}" if line else word
        if _width(joined, f) <= room:
            line = joined
            continue
        if line:
            lines.append(line)
        line = ""
        if _width(word, f) <= room:
            line = word
            continue
        for piece in _BREAK.split(word):
            if _width(line + piece, f) <= room:
                line += piece
                continue
            if line:
                lines.append(line)
            line = piece
            while _width(line, f) > room and len(line) > 1:  # cut between letters
                cut = len(line) - 1
                while cut > 1 and _width(line[:cut], f) > room:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
    if line:
        lines.append(line)
    return lines or [""]


def _ellipsis(line: str, f: Font, room: int) -> str:
    cut = line
    while cut and _width(cut + "…", f) > room:
        cut = cut[:-1]
    return cut.rstrip(" ,=_-") + "…" if cut else "…"


def fit_text(text: str, room: int, px: int, lines: int = 2, least: int = LEAST_PX) -> Fitted:
    """``text`` fitted into ``room`` pixels' width: on one line at the largest size from ``px``
    down to seven eighths of it; else wrapped onto at most ``lines`` lines at the largest size
    from ``px`` down to ``least``; else its first ``lines`` lines at ``least``, the last cut
    short with an ellipsis."""
    least = min(least, px)
    text = " ".join(text.split())
    for size in range(px, max(least, (7 * px) // 8) - 1, -1):
        if _width(text, font(size)) <= room:
            return _measured([text], size)
    for size in range(px, least - 1, -1):
        wrapped = _wrap(text, font(size), room)
        if len(wrapped) <= lines:
            return _measured(wrapped, size)
    f = font(least)
    wrapped = _wrap(text, f, room)
    kept = wrapped[:lines]
    kept[-1] = _ellipsis(" ".join(wrapped[lines - 1 :]), f, room)
    return _measured(kept, least)


def fit_all(texts: Sequence[str], room: int, px: int, lines: int = 2) -> list[Fitted]:
    """Each of ``texts`` fitted as by :func:`fit_text`, all at one size: the size the hardest
    needs (so that a figure's captions match)."""
    least = min((fit_text(t, room, px, lines).px for t in texts if t), default=px)
    return [fit_text(t, room, least, lines, least=least) for t in texts]


@dataclass
class Sheet:
    """A laid-out figure: the picture and the boxes of what was drawn on it."""

    image: PIL.Image.Image
    texts: list[tuple[str, Box]] = field(default_factory=list)  # each line drawn and its box
    panels: list[Box] = field(default_factory=list)


class _Painter:
    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.draw = PIL.ImageDraw.Draw(sheet.image)

    def text(self, x: int, y: int, fitted: Fitted, room: int, centred: bool = False) -> None:
        """Draw ``fitted`` with its top-left at (x, y), or centred in ``room`` from x."""
        f = font(fitted.px)
        step = _line_height(f)
        for i, line in enumerate(fitted.lines):
            if not line:
                continue
            dx = (room - int(_width(line, f))) // 2 if centred else 0
            xy = (x + max(0, dx), y + i * step)
            self.draw.text(xy, line, fill="black", font=f)
            box = self.draw.textbbox(xy, line, font=f)
            self.sheet.texts.append(
                (line, (int(box[0]), int(box[1]), math.ceil(box[2]), math.ceil(box[3])))
            )

    def paste(self, image: PIL.Image.Image, x: int, y: int) -> None:
        self.sheet.image.paste(image, (x, y))
        self.sheet.panels.append((x, y, x + image.width, y + image.height))


def lay_out(
    rows: Sequence[Sequence[Panel]],
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    gap: int = 8,
    col_labels: Sequence[str] | None = None,
) -> Sheet:
    """Panels in a labelled grid on white: the title on top, column labels above the panels,
    row labels on the left (as wide as the widest one needs, no more), each panel's label under
    it. Every label is measured and fitted to its room (see :func:`fit_text`)."""
    if not rows or not all(rows):
        raise ValueError("a contact sheet needs at least one panel per row")
    cell_w = max(p.image.width for row in rows for p in row)
    ncols = max(len(row) for row in rows)
    px = max(10, min(18, cell_w // 12))
    pad = max(2, px // 4)  # between a panel and its label

    labels = fit_all([p.label for row in rows for p in row], cell_w, px)
    captions: list[list[Fitted | None]] = []
    for row in rows:
        captions.append([fit if p.label else None for p, fit in zip(row, labels, strict=False)])
        labels = labels[len(row) :]
    heads = fit_all(col_labels or (), cell_w, px)
    head_h = max((h.height for h in heads), default=0)
    sides = fit_all(row_labels or (), max(cell_w, 160), px, lines=3)
    side_w = max((s.width for s in sides), default=0)

    x0 = gap + (side_w + gap if sides else 0)
    width = x0 + ncols * (cell_w + gap)
    heading = fit_text(title, width - 2 * gap, px, lines=3) if title else None
    y0 = gap + (heading.height + gap if heading else 0) + (head_h + pad if heads else 0)
    row_tops, y = [], y0
    for r, row in enumerate(rows):
        row_tops.append(y)
        band = max((c.height for c in captions[r] if c), default=0)
        y += max(p.image.height for p in row) + (pad + band if band else 0) + gap
    sheet = Sheet(PIL.Image.new("RGB", (width, y), "white"))
    paint = _Painter(sheet)

    if heading:
        paint.text(gap, gap, heading, width - 2 * gap)
    for c, head in enumerate(heads):
        paint.text(x0 + c * (cell_w + gap), y0 - pad - head_h, head, cell_w, centred=True)
    for r, row in enumerate(rows):
        top = row_tops[r]
        row_h = max(p.image.height for p in row)
        if r < len(sides):
            paint.text(gap, top + (row_h - sides[r].height) // 2, sides[r], side_w)
        for c, panel in enumerate(row):
            x = x0 + c * (cell_w + gap)
            paint.paste(panel.image, x + (cell_w - panel.image.width) // 2, top)
            caption = captions[r][c]
            if caption:
                paint.text(x, top + row_h + pad, caption, cell_w, centred=True)
    return sheet


def contact_sheet(
    rows: Sequence[Sequence[Panel]],
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    gap: int = 8,
    col_labels: Sequence[str] | None = None,
) -> PIL.Image.Image:
    """The picture of :func:`lay_out`."""
    return lay_out(rows, row_labels, title, gap, col_labels).image
