"""The web studio, and its JSON API, for style transfer: :func:`serve` binds the socket and runs
uvicorn until Ctrl-C.

The package: :mod:`~impasto.serve.settings` (every server option and limit, with defaults),
:mod:`~impasto.serve.intake` (what clients send, checked), :mod:`~impasto.serve.records` (a job
and its status), :mod:`~impasto.serve.jobs` (the queue, which hands jobs to an executor),
:mod:`~impasto.serve.guards` (the request guards) and :mod:`~impasto.serve.app` (the FastAPI
routes and the static page). FastAPI
and uvicorn (the ``serve`` extra) are imported only when :func:`serve` runs, so the rest of
impasto neither waits for them nor needs them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..jobs.executor import require_ray
from .settings import ServeOptions

__all__ = ["EXTRA_HINT", "ServeOptions", "require_extra", "serve"]

EXTRA_HINT = "impasto serve needs the web extra: pip install 'impasto[serve]'"


def require_extra() -> None:
    """Raise :class:`UsageError` saying how to install the web extra when it is missing."""
    missing = [m for m in ("fastapi", "uvicorn", "python_multipart") if not _importable(m)]
    if missing:
        raise UsageError(EXTRA_HINT)


def serve(
    options: ServeOptions,
    on_ready: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] = lambda _: None,
) -> None:
    """Serve until Ctrl-C: a clean stop (the running and waiting jobs are recorded as
    interrupted, to be run again from the page after a restart).
    ``on_ready`` gets the address once listening; ``warn`` a warning about an open address."""
    require_extra()
    if options.executor == "ray":
        require_ray()
    settings = options.settings()
    from ..prepare import resolve_device  # torch: when the server starts, not for --help

    device = resolve_device(settings.device)  # --device cuda without a GPU: say so now
    sock = _listen(options.host, options.port)

    import uvicorn

    from .app import create_app

    try:
        app = create_app(settings)  # opens the data folder: a bad one is one line, here
    except BaseException:
        sock.close()
        raise
    jobs = app.state.jobs

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # listening, with uvicorn's own Ctrl-C and SIGTERM handlers in place
                on_ready(_url(host, port))

        def handle_exit(self, sig: int, frame: Any) -> None:
            # Event streams never end on their own; stop them (and the running job) first so
            # that uvicorn's graceful shutdown does not wait for them.
            jobs.stop()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:  # every address: show this machine's own
        host = "::1" if ":" in host else "127.0.0.1"
    if not options.loopback_only:
        warn(
            f"warning: listening on {options.host}, reachable from other machines: anyone "
            "who can reach it can upload images and use this machine's "
            + ("CPU" if device.type == "cpu" else "GPU")
        )
    # uvicorn handles Ctrl-C (a graceful stop), then raises it again once it has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run(sockets=[sock])


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port is one clear line, not a uvicorn traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: {e.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family)
    except OSError as e:
        hint = "; try another --port" if port else ""
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
