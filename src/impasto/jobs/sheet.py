"""A batch's contact sheet: its results laid out and labelled on one picture.

Rows are the contents and columns the styles. With swept options the sheet is laid out along the
sweep: the last swept option's values are the columns, and each content-style pair has a row for
every combination of the other swept options' values (a 3x2 sweep: three rows of two). A job
without a result (failed, or not run yet) keeps its place as a grey panel that says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import PIL.Image

from .. import imageio
from ..errors import ImpastoError
from ..layout import Panel, Sheet, lay_out
from .plan import SWEPT
from .store import Job

__all__ = ["Layout", "batch_figure", "batch_sheet", "sheet_layout"]

CELL = 256  # longest side of a panel, in pixels


@dataclass(frozen=True)
class Layout:
    """Where each job goes: ``cells[r][c]`` is a job's index in the list given (None: an empty
    place), with the rows' and the columns' labels and what the panels' own labels say."""

    cells: list[list[int | None]]
    row_labels: list[str]
    col_labels: list[str]
    panel_labels: list[str]  # per job: what differs that rows and columns do not say
    title: str


def _swept(job: Job) -> list[tuple[str, str]]:
    """(option, value) of each swept option of ``job``, in the order of the sweep."""
    order = job.labels.get("sweep", "")
    found = [(k[len(SWEPT) :], v) for k, v in job.labels.items() if k.startswith(SWEPT)]
    return sorted(found, key=lambda kv: order.find(f"{kv[0]}="))


def sheet_layout(jobs: Sequence[Job]) -> Layout:
    """The grid of ``jobs`` (in their order): contents by styles, or along the sweep. When
    that grid would have holes (``--pairs``, a jobs file), each row's jobs are side by side
    instead, each labelled under its panel."""
    if not jobs:
        raise ValueError("a contact sheet needs at least one job")
    pairs = [f"{j.labels.get('content', '?')} × {j.labels.get('style', '?')}" for j in jobs]
    swept = [_swept(j) for j in jobs]
    if all(swept):
        last = swept[0][-1][0]
        others = [", ".join(f"{k}={v}" for k, v in s[:-1]) for s in swept]
        rows = [f"{p}, {o}" if o else p for p, o in zip(pairs, others, strict=True)]
        cols = [f"{last}={s[-1][1]}" for s in swept]
        more = " and the other swept options" if any(others) else ""
        title = f"rows: content × style{more}; columns: {last}"
    elif any("sweep" in j.labels for j in jobs):  # a store from before sweeps were labelled
        rows = pairs
        cols = [j.labels.get("sweep", "") for j in jobs]
        title = "rows: content × style; columns: options"
    else:
        rows = [j.labels.get("content", "?") for j in jobs]
        cols = [j.labels.get("style", "?") for j in jobs]
        title = "rows: content; columns: style"
    row_order = list(dict.fromkeys(rows))
    col_order = list(dict.fromkeys(cols))
    grid: list[list[int | None]] = [[None] * len(col_order) for _ in row_order]
    for i, (r, c) in enumerate(zip(rows, cols, strict=True)):
        grid[row_order.index(r)][col_order.index(c)] = i
    placed = [i for row in grid for i in row if i is not None]
    if len(placed) == len(jobs) == len(row_order) * len(col_order):  # full, nothing on top
        return Layout(grid, row_order, col_order, [""] * len(jobs), title)
    packed: dict[str, list[int | None]] = {r: [] for r in row_order}
    for i, r in enumerate(rows):
        packed[r].append(i)
    return Layout(list(packed.values()), row_order, [], cols, title)


def _thumbnail(job: Job, folder: Path, cell: int) -> tuple[PIL.Image.Image, str]:
    note = f" ({job.state})"
    if job.state == "done":
        try:
            return imageio.resize_longest(imageio.load_image(folder / job.output), cell), ""
        except ImpastoError:  # deleted or damaged since
            note = " (unreadable)"
    return PIL.Image.new("RGB", (cell, cell * 3 // 4), (200, 200, 200)), note


def batch_sheet(jobs: Sequence[Job], folder: str | Path, cell: int = CELL) -> PIL.Image.Image:
    """The sheet of ``jobs`` (in their order), reading their outputs from ``folder``."""
    return batch_figure(jobs, folder, cell).image


def batch_figure(jobs: Sequence[Job], folder: str | Path, cell: int = CELL) -> Sheet:
    """:func:`batch_sheet` with the boxes of everything drawn on it."""
    layout = sheet_layout(jobs)
    blank = Panel("", PIL.Image.new("RGB", (cell, cell * 3 // 4), "white"), 0.0)
    rows: list[list[Panel]] = []
    for row in layout.cells:
        panels = []
        for i in row:
            if i is None:
                panels.append(blank)
                continue
            image, note = _thumbnail(jobs[i], Path(folder), cell)
            panels.append(Panel((layout.panel_labels[i] + note).strip(), image, 0.0))
        rows.append(panels)
    return lay_out(
        rows, row_labels=layout.row_labels, title=layout.title, col_labels=layout.col_labels
    )
