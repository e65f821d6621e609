"""The studio in a real browser: Playwright drives Debian's Chromium against ``impasto serve``.

Playwright's own browser download cannot work here, so the test launches /usr/bin/chromium, which
``make test`` installs (``apt-get install chromium``) when it runs as root, as CI does. Where it is
missing, the test fails as root or under CI (something is wrong with the set-up) and is skipped,
saying why, for a developer without root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import CHROMIUM, CHROMIUM_ARGS, EXAMPLES, TIMEOUT_MS, start_studio
from impasto import imageio


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
                "Size 4096 px is over this server's limit of 128 px", timeout=TIMEOUT_MS
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


# --- the page as a new user meets it: offline, the stage in view, the slider, one job a press ---

SUPERSCRIPTS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def shown_ratio(text: str) -> float:
    """The number of the slider's label, "α/β = 1.6 × 10⁻³" or "α/β = 10⁻⁴"."""
    found = re.fullmatch(r"α/β = (?:([\d.]+) × )?10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", text)
    assert found, text
    mantissa = float(found.group(1) or 1)
    return mantissa * 10 ** int(found.group(2).translate(SUPERSCRIPTS))


def offline_page(browser: Any, url: str, **kw: Any) -> tuple[Any, list[str]]:
    """A page that may reach the studio only (every other request is aborted and recorded),
    with its script errors recorded too."""
    page = browser.new_page(**kw)
    problems: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(url):
            r.continue_()
        else:
            problems.append(f"fetched {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


@pytest.mark.slow
def test_api_docs_work_offline(studio: tuple[str, subprocess.Popen[str]]) -> None:
    """/docs (Swagger UI) and /redoc render the API's operations from local files, with the
    network blocked; the page has a favicon."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, problems = offline_page(browser, url)
            page.goto(url + "docs")
            ops = page.locator(".opblock-summary-path")
            sync_api.expect(ops.first).to_be_visible(timeout=TIMEOUT_MS)
            paths = set(ops.all_inner_texts())
            assert {"/api/jobs", "/api/options", "/api/options/resolve"} <= {
                p.replace("\u200b", "") for p in paths
            }, paths
            page.goto(url + "redoc")
            sync_api.expect(page.get_by_text("/api/jobs/{job_id}/cancel").first).to_be_attached(
                timeout=TIMEOUT_MS
            )
            assert page.request.get(url + "favicon.ico").ok
            assert problems == []  # nothing fetched from elsewhere, ReDoc's logo included
        finally:
            browser.close()


@pytest.mark.slow
def test_balance_slider_sends_what_it_shows(studio: tuple[str, subprocess.Popen[str]]) -> None:
    """At 128, 384 and 512 px the slider starts at that size's default β (α/β shown as the
    server resolves it), β grows from "more photo" to "more painting", and the label always
    shows the α/β the job would be sent."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, problems = offline_page(browser, url, viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            for size in (128, 384, 512):
                page.fill("#opt-size", str(size))
                page.dispatch_event("#opt-size", "change")
                page.wait_for_function(
                    "s => (document.body.dataset.resolved || '').includes(`\"size\":${s}`)"
                    " || (s === 128 && document.body.dataset.resolved === '{}')",
                    arg=size,
                )
                resolved = page.request.post(url + "api/options/resolve", data={"size": size})
                default = resolved.json()["options"]
                betas = []
                for position in (0, 250, 500, 750, 1000):
                    page.eval_on_selector(
                        "#strength",
                        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                        str(position),
                    )
                    sent = page.evaluate("collectOptions()")
                    alpha = sent.get("content_weight", default["content_weight"])
                    beta = sent.get("style_weight", default["style_weight"])
                    if position == 500:  # the middle leaves β to the server: the size's default
                        assert "style_weight" not in sent
                    label = shown_ratio(page.inner_text("#ratio"))
                    assert label == pytest.approx(alpha / beta, rel=0.06), (size, position)
                    betas.append(beta)
                assert betas == sorted(betas) and len(set(betas)) == 5, (size, betas)
                assert default["style_weight"] == pytest.approx(1e4 * (size / 512) ** 2)

            # What Start really posts is what the label says (the request is caught, not run).
            posted: list[str] = []

            def catch(r: Any) -> None:
                posted.append(r.request.post_data or "")
                r.fulfill(status=422, json={"detail": "caught by the test"})

            page.route("**/api/jobs", catch)
            page.click("#content-examples button[data-name='tubingen']")
            page.click("#style-examples button[data-name='the_scream']")
            page.eval_on_selector(
                "#strength", "el => { el.value = 300; el.dispatchEvent(new Event('input')); }"
            )
            page.click("#start")
            sync_api.expect(page.locator("#form-error")).to_have_text("caught by the test")
            found = re.search(r'name="options"\r\n\r\n(\{.*?\})\r\n', posted[0], re.S)
            assert found, posted
            sent = json.loads(found.group(1))
            label = shown_ratio(page.inner_text("#ratio"))
            assert label == pytest.approx(sent["content_weight"] / sent["style_weight"], rel=0.06)
            assert sent["style_weight"] < 1e4  # left of the middle at 512 px: less painting
            assert problems == []
        finally:
            browser.close()


@pytest.mark.slow
def test_stage_in_view_and_one_job_a_press(
    studio: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """At 1280x800, after Start (pressed twice, quickly) the preview and the progress are in
    the window, Start is disabled while the one job runs, and a text file is refused as the
    photo with a message. Screenshots go to $IMPASTO_SCREENSHOTS when it is set."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
    shots = os.environ.get("IMPASTO_SCREENSHOTS")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, problems = offline_page(browser, url, viewport={"width": 1280, "height": 800})
            expect = sync_api.expect
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            text = tmp_path / "notes.jpg"
            text.write_text("not a picture")
            page.set_input_files("#content-file", text)
            expect(page.locator("#form-error")).to_have_text(
                "'notes.jpg' is not an image (use PNG, JPEG, WebP, GIF, TIFF or BMP)"
            )
            expect(page.locator("#content-chosen img")).to_have_count(0)
            page.set_input_files("#content-file", EXAMPLES / "tubingen.jpg")
            expect(page.locator("#status")).to_have_text("Now choose a painting.")
            page.set_input_files("#style-files", EXAMPLES / "starry_night.jpg")
            expect(page.locator("#status")).to_have_text("Ready: press Start.")
            page.fill("#opt-size", "128")
            page.fill("#opt-iterations", "40")
            page.locator("#start").scroll_into_view_if_needed()
            page.locator("#start").dblclick()
            expect(page.locator("#start")).to_be_disabled()
            expect(page.locator("#status")).to_have_text(
                re.compile(r"^Iteration [1-9]"), timeout=TIMEOUT_MS
            )
            expect(page.locator("#preview")).to_be_in_viewport()
            expect(page.locator("#progress")).to_be_in_viewport()
            expect(page.locator("#start")).to_be_disabled()
            expect(page.locator("#start")).to_have_text("Running…")
            if shots:
                page.screenshot(path=f"{shots}/running-1280x800.png")
            expect(page.locator("#badge")).to_have_text("done", timeout=TIMEOUT_MS)
            expect(page.locator("#start")).to_have_text("Start another")
            expect(page.locator("#start")).to_be_enabled()
            expect(page.locator("#download")).to_be_in_viewport()
            expect(page.locator("#download")).to_have_attribute(
                "download", "tubingen__starry_night.png"
            )
            status = page.request.get(url + "api/jobs").json()
            assert len(status) == 1, "two presses made two jobs"
            job = status[0]
            assert job["seed"] is not None and job["seed"] == job["options"]["seed"]
            expect(page.locator("#seed")).to_have_text(str(job["seed"]))
            terms = {name: float(page.inner_text(f"#term-{name}")) for name in job["terms"]}
            assert set(terms) == {"content", "style", "tv"}
            assert sum(terms.values()) == pytest.approx(float(page.inner_text("#loss")), rel=0.01)
            if shots:
                page.screenshot(path=f"{shots}/done-1280x800.png")
                page.set_viewport_size({"width": 1920, "height": 1080})
                page.screenshot(path=f"{shots}/done-1920x1080.png")
            # On a phone the page is one column that fits its width, the tagline on a line of
            # its own (not squeezed beside the title).
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            tagline = page.locator(".tagline").bounding_box()
            assert tagline is not None and tagline["width"] > 300
            if shots:
                page.screenshot(path=f"{shots}/phone-390.png", full_page=True)
            assert problems == []
        finally:
            browser.close()


@pytest.mark.slow
def test_labels_say_what_they_do_and_cards_show_whole_names(
    studio: tuple[str, subprocess.Popen[str]], tiny_dir: Path
) -> None:
    """The painting's scale and the region brush are told apart by their labels; a Recent card
    of a job with several long-named paintings shows every name (wrapped, and on hover)."""
    import httpx

    sync_api = pytest.importorskip("playwright.sync_api")
    url, _ = studio
    names = [
        f"{n}_a_rather_long_file_name_from_a_museum_website.png" for n in ("one", "two", "three")
    ]
    files = [("content", ("tubingen.png", (tiny_dir / "tubingen.png").read_bytes(), "image/png"))]
    for name, painting in zip(names, ("starry_night", "the_scream", "shipwreck"), strict=True):
        files.append(("styles", (name, (tiny_dir / f"{painting}.png").read_bytes(), "image/png")))
    options = json.dumps({"size": 32, "iterations": 2})
    assert httpx.post(url + "api/jobs", files=files, data={"options": options}).status_code == 202
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            labels = page.locator("label").all_inner_texts()
            assert any(t.startswith("Painting scale") for t in labels), labels
            assert "Region brush size" in page.locator("label[for='brush-size']").inner_text()
            assert not any(t.startswith("Brush") for t in labels), labels
            name = page.locator("#recent li p.name").first
            sync_api.expect(name).to_be_visible(timeout=TIMEOUT_MS)
            text = name.inner_text()
            assert all(n.removesuffix(".png") in text.replace("\n", "") for n in names), text
            assert name.get_attribute("title") == name.text_content()
            cut = name.evaluate(
                "e => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight"
            )
            assert not cut
        finally:
            browser.close()
