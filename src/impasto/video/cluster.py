"""Video on a Ray cluster: :class:`RayRunner` paints stretches of frames on Ray actors at once.

Imported only for ``impasto video --executor ray`` (``import impasto`` never imports Ray). Like
the batch's :class:`~impasto.jobs.rayexec.RayExecutor`, whose connection and worker shapes it
shares (:func:`~impasto.jobs.rayexec.connect`, :func:`~impasto.jobs.rayexec.worker_shapes`):

- **Workers are actors** (one per GPU, else one per node or ``--workers`` shares of the CPUs),
  each holding one network, read when the runner starts; each sets torch's threads to its share
  of the CPUs.
- **Bytes in, frames out as they finish.** A :class:`~impasto.video.workers.PaintJob` carries its
  content frames and earlier outputs as arrays; the actor's ``paint`` is a generator, so each
  frame comes back to the driver the moment it is painted, and the driver writes it to the cache.
  Workers need no shared file system.
- **A dead worker loses only the frame it was painting.** Ray restarts the actor
  (``max_restarts=-1``) but does not rerun the call (``max_task_retries=0``): the driver submits
  the stretch again with the frames that did come back, so none is painted twice.
- **Progress is pushed** to a small hub actor (at most every :data:`REPORT_S` per job) that a
  driver thread reads every :data:`POLL_S`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from ..errors import ExitStatus, ImpastoError, ResourceError, UsageError, first_line
from ..jobs.rayexec import START_S, connect, worker_shapes
from ..jobs.spec import config_from
from ..prepare import NetworkCache
from .workers import Event, Frame, PaintJob, paint_job

__all__ = ["RayRunner"]

POLL_S = 0.2
REPORT_S = 0.2


class _Hub:
    """The latest iteration heard from each job."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, int, int]] = {}

    def heard(self, job_id: str, frame: int, iteration: int, iterations: int) -> None:
        self.latest[job_id] = (frame, iteration, iterations)

    def take(self) -> dict[str, tuple[int, int, int]]:
        latest, self.latest = self.latest, {}
        return latest


class _Painter:
    """Lives in a Ray actor: one network, and the stop flags of its running job."""

    def __init__(self, hub: str, threads: int, gpu: bool) -> None:
        torch.set_num_threads(threads)
        self.hub = ray.get_actor(hub)  # by name: a restarted actor finds it again
        self.device = "cuda:0" if gpu and torch.cuda.is_available() else "cpu"
        self.networks = NetworkCache()
        self._stops: dict[str, threading.Event] = {}

    def pid(self) -> int:
        return os.getpid()

    def load(self, options: Mapping[str, Any]) -> str:
        self.networks(self._config(options))
        return self.device

    def _config(self, options: Mapping[str, Any]) -> Any:
        cfg = config_from(options)
        return cfg.replace(device=self.device.split(":")[0]) if cfg.device == "auto" else cfg

    def paint(self, job: PaintJob) -> Iterator[Frame]:
        stop = self._stops[job.id] = threading.Event()
        heard = [0.0]

        def step(frame: int, iteration: int, iterations: int) -> None:
            now = time.monotonic()
            if now - heard[0] >= REPORT_S or iteration == iterations:
                heard[0] = now
                self.hub.heard.remote(job.id, frame, iteration, iterations)  # no wait

        try:
            vgg = self.networks(self._config(job.config))
            yield from paint_job(job, vgg, self.device, step, stop)
        finally:
            self._stops.pop(job.id, None)

    def stop(self, job_id: str) -> None:
        event = self._stops.get(job_id)
        if event is not None:
            event.set()


class RayRunner:
    """Paints jobs on Ray actors (see the module notes). ``options`` (a config's) name the
    network the workers load when they start."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        num_cpus: int | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, not {workers}")
        self._owns_ray = connect(address, num_cpus)
        self._options = dict(options or {})
        hub = f"impasto-video-hub-{uuid.uuid4().hex}"
        self._hub = ray.remote(_Hub).options(num_cpus=0, name=hub).remote()
        painter = ray.remote(_Painter)
        self.actors: list[Any] = []
        for cpus, gpu, where in worker_shapes(workers):
            placed = painter.options(
                num_cpus=cpus, num_gpus=gpu, max_restarts=-1, max_task_retries=0,
                max_concurrency=2, **where,
            )  # fmt: skip
            self.actors.append(placed.remote(hub, max(1, int(cpus)), gpu > 0))
        try:
            loaded = ray.get([a.load.remote(self._options) for a in self.actors],
                             timeout=START_S)  # fmt: skip
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
        self._lock = threading.Lock()
        self._idle = list(self.actors)
        self._running: dict[str, tuple[Any, queue.SimpleQueue[Event]]] = {}
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="impasto-video-progress",
                                        daemon=True)  # fmt: skip
        self._poller.start()

    @property
    def slots(self) -> int:
        return len(self.actors)

    @property
    def workers(self) -> str:
        n = len(self.actors)
        kinds = sorted(set(self.devices))
        return f"{n} Ray worker{'' if n == 1 else 's'} ({', '.join(kinds)})"

    def submit(self, job: PaintJob, events: queue.SimpleQueue[Event]) -> None:
        with self._lock:
            if not self._idle:
                raise RuntimeError("no free worker: submit only while a slot is free")
            actor = self._idle.pop()
            self._running[job.id] = (actor, events)
        frames = actor.paint.remote(job)
        threading.Thread(
            target=self._collect, args=(job, actor, frames, events), daemon=True,
            name=f"impasto-video-{job.id}",
        ).start()  # fmt: skip

    def _collect(
        self, job: PaintJob, actor: Any, frames: Any, events: queue.SimpleQueue[Event]
    ) -> None:
        """Pass each frame on as it arrives; then free the worker and say how the job ended."""
        end: Event = ("done", job.id, None)
        try:
            for ref in frames:
                events.put(("frame", job.id, ray.get(ref)))
        except RayActorError as e:  # the worker died: the driver submits the rest again
            end = ("lost", job.id, f"worker died: {first_line(e)}")
            if not self._back(actor):
                with self._lock:
                    self._running.pop(job.id, None)
                    self.actors.remove(actor)  # one slot fewer
                events.put(end)
                return
        except RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, KeyboardInterrupt) or "KeyboardInterrupt" in str(e):
                end = ("failed", job.id, "stopped")
            elif isinstance(cause, ImpastoError):
                end = ("failed", job.id, first_line(cause), int(cause.exit_status))
            else:
                end = ("failed", job.id, f"{type(cause or e).__name__}: {first_line(cause or e)}")
        except RayError as e:
            end = ("lost", job.id, f"Ray failed: {type(e).__name__}: {first_line(e)}")
        except Exception as e:  # Ray going away under us
            end = ("failed", job.id, f"lost: {type(e).__name__}: {first_line(e)}",
                   int(ExitStatus.ERROR))  # fmt: skip
        with self._lock:  # free before the end is heard, so the driver can submit at once
            self._running.pop(job.id, None)
            self._idle.append(actor)
        events.put(end)

    def _back(self, actor: Any) -> bool:
        """Wait for a dead worker's restart (Ray restarts it) and its network to load: whether it
        came back within :data:`~impasto.jobs.rayexec.START_S`."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and not self._closed.is_set():
            try:
                ray.get(actor.load.remote(self._options), timeout=START_S)
                return True
            except (RayActorError, GetTimeoutError):
                time.sleep(0.5)
        return False

    def _poll(self) -> None:
        while not self._closed.wait(POLL_S):
            try:
                latest = ray.get(self._hub.take.remote(), timeout=10)
            except Exception:  # Ray busy or going away; progress is best effort
                continue
            for job_id, (frame, iteration, iterations) in latest.items():
                with self._lock:
                    running = self._running.get(job_id)
                if running is not None:
                    running[1].put(("step", job_id, frame, iteration, iterations))

    def pids(self) -> list[int]:
        """The workers' process ids (tests kill them)."""
        return [int(p) for p in ray.get([a.pid.remote() for a in self.actors])]

    def stop(self) -> None:
        with self._lock:
            running = list(self._running.items())
        for job_id, (actor, _) in running:
            actor.stop.remote(job_id)

    def close(self) -> None:
        self._closed.set()
        self._poller.join(timeout=5)
        self._let_go()

    def _let_go(self) -> None:
        for actor in [*self.actors, self._hub]:
            with contextlib.suppress(RayError):  # one already gone
                ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()
