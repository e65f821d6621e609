"""Contact sheets: laid out along the sweep, every label fitted to its room."""

from __future__ import annotations

from pathlib import Path

import PIL.Image

from helpers import queued_jobs
from impasto.experiments import Panel, contact_sheet
from impasto.jobs.plan import parse_sweep, plan
from impasto.jobs.sheet import batch_sheet, sheet_layout
from impasto.jobs.store import Job


def jobs_of(tmp_path: Path, sweeps: list[str], styles: int = 1) -> list[Job]:
    """The jobs a batch plans (one content, ``styles`` styles, the sweeps), as a store lists
    them before they run."""
    names = [tmp_path / "c.png", *(tmp_path / f"s{i}.png" for i in range(styles))]
    for i, p in enumerate(names):
        PIL.Image.new("RGB", (8, 6), (40 * i, 90, 140)).save(p)
    specs = plan(
        [str(names[0])],
        [str(p) for p in names[1:]],
        {"size": 64},
        sweeps=[parse_sweep(s) for s in sweeps],
    )
    return queued_jobs(specs)


def test_a_three_by_two_sweep_is_three_rows_of_two(tmp_path: Path) -> None:
    jobs = jobs_of(tmp_path, ["tv_weight=0,10,100", "style_weight=1e3,1e5"])
    layout = sheet_layout(jobs)
    assert len(layout.cells) == 3 and all(len(row) == 2 for row in layout.cells)
    assert layout.col_labels == ["style_weight=1e3", "style_weight=1e5"]
    assert layout.row_labels == [f"c × s0, tv_weight={v}" for v in ("0", "10", "100")]
    for r, row in enumerate(layout.cells):
        for c, i in enumerate(row):
            assert i is not None
            assert jobs[i].options["tv_weight"] == [0.0, 10.0, 100.0][r]
            assert jobs[i].options["style_weight"] == [1e3, 1e5][c]
    assert layout.panel_labels == [""] * 6  # the headings say it all


def test_one_sweep_is_one_row_per_pair_with_headings(tmp_path: Path) -> None:
    layout = sheet_layout(jobs_of(tmp_path, ["style_weight=1e2,1e4,1e6"], styles=2))
    assert layout.row_labels == ["c × s0", "c × s1"]
    assert layout.col_labels == ["style_weight=1e2", "style_weight=1e4", "style_weight=1e6"]


def test_without_a_sweep_contents_by_styles(tmp_path: Path) -> None:
    layout = sheet_layout(jobs_of(tmp_path, [], styles=3))
    assert layout.row_labels == ["c"] and layout.col_labels == ["s0", "s1", "s2"]


def test_the_sheet_is_drawn_as_laid_out(tmp_path: Path) -> None:
    jobs = jobs_of(tmp_path, ["tv_weight=0,10,100", "style_weight=1e3,1e5"])
    sheet = batch_sheet(jobs, tmp_path, cell=64)  # not run: grey panels that say so
    assert 2 * 64 < sheet.width < 3 * 64 + 200  # two columns (and the row labels)
    assert 3 * 48 < sheet.height < 4 * 48 + 120  # three rows


def test_small_panels_get_labels_that_do_not_collide() -> None:
    """At 48 px a long label is fitted under its own panel: the gap between two panels stays
    white."""
    panels = [
        Panel(f"style_weight=1e{i}, tv_weight=10", PIL.Image.new("RGB", (48, 36)), 0.0)
        for i in range(3)
    ]
    sheet = contact_sheet([panels], gap=8)
    gap = sheet.crop((8 + 48, 36 + 8, 8 + 48 + 8, sheet.height))  # between panels 1 and 2
    assert gap.getextrema() == ((255, 255), (255, 255), (255, 255))
