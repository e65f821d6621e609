"""Figures laid out from measured text: no caption on another, on a panel or off the canvas."""

from __future__ import annotations

import itertools
from pathlib import Path

import PIL.Image
import pytest

from helpers import queued_jobs
from impasto.jobs.plan import parse_sweep, plan
from impasto.jobs.sheet import batch_figure
from impasto.layout import Box, Panel, Sheet, fit_text, font, lay_out

LONG_NAME = "IMG_20240517_183512_a_very_long_holiday_photo_name_from_the_camera.jpg"


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check(sheet: Sheet) -> None:
    """Every line of text inside the canvas, none on another or on a panel."""
    w, h = sheet.image.size
    assert sheet.texts, "nothing was labelled"
    for line, box in sheet.texts:
        assert min(box[0], box[1]) >= 0 and box[2] <= w and box[3] <= h, (line, box, (w, h))
    for (a, box_a), (b, box_b) in itertools.combinations(sheet.texts, 2):
        assert not overlaps(box_a, box_b), (a, box_a, b, box_b)
    for (line, box), panel in itertools.product(sheet.texts, sheet.panels):
        assert not overlaps(box, panel), (line, box, panel)


def panels(count: int, label: str, size: tuple[int, int] = (64, 48)) -> list[Panel]:
    return [
        Panel(f"{label} {i}" if label else "", PIL.Image.new("RGB", size, "grey"), 0.0)
        for i in range(count)
    ]


@pytest.mark.parametrize("cell", [32, 64, 256])
def test_long_labels_neither_collide_nor_leave_the_canvas(cell: int) -> None:
    rows = [
        panels(8, "default (β 2.5e+03, content 1.00) and a few more words", (cell, cell * 3 // 4)),
        panels(5, "sliced_wasserstein_with_no_spaces_at_all_for_a_long_way", (cell, cell // 2)),
    ]
    sheet = lay_out(
        rows,
        row_labels=[LONG_NAME, "tubingen × starry_night, tv_weight=100, style_weight=1e5"],
        title="rows: content × style and the other swept options; columns: style_layers " * 3,
        col_labels=[f"style_layers=conv1_1,conv2_1,conv3_1,conv4_1 ({i})" for i in range(8)],
    )
    check(sheet)
    assert len(sheet.panels) == 13


def test_a_label_that_fits_on_two_lines_is_wrapped_not_cut() -> None:
    fitted = fit_text("default (β 2.5e+03, content 1.00)", 256, 18)
    assert fitted.px >= 14 and "…" not in fitted.text
    assert " ".join(fitted.lines) == "default (β 2.5e+03, content 1.00)"
    assert all(font(fitted.px).getlength(line) <= 256 for line in fitted.lines)
    one = fit_text("α/β=1e-3", 200, 18)
    assert one.lines == ("α/β=1e-3",) and one.px == 18


@pytest.mark.parametrize("room", [20, 40, 64, 200])
def test_labels_fit_their_room_and_lose_letters_only_when_nothing_else_fits(room: int) -> None:
    text = "tv_weight=0, style_weight=1e3, style_layers=conv1_1,conv2_1"
    fitted = fit_text(text, room, 18)
    assert all(font(fitted.px).getlength(line) <= room for line in fitted.lines)
    assert len(fitted.lines) <= 2
    if "…" in fitted.text:
        assert fitted.px == 9 and fitted.lines[-1].endswith("…")
    else:
        assert "".join(fitted.lines).replace(" ", "") == text.replace(" ", "")


def test_row_labels_leave_no_dead_gap() -> None:
    """The panels start one gap after the widest row label, not a fixed width after it."""
    sheet = lay_out([panels(2, "")], row_labels=["conv1_1"], gap=8)
    label_right = max(box[2] for _, box in sheet.texts)
    first_panel = min(box[0] for box in sheet.panels)
    assert 0 < first_panel - label_right <= 8 + 2


def test_a_short_panel_keeps_its_label_beside_it() -> None:
    """A row of wide, short panels has its labels under the panels, not a full cell below."""
    rows = [panels(2, "tall", (64, 64)), panels(2, "short", (64, 20))]
    sheet = lay_out(rows, gap=8)
    check(sheet)
    short_panel = sheet.panels[2]
    short_label = next(box for line, box in sheet.texts if line.startswith("short"))
    assert 0 <= short_label[1] - short_panel[3] <= 8


def test_a_batch_sweep_sheet_with_long_names(tmp_path: Path) -> None:
    """A sweep's contact sheet (title, column and row labels, grey panels that say why) with a
    long file name: laid out without a collision."""
    content = tmp_path / LONG_NAME.replace(".jpg", ".png")
    style = tmp_path / "the_starry_night_by_vincent_van_gogh_1889_moma.png"
    for p in (content, style):
        PIL.Image.new("RGB", (8, 6), "white").save(p)
    specs = plan(
        [str(content)],
        [str(style)],
        {"size": 64},
        sweeps=[parse_sweep("tv_weight=0,10,100"), parse_sweep("style_weight=1e3,1e4,1e5,1e6")],
    )
    jobs = queued_jobs(specs)
    for cell in (64, 256):
        check(batch_figure(jobs, tmp_path, cell=cell))
