"""The driver: claims jobs from the store, hands them to an executor, writes what comes back.

Only the driver writes the store and the output folder. It submits the jobs of one plan, claims
them one at a time while the executor has a free slot (so two drivers on one folder share the
work and never run a job twice), renews its claims' lease while they run, writes each result
atomically and then records it with its size and hash. A job recorded done whose file is gone
or changed since is run again: done means the result is there. Jobs another process holds are
waited for, and taken over when that process dies (its pid, on this host) or stops renewing its
lease (elsewhere), so a run ends only when every job of its plan has ended. On Ctrl-C it stops
the executor's running jobs, writes their best images as ``NAME.interrupted.png``, records them
cancelled (the next run queues them again) and raises :class:`KeyboardInterrupt` on, with the
store consistent.
"""

from __future__ import annotations

import hashlib
import os
import queue
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_bytes
from ..errors import ExitStatus, ImpastoError
from ..paths import interrupted_path
from .executor import Executor
from .spec import JobSpec, Outcome, Source, Task, file_sha256
from .store import Job, Store, worker_id

__all__ = ["BatchListener", "Summary", "interrupted_name", "run_jobs"]

HEARTBEAT_S = 5.0  # lease renewal; well under store.STALE_AFTER_S
POLL_S = 0.2
WAIT_S = 1.0  # how often a driver with nothing to run looks at the jobs another process holds


class BatchListener:
    """What a front end hears (all calls from the driver's thread); override what you need."""

    def planned(self, total: int, to_run: int) -> None:
        """``total`` jobs in the plan, of which ``to_run`` are queued or abandoned."""

    def started(self, job: Job) -> None:
        """This process claimed ``job`` (its row as claimed)."""

    def progress(self, job_id: str, iteration: int, iterations: int) -> None:
        """A running job's iteration."""

    def ended(self, job: Job, outcome: Outcome | None) -> None:
        """``job`` (its row as recorded) ended here: done, failed or cancelled."""


@dataclass
class Summary:
    """What one run of a plan did, and where the plan stands."""

    total: int = 0
    done: int = 0  # finished by this run (the redone ones included)
    redone: int = 0  # of those, the ones done before whose result was gone or changed
    skipped: int = 0  # finished by an earlier run, not redone
    failed: int = 0  # failed in this run
    failed_before: int = 0  # failed in an earlier run, not retried
    cancelled: int = 0  # stopped by Ctrl-C in this run (their best images kept)
    elsewhere: int = 0  # running in another process when this one finished
    done_elsewhere: int = 0  # finished during this run by another process (a batch beside)
    failed_elsewhere: int = 0  # failed during this run in another process
    cancelled_elsewhere: int = 0  # stopped during this run in another process
    missing: int = 0  # recorded done, but the result was gone or changed: run again
    seconds: float = 0.0
    interrupted: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)  # (output, error) of failures
    exit_status: int = 0  # of the first failure

    def __str__(self) -> str:
        """'N jobs: a done, b redone (...), c done before, ...': the parts add up to N."""
        counted = self.done + self.skipped + self.failed + self.failed_before + self.cancelled
        counted += self.done_elsewhere + self.failed_elsewhere + self.cancelled_elsewhere
        counts = (
            (self.done - self.redone, "done"),
            (self.redone, "redone (the result was gone or changed)"),
            (self.skipped, "done before"),
            (self.failed, "failed"),
            (self.failed_before, "failed before (--retry-failed runs them again)"),
            (self.cancelled, "interrupted"),
            (self.done_elsewhere, "done by another process"),
            (self.failed_elsewhere, "failed in another process"),
            (self.cancelled_elsewhere, "stopped in another process"),
            (self.elsewhere, "running in another process"),
            # neither ended here nor seen ending elsewhere (queued still, say)
            (self.total - counted - self.elsewhere, "not run by this process"),
        )
        parts = [f"{n} {what}" for n, what in counts if n > 0] or [f"{self.done} done"]
        return (
            f"{self.total} job{'' if self.total == 1 else 's'}: "
            + ", ".join(parts)
            + f"; {self.seconds:.1f} s"
        )


def interrupted_name(output: str) -> str:
    """``a/b.png`` -> ``a/b.interrupted.png``: where a stopped job's best image goes (as
    :func:`~impasto.paths.interrupted_path` says, on strings: a plan names thousands)."""
    head, name = os.path.split(output)
    stem, suffix = os.path.splitext(name)
    if not stem or stem.endswith(".") or suffix in ("", "."):  # as pathlib splits them
        return str(interrupted_path(Path(output)))
    return os.path.join(head, f"{stem}.interrupted{suffix}")


def _read(source: Source) -> bytes:
    try:
        data = Path(source.path).read_bytes()
    except OSError as e:
        raise _JobInputError(f"cannot read image '{source.path}': {e.strerror or e}") from None
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise _JobInputError(f"'{source.path}' changed since the batch started; run it again")
    return data


class _JobInputError(Exception):
    pass


def _task(job: Job) -> Task:
    content, styles = job.sources()
    names = {"content": content.path, "styles": ",".join(s.path for s in styles)}
    data = _read(content), tuple(_read(s) for s in styles)
    return Task(job.id, *data, dict(job.options), names, Path(job.output).suffix)


def run_jobs(
    specs: Sequence[JobSpec],
    store: Store,
    folder: str | Path,
    executor: Executor,
    *,
    retry_failed: bool = False,
    listener: BatchListener | None = None,
) -> Summary:
    """Run the jobs of ``specs`` not done yet; outputs go under ``folder``. Raises
    KeyboardInterrupt after a clean stop (running jobs' best images written, rows recorded)."""
    return _Driver(store, Path(folder), executor, listener or BatchListener()).run(
        specs, retry_failed
    )


class _Driver:
    def __init__(
        self, store: Store, folder: Path, executor: Executor, listener: BatchListener
    ) -> None:
        self.store, self.folder, self.executor, self.listener = store, folder, executor, listener
        self.worker = worker_id()
        self.summary = Summary()
        self.redo: set[str] = set()  # done before, result gone or changed: queued again
        self.running: dict[Future[Outcome], Job] = {}
        self.heard: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()
        self.stopping = False

    def run(self, specs: Sequence[JobSpec], retry_failed: bool) -> Summary:
        started = time.monotonic()
        ids = list(dict.fromkeys(self.store.add(specs, retry_failed=retry_failed)))
        self.store.recover()
        self.redo = self._check_done(ids)
        self.summary.missing = len(self.redo)
        before = self.store.states(ids)
        self.summary.total = len(ids)
        self.summary.skipped = sum(state == "done" for state in before.values())
        self.summary.failed_before = sum(state == "failed" for state in before.values())
        self.listener.planned(len(ids), sum(s == "queued" for s in before.values()))
        last_beat = time.monotonic()
        try:
            while True:
                try:
                    self._fill(ids)
                    if not self.running:
                        if self.stopping or not self.store.counts(ids)["running"]:
                            break
                        # Another process holds some of our jobs: wait for it to end them, or
                        # take them over if it dies.
                        time.sleep(WAIT_S)
                        self.store.recover()
                        continue
                    self._wait()
                    if time.monotonic() - last_beat > HEARTBEAT_S:
                        self.store.heartbeat(self.worker)
                        last_beat = time.monotonic()
                except KeyboardInterrupt:
                    if self.stopping:
                        raise
                    self.stopping = True
                    self.summary.interrupted = True
                    self.executor.stop()
        finally:
            self.summary.seconds = time.monotonic() - started
            if not self.running:  # nothing of ours can still finish: free what we hold
                self.store.release(self.worker)
        self._count_elsewhere(ids)
        if self.summary.interrupted:
            raise KeyboardInterrupt
        return self.summary

    def _count_elsewhere(self, ids: Sequence[str]) -> None:
        """What other processes did with this plan's jobs while this one ran (a batch beside
        it on the same folder), so that the counts add up to the plan's total."""
        final = self.store.counts(ids)
        s = self.summary
        s.elsewhere = final["running"]
        s.done_elsewhere = max(0, final["done"] - s.done - s.skipped)
        s.failed_elsewhere = max(0, final["failed"] - s.failed - s.failed_before)
        s.cancelled_elsewhere = max(0, final["cancelled"] - s.cancelled)

    def _check_done(self, ids: Sequence[str]) -> set[str]:
        """Queue again the done jobs whose result is gone, or is not the file recorded (another
        size or hash); their ids."""
        lost: list[str] = []
        for job in self.store.jobs(ids, state="done"):
            path = self.folder / job.output
            want_size, want_hash = job.extra.get("bytes"), job.extra.get("sha256")
            try:
                size = path.stat().st_size if path.is_file() else None
                same = size is not None and (want_size is None or size == want_size)
                if same and want_hash is not None:
                    same = file_sha256(path) == want_hash
            except OSError:
                same = False
            if not same:
                lost.append(job.id)
        self.store.requeue(lost)
        return set(lost)

    def _fill(self, ids: Sequence[str]) -> None:
        """Claim and submit jobs while the executor has room."""
        while not self.stopping and len(self.running) < self.executor.slots:
            job = self.store.claim(self.worker, ids)
            if job is None:
                return
            self.listener.started(job)
            try:
                task = _task(job)
            except _JobInputError as e:
                self._record(job, None, "failed", str(e), ExitStatus.INPUT)
                continue
            future = self.executor.submit(task, self._hear)
            self.running[future] = job

    def _hear(self, job_id: str, iteration: int, iterations: int) -> None:  # any thread
        self.heard.put((job_id, iteration, iterations))

    def _wait(self) -> None:
        finished, _ = wait(list(self.running), timeout=POLL_S, return_when=FIRST_COMPLETED)
        while not self.heard.empty():  # every iteration, in order: --print-every lines need each
            job_id, it, n = self.heard.get_nowait()
            self.listener.progress(job_id, it, n)
        for future in finished:
            job = self.running.pop(future)
            self._end(job, future.result())

    def _end(self, job: Job, outcome: Outcome) -> None:
        if outcome.error is not None:
            self._record(job, outcome, "failed", outcome.error, outcome.exit_status)
            return
        if outcome.interrupted:
            note = "interrupted before its first iteration"
            if outcome.image is not None:
                name = interrupted_name(job.output)
                note = f"interrupted at iteration {outcome.iterations}; best image in {name}"
                try:
                    self._write(name, outcome.image)
                except ImpastoError as e:
                    note = f"interrupted; {e}"
            self._record(job, outcome, "cancelled", note)
            return
        try:
            assert outcome.image is not None
            self._write(job.output, outcome.image)
        except ImpastoError as e:
            self._record(job, outcome, "failed", str(e), e.exit_status)
            return
        # An earlier attempt's best image is superseded by the result (unless that name is
        # another job's result).
        stale = interrupted_name(job.output)
        if not self.store.has_output(stale):
            (self.folder / stale).unlink(missing_ok=True)
        written = {"bytes": len(outcome.image), "sha256": hashlib.sha256(outcome.image).hexdigest()}
        self._record(job, outcome, "done", extra=written)

    def _write(self, name: str, data: bytes) -> None:
        write_bytes(self.folder / name, data)

    def _record(
        self,
        job: Job,
        outcome: Outcome | None,
        state: str,
        error: str | None = None,
        status: int = 0,
        extra: dict[str, object] | None = None,
    ) -> None:
        self.store.finish(
            job.id,
            self.worker,
            state,  # type: ignore[arg-type]  # one of the three the callers pass
            device=outcome.device if outcome else None,
            seconds=outcome.seconds if outcome else None,
            terms=outcome.terms if outcome and outcome.terms else None,
            error=error,
            retries=outcome.retries if outcome else 0,
            extra=extra,
        )
        if state == "done":
            self.summary.done += 1
            self.summary.redone += job.id in self.redo
        elif state == "failed":
            self.summary.failed += 1
            self.summary.errors.append((job.output, error or "failed"))
            self.summary.exit_status = self.summary.exit_status or status
        else:
            self.summary.cancelled += 1
        row = self.store.get(job.id)
        self.listener.ended(row or job, outcome)
