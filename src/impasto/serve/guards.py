"""The guards in front of the studio's routes (ASGI middleware): a request body over the limit
is refused before it is read, and so is what another web site makes a visitor's browser send."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import intake

__all__ = [
    "JSON_LIMIT",
    "LOOPBACK_NAMES",
    "BodyLimit",
    "SameSite",
    "one_part_each",
    "quiet_multipart",
]


JSON_LIMIT = 64 << 10  # bytes of a body that is not an upload: the options form is kilobytes


class BodyLimit:
    """Refuse request bodies over the limit with 413 before reading them (by their
    Content-Length) or as soon as they pass it (chunked uploads). Uploads (multipart forms)
    may take ``limit`` bytes; any other body (JSON, a urlencoded form) ``json_limit``: parsing
    a 50 MB JSON body cost some 600 MB, for a form of kilobytes."""

    def __init__(self, app: ASGIApp, limit: int, json_limit: int = JSON_LIMIT) -> None:
        self.app, self.limit, self.json_limit = app, limit, json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        upload = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = self.limit if upload else min(self.limit, self.json_limit)
        if upload:
            message = f"the request is over this server's limit of {intake.megabytes(limit)}"
        else:
            message = (
                f"the request body is over this server's limit of {limit >> 10} KiB for "
                "anything but an upload"
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise HTTPException(413, message)  # FastAPI answers it while parsing the body
            return msg

        await self.app(scope, counted, send)


def one_part_each(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses (400) a form giving one of ``names`` more than once: the
    endpoint would take one of them and drop the rest without a word."""

    async def check(request: Request) -> None:
        form = await request.form()  # parsed once: the endpoint's fields read the same form
        for name in names:
            count = len(form.getlist(name))
            if count > 1:
                raise HTTPException(400, f"the form has {count} '{name}' parts; send one")

    return check


def quiet_multipart() -> None:
    """Keep the multipart parser's own log lines ("Expected boundary character 45, ...") off
    the server's stderr: a malformed body is the client's, answered with 400, not news for
    whoever runs the server."""
    for name in ("python_multipart", "multipart"):
        log = logging.getLogger(name)
        log.addHandler(logging.NullHandler())
        log.propagate = False


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class SameSite:
    """Refuse what other web sites make a visitor's browser send here: a POST from a page of
    another origin (a form can post across sites without asking), and, while the server listens
    on loopback only, any request for a host name that is not loopback (DNS rebinding)."""

    def __init__(self, app: ASGIApp, loopback_only: bool) -> None:
        self.app, self.loopback_only = app, loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, detail = refusal
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, why) for a request to refuse; a header no URL parser takes is 400 or 403,
        never an error of ours."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        try:
            parts = urlsplit("//" + host)
            hostname = parts.hostname
            if parts.username is not None or parts.path or parts.query or parts.fragment:
                raise ValueError(host)  # a Host header is a name and a port, nothing more
        except ValueError:
            return 400, "the request's Host header is malformed"
        if self.loopback_only and hostname not in LOOPBACK_NAMES:
            return 403, "this server answers to 127.0.0.1 and localhost only"
        origin = headers.get("origin")
        if origin and scope["method"] == "POST":
            try:
                netloc = urlsplit(origin).netloc
            except ValueError:
                netloc = None
            if netloc != host:
                return 403, f"requests from {origin[:60]} are refused (another site)"
        return None
