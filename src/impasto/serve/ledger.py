"""The studio's record of its jobs: by id in memory, each change a snapshot, and durably in the
server's data folder.

The durable record is the job store (:class:`~impasto.jobs.store.Store`, rows of kind
``studio``) in the server's data folder, with each job's files in ``jobs/ID/`` beside it: its
inputs as received (``content.png``, ``style-1.png``, ...), its last preview (``preview.jpg``) and
its result (``result.png``), each written atomically. A new server lists the jobs it finds there;
the jobs a stopped server left queued or running (a clean stop records them so, a crash leaves
them for the next start to find) are shown cancelled with :data:`INTERRUPTED` as the reason, and
are not resumed by themselves: the page offers to run them again (:meth:`JobManager.rerun`).
Finished jobs are forgotten, rows and files, beyond a count and an age (:meth:`Store.expire`).
One server at a time uses a data folder (a lock file says so). A server that finds its data
folder deleted or replaced under it (its lock file or its store is not the file it opened: a
/tmp cleaner, a user) writes nothing more there: no job is taken, no result or row is written
into a folder another server may now own, and the folder is never made again by this one.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import filelock
import PIL.Image

from .. import imageio
from ..atomic import write_bytes
from ..errors import ImpastoError, InputError, UsageError
from ..jobs.store import State, Store, worker_id
from .records import INTERRUPTED, JobStatus, StudioJob

log = logging.getLogger("impasto.serve")

KIND = "studio"  # the store's rows of this server
LOCK_NAME = "serve.lock"
_JOB_ID = re.compile(r"[0-9a-f]{16}")


class JobLedger:
    """The jobs kept, by id (with the queue's order, for their places), their snapshots, and
    their rows and files in the data folder, which it holds (locked) for its life."""

    def __init__(self, *, keep: int, keep_seconds: float, data_dir: Path | None) -> None:
        """``keep``, ``keep_seconds``: how many finished jobs are kept, and how long;
        ``data_dir``: the folder of the job store and the jobs' files, made if missing (default:
        a temporary one). A data folder that cannot be used raises :class:`InputError`; one
        another server uses, :class:`UsageError`."""
        self.keep, self.keep_seconds = keep, keep_seconds
        self._temporary = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="impasto-serve-")) if data_dir is None else data_dir
        )
        self.root = self.data_dir / "jobs"
        self._lock_file = _lock(self.data_dir)
        self._worker = worker_id()
        self._lock = threading.Condition()
        self._jobs: dict[str, StudioJob] = {}  # in creation order
        self._queue: collections.deque[StudioJob] = collections.deque()
        self._tokens: dict[str, str] = {}  # client token -> job id
        self._seq = 0
        try:
            self.store = Store.in_folder(self.data_dir, shared=True)
            try:
                # The lock file as it is now that this server holds it, and the store it opened.
                self._home = (_identity(os.stat(self.data_dir / LOCK_NAME)), self._store_id())
                self._reopen()
            except BaseException:
                self.store.close()
                raise
        except BaseException:
            self._lock_file.release()
            raise

    def _reopen(self) -> None:
        """Take over what the last server left: its unfinished jobs recorded as interrupted,
        the retention policy applied, the jobs kept loaded, stray folders removed."""
        with self._lock:
            self.store.interrupt(KIND, INTERRUPTED)
            self._expire()
            rows = self.store.recent(KIND)
            for row in reversed(rows):
                try:
                    job = StudioJob.from_row(row, self.root / row.id)
                except ImpastoError as e:  # options of another version of impasto
                    log.warning("job %s is not listed: %s", row.id, e)
                    continue
                self._jobs[job.id] = job
                if job.token is not None:
                    self._tokens[job.token] = job.id
                self._push(job)
            known = {row.id for row in rows}
            with contextlib.suppress(OSError):
                for folder in self.root.iterdir():
                    # A job's folder whose row is gone: a stop between the two deletions.
                    if _JOB_ID.fullmatch(folder.name) and folder.name not in known:
                        shutil.rmtree(folder, ignore_errors=True)

    def _store_id(self) -> tuple[int, int] | None:
        try:
            return _identity(os.stat(self.store.path))
        except OSError:
            return None

    def _home_lost(self) -> str | None:
        """Why the data folder is no longer this server's (its lock file or its store deleted or
        replaced since it started), or None while it is."""
        try:
            lock = _identity(os.stat(self.data_dir / LOCK_NAME))
        except OSError:
            lock = None
        if (lock, self._store_id()) == self._home:
            return None
        return (
            f"the server's data folder '{self.data_dir}' was deleted or replaced while it ran; "
            "nothing more is written there: restart the server"
        )

    # --- bookkeeping, always under the lock -----------------------------------------------------
    def _end(self, job: StudioJob, state: State, error: str | None = None) -> None:
        was = job.state
        job.state, job.error, job.finished = state, error, time.time()
        job.content, job.styles = None, []  # the inputs are not needed any more (kept on disk)
        if job.preview is not None and self._home_lost() is None:
            with contextlib.suppress(ImpastoError):
                write_bytes(job.preview_file, job.preview)
                job.preview, job.preview_saved = None, True
        if was == "running":
            terms = {**job.terms, "total": job.loss} if job.loss is not None else {}
            progress = {
                "iteration": job.iteration,
                "iterations": job.iterations,
                "stage": job.stage,
                "stages": job.stages,
            }
            self._persist(
                self.store.finish,
                job.id,
                self._worker,
                state,
                device=str(job.config.device),
                seconds=job.elapsed,
                terms={k: v for k, v in terms.items() if math.isfinite(v)},
                error=error,
                extra=progress,
            )
        else:
            self._persist(self.store.cancel, job.id, error)
        self._push(job)
        self._expire()
        if job.masks is not None:  # nor are the masks' images (their names stay, for the status)
            job.masks = job.masks.names_only()
        self._lock.notify_all()

    def _record_new(self, job: StudioJob) -> None:
        """Write a new job's inputs and its row (under the lock). The data folder may have been
        deleted under a long-running server (a /tmp cleaner): it is made again."""
        self.root.mkdir(mode=0o700, exist_ok=True)  # never the data folder itself: see _home_lost
        job.folder.mkdir()
        assert job.content is not None
        images = [job.content, *job.styles]
        names = [job.labels[0], *job.labels[1]]
        inputs = [
            self._write_input(img, name, path)
            for img, name, path in zip(images, names, job.input_files(len(job.styles)), strict=True)
        ]
        record: dict[str, Any] = {"content": inputs[0], "styles": inputs[1:]}
        if job.masks is not None:  # beside the inputs, so that a rerun paints the same regions
            files = job.mask_files(len(job.masks.styles))
            named = zip(job.masks.styles, job.masks.names, files, strict=True)
            record["masks"] = [self._write_input(*m) for m in named]
            if job.masks.keep is not None:
                record["keep"] = self._write_input(
                    job.masks.keep, job.masks.keep_name or "keep mask", job.keep_file
                )
        self.store.insert(
            job.id,
            kind=KIND,
            inputs=record,
            options=json.loads(job.config.to_json()),
            output=job.result_file.relative_to(self.data_dir).as_posix(),
            labels={"content": names[0], "style": ", ".join(names[1:])},
            extra={"token": job.token} if job.token is not None else {},
        )

    def _write_input(self, img: PIL.Image.Image, name: str, path: Path) -> dict[str, str]:
        """Write one input image as PNG; what the store records of it."""
        data = imageio.encode_image(img, ".png")
        write_bytes(path, data)
        digest = hashlib.sha256(data).hexdigest()
        return {"path": path.relative_to(self.data_dir).as_posix(), "sha256": digest, "name": name}

    def _persist(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A write to the store that must not stop the worker: a failure (a full disk) is
        logged, and the job goes on in memory; none is made into a data folder that is no
        longer this server's."""
        lost = self._home_lost()
        if lost is not None:
            log.warning("the job store was not written: %s", lost)
            return
        try:
            write(*args, **kwargs)
        except ImpastoError as e:
            log.warning("the job store could not be written: %s", e)

    def _push(self, job: StudioJob) -> None:
        """Record the job's current state as a new snapshot."""
        self._seq += 1
        job.events.append((self._seq, self._status(job, self._seq).model_dump_json()))

    def _touch_queue(self) -> None:
        """A new snapshot for each waiting job: their places have changed."""
        for job in self._queue:
            self._push(job)

    def _status(self, job: StudioJob, seq: int | None = None) -> JobStatus:
        """The job's latest snapshot; with ``seq``, a new one of its state now."""
        if seq is None:
            return JobStatus.model_validate_json(job.events[-1][1])
        position = self._queue.index(job) + 1 if job.state == "queued" else None
        return job.status(position, seq)

    def _expire(self) -> None:
        """Forget finished jobs beyond the count and age limits (the store's retention policy),
        with their files."""
        if self._home_lost() is not None:
            return  # the rows and folders there may be another server's now
        try:
            gone = self.store.expire(KIND, self.keep, self.keep_seconds)
        except ImpastoError as e:
            log.warning("old jobs could not be deleted: %s", e)
            return
        for row in gone:
            job = self._jobs.pop(row.id, None)
            if job is not None and job.token is not None:
                self._tokens.pop(job.token, None)
            shutil.rmtree(self.root / row.id, ignore_errors=True)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _lock(data_dir: Path) -> filelock.BaseFileLock:
    """Make ``data_dir`` and hold its lock file for the life of the server: two servers on one
    folder would each take the other's running jobs for interrupted ones."""
    shown = f"--data-dir '{data_dir}'"
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"{shown} is not a folder")
    # filelock: flock on POSIX, msvcrt's locking on Windows; released by the server's close,
    # which may run in another thread than the one that took it (not thread-local).
    lock = filelock.FileLock(data_dir / LOCK_NAME, timeout=0, thread_local=False)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # people's photos: private
        if data_dir.stat().st_mode & 0o077:  # made by someone else, or by an older impasto
            data_dir.chmod(0o700)
        lock.acquire()
    except filelock.Timeout:
        raise UsageError(
            f"another impasto serve uses {shown}; stop it or give this one another --data-dir"
        ) from None
    except OSError as e:
        raise InputError(f"cannot write {shown}: {e.strerror or e}") from None
    return lock
