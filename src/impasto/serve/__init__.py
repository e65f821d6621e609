"""``impasto serve``: a local web studio, and a JSON API, for style transfer.

This module only registers the command; FastAPI and uvicorn (the ``serve`` extra) are imported
when it runs, so the rest of impasto neither waits for them nor needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import socket
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ExitStatus, UsageError
from ..optimize import resolve_device

if TYPE_CHECKING:
    from .app import Settings

__all__ = ["serve_command"]

EXTRA_HINT = "impasto serve needs the web extra: pip install 'impasto[serve]'"


def serve_command(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve`` to the ``impasto`` command's subcommands."""
    from ..cli import _add_common
    from ..config import choices

    p = sub.add_parser(
        "serve",
        help="a local web page: drop in pictures, set the balance, watch the image form",
        description="Start the web studio (and its JSON API, documented at /docs) and print "
        "its address. Jobs run one at a time on this machine's device.",
        allow_abbrev=False,
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens it "
        "to the network)",
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)"
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=choices("device"),
        help="where jobs run (default: auto, a GPU when there is one)",
    )
    g = p.add_argument_group("limits")
    g.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="largest image file accepted (default: 20); larger ones get 413",
    )
    g.add_argument(
        "--max-megapixels",
        type=float,
        default=50.0,
        metavar="MP",
        help="largest decoded image (default: 50); larger ones get 422",
    )
    g.add_argument(
        "--max-size",
        type=int,
        default=1024,
        metavar="PX",
        help="largest output size a job may ask for (default: 1024)",
    )
    g.add_argument(
        "--max-iterations",
        type=int,
        default=2000,
        metavar="N",
        help="most iterations a job may ask for (default: 2000)",
    )
    g.add_argument(
        "--max-styles",
        type=int,
        default=4,
        metavar="N",
        help="most style images per job (default: 4)",
    )
    g.add_argument(
        "--queue-limit",
        type=int,
        default=16,
        metavar="N",
        help="jobs that may wait; more get 429 (default: 16)",
    )
    g.add_argument(
        "--keep",
        type=int,
        default=50,
        metavar="N",
        help="finished jobs kept with their results (default: 50)",
    )
    g.add_argument(
        "--keep-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="hours a finished job is kept (default: 24)",
    )
    _add_common(p)
    p.set_defaults(run=run)


def settings_from_args(ns: argparse.Namespace) -> Settings:
    from .app import Settings
    from .intake import Limits

    for flag, value in (
        ("--max-upload-mb", ns.max_upload_mb),
        ("--max-megapixels", ns.max_megapixels),
        ("--max-size", ns.max_size),
        ("--max-iterations", ns.max_iterations),
        ("--max-styles", ns.max_styles),
        ("--queue-limit", ns.queue_limit),
        ("--keep", ns.keep),
        ("--keep-hours", ns.keep_hours),
    ):
        if not value > 0 or value == float("inf"):
            raise UsageError(f"{flag} must be a positive number, not {value}")
    if ns.max_size < 16:
        raise UsageError(f"--max-size {ns.max_size} is too small; VGG needs at least 16 pixels")
    limits = Limits(
        max_upload_bytes=int(ns.max_upload_mb * 2**20),
        max_pixels=int(ns.max_megapixels * 1_000_000),
        max_size=ns.max_size,
        max_iterations=ns.max_iterations,
        max_styles=ns.max_styles,
        queue_limit=ns.queue_limit,
    )
    return Settings(
        limits=limits,
        device=ns.device,
        keep=ns.keep,
        keep_hours=ns.keep_hours,
        loopback_only=_is_loopback(ns.host),
    )


def run(ns: argparse.Namespace) -> int:
    """Serve until Ctrl-C: a clean stop (the running job is cancelled, the files deleted)."""
    missing = [m for m in ("fastapi", "uvicorn", "python_multipart") if not _importable(m)]
    if missing:
        raise UsageError(EXTRA_HINT)
    settings = settings_from_args(ns)
    device = resolve_device(settings.device)  # --device cuda without a GPU: say so now
    if not 0 <= ns.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {ns.port}")
    sock = _listen(ns.host, ns.port)

    import uvicorn

    from .app import create_app

    app = create_app(settings)
    jobs = app.state.jobs

    class Server(uvicorn.Server):
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
    if not _is_loopback(ns.host):
        print(
            f"impasto: warning: listening on {ns.host}, reachable from other machines: anyone "
            "who can reach it can upload images and use this machine's "
            + ("CPU" if device.type == "cpu" else "GPU"),
            file=sys.stderr,
        )
    if not ns.quiet:
        print(f"impasto studio: {_url(host, port)}  (Ctrl-C to stop)", flush=True)
    # uvicorn handles Ctrl-C (a graceful stop), then raises it again once it has stopped.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run(sockets=[sock])
    if not ns.quiet:
        print("impasto: stopped", file=sys.stderr)
    return ExitStatus.OK


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
