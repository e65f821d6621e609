"""The Regions panel of the studio (static/brush.js) in a real browser: paint each painting's
region, keep part of the photo, erase, or upload a mask per painting, and get a result.

Uses the ``studio`` fixture of conftest.py (Debian's Chromium, ``impasto serve`` on a free
port); skipped, or failed, as test_browser.py's tests are where Chromium is missing.
"""

from __future__ import annotations

import base64
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import CHROMIUM, CHROMIUM_ARGS, EXAMPLES, TIMEOUT_MS


@pytest.fixture
def url(studio: tuple[str, subprocess.Popen[str]]) -> Iterator[str]:
    """The studio's URL; the server is stopped, and its output read, after the test."""
    address, proc = studio
    yield address
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


# Keeps the FormData the page posts (Playwright does not see the files of a multipart request).
RECORD_FORMS = """() => {
  const post = window.fetch;
  window.sentForms = [];
  window.fetch = (url, init) => {
    if (init && init.body instanceof FormData) window.sentForms.push(init.body);
    return post(url, init);
  };
}"""
# The last form's files: [name, file name, base64 of the bytes].
SENT_FILES = """async () => {
  const out = [];
  for (const [name, value] of window.sentForms.at(-1).entries()) {
    if (!(value instanceof Blob)) continue;
    const bytes = new Uint8Array(await value.arrayBuffer());
    out.push([name, value.name, btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""))]);
  }
  return out;
}"""


def sent_files(page: Any) -> dict[str, list[tuple[str, bytes]]]:
    """The files of the last form the page posted: field -> [(file name, bytes)]."""
    parts: dict[str, list[tuple[str, bytes]]] = {}
    for name, filename, data in page.evaluate(SENT_FILES):
        parts.setdefault(name, []).append((filename, base64.b64decode(data)))
    return parts


def gray(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("L")


@pytest.mark.slow
def test_paint_regions_and_get_a_result(url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            expect = sync_api.expect
            regions = page.locator("#regions")
            expect(regions).to_be_hidden()

            # An example painting first, then an uploaded one: the server takes uploads first,
            # so the page must send the masks in that order, not in the order shown.
            page.set_input_files("#content-file", EXAMPLES / "tubingen.jpg")
            page.click("#style-examples button[data-name='the_scream']")
            page.set_input_files("#style-files", EXAMPLES / "starry_night.jpg")
            expect(regions).to_be_visible()
            page.wait_for_selector("#regions-canvas[data-ready='1']")
            tools = page.locator("#regions-tools button.tool")
            expect(tools).to_have_text(["the_scream", "starry_night.jpg", "keep photo", "eraser"])
            expect(page.get_by_label("upload a mask for starry_night.jpg")).to_have_count(1)
            canvas = page.locator("#regions-canvas")

            def stroke(x0: float, y0: float, x1: float, y1: float) -> None:
                """Drag the mouse over the canvas, in fractions of its width and height."""
                canvas.scroll_into_view_if_needed()
                box = canvas.bounding_box()
                assert box is not None
                page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
                page.mouse.down()
                for i in range(1, 9):
                    x, y = x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8
                    page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
                page.mouse.up()

            # The Scream's region along the top: one painting painted and not the other is
            # refused on the page, before anything is sent.
            expect(tools.nth(0)).to_have_attribute("aria-pressed", "true")
            stroke(0.1, 0.15, 0.9, 0.15)
            page.click("#start")
            expect(page.locator("#form-error")).to_contain_text(
                "none yet for starry_night.jpg", timeout=TIMEOUT_MS
            )
            expect(page.locator("#recent li")).to_have_count(0)

            # Starry Night's along the bottom, the middle kept, the top stroke's right end erased.
            tools.nth(1).click()
            stroke(0.1, 0.85, 0.9, 0.85)
            page.get_by_role("button", name="keep photo").click()
            stroke(0.5, 0.5, 0.5, 0.5)
            page.get_by_role("button", name="eraser").click()
            stroke(0.8, 0.05, 0.95, 0.25)
            page.fill("#opt-size", "64")
            page.fill("#opt-iterations", "5")
            page.evaluate(RECORD_FORMS)
            page.click("#start")
            expect(page.locator("#badge")).to_have_text("done", timeout=TIMEOUT_MS)
            expect(page.locator("#form-error")).to_have_text("")
            page.wait_for_function(
                "() => { const i = document.querySelector('#preview');"
                " return i.complete && i.naturalWidth === 64; }"
            )
            parts = sent_files(page)
            job = page.evaluate("() => fetch('/api/jobs').then((r) => r.json())")[0]
        finally:
            browser.close()
    assert errors == []
    assert job["state"] == "done" and job["styles"] == ["starry_night.jpg", "the_scream.jpg"]
    assert (job["masks"], job["keep_mask"]) == (["region-1.png", "region-2.png"], "keep.png")

    assert [name for name, _ in parts["masks"]] == ["region-1.png", "region-2.png"]
    starry, scream = (gray(data) for _, data in parts["masks"])
    keep = gray(parts["keep"][0][1])
    w, h = starry.size
    assert starry.size == scream.size == keep.size and abs(w / h - 4 / 3) < 0.01  # the photo's

    def at(mask: Image.Image, x: float, y: float) -> int:
        value = mask.getpixel((int(x * w), int(y * h)))
        assert isinstance(value, int)
        return value

    assert at(starry, 0.5, 0.85) == 255 and at(starry, 0.5, 0.15) == 0  # Starry Night: bottom
    assert at(scream, 0.3, 0.15) == 255 and at(scream, 0.5, 0.85) == 0  # The Scream: top
    assert at(scream, 0.88, 0.15) == 0  # erased
    assert at(keep, 0.5, 0.5) == 255 and at(keep, 0.5, 0.15) == 0
    assert at(starry, 0.5, 0.5) == at(scream, 0.5, 0.5) == 0  # nothing under the kept part


@pytest.mark.slow
def test_uploaded_masks_are_sent_as_regions(url: str, tmp_path: Path) -> None:
    """A mask file per painting instead of the brush: its gray levels are the region."""
    sync_api = pytest.importorskip("playwright.sync_api")
    left, right = Image.new("L", (200, 150)), Image.new("L", (200, 150))
    left.paste(255, (0, 0, 100, 150))
    right.paste(255, (100, 0, 200, 150))
    left.save(tmp_path / "left.png")
    right.save(tmp_path / "right.png")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            page.click("#content-examples button[data-name='tubingen']")
            for name in ("the_scream", "starry_night"):
                page.click(f"#style-examples button[data-name='{name}']")
            page.wait_for_selector("#regions-canvas[data-ready='1']")
            page.get_by_label("upload a mask for the_scream").set_input_files(tmp_path / "left.png")
            page.get_by_label("upload a mask for starry_night").set_input_files(
                tmp_path / "right.png"
            )
            # The server refuses the size: the masks were sent all the same, and no job made.
            page.fill("#opt-size", "4096")
            page.evaluate(RECORD_FORMS)
            page.click("#start")
            sync_api.expect(page.locator("#form-error")).to_contain_text(
                "size 4096", timeout=TIMEOUT_MS
            )
            parts = sent_files(page)
        finally:
            browser.close()
    assert errors == []
    assert "keep" not in parts
    scream, starry = (gray(data) for _, data in parts["masks"])
    w, h = scream.size
    assert abs(w / h - 4 / 3) < 0.01
    for mask, inside, outside in ((scream, 0.25, 0.75), (starry, 0.75, 0.25)):
        assert mask.getpixel((int(inside * w), h // 2)) == 255
        assert mask.getpixel((int(outside * w), h // 2)) == 0
