"""The job queue behind ``impasto serve``: one thread hands the queue's jobs to an executor.

Every job runs through an :class:`~impasto.jobs.executor.Executor`, as many at once as it has
slots: a one-slot :class:`~impasto.jobs.executor.LocalExecutor` here unless another is given
(``--executor ray``), so the device is never shared by two optimisations, however many clients
submit. A job waits in the queue for a free slot; its progress and previews come back as
:class:`~impasto.jobs.spec.Report` s (the worker's one reporting channel), its result as PNG
bytes that are written here. Every change of a
job (queued, its place in the queue, progress, a new preview, the end) is recorded as a
*snapshot*: the job's whole state as JSON with a sequence number. Readers (the status endpoint,
event streams) only ever read snapshots, so a client that disconnects, reconnects or never reads
has no effect on the job; a reconnecting stream resumes after the last sequence number it saw.

What is kept of the jobs, in memory, in the job store and in the data folder, is
:class:`~impasto.serve.ledger.JobLedger`'s, which :class:`JobManager` extends.
"""

from __future__ import annotations

import functools
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import PIL.Image
import torch

from .. import imageio
from ..atomic import write_bytes
from ..config import TransferConfig
from ..errors import ImpastoError
from ..jobs.executor import Executor, LocalExecutor
from ..jobs.spec import Outcome, Report
from ..jobs.store import FINISHED
from .intake import Masks, for_page
from .ledger import JobLedger
from .records import (
    INTERRUPTED,
    JobStatus,
    NotFinished,
    QueueFull,
    ResultGone,
    ShuttingDown,
    StorageError,
    StudioJob,
)

log = logging.getLogger("impasto.serve")


PREVIEW_EVERY_S = 0.5  # previews at most this often, besides the first and the last
PREVIEWS_PER_RUN = 40  # about this many previews a run, unless preview_every says otherwise
PREVIEW_PIXELS = 640  # longest side of a preview


class JobManager(JobLedger):
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
        """``preview_every``: iterations between previews (default: about 40 per run, at most
        every :data:`PREVIEW_EVERY_S`); ``data_dir``: the folder of the job store and the jobs'
        files, made if missing (default: a temporary one, deleted by :meth:`close`);
        ``executor``: where jobs run, up to its ``slots`` at once (None: on this machine, one at
        a time), closed by :meth:`close`. A data folder that cannot be used raises
        :class:`InputError`; one another server uses, :class:`UsageError`."""
        self.queue_limit = queue_limit
        self.preview_every = preview_every
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._running: dict[str, StudioJob] = {}  # the jobs handed to the executor, not yet back
        super().__init__(keep=keep, keep_seconds=keep_seconds, data_dir=data_dir)
        # One worker on this machine's device (a job's --device, or the best there is), which
        # keeps its network between jobs that want the same one (loading takes a second).
        self.executor: Executor | None = LocalExecutor(["auto"]) if executor is None else executor

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
            lost = self._home_lost()
            if lost is not None:
                raise StorageError(lost)
            if len(self._queue) >= self.queue_limit:
                raise QueueFull(
                    f"{len(self._queue)} jobs are waiting already (the limit); try again later"
                )
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            job = StudioJob(job_id, config, content, list(styles), labels, folder, token, masks)
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
            self._thread = threading.Thread(target=self._work, name="impasto-queue", daemon=True)
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
            while self._running and (left := deadline - time.monotonic()) > 0:
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
            self._lock_file.release()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- the queue's thread ---------------------------------------------------------------------
    def _work(self) -> None:
        """Hand the next job to the executor whenever it has a free slot."""
        executor = self.executor
        assert executor is not None
        while True:
            with self._lock:
                while not self._stopping and (
                    not self._queue or len(self._running) >= executor.slots
                ):
                    self._lock.wait(60.0)
                    self._expire()  # results age even when nobody submits
                if self._stopping:
                    return
                job = self._queue.popleft()
                lost = self._home_lost()
                if lost is not None:  # its result could not be kept: do not start it
                    self._end(job, "failed", lost)
                    self._touch_queue()
                    continue
                job.state, job.started = "running", time.time()
                self._running[job.id] = job
                self._persist(self.store.claim, self._worker, [job.id])
                self._push(job)
                self._touch_queue()
            try:
                # An explicit interval is kept to; the automatic one (about PREVIEWS_PER_RUN a
                # run) is also held to PREVIEW_EVERY_S, so that fast runs on a GPU do not spend
                # their time encoding JPEGs.
                every = self.preview_every or max(1, -(-job.iterations // PREVIEWS_PER_RUN))
                gap = 0.0 if self.preview_every else PREVIEW_EVERY_S
                task = job.task(gap, every, PREVIEW_PIXELS)
                future = executor.submit(task, report=functools.partial(self._report, job))
            except Exception as e:  # unreadable inputs (a /tmp cleaner), or the executor broke
                log.exception("job %s: not handed over", job.id)
                with self._lock:
                    self._running.pop(job.id, None)
                self._fail(job, f"unexpected error: {type(e).__name__}: {e}")
                continue
            finally:
                job.content, job.styles = None, []
            if job.cancel.is_set():  # cancelled while it was handed over
                executor.cancel(job.id)
            future.add_done_callback(functools.partial(self._finished, job))

    def _report(self, job: StudioJob, report: Report) -> None:
        """A running job's progress and preview, from the executor (any thread)."""
        with self._lock:
            if job.state != "running":
                return  # a late report of a job that has ended
            job.iteration, job.iterations = report.iteration, report.iterations
            job.stage, job.stages = report.stage, report.stages
            job.loss, job.terms = report.loss, dict(report.terms)
            job.elapsed = report.elapsed
            if report.preview is not None:
                job.preview, job.preview_seq = report.preview, job.preview_seq + 1
            self._push(job)

    def _finished(self, job: StudioJob, future: Future[Outcome]) -> None:
        """An executor's job has ended: its result written, its end recorded."""
        outcome = future.result()  # executors hand failures back as Outcomes
        if outcome.trace is not None:  # a bug: its traceback for whoever reads the log
            log.error("job %s: %s\n%s", job.id, outcome.error, outcome.trace.rstrip())
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next job may want another size
        written = False
        lost = self._home_lost() if outcome.image is not None else None
        if lost is not None:
            outcome = Outcome(job.id, None, {}, outcome.seconds, outcome.device, error=lost)
        if outcome.image is not None:
            try:
                write_bytes(job.result_file, outcome.image)
                written = True
            except ImpastoError as e:
                outcome = Outcome(job.id, None, {}, outcome.seconds, outcome.device, error=str(e))
        with self._lock:
            self._running.pop(job.id, None)
            if written:
                job.result = job.result_file
            if outcome.image is not None:  # else its seconds are not optimisation's
                job.elapsed = outcome.seconds
            terms = dict(outcome.terms)
            if "total" in terms:
                job.loss, job.terms = terms.pop("total"), terms
            if outcome.error is not None:  # said for the page: option labels, not flags
                self._end(job, "failed", for_page(outcome.error.splitlines()[0]))
            elif outcome.interrupted:
                self._end(job, "cancelled", self._cancel_reason(job))
            else:
                job.iteration = max(job.iteration, outcome.iterations)
                self._end(job, "done")
            self._lock.notify_all()

    @staticmethod
    def _cancel_reason(job: StudioJob) -> str | None:
        return None if job.cancelled_by_client else INTERRUPTED

    def _fail(self, job: StudioJob, reason: str) -> None:
        with self._lock:
            self._end(job, "failed", reason.splitlines()[0] if reason else "failed")
