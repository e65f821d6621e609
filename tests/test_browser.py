"""The studio in a real browser: Playwright drives Debian's Chromium against ``impasto serve``.

Playwright's own browser download cannot work here, so the test launches /usr/bin/chromium, which
``make test`` installs (``apt-get install chromium``) when it runs as root, as CI does. Where it is
missing, the test fails as root or under CI (something is wrong with the set-up) and is skipped,
saying why, for a developer without root.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from impasto import imageio

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def needs_chromium() -> None:
    if CHROMIUM.is_file():
        return
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium)")
    pytest.skip(f"needs {CHROMIUM}: run `make test` as root, or `apt-get install chromium`")


def start_studio(data_dir: Path) -> tuple[str, subprocess.Popen[str]]:
    """``impasto serve`` on a free loopback port, its jobs in ``data_dir``: (its URL, the
    process), once it answers."""
    script = Path(sys.executable).parent / "impasto"
    proc = subprocess.Popen(
        [
            str(script),
            "serve",
            "--port",
            "0",
            "--max-size",
            "128",
            "--max-iterations",
            "50",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"no URL in {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
        url = found.group(0)
        deadline = time.monotonic() + 30
        while True:  # the socket listens before the app has started: wait for an answer
            try:
                with urllib.request.urlopen(url + "api/options", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return url, proc


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``impasto serve`` on a free loopback port, its data in tmp_path/data: (URL, process)."""
    needs_chromium()
    url, proc = start_studio(tmp_path / "data")
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_upload_watch_and_download(
    studio: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url, proc = studio
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            expect = sync_api.expect

            # Options the server refuses come back as one line on the page, and start nothing.
            page.set_input_files("#content-file", EXAMPLES / "tubingen.jpg")
            page.set_input_files("#style-files", EXAMPLES / "starry_night.jpg")
            page.fill("#opt-size", "4096")
            page.click("#start")
            expect(page.locator("#form-error")).to_have_text(
                "size 4096 is over this server's limit of 128", timeout=TIMEOUT_MS
            )

            page.fill("#opt-size", "64")
            page.fill("#opt-iterations", "5")
            page.click("#start")
            expect(page.locator("#badge")).to_have_text("done", timeout=TIMEOUT_MS)
            expect(page.locator("#status")).to_have_text(re.compile(r"^Done: 5 iterations"))
            expect(page.locator("#form-error")).to_have_text("")
            # Every snapshot reached the page: it showed the first iteration and the last.
            seen = (page.locator("#progress").get_attribute("data-seen") or "").split(",")
            assert {"1", "5"} <= set(seen), seen
            assert page.locator("#loss").inner_text() not in ("", "–")
            # The result is on the stage, and listed under Recent.
            preview = page.locator("#preview")
            expect(preview).to_have_attribute("src", re.compile(r"/result$"))
            page.wait_for_function(
                "() => { const i = document.querySelector('#preview');"
                " return i.complete && i.naturalWidth === 64; }"
            )
            expect(page.locator("#recent li")).to_have_count(1)
            expect(page.locator("#recent li p").first).to_have_text(
                "tubingen.jpg × starry_night.jpg"
            )

            with page.expect_download() as download:
                page.click("#download")
            saved = tmp_path / "result.png"
            download.value.save_as(saved)
        finally:
            browser.close()
    assert errors == []

    meta = imageio.read_metadata(saved)
    options = json.loads(meta["impasto:options"])
    assert (options["size"], options["iterations"]) == (64, 5)
    assert json.loads(meta["impasto:inputs"]) == {
        "content": "tubingen.jpg",
        "styles": "starry_night.jpg",
    }

    # Ctrl-C stops the server cleanly, in one line.
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.strip() == "impasto: stopped"


@pytest.mark.slow
def test_an_interrupted_job_runs_again_from_the_page(
    studio: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """A job the server's stop cut short is listed after a restart as interrupted, with its
    image so far, and its Run again button starts it anew."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, proc = studio
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        later = None
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            expect = sync_api.expect
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            page.click("#content-examples button[data-name='tubingen']")
            page.click("#style-examples button[data-name='the_scream']")
            page.fill("#opt-size", "64")
            page.fill("#opt-iterations", "50")
            page.click("#start")
            expect(page.locator("#status")).to_have_text(
                re.compile(r"^Iteration [1-9]"), timeout=TIMEOUT_MS
            )
            proc.send_signal(signal.SIGINT)  # the server stops while the job runs
            proc.communicate(timeout=30)
            assert proc.returncode == 0

            later_url, later = start_studio(tmp_path / "data")
            page.goto(later_url)
            page.wait_for_selector("body[data-ready='1']")
            card = page.locator("#recent li")
            expect(card).to_have_count(1)
            expect(card.locator(".state")).to_have_text(re.compile(r"^interrupted · 64 px"))
            expect(card.locator("img")).to_have_attribute("src", re.compile(r"/result$"))
            card.locator("button.rerun").click()
            expect(page.locator("#badge")).to_have_text("done", timeout=TIMEOUT_MS)
            expect(page.locator("#status")).to_have_text(re.compile(r"^Done: 50 iterations"))
            expect(page.locator("#recent li")).to_have_count(2)
            expect(page.locator("#recent li.current .state")).to_have_text(
                re.compile(r"^done · 64 px · 50/50")
            )
            expect(page.locator("#recent li button.rerun")).to_have_count(1)
        finally:
            browser.close()
            if later is not None:
                later.kill()
                later.communicate()
    assert errors == []


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
def test_paint_regions_and_get_a_result(studio: tuple[str, subprocess.Popen[str]]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
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
def test_uploaded_masks_are_sent_as_regions(
    studio: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """A mask file per painting instead of the brush: its gray levels are the region."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
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
