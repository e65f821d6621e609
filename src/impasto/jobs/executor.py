"""Executors: where tasks run. The interface, and the local one (a worker per device here).

An executor takes self-contained :class:`~impasto.jobs.spec.Task` s and returns futures of
:class:`~impasto.jobs.spec.Outcome` s; it never touches the store or the output folder (the
driver, :mod:`impasto.jobs.driver`, does both). It runs at most :attr:`Executor.slots` tasks at
once: the driver submits only while one is free. :meth:`Executor.stop` asks every running task
to end early with its best image (Ctrl-C), whose outcome then comes back ``interrupted``;
:meth:`Executor.cancel` asks one. The Ray executor (:mod:`impasto.jobs.rayexec`, imported only
when asked for) implements the same interface.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import torch

from .spec import Outcome, Task
from .worker import Progress, Worker

__all__ = ["Executor", "LocalExecutor", "local_devices"]


class Executor(Protocol):
    @property
    def slots(self) -> int:
        """How many tasks it runs at once."""
        ...

    def submit(self, task: Task, progress: Progress | None = None) -> Future[Outcome]:
        """Start ``task`` (a slot must be free); ``progress`` hears of its iterations, from any
        thread."""
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
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if device in ("auto", "mps") and torch.backends.mps.is_available():
        return ["mps"]
    return ["cpu"] if device in ("auto", "cpu") else [device]


class LocalExecutor:
    """One :class:`~impasto.jobs.worker.Worker` per device, each in its own thread; a worker
    keeps its network from job to job."""

    def __init__(self, devices: list[str] | None = None) -> None:
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

    def submit(self, task: Task, progress: Progress | None = None) -> Future[Outcome]:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            raise RuntimeError("no free worker: submit only while a slot is free") from None
        stop = threading.Event()
        with self._lock:
            if self._stopping:
                stop.set()
            self._stops[task.id] = stop
        return self._pool.submit(self._run, worker, task, stop, progress)

    def _run(
        self, worker: Worker, task: Task, stop: threading.Event, progress: Progress | None
    ) -> Outcome:
        try:
            return worker.run(task, stop, progress)
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
