"""The built manual opened from disk (file://, the README's way), in a real browser: its search
finds pages with the network cut off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, needs_chromium

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_search_works_in_the_site_opened_from_disk(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    sync_api = pytest.importorskip("playwright.sync_api")
    needs_chromium()
    site = tmp_path / "site"
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fetched: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            fetched.append(r.request.url)
            r.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", route)
            page.goto((site / "index.html").as_uri())
            search = page.locator("input.md-search__input")
            search.click()
            search.press_sequentially("wasserstein")
            hits = page.locator(".md-search-result__item")
            sync_api.expect(hits.first).to_be_visible(timeout=TIMEOUT_MS)
            links = [
                a.get_attribute("href") or "" for a in page.locator(".md-search-result__link").all()
            ]
            assert any("style-losses.html" in h for h in links), links
            assert not errors, errors
        finally:
            browser.close()
    assert not fetched, fetched
