"""The Ray executor: each job a task of a Ray actor that keeps one network, anywhere on a cluster.

Imported only when ``--executor ray`` is chosen (``import impasto`` never imports Ray). The
design, in the terms of :class:`~impasto.jobs.executor.Executor`:

- **Slots are actors.** One :class:`_Slot` actor per GPU of the cluster (``num_gpus=1``), or, on
  a cluster without GPUs, one per node (or ``workers``) sharing its CPUs; each holds a
  :class:`~impasto.jobs.worker.Worker`, so the VGG weights are read once per worker process (when
  the executor starts), not once per job, and each sets torch's threads to its share of CPUs so
  that workers do not oversubscribe the cores.
- **Bytes in, bytes out.** A :class:`~impasto.jobs.spec.Task` carries the images' bytes and comes
  back as an :class:`~impasto.jobs.spec.Outcome` with PNG bytes, through Ray's object store: the
  workers need no shared file system; only the driver writes the store and the output folder.
- **Retries are Ray's.** The actors restart when their process or node dies
  (``max_restarts=-1``) and Ray runs the interrupted call again, up to ``retries`` times
  (``max_task_retries``); the outcome then says ``retries``. When they are spent, the job
  fails with "worker died ...".
- **Progress is pushed.** A worker reports every iteration (and, when the driver listens for them,
  its Reports with their JPEG previews) to a small :class:`_Hub` actor (a call that waits for no
  answer); a thread of the driver collects them every :data:`POLL_S` and calls the job's
  ``progress`` for every iteration heard, in order, and ``report`` with the latest Report (a
  preview is kept until collected, even when later Reports without one come first). A job's
  outcome is handed over only after its last iterations: the worker waits for the hub to have
  them before it returns, and the driver's thread passes them on before it completes the job's
  future, so a job shorter than a poll still shows every progress line.
- **Stop is a call.** The slot actors are threaded (two calls at once), so :meth:`stop` and
  :meth:`cancel` reach a running job's stop flag directly; the job ends with its best image,
  ``interrupted``, exactly as a local one does.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..errors import ExitStatus, UsageError, first_line
from .spec import Outcome, Report, Task
from .worker import Progress, Reporter, Worker

__all__ = ["RayExecutor", "connect", "worker_shapes"]

POLL_S = 0.2  # how often the driver collects progress
RETRIES = 2  # reruns of a job whose worker died, before it fails
START_S = 600.0  # for the workers to start and load their network


class _Hub:
    """The driver's mailbox: iterations heard from the workers, and how often each submission
    started (so that a rerun after a worker died is counted)."""

    def __init__(self) -> None:
        self.heard_: dict[str, list[tuple[int, int]]] = {}
        self.reports: dict[str, Report] = {}
        self.starts: dict[str, int] = {}

    def begin(self, key: str) -> int:
        self.starts[key] = self.starts.get(key, 0) + 1
        return self.starts[key]

    def heard(self, job_id: str, iteration: int, iterations: int) -> None:
        self.heard_.setdefault(job_id, []).append((iteration, iterations))

    def sync(self) -> None:
        """Nothing: answered once the caller's earlier calls are done (a caller's calls to an
        actor run in the order they were made)."""

    def reported(self, report: Report) -> None:
        last = self.reports.get(report.job_id)
        if report.preview is None and last is not None and last.preview is not None:
            report = replace(report, preview=last.preview)  # not collected yet: keep it
        self.reports[report.job_id] = report

    def take(self) -> tuple[dict[str, list[tuple[int, int]]], dict[str, Report]]:
        heard, self.heard_ = self.heard_, {}
        reports, self.reports = self.reports, {}
        return heard, reports


class _Slot:
    """Lives in a Ray actor: one :class:`Worker` (one network) and the stop flags of its job."""

    def __init__(self, hub: str, threads: int, gpu: bool) -> None:
        torch.set_num_threads(threads)
        # By name, not by handle: an argument in the object store could be gone by a restart.
        self.hub = ray.get_actor(hub)
        self.worker = Worker("cuda:0" if gpu and torch.cuda.is_available() else "cpu")
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        self._stopped: set[str] = set()  # stop asked before the job began

    def pid(self) -> int:
        return os.getpid()

    def load(self, options: Mapping[str, Any]) -> tuple[str, float]:
        """Read the network ``options`` ask for now, not at the first job: (device, seconds)."""
        started = time.monotonic()
        self.worker.load(options)
        return self.worker.device, time.monotonic() - started

    def run(self, task: Task, key: str, reports: bool = False) -> Outcome:
        attempt = ray.get(self.hub.begin.remote(key))
        stop = threading.Event()
        with self._lock:
            if key in self._stopped:
                stop.set()
            self._stops[key] = stop

        def progress(job_id: str, iteration: int, iterations: int) -> None:
            self.hub.heard.remote(job_id, iteration, iterations)  # no wait for an answer

        def report(r: Report) -> None:
            self.hub.reported.remote(r)

        try:
            outcome = self.worker.run(task, stop, progress, report if reports else None)
        finally:
            with self._lock:
                self._stops.pop(key, None)
                self._stopped.discard(key)
        ray.get(self.hub.sync.remote())  # the hub holds every iteration before the outcome leaves
        return replace(outcome, retries=attempt - 1)

    def stop(self, key: str) -> None:
        """Stop the job of submission ``key`` (keys are never reused: a late stop is moot)."""
        with self._lock:
            event = self._stops.get(key)
            if event is None:
                self._stopped.add(key)
            else:
                event.set()


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join Ray: ``None`` starts a local Ray with ``num_cpus`` (default: this machine's),
    ``auto`` joins the cluster this machine belongs to (``ray start``), ``ray://HOST:10001``
    connects as a Ray Client. True when this call started or joined it (and close should let it
    go); False when Ray was already initialised by the caller."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports sent anywhere
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
        # Ray runs its workers at niceness 15 (for its own daemons' sake): on a machine shared
        # with other work that made a local video run's two workers 4x slower per frame than
        # one process (BENCHMARKS.md, "Video"). A Ray started for this command works at the
        # command's own priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        # A Ray started here for this command: its start-up notes are noise (errors still show).
        kwargs["logging_level"] = logging.ERROR
    elif address != "auto" and not address.startswith("ray://"):
        raise UsageError(f"--ray-address must be auto or ray://HOST:PORT, not '{address}'")
    if address is not None and address.startswith("ray://"):
        kwargs = {}  # a client takes neither
    # ray.init makes SIGTERM exit the process at once (sys.exit): keep the caller's handler, so
    # that SIGTERM still stops a batch or a server cleanly, as Ctrl-C does.
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local Ray"
        raise UsageError(f"cannot start or reach {where}: {first_line(e)}") from None
    finally:
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return True


def worker_shapes(workers: int | None) -> list[tuple[float, float, dict[str, Any]]]:
    """(CPUs, GPUs, placement options) of each worker on the cluster Ray is connected to: one
    per GPU (a share of one, when asked for more workers than GPUs); without GPUs one per node
    with all its CPUs (elsewhere if that node is lost), or ``workers`` equal shares, none larger
    than the smallest node."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) > 0]
    node_cpus = [float(node["Resources"]["CPU"]) for node in nodes] or [1.0]
    if gpus:
        n = workers or gpus
        return [(1.0, 1.0 if n <= gpus else gpus / n, {})] * n
    if workers is None:
        pinned = [NodeAffinitySchedulingStrategy(node["NodeID"], soft=True) for node in nodes]
        return [
            (c, 0.0, {"scheduling_strategy": where})
            for c, where in zip(node_cpus, pinned, strict=True)
        ]
    each = min(sum(node_cpus) / workers, min(node_cpus))
    return [(float(int(each)) if each >= 1 else each, 0.0, {})] * workers


class RayExecutor:
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
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, not {workers}")
        self._owns_ray = connect(address, num_cpus)
        self.retries = retries
        hub = f"impasto-hub-{uuid.uuid4().hex}"
        self._hub = ray.remote(_Hub).options(num_cpus=0, name=hub).remote()
        slot = ray.remote(_Slot)
        restarts = {
            "max_restarts": -1,
            "max_task_retries": retries,
            "max_concurrency": 2,  # run, and a stop while it runs
        }
        self.actors = []
        for cpus, gpu, where in worker_shapes(workers):
            placed = slot.options(num_cpus=cpus, num_gpus=gpu, **restarts, **where)
            self.actors.append(placed.remote(hub, max(1, int(cpus)), gpu > 0))
        started = time.monotonic()
        try:
            loaded = ray.get(
                [a.load.remote(dict(options or {})) for a in self.actors], timeout=START_S
            )
        except GetTimeoutError:
            self._let_go()
            raise UsageError(
                f"the Ray workers did not start within {START_S:.0f} s: the cluster may lack the "
                f"CPUs or GPUs for {len(self.actors)} workers (ask for fewer with --workers)"
            ) from None
        self.devices = [device for device, _ in loaded]
        self.startup_seconds = time.monotonic() - started  # actors started, weights read
        self._lock = threading.Lock()
        self._idle = list(self.actors)
        # job id: actor, submission key, listeners
        self._running: dict[str, tuple[Any, str, Progress | None, Reporter | None]] = {}
        # ended, waiting for the poller to pass on their last progress: (job id, future,
        # outcome, listeners)
        self._ending: list[tuple[str, Future[Outcome], Outcome, Progress | None, Reporter | None]]
        self._ending = []
        self._serial = itertools.count()
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="impasto-ray-progress", daemon=True)
        self._poller.start()

    @property
    def slots(self) -> int:
        return len(self.actors)

    def submit(
        self, task: Task, progress: Progress | None = None, report: Reporter | None = None
    ) -> Future[Outcome]:
        with self._lock:
            if not self._idle:
                raise RuntimeError("no free worker: submit only while a slot is free")
            actor = self._idle.pop()
            key = f"{task.id}:{next(self._serial)}"
            self._running[task.id] = (actor, key, progress, report)
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
            with self._lock:  # the poller completes the future after the last progress
                self._running.pop(task.id, None)
                self._idle.append(actor)
                self._ending.append((task.id, future, outcome, progress, report))

        ref.future().add_done_callback(done)
        return future

    def _poll(self) -> None:
        closed = False
        while not closed:
            closed = self._closed.wait(POLL_S)
            with self._lock:  # their workers synced with the hub before they returned
                ending, self._ending = self._ending, []
                listeners = {job: (p, r) for job, (_, _, p, r) in self._running.items()}
            listeners |= {job: (p, r) for job, _, _, p, r in ending}
            try:
                heard, reports = ray.get(self._hub.take.remote(), timeout=10)
            except Exception:  # Ray busy or going away; progress is best effort
                heard, reports = {}, {}
            try:
                for job_id, steps in heard.items():
                    progress = listeners.get(job_id, (None, None))[0]
                    if progress is not None:
                        for iteration, iterations in steps:
                            progress(job_id, iteration, iterations)
                for job_id, r in reports.items():
                    report = listeners.get(job_id, (None, None))[1]
                    if report is not None:
                        report(r)
            finally:  # a listener that raised still lets the jobs end
                for _, future, outcome, _, _ in ending:
                    future.set_result(outcome)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running[0].stop.remote(running[1])

    def stop(self) -> None:
        with self._lock:
            running = list(self._running.items())
        for _, (actor, key, _, _) in running:
            actor.stop.remote(key)

    def pids(self) -> list[int]:
        """The worker processes' ids (tests and benchmarks kill and measure them)."""
        return [int(pid) for pid in ray.get([a.pid.remote() for a in self.actors])]

    def close(self) -> None:
        try:
            while self._running:  # Ctrl-C here leaves at once, and still lets Ray go
                time.sleep(0.05)
        finally:
            self._closed.set()
            self._poller.join(timeout=5)
            self._let_go()

    def _let_go(self) -> None:
        for actor in [*self.actors, self._hub]:
            ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()
