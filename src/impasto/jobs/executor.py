"""Executors: where tasks run. The interface, and the local one (a worker per device here).

An executor takes self-contained :class:`~impasto.jobs.spec.Task` s and returns futures of
:class:`~impasto.jobs.spec.Outcome` s; it never touches the store or the output folder (the
driver, :mod:`impasto.jobs.driver`, does both). It runs at most :attr:`Executor.slots` tasks at
once: the driver submits only while one is free. :meth:`Executor.stop` asks every running task
to end early with its best image (Ctrl-C), whose outcome then comes back ``interrupted``;
:meth:`Executor.cancel` asks one. The Ray executor (:mod:`impasto.jobs.rayexec`, imported only
when asked for) implements the same interface. :class:`ExecutorOptions` are the flags that
choose one (``impasto batch`` and ``impasto serve`` share them).

A task reports through two optional listeners: ``progress`` (every iteration: the batch's bars)
and ``report`` (a :class:`~impasto.jobs.spec.Report` with the terms a few times a second, and a
JPEG preview when the task's ``preview_s`` asks: the studio's live view).
"""

from __future__ import annotations

import importlib.util
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ..config import check_bounds, check_choices, option
from ..errors import UsageError
from .spec import Outcome, Task

if TYPE_CHECKING:  # torch comes with the worker: ExecutorOptions (the CLI's help) goes without
    from .worker import Progress, Reporter, Worker

__all__ = ["Executor", "ExecutorOptions", "LocalExecutor", "local_devices", "require_ray"]

MAX_WORKERS = 100_000
RAY_HINT = "Ray is not installed: pip install 'impasto[ray]'"


@dataclass(frozen=True)
class ExecutorOptions:
    """Where jobs run: the options of ``impasto batch`` and ``impasto serve`` alike."""

    executor: Literal["local", "ray"] = option(
        "local",
        "where jobs run: local (this machine's devices) or ray (a Ray cluster, one job per "
        "worker at once; pip install 'impasto[ray]')",
        metavar="{local,ray}",
    )
    ray_address: str | None = option(
        None,
        "with --executor ray: 'auto' joins the cluster of this machine (ray start), "
        "ray://HOST:10001 connects as a Ray Client",
        shown="a local Ray on this machine's CPUs",
        metavar="ADDRESS",
    )
    workers: int | None = option(
        None,
        "with --executor ray: how many workers, i.e. jobs at once",
        shown="one per GPU of the cluster, else one per node, sharing its CPUs",
        metavar="N",
        bounds=(1, MAX_WORKERS),
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if self.executor == "local" and (self.ray_address is not None or self.workers is not None):
            raise UsageError("--ray-address and --workers go with --executor ray")
        check_bounds(self)


def require_ray() -> None:
    """Raise :class:`UsageError` saying how to install Ray when it is missing."""
    if importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_HINT)


class Executor(Protocol):
    @property
    def slots(self) -> int:
        """How many tasks it runs at once."""
        ...

    def submit(
        self, task: Task, progress: Progress | None = None, report: Reporter | None = None
    ) -> Future[Outcome]:
        """Start ``task`` (a slot must be free); ``progress`` hears of its iterations and
        ``report`` gets its Reports (previews included), from any thread."""
        ...

    def stop(self) -> None:
        """Ask running tasks to end now with their best image so far."""
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the running task of ``job_id`` alone to end now with its best image so far (its
        outcome comes back ``interrupted``); nothing when it is not running here."""
        ...

    def close(self) -> None:
        """Wait for running tasks and let the workers go."""
        ...


def local_devices(device: str = "auto") -> list[str]:
    """The devices ``--device`` names on this machine, one worker each: every CUDA GPU (for
    auto and cuda, where there are any), else Apple's MPS, else the CPU (one worker: torch
    already spreads one transfer over its cores)."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if device in ("auto", "mps") and torch.backends.mps.is_available():
        return ["mps"]
    return ["cpu"] if device in ("auto", "cpu") else [device]


class LocalExecutor:
    """One :class:`~impasto.jobs.worker.Worker` per device, each in its own thread; a worker
    keeps its network from job to job."""

    def __init__(self, devices: list[str] | None = None) -> None:
        from .worker import Worker

        self.workers = [Worker(d) for d in (devices or local_devices())]
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        for w in self.workers:
            self._idle.put(w)
        self._pool = ThreadPoolExecutor(len(self.workers), thread_name_prefix="impasto-worker")
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}  # of the running tasks, by job id
        self._stopping = False

    @property
    def slots(self) -> int:
        return len(self.workers)

    def submit(
        self, task: Task, progress: Progress | None = None, report: Reporter | None = None
    ) -> Future[Outcome]:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            raise RuntimeError("no free worker: submit only while a slot is free") from None
        stop = threading.Event()
        with self._lock:
            if self._stopping:
                stop.set()
            self._stops[task.id] = stop
        return self._pool.submit(self._run, worker, task, stop, progress, report)

    def _run(
        self,
        worker: Worker,
        task: Task,
        stop: threading.Event,
        progress: Progress | None,
        report: Reporter | None,
    ) -> Outcome:
        try:
            return worker.run(task, stop, progress, report)
        finally:  # free before the future is done, so that the driver can submit at once
            with self._lock:
                if self._stops.get(task.id) is stop:
                    del self._stops[task.id]
            self._idle.put(worker)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for stop in self._stops.values():
                stop.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
