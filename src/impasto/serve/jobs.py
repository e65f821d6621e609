"""The job queue behind ``impasto serve``: one worker thread, one transfer at a time.

The device is never shared by two optimisations, however many clients submit. With an
:class:`~impasto.jobs.executor.Executor` (``--executor ray``), the worker thread hands jobs to
it instead, as many at once as it has slots; a job waits in the queue for a free slot, and its
progress and previews come back as :class:`~impasto.jobs.spec.Report` s, its result as PNG bytes
that are written here, as the local path writes its own. Every change of a
job (queued, its place in the queue, progress, a new preview, the end) is recorded as a
*snapshot*: the job's whole state as JSON with a sequence number. Readers (the status endpoint,
event streams) only ever read snapshots, so a client that disconnects, reconnects or never reads
has no effect on the job; a reconnecting stream resumes after the last sequence number it saw.

The durable record is the job store (:class:`~impasto.jobs.store.Store`, rows of kind
``studio``) in the server's data folder, with each job's files in ``jobs/ID/`` beside it: its
inputs as received (``content.png``, ``style-1.png``, ...), its last preview (``preview.jpg``) and
its result (``result.png``), each written atomically. A new server lists the jobs it finds there;
the jobs a stopped server left queued or running (a clean stop records them so, a crash leaves
them for the next start to find) are shown cancelled with :data:`INTERRUPTED` as the reason, and
are not resumed by themselves: the page offers to run them again (:meth:`JobManager.rerun`).
Finished jobs are forgotten, rows and files, beyond a count and an age (:meth:`Store.expire`).
One server at a time uses a data folder (a lock file says so).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import logging
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import PIL.Image
import torch

from .. import imageio
from ..config import TransferConfig
from ..errors import ImpastoError, InputError, UsageError
from ..jobs.executor import Executor
from ..jobs.spec import Outcome, Report, Task, config_from
from ..jobs.store import Job as Row
from ..jobs.store import Store, worker_id
from ..jobs.worker import preview_jpeg
from ..optimize import Step, Transfer
from ..prepare import NetworkCache, build_network
from .intake import Masks
from .records import (
    FINISHED,
    Job,
    JobStatus,
    NotFinished,
    QueueFull,
    ResultGone,
    ShuttingDown,
    State,
    StorageError,
)

log = logging.getLogger("impasto.serve")


PROGRESS_EVERY_S = 0.25  # progress snapshots at most this often (reading losses syncs the device)
PREVIEW_EVERY_S = 0.5  # and previews at most this often, besides the first and the last
PREVIEW_PIXELS = 640  # longest side of a preview
KIND = "studio"  # the store's rows of this server
INTERRUPTED = "interrupted by a server stop"  # the reason of a job a stop cut short
LOCK_NAME = "serve.lock"
_JOB_ID = re.compile(r"[0-9a-f]{16}")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class JobManager:
    """Jobs by id, the queue, and the worker thread that empties it."""

    def __init__(
        self,
        *,
        queue_limit: int = 16,
        keep: int = 50,
        keep_seconds: float = 24 * 3600.0,
        preview_every: int | None = None,
        data_dir: Path | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``preview_every``: iterations between previews (default: about 40 per run);
        ``data_dir``: the folder of the job store and the jobs' files, made if missing (default:
        a temporary one, deleted by :meth:`close`); ``executor``: where jobs run, up to its
        ``slots`` at once (None: here, one at a time), closed by :meth:`close`. A data folder
        that cannot be used raises :class:`InputError`; one another server uses,
        :class:`UsageError`."""
        self.queue_limit, self.keep, self.keep_seconds = queue_limit, keep, keep_seconds
        self.preview_every = preview_every
        self._temporary = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="impasto-serve-")) if data_dir is None else data_dir
        )
        self.root = self.data_dir / "jobs"
        self._lock_file = _lock(self.data_dir)
        self._worker = worker_id()
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}  # in creation order
        self._queue: collections.deque[Job] = collections.deque()
        self._tokens: dict[str, str] = {}  # client token -> job id
        self._seq = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        # The network, kept between jobs that want the same one (loading takes a second).
        self._vgg = NetworkCache(build_network)
        self.executor = executor
        self._remote: dict[str, Job] = {}  # the executor's running jobs
        try:
            self.store = Store.in_folder(self.data_dir, shared=True)
            try:
                self._reopen()
            except BaseException:
                self.store.close()
                raise
        except BaseException:
            self._lock_file.close()
            raise

    def _reopen(self) -> None:
        """Take over what the last server left: its unfinished jobs recorded as interrupted,
        the retention policy applied, the jobs kept loaded, stray folders removed."""
        with self._lock:
            self.store.interrupt(KIND, INTERRUPTED)
            self._expire()
            rows = self.store.recent(KIND)
            for row in reversed(rows):
                job = self._load(row)
                if job is not None:
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

    def _load(self, row: Row) -> Job | None:
        """A job of the store as this server keeps it; None when its options no longer make
        a configuration (written by another version of impasto)."""
        try:
            config = config_from(row.options)
        except ImpastoError as e:
            log.warning("job %s is not listed: %s", row.id, e)
            return None
        styles = row.inputs.get("styles", [])
        labels = (
            str(row.inputs.get("content", {}).get("name", "content")),
            [str(s.get("name", f"style {i + 1}")) for i, s in enumerate(styles)],
        )
        extra, losses = row.extra, dict(row.losses or {})
        job = Job(row.id, config, None, [], labels, self.root / row.id, extra.get("token"))
        job.created, job.started, job.finished = row.created, row.started, row.finished
        job.state, job.error = row.state, row.error
        job.iteration = int(extra.get("iteration", 0))
        job.iterations = int(extra.get("iterations", config.iterations))
        job.stage, job.stages = int(extra.get("stage", 1)), int(extra.get("stages", 1))
        job.loss = losses.pop("total", None)
        job.terms, job.elapsed = losses, row.seconds or 0.0
        job.preview_saved = job.preview_file.is_file()
        if job.result_file.is_file():
            job.result = job.result_file
        masks, keep = row.inputs.get("masks", []), row.inputs.get("keep")
        if masks or keep:  # their names; rerun reads the images
            job.masks = Masks(
                names=tuple(str(m.get("name", f"mask {i + 1}")) for i, m in enumerate(masks)),
                keep_name=str(keep.get("name", "keep mask")) if keep else None,
            )
        return job

    # --- what the web app calls -----------------------------------------------------------------
    def submit(
        self,
        config: TransferConfig,
        content: PIL.Image.Image,
        styles: Sequence[PIL.Image.Image],
        labels: tuple[str, list[str]],
        token: str | None = None,
        masks: Masks | None = None,
    ) -> tuple[JobStatus, bool]:
        """Queue a job; (its status, True) or, when ``token`` names an earlier job, (that job's
        status, False): a client retrying a request does not get a second job. ``masks``: the
        regions of the styles (checked already)."""
        with self._lock:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            if token is not None and token in self._tokens:
                return self._status(self._jobs[self._tokens[token]]), False
            if len(self._queue) >= self.queue_limit:
                raise QueueFull(
                    f"{len(self._queue)} jobs are waiting already (the limit); try again later"
                )
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            job = Job(job_id, config, content, list(styles), labels, folder, token, masks)
            job.iterations = config.iterations  # coarse-to-fine runs correct it at their first step
            try:
                self._record_new(job)
            except (OSError, ImpastoError) as e:
                shutil.rmtree(job.folder, ignore_errors=True)
                why = e.strerror if isinstance(e, OSError) else str(e)
                raise StorageError(
                    f"cannot write the server's data folder '{self.data_dir}': "
                    f"{why or e}; try again later"
                ) from None
            self._jobs[job_id] = job
            if token is not None:
                self._tokens[token] = job_id
            self._queue.append(job)
            self._push(job)
            self._lock.notify_all()
            self._expire()
            status = self._status(job)
        self.start()
        return status, True

    def status(self, job_id: str) -> JobStatus | None:
        """The latest snapshot of a job, or None for an unknown (or forgotten) id."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else self._status(job)

    def statuses(self) -> list[JobStatus]:
        """Every job kept, newest first."""
        with self._lock:
            return [self._status(j) for j in reversed(self._jobs.values())]

    def events_after(self, job_id: str, seq: int) -> tuple[list[tuple[int, str]], bool] | None:
        """Snapshots newer than ``seq`` as (seq, JSON), and whether the job has finished (so
        there will be no more); None for an unknown id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return [e for e in job.events if e[0] > seq], job.state in FINISHED

    def preview(self, job_id: str) -> bytes | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.preview is not None or not job.preview_saved:
                return None if job is None else job.preview
            path = job.preview_file
        try:
            return path.read_bytes()
        except OSError:
            return None

    def rerun(
        self, job_id: str
    ) -> tuple[TransferConfig, list[PIL.Image.Image], tuple[str, list[str]], Masks | None] | None:
        """What to submit to run a finished job again: its configuration, its images as they
        were received (content first), labels and masks; None for an unknown id. Raises
        :class:`NotFinished` while it is queued or running, :class:`ResultGone` when its
        inputs were deleted."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state not in FINISHED:
                raise NotFinished(f"job {job_id} is {job.state}; it can run again once it ends")
            files = job.input_files(len(job.labels[1]))
            named = job.masks
            mask_files, keep_file = job.mask_files(len(named.names) if named else 0), job.keep_file
        try:
            images = [imageio.load_image(path) for path in files]
            masks = None
            if named is not None:
                masks = Masks(
                    styles=tuple(imageio.load_image(p).convert("L") for p in mask_files),
                    keep=imageio.load_image(keep_file).convert("L") if named.keep_name else None,
                    names=named.names,
                    keep_name=named.keep_name,
                )
        except ImpastoError:
            raise ResultGone(
                f"the inputs of job {job_id} are gone: the server's storage was deleted; "
                "submit the job again"
            ) from None
        return job.config, images, job.labels, masks

    def result(self, job_id: str) -> tuple[JobStatus, bytes | None] | None:
        """A job's status and its result PNG (None while there is none); None for an unknown
        id. Raises :class:`ResultGone` when the job is kept but its file was deleted."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            status, path = self._status(job), job.result
        if path is None:
            return status, None
        try:
            return status, path.read_bytes()
        except OSError as e:
            with self._lock:
                if job_id not in self._jobs:  # forgotten between the two locks
                    return None
            raise ResultGone(
                f"the result of job {job_id} is gone ({e.strerror or e}): the server's storage "
                "was deleted while it ran; submit the job again"
            ) from None

    def cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a job: a queued one leaves the queue now, a running one stops at its next
        iteration and keeps the image so far. Cancelling a finished job changes nothing."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                self._queue.remove(job)
                self._end(job, "cancelled")
                self._touch_queue()
            elif job.state == "running" and not job.cancel.is_set():
                job.cancelled_by_client = True
                job.cancel.set()
                self._push(job)
                if self.executor is not None:
                    self.executor.cancel(job.id)
            return self._status(job)

    def wait(self, job_id: str, timeout: float) -> JobStatus | None:
        """Block until the job has finished (or ``timeout`` seconds); its status then."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                left = deadline - time.monotonic()
                if job is None or job.state in FINISHED or left <= 0:
                    return None if job is None else self._status(job)
                self._lock.wait(left)

    @property
    def stopping(self) -> bool:
        return self._stopping

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker (once; submitting a job starts it too)."""
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            work = self._work if self.executor is None else self._dispatch
            self._thread = threading.Thread(target=work, name="impasto-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Take no more jobs, cancel the running one, let event streams end."""
        with self._lock:
            self._stopping = True
            for job in self._jobs.values():
                if job.state == "running":
                    job.cancel.set()
            self._lock.notify_all()
        if self.executor is not None:
            self.executor.stop()

    def close(self, timeout: float = 30.0) -> None:
        """Stop, wait for the worker (and the executor's jobs, which end with their best image),
        record the jobs still waiting as interrupted, close the store (a temporary data folder
        is deleted)."""
        self.stop()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._remote and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
        executor, self.executor = self.executor, None
        if executor is not None:
            executor.close()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._queue:
                self._end(self._queue.popleft(), "cancelled", INTERRUPTED)
            self.store.close()
            self._lock_file.close()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- the worker -----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait(60.0)
                    self._expire()  # results age even when nobody submits
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state, job.started = "running", time.time()
                self._persist(self.store.claim, self._worker, [job.id])
                self._push(job)
                self._touch_queue()
            try:
                self._run(job)
            except Exception as e:  # the worker must outlive any job
                log.exception("job %s: unexpected error", job.id)
                self._fail(job, f"unexpected error: {type(e).__name__}: {e}")
            finally:
                job.content, job.styles = None, []
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                with self._lock:
                    self._expire()

    def _dispatch(self) -> None:
        """The worker with an executor: hands the next job over whenever a slot is free."""
        executor = self.executor
        assert executor is not None
        while True:
            with self._lock:
                while not self._stopping and (
                    not self._queue or len(self._remote) >= executor.slots
                ):
                    self._lock.wait(60.0)
                    self._expire()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state, job.started = "running", time.time()
                self._remote[job.id] = job
                self._persist(self.store.claim, self._worker, [job.id])
                self._push(job)
                self._touch_queue()
            try:
                future = executor.submit(self._task(job), report=_Reports(self, job))
            except Exception as e:  # unreadable inputs (a /tmp cleaner), or the executor broke
                log.exception("job %s: not handed over", job.id)
                with self._lock:
                    self._remote.pop(job.id, None)
                self._fail(job, f"unexpected error: {type(e).__name__}: {e}")
                continue
            finally:
                job.content, job.styles = None, []
            if job.cancel.is_set():  # cancelled while it was handed over
                executor.cancel(job.id)
            future.add_done_callback(functools.partial(self._finished, job))

    def _task(self, job: Job) -> Task:
        """A job as the executor's workers take it: its stored inputs' bytes, its options."""
        content, styles = job.labels
        names = {"content": content, "styles": ",".join(styles)}
        masks: tuple[bytes, ...] = ()
        keep = None
        if job.masks is not None:
            names |= job.masks.sources()
            masks = tuple(p.read_bytes() for p in job.mask_files(len(job.masks.names)))
            if job.masks.keep_name is not None:
                keep = job.keep_file.read_bytes()
        files = job.input_files(len(styles))
        return Task(
            job.id,
            files[0].read_bytes(),
            tuple(p.read_bytes() for p in files[1:]),
            json.loads(job.config.to_json()),
            names,
            masks=masks,
            keep=keep,
            preview_s=PREVIEW_EVERY_S,
            preview_pixels=PREVIEW_PIXELS,
        )

    def _finished(self, job: Job, future: Future[Outcome]) -> None:
        """An executor's job has ended: its result written, its end recorded."""
        outcome = future.result()  # executors hand failures back as Outcomes
        written = False
        if outcome.image is not None:
            try:
                _write_file(job.result_file, outcome.image)
                written = True
            except ImpastoError as e:
                outcome = Outcome(job.id, None, {}, outcome.seconds, outcome.device, error=str(e))
        with self._lock:
            self._remote.pop(job.id, None)
            if written:
                job.result = job.result_file
            job.elapsed = outcome.seconds
            losses = dict(outcome.losses)
            if "total" in losses:
                job.loss, job.terms = losses.pop("total"), losses
            if outcome.error is not None:
                self._end(job, "failed", outcome.error.splitlines()[0])
            elif outcome.interrupted:
                self._end(job, "cancelled", self._cancel_reason(job))
            else:
                job.iteration = max(job.iteration, outcome.iterations)
                self._end(job, "done")
            self._lock.notify_all()

    def _run(self, job: Job) -> None:
        assert job.content is not None
        try:
            regions = job.masks.regions(len(job.styles)) if job.masks is not None else None
            transfer = Transfer(
                job.content, job.styles, job.config, vgg=self._vgg(job.config), regions=regions
            )
            if job.cancel.is_set():  # while the targets were prepared
                with self._lock:
                    self._end(job, "cancelled", self._cancel_reason(job))
                return
            result = transfer.run(on_step=_Listener(self, job))
        except ImpastoError as e:
            self._fail(job, str(e))
            return
        content, styles = job.labels
        if result.iterations > 0:
            sources = {"content": content, "styles": ",".join(styles)}
            if job.masks is not None:
                sources |= job.masks.sources()
            meta = result.metadata(sources)
            try:
                imageio.save_image(result.image, job.result_file, metadata=meta)
            except ImpastoError as e:
                self._fail(job, str(e))
                return
        with self._lock:
            if result.iterations > 0:
                job.result = job.result_file
            job.elapsed = result.elapsed
            if result.interrupted:
                self._end(job, "cancelled", self._cancel_reason(job))
            else:
                self._end(job, "done")

    @staticmethod
    def _cancel_reason(job: Job) -> str | None:
        return None if job.cancelled_by_client else INTERRUPTED

    def _fail(self, job: Job, reason: str) -> None:
        with self._lock:
            self._end(job, "failed", reason.splitlines()[0] if reason else "failed")

    # --- bookkeeping, always under the lock -----------------------------------------------------
    def _end(self, job: Job, state: State, error: str | None = None) -> None:
        was = job.state
        job.state, job.error, job.finished = state, error, time.time()
        job.content, job.styles = None, []  # the inputs are not needed any more (kept on disk)
        if job.preview is not None:
            with contextlib.suppress(ImpastoError):
                _write_file(job.preview_file, job.preview)
                job.preview, job.preview_saved = None, True
        if was == "running":
            losses = {**job.terms, "total": job.loss} if job.loss is not None else {}
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
                losses={k: v for k, v in losses.items() if math.isfinite(v)},
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

    def _record_new(self, job: Job) -> None:
        """Write a new job's inputs and its row (under the lock). The data folder may have been
        deleted under a long-running server (a /tmp cleaner): it is made again."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        _write_file(path, data)
        digest = hashlib.sha256(data).hexdigest()
        return {"path": path.relative_to(self.data_dir).as_posix(), "sha256": digest, "name": name}

    def _persist(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A write to the store that must not stop the worker: a failure (a full disk) is
        logged, and the job goes on in memory."""
        try:
            write(*args, **kwargs)
        except ImpastoError as e:
            log.warning("the job store could not be written: %s", e)

    def _push(self, job: Job) -> None:
        """Record the job's current state as a new snapshot."""
        self._seq += 1
        job.events.append((self._seq, self._status(job, self._seq).model_dump_json()))

    def _touch_queue(self) -> None:
        """A new snapshot for each waiting job: their places have changed."""
        for job in self._queue:
            self._push(job)

    def _status(self, job: Job, seq: int | None = None) -> JobStatus:
        if seq is None:
            return JobStatus.model_validate_json(job.events[-1][1])
        content, styles = job.labels
        base = f"/api/jobs/{job.id}"
        terms = job.terms
        position = self._queue.index(job) + 1 if job.state == "queued" else None
        return JobStatus(
            id=job.id,
            state=job.state,
            position=position,
            iteration=job.iteration,
            iterations=job.iterations,
            stage=job.stage,
            stages=job.stages,
            loss=_finite(job.loss),
            terms={name: _finite(value) for name, value in terms.items()},
            content_loss=_finite(terms.get("content")),
            style_loss=_finite(terms.get("style")),
            tv_loss=_finite(terms.get("tv")),
            elapsed=job.elapsed,
            error=job.error,
            cancel_requested=job.cancel.is_set(),
            created=job.created,
            started=job.started,
            finished=job.finished,
            content=content,
            styles=styles,
            masks=list(job.masks.names) if job.masks is not None else [],
            keep_mask=job.masks.keep_name if job.masks is not None else None,
            options=json.loads(job.config.to_json()),
            preview_url=(
                f"{base}/preview?v={job.preview_seq}"
                if job.preview is not None or job.preview_saved
                else None
            ),
            result_url=f"{base}/result" if job.result is not None else None,
            events_url=f"{base}/events",
            interrupted=job.state == "cancelled" and job.error == INTERRUPTED,
            rerun_url=f"{base}/rerun" if job.state in FINISHED else None,
            seq=seq,
        )

    def _expire(self) -> None:
        """Forget finished jobs beyond the count and age limits (the store's retention policy),
        with their files."""
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


def _write_file(path: Path, data: bytes) -> None:
    with imageio.atomic_write(path) as f:
        f.write(data)


def _lock(data_dir: Path) -> io.BufferedRandom:
    """Make ``data_dir`` and hold its lock file for the life of the server: two servers on one
    folder would each take the other's running jobs for interrupted ones."""
    shown = f"--data-dir '{data_dir}'"
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"{shown} is not a folder")
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # people's photos: private
        f = open(data_dir / LOCK_NAME, "a+b")  # noqa: SIM115 (held until close)
    except OSError as e:
        raise InputError(f"cannot write {shown}: {e.strerror or e}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise UsageError(
            f"another impasto serve uses {shown}; stop it or give this one another --data-dir"
        ) from None
    return f


class _Listener:
    """The worker's Step callback: progress and previews into the job, cancel out of the loop."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager, self.job = manager, job
        # An explicit interval is kept to; the automatic one (about 40 per run) is also held to
        # PREVIEW_EVERY_S, so that fast runs on a GPU do not spend their time encoding JPEGs.
        self.every = manager.preview_every or max(1, -(-job.iterations // 40))
        self.min_gap = 0.0 if manager.preview_every else PREVIEW_EVERY_S
        self._reported = self._previewed = -math.inf

    def __call__(self, step: Step) -> None:
        if self.job.cancel.is_set():
            raise KeyboardInterrupt  # Transfer.run stops and returns the best image so far
        now = time.monotonic()
        first, last = step.iteration == 1, step.iteration == step.iterations
        preview = (
            first
            or last
            or (step.iteration % self.every == 0 and now - self._previewed >= self.min_gap)
        )
        if not (preview or now - self._reported >= PROGRESS_EVERY_S):
            return
        self._reported = now
        loss, terms = step.loss, step.terms
        jpeg = None
        if preview:
            self._previewed = now
            jpeg = preview_jpeg(step.image(), PREVIEW_PIXELS)
        with self.manager._lock:
            job = self.job
            job.iteration, job.iterations = step.iteration, step.iterations
            job.stage, job.stages = step.stage, step.stages
            job.loss, job.terms, job.elapsed = loss, terms, step.elapsed
            if jpeg is not None:
                job.preview, job.preview_seq = jpeg, job.preview_seq + 1
            self.manager._push(job)


class _Reports:
    """An executor's Reports of a running job: progress and previews into the job."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager, self.job = manager, job

    def __call__(self, report: Report) -> None:
        with self.manager._lock:
            job = self.job
            if job.state != "running":
                return  # a late report of a job that has ended
            job.iteration, job.iterations = report.iteration, report.iterations
            job.stage, job.stages = report.stage, report.stages
            job.loss, job.terms = report.loss, dict(report.terms)
            job.elapsed = report.elapsed
            if report.preview is not None:
                job.preview, job.preview_seq = report.preview, job.preview_seq + 1
            self.manager._push(job)
