"""Atomic files: a file (or a folder) appears whole under its name or not at all, and what a killed
writer left behind is cleaned up by the next one.

A writer works on a hidden temporary beside the target (``.NAME.impasto-PID-XXXX.EXT``), fsyncs it
and renames it over the target; on any exception, Ctrl-C included, the temporary is removed and
the target left untouched. The writer's process id is in the temporary's name, so that a later
write can tell one left by a process that died (SIGKILL, a power cut) from one another process is
writing now (:func:`remove_stale_temporaries`). Images are encoded by :mod:`impasto.imageio`,
videos by :mod:`impasto.video.sinks`; both write through here.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO

from .errors import InputError
from .process import pid_alive

__all__ = [
    "atomic_write",
    "remove_stale_temporaries",
    "replace_folder",
    "temporary_folder",
    "write_bytes",
]

StrPath = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_write(path: StrPath) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only if the block finishes, else vanishes.

    Writes to a hidden temporary file in the same folder (created if missing), fsyncs it and
    renames it over the target. On any exception, Ctrl-C included, the temporary file is removed
    and an existing target is left untouched; an OSError becomes a one-line InputError.
    """
    name = os.fspath(path)
    p = pathlib.Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(p)
        fd, tmp = tempfile.mkstemp(
            prefix=_temp_prefix(p, os.getpid()), suffix=p.suffix, dir=p.parent
        )
    except OSError as exc:
        raise InputError(f"cannot write '{name}': {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0o600 would hide the result from others
        os.replace(tmp, p)
    except BaseException as exc:  # Ctrl-C too: never leave the temp file, never touch the target
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write '{name}': {exc.strerror or exc}") from exc
        raise
    _fsync_dir(p.parent)


def _temp_prefix(p: pathlib.Path, pid: int | None = None) -> str:
    # The writer's process id is in the name, so that a later run can tell a temporary file
    # left by a killed process (SIGKILL, a power cut) from one another run is writing now.
    base = f".{p.stem}.impasto-"
    return base if pid is None else f"{base}{pid}-"


def remove_stale_temporaries(path: StrPath) -> list[pathlib.Path]:
    """Delete the temporary files (and folders, :func:`temporary_folder`) that writing ``path``
    left behind in a process that no longer runs; those of live processes are kept. Returns
    what was removed."""
    p = pathlib.Path(path)
    base = _temp_prefix(p)
    removed: list[pathlib.Path] = []
    for tmp in p.parent.glob(glob.escape(base) + "*" + glob.escape(p.suffix)):
        pid = tmp.name[len(base) :].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        except OSError:
            continue
        removed.append(tmp)
    return removed


def temporary_folder(path: StrPath) -> pathlib.Path:
    """A new hidden folder beside ``path``, to be swapped in by :func:`replace_folder`."""
    p = pathlib.Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(p)
        return pathlib.Path(tempfile.mkdtemp(prefix=_temp_prefix(p, os.getpid()), dir=p.parent))
    except OSError as exc:
        raise InputError(f"cannot write '{os.fspath(path)}': {exc.strerror or exc}") from exc


def replace_folder(done: pathlib.Path, path: StrPath) -> None:
    """Put the finished folder ``done`` where ``path`` is, as a whole: an earlier folder there
    is moved aside first and deleted after, so ``path`` never holds two runs' files."""
    p = pathlib.Path(path)
    old: pathlib.Path | None = None
    try:
        os.chmod(done, 0o777 & ~_umask())  # mkdtemp's 0o700 would hide the frames from others
        if p.is_dir():
            old = pathlib.Path(tempfile.mkdtemp(prefix=_temp_prefix(p, os.getpid()), dir=p.parent))
            os.replace(p, old / p.name)
        os.replace(done, p)
    except OSError as exc:
        if old is not None and not p.exists() and (old / p.name).exists():
            with contextlib.suppress(OSError):
                os.replace(old / p.name, p)  # put the earlier folder back
        if old is not None and not (old / p.name).exists():
            shutil.rmtree(old, ignore_errors=True)
        raise InputError(f"cannot write '{os.fspath(path)}': {exc.strerror or exc}") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(p.parent)


def write_bytes(path: StrPath, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def _umask() -> int:
    # Reading it from /proc avoids os.umask's set-and-restore, which races with other threads.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: pathlib.Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and not worth failing for.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
