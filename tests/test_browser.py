"""The studio in a real browser: Playwright drives Debian's Chromium against ``impasto serve``.

Playwright's own browser download cannot work here, so the test launches /usr/bin/chromium, which
``make test`` installs (``apt-get install chromium``) when it runs as root, as CI does. Where it is
missing, the test fails as root or under CI (something is wrong with the set-up) and is skipped,
saying why, for a developer without root.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

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
