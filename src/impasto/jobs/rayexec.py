"""The Ray executor: each job a task of a Ray actor that keeps one network, anywhere on a cluster.

Imported only when ``--executor ray`` is chosen (``import impasto`` never imports Ray). The
workers, their progress and shutdown are the pool's (:mod:`impasto.jobs.raypool`, shared with
video's chunks); what is the executor's own, in the terms of
:class:`~impasto.jobs.executor.Executor`:

- **Slots are actors.** Each :class:`_Slot` holds a :class:`~impasto.jobs.worker.Worker`, so the
  VGG weights are read once per worker process (when the executor starts), not once per job.
- **Bytes in, bytes out.** A :class:`~impasto.jobs.spec.Task` carries the images' bytes and comes
  back as an :class:`~impasto.jobs.spec.Outcome` with PNG bytes, through Ray's object store: the
  workers need no shared file system; only the driver writes the store and the output folder.
- **Retries are Ray's.** Ray runs a call interrupted by a worker's death again, up to
  ``retries`` times (``max_task_retries``); the outcome then says ``retries``. When they are
  spent, the job fails with "worker died ...".
- **Progress and previews.** A worker reports every iteration (and, when the driver listens for
  them, its Reports with their JPEG previews) to the pool's hub; the job's ``progress`` and
  ``report`` hear them (a preview is kept until collected, even when later Reports without one
  come first). A job's outcome is handed over after its last iterations: the worker flushes to
  the hub before it returns, and the poller completes the job's future after passing them on.
- **Stop is a call**, reaching a running job's stop flag; the job ends with its best image,
  ``interrupted``, exactly as a local one does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from ..errors import ExitStatus, first_line
from .raypool import PoolActor, RayPool, connect, worker_shapes
from .spec import Outcome, Report, Task
from .worker import Progress, Reporter, Worker

__all__ = ["RayExecutor", "connect", "worker_shapes"]

RETRIES = 2  # reruns of a job whose worker died, before it fails


class _Slot(PoolActor):
    """Lives in a Ray actor: one :class:`Worker` (one network) and the stop flags of its jobs."""

    def __init__(self, hub: str, threads: int, gpu: bool) -> None:
        super().__init__(hub, threads, gpu)
        self.worker = Worker(self.device)

    def load(self, options: Mapping[str, Any]) -> str:
        """Read the network ``options`` ask for now, not at the first job: the device."""
        self.worker.load(options)
        return self.worker.device

    def run(self, task: Task, key: str, reports: bool = False) -> Outcome:
        attempt = ray.get(self.hub.begin.remote(key))

        def progress(job_id: str, iteration: int, iterations: int) -> None:
            self.hub.heard.remote(job_id, iteration, iterations)  # no wait for an answer

        def report(r: Report) -> None:
            self.hub.reported.remote(r)

        with self.stop_flag(key) as stop:
            outcome = self.worker.run(task, stop, progress, report if reports else None)
        self.flush()  # the hub holds every iteration before the outcome leaves
        return replace(outcome, retries=attempt - 1)


class RayExecutor(RayPool):
    """Runs tasks on Ray actors; see the module's notes. ``workers`` overrides their number (one
    per GPU, else one per node); ``options`` name the network to load when the workers start."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        num_cpus: int | None = None,
        retries: int = RETRIES,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            _Slot,
            address,
            workers,
            num_cpus=num_cpus,
            options=options,
            task_retries=retries,
            name="batch",
        )
        self.retries = retries

    def submit(
        self, task: Task, progress: Progress | None = None, report: Reporter | None = None
    ) -> Future[Outcome]:
        actor, key = self._take(task.id, progress, report)
        started = time.monotonic()
        ref = actor.run.remote(task, key, report is not None)
        future: Future[Outcome] = Future()

        def done(result: Future[Outcome]) -> None:
            try:
                outcome = result.result()
            except RayError as e:
                if isinstance(e, RayActorError):  # its process or node died, retries spent
                    why = f"worker died ({self.retries + 1} tries): {first_line(e)}"
                else:  # e.g. a task Ray could not ship
                    why = f"Ray failed: {type(e).__name__}: {first_line(e)}"
                seconds = time.monotonic() - started
                outcome = Outcome(
                    task.id, None, {}, seconds, "ray", error=why, exit_status=ExitStatus.ERROR
                )
            except BaseException as e:  # cancelled, or Ray shutting down under us
                outcome = Outcome(
                    task.id,
                    None,
                    {},
                    time.monotonic() - started,
                    "ray",
                    error=f"lost: {type(e).__name__}: {first_line(e)}",
                    exit_status=ExitStatus.ERROR,
                )
            # The actor is free at once; the poller completes the future once it has passed on
            # the job's last progress (a job shorter than a poll showed none of it before).
            self._free(task.id, actor, then=lambda: future.set_result(outcome))

        ref.future().add_done_callback(done)
        return future

    def close(self) -> None:
        try:
            while self._running:  # Ctrl-C here leaves at once, and still lets Ray go
                time.sleep(0.05)
        finally:
            super().close()
