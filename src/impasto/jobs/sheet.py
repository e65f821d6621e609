"""A batch's contact sheet: its results laid out and labelled on one picture.

Rows are the contents and columns the styles; with swept options, rows are the content-style
pairs and columns the sweep's values. A job without a result (failed, or not run yet) keeps its
place as a grey panel that says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import PIL.Image

from .. import imageio
from ..errors import ImpastoError
from ..experiments import Panel, contact_sheet
from .store import Job

__all__ = ["batch_sheet"]

CELL = 256  # longest side of a panel, in pixels


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
    if not jobs:
        raise ValueError("a contact sheet needs at least one job")
    swept = any("sweep" in job.labels for job in jobs)
    rows: dict[str, list[Panel]] = {}
    for job in jobs:
        content, style = job.labels.get("content", "?"), job.labels.get("style", "?")
        row = f"{content} × {style}" if swept else content
        label = job.labels.get("sweep", "") if swept else style
        image, note = _thumbnail(job, Path(folder), cell)
        rows.setdefault(row, []).append(Panel(label + note, image, 0.0))
    columns = "options" if swept else "style"
    title = f"rows: content{' × style' if swept else ''}; columns: {columns}"
    return contact_sheet(list(rows.values()), row_labels=list(rows), title=title)
