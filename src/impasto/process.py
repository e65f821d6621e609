"""Whether a process is alive: how a job store tells a dead claim and a writer tells a stale
temporary file from the live ones (both name the process by its id)."""

from __future__ import annotations

import os

import psutil

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts as running)."""
    if pid == os.getpid():
        return True
    # psutil asks the OS (kill(pid, 0) on POSIX, OpenProcess on Windows, where os.kill would
    # end the process); a zombie has finished its work.
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # another user's process, not to be looked at: alive
        return True
