"""The one Ray pool: worker actors that each keep one network, their progress, and shutdown.

Both Ray runners stand on it: the batch's and the studio's
:class:`~impasto.jobs.rayexec.RayExecutor` (a job's image back as a future) and video's
:class:`~impasto.video.cluster.RayRunner` (a stretch's frames streamed back as they finish). Only
what they run and how a result comes back differ; the rest is written here once. Imported only
with ``--executor ray`` (``import impasto`` never imports Ray).

- **Workers are actors** (a subclass of :class:`PoolActor`): one per GPU of the cluster, or, on
  a cluster without GPUs, one per node (or ``workers`` equal shares of the CPUs), as
  :func:`worker_shapes` says. Each sets torch's threads to its share of the CPUs, so that workers
  do not oversubscribe the cores, and loads its network when the pool starts (``load``), not at
  the first job. Ray restarts an actor whose process or node died (``max_restarts=-1``); whether
  it reruns the interrupted call (``task_retries``) is the runner's choice.
- **Progress is pushed.** A worker tells the small :class:`Hub` actor of each step (a call that
  waits for no answer); a thread of the driver collects them every :data:`POLL_S` and hands each
  to the job's listeners, in order (``--print-every`` lines need every step, not the latest).
  A runner that wants a job's last steps heard before its end has the worker
  :meth:`~PoolActor.flush` before it returns and frees the job with ``then``: the poller passes
  the steps on first.
- **Stop is a call.** The actors are threaded (two calls at once), so :meth:`RayPool.stop` and
  :meth:`RayPool.cancel` reach a running job's stop flag while it runs; a stop that comes before
  the job has begun is kept for it.
- **Let go.** :meth:`RayPool.close` stops the poller, kills the actors and the hub, and shuts Ray
  down when the pool started it.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..errors import ResourceError, UsageError, first_line
from .spec import Report

__all__ = ["POLL_S", "START_S", "Hub", "PoolActor", "RayPool", "connect", "worker_shapes"]

POLL_S = 0.2  # how often the driver collects progress
START_S = 600.0  # for the workers to start and load their network

Listener = Callable[..., None]  # (job id, *what the worker said of its progress)


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


class Hub:
    """The driver's mailbox, in a Ray actor: the progress heard of each job since the last
    take, its latest Report, and how often each submission started (so that a rerun after a
    worker died is counted)."""

    def __init__(self) -> None:
        self.heard_: dict[str, list[tuple[Any, ...]]] = {}
        self.reports: dict[str, Report] = {}
        self.starts: dict[str, int] = {}

    def begin(self, key: str) -> int:
        self.starts[key] = self.starts.get(key, 0) + 1
        return self.starts[key]

    def heard(self, job_id: str, *progress: Any) -> None:
        self.heard_.setdefault(job_id, []).append(progress)

    def sync(self) -> None:
        """Nothing: answered once the caller's earlier calls are done (a caller's calls to an
        actor run in the order they were made)."""

    def reported(self, report: Report) -> None:
        last = self.reports.get(report.job_id)
        if report.preview is None and last is not None and last.preview is not None:
            report = replace(report, preview=last.preview)  # not collected yet: keep it
        self.reports[report.job_id] = report

    def take(self) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, Report]]:
        heard, self.heard_ = self.heard_, {}
        reports, self.reports = self.reports, {}
        return heard, reports


class PoolActor:
    """The part of a worker actor that every pool's worker shares: its threads and device, the
    hub, and the stop flags of its jobs. A subclass adds ``load(options) -> device`` (read the
    network now) and the call that runs a job inside :meth:`stop_flag`."""

    def __init__(self, hub: str, threads: int, gpu: bool) -> None:
        torch.set_num_threads(threads)
        # By name, not by handle: an argument in the object store could be gone by a restart.
        self.hub = ray.get_actor(hub)
        self.device = "cuda:0" if gpu and torch.cuda.is_available() else "cpu"
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        self._stopped: set[str] = set()  # stop asked before the job began

    def pid(self) -> int:
        return os.getpid()

    def load(self, options: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def flush(self) -> None:
        """Wait until the hub has every step this worker told it of."""
        ray.get(self.hub.sync.remote())

    @contextmanager
    def stop_flag(self, key: str) -> Iterator[threading.Event]:
        """The stop flag of submission ``key`` while its job runs (set already if a stop came
        first)."""
        stop = threading.Event()
        with self._lock:
            if key in self._stopped:
                stop.set()
            self._stops[key] = stop
        try:
            yield stop
        finally:
            with self._lock:
                self._stops.pop(key, None)
                self._stopped.discard(key)

    def stop(self, key: str) -> None:
        """Stop the job of submission ``key`` (keys are never reused: a late stop is moot)."""
        with self._lock:
            event = self._stops.get(key)
            if event is None:
                self._stopped.add(key)
            else:
                event.set()


@dataclass(frozen=True)
class _Running:
    actor: Any
    key: str  # the submission: unique, so that a stop meant for it reaches no other
    progress: Listener | None
    report: Callable[[Report], None] | None


class RayPool:
    """Worker actors of class ``actor`` on the cluster at ``address`` (see the module's notes),
    each loaded with the network ``options`` name. A runner subclasses it and submits through
    :meth:`_take` (a free actor, the job's listeners registered) and :meth:`_free`."""

    def __init__(
        self,
        actor: type[PoolActor],
        address: str | None,
        workers: int | None,
        *,
        num_cpus: int | None,
        options: Mapping[str, Any] | None,
        task_retries: int,
        name: str,
    ) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, not {workers}")
        self._owns_ray = connect(address, num_cpus)
        self._options = dict(options or {})
        hub = f"impasto-{name}-hub-{uuid.uuid4().hex}"
        self._hub = ray.remote(Hub).options(num_cpus=0, name=hub).remote()
        remote = ray.remote(actor)
        self.actors: list[Any] = []
        for cpus, gpu, where in worker_shapes(workers):
            placed = remote.options(
                num_cpus=cpus,
                num_gpus=gpu,
                max_restarts=-1,
                max_task_retries=task_retries,
                max_concurrency=2,  # a job, and a stop while it runs
                **where,
            )
            self.actors.append(placed.remote(hub, max(1, int(cpus)), gpu > 0))
        started = time.monotonic()
        try:
            loaded = ray.get([a.load.remote(self._options) for a in self.actors], timeout=START_S)
        except GetTimeoutError:
            self._let_go()
            raise UsageError(
                f"the Ray workers did not start within {START_S:.0f} s: the cluster may lack the "
                f"CPUs or GPUs for {len(self.actors)} workers (ask for fewer with --workers)"
            ) from None
        except RayError as e:  # e.g. ActorUnavailableError: workers killed as they started
            self._let_go()
            raise ResourceError(
                f"the Ray workers failed as they started ({type(e).__name__}: "
                f"{first_line(e)[:200]}): the machine may lack the memory for "
                f"{len(self.actors)} workers (ask for fewer with --workers)"
            ) from None
        self.devices: list[str] = list(loaded)
        self.startup_seconds = time.monotonic() - started  # actors started, networks read
        self._lock = threading.Lock()
        self._idle = list(self.actors)
        self._running: dict[str, _Running] = {}  # by job id
        self._ending: list[tuple[str, _Running, Callable[[], None]]] = []  # see _free's then
        self._serial = itertools.count()
        self._closed = threading.Event()
        self._poller = threading.Thread(
            target=self._poll, name=f"impasto-{name}-progress", daemon=True
        )
        self._poller.start()

    @property
    def slots(self) -> int:
        return len(self.actors)

    def _take(
        self,
        job_id: str,
        progress: Listener | None = None,
        report: Callable[[Report], None] | None = None,
    ) -> tuple[Any, str]:
        """A free actor for job ``job_id``, and the job's submission key."""
        with self._lock:
            if not self._idle:
                raise RuntimeError("no free worker: submit only while a slot is free")
            actor = self._idle.pop()
            key = f"{job_id}:{next(self._serial)}"
            self._running[job_id] = _Running(actor, key, progress, report)
        return actor, key

    def _free(
        self, job_id: str, actor: Any, *, lost: bool = False, then: Callable[[], None] | None = None
    ) -> None:
        """Job ``job_id`` is over: its actor is free again, or, ``lost``, one slot fewer. With
        ``then``, the poller still passes on the job's progress the hub holds (all of it, when
        the worker flushed before it returned) and calls ``then`` after it."""
        with self._lock:
            running = self._running.pop(job_id, None)
            if lost:
                self.actors.remove(actor)
            else:
                self._idle.append(actor)
            if then is not None and running is not None:
                self._ending.append((job_id, running, then))
            elif then is not None:
                then()

    def _poll(self) -> None:
        closed = False
        while not closed:
            closed = self._closed.wait(POLL_S)
            with self._lock:  # ended before this take: the hub holds all their steps
                ending, self._ending = self._ending, []
                listeners = dict(self._running)
            listeners |= {job_id: running for job_id, running, _ in ending}
            try:
                heard, reports = ray.get(self._hub.take.remote(), timeout=10)
            except Exception:  # Ray busy or going away; progress is best effort
                heard, reports = {}, {}
            try:
                for job_id, steps in heard.items():
                    running = listeners.get(job_id)
                    if running is not None and running.progress is not None:
                        for progress in steps:
                            running.progress(job_id, *progress)
                for job_id, r in reports.items():
                    running = listeners.get(job_id)
                    if running is not None and running.report is not None:
                        running.report(r)
            finally:  # a listener that raised still lets the jobs end
                for _, _, then in ending:
                    then()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running.actor.stop.remote(running.key)

    def stop(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for r in running:
            r.actor.stop.remote(r.key)

    def pids(self) -> list[int]:
        """The worker processes' ids (tests and benchmarks kill and measure them)."""
        return [int(pid) for pid in ray.get([a.pid.remote() for a in self.actors])]

    def close(self) -> None:
        self._closed.set()
        self._poller.join(timeout=5)
        self._let_go()

    def _let_go(self) -> None:
        for actor in [*self.actors, self._hub]:
            with suppress(RayError):  # one already gone
                ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()
