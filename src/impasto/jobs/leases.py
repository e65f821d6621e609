"""Who holds a running job: the worker id a claim records (``host:pid:token``), and whether a
claim is abandoned (its process gone, or its lease stale)."""

from __future__ import annotations

import os
import secrets
import socket
import time

from ..process import pid_alive

STALE_AFTER_S = 60.0  # a running job whose lease is older than this is taken to be abandoned

_HOST = socket.gethostname()


def worker_id() -> str:
    """This process as a claim records it: host, pid and a random token (pids are reused)."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def _gone(worker: str | None) -> bool:
    """Whether the process of a claim is known to be dead (on this host; elsewhere only the
    lease can tell)."""
    if not worker:
        return True
    host, _, rest = worker.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text))


def abandoned(worker: str | None, lease: float | None, now: float | None = None) -> bool:
    """Whether a running job's claim is dead: its process is gone, or its lease is stale."""
    now = time.time() if now is None else now
    return lease is None or now - lease > STALE_AFTER_S or _gone(worker)
