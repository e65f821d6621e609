"""The guards in front of the studio's routes (ASGI middleware): a request body over the limit
is refused before it is read, and so is what another web site makes a visitor's browser send."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import intake

__all__ = ["LOOPBACK_NAMES", "BodyLimit", "SameSite"]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 before reading them (by their
    Content-Length) or as soon as they pass it (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request is over this server's limit of {intake.megabytes(self.limit)}"
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, message)  # FastAPI answers it while parsing the body
            return msg

        await self.app(scope, counted, send)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class SameSite:
    """Refuse what other web sites make a visitor's browser send here: a POST from a page of
    another origin (a form can post across sites without asking), and, while the server listens
    on loopback only, any request for a host name that is not loopback (DNS rebinding)."""

    def __init__(self, app: ASGIApp, loopback_only: bool) -> None:
        self.app, self.loopback_only = app, loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            host = headers.get("host", "")
            refusal = None
            if self.loopback_only and urlsplit("//" + host).hostname not in LOOPBACK_NAMES:
                refusal = "this server answers to 127.0.0.1 and localhost only"
            origin = headers.get("origin")
            if origin and scope["method"] == "POST" and urlsplit(origin).netloc != host:
                refusal = f"requests from {origin[:60]} are refused (another site)"
            if refusal is not None:
                await JSONResponse({"detail": refusal}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
