"""The API's pages, /docs (Swagger UI) and /redoc, and the favicon, all from local files.

FastAPI's own pages fetch Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google): blank
with no network. The scripts come from the fastapi-offline package (the serve extra's), which
ships them; the pages are FastAPI's, pointed at them. ReDoc's sidebar always asks for its maker's
logo from cdn.redoc.ly (no option turns it off): /redoc's Content-Security-Policy lets images
come only from the studio itself, so the browser never makes that request (ReDoc hides the
image it could not load).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
FAVICON = "/static/favicon.svg"  # in the studio's static folder
# /redoc's images from the studio only (and inline ones): no request for ReDoc's CDN logo.
REDOC_POLICY = "img-src 'self' data: blob:"


def add_api_pages(app: FastAPI, static: Path) -> None:
    """/docs, /redoc and /favicon.ico on ``app``, whose own docs pages are switched off;
    ``static`` is the folder the favicon is in."""
    app.mount("/api-docs", StaticFiles(directory=ASSETS), name="api-docs")
    schema = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title}: API",
            swagger_js_url="/api-docs/swagger-ui-bundle.js",
            swagger_css_url="/api-docs/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=schema,
            title=f"{app.title}: API",
            redoc_js_url="/api-docs/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(static / "favicon.svg", media_type="image/svg+xml")
