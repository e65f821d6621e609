"""Video on a Ray cluster: :class:`RayRunner` paints stretches of frames on Ray actors at once.

Imported only for ``impasto video --executor ray`` (``import impasto`` never imports Ray). The
workers (one per GPU, else one per node or ``--workers`` shares of the CPUs, each holding one
network), their progress and shutdown are the pool's (:mod:`impasto.jobs.raypool`, shared with
the batch's :class:`~impasto.jobs.rayexec.RayExecutor`); what is video's own:

- **Bytes in, frames out as they finish.** A :class:`~impasto.video.workers.PaintJob` carries its
  content frames and earlier outputs as arrays; the actor's ``paint`` is a generator, so each
  frame comes back to the driver the moment it is painted, and the driver writes it to the cache.
  Workers need no shared file system.
- **A dead worker loses only the frame it was painting.** Ray restarts the actor but does not
  rerun the call (``task_retries=0``): the driver submits the stretch again with the frames that
  did come back, so none is painted twice.
- **Progress** goes to the pool's hub at most every :data:`REPORT_S` per job, and reaches the
  driver as ``step`` events.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from ..errors import ExitStatus, ImpastoError, first_line
from ..jobs.raypool import START_S, PoolActor, RayPool
from ..jobs.spec import config_from
from ..prepare import NetworkCache
from .workers import Event, Frame, PaintJob, paint_job

__all__ = ["RayRunner"]

REPORT_S = 0.2


class _Painter(PoolActor):
    """Lives in a Ray actor: one network, and the stop flags of its jobs."""

    def __init__(self, hub: str, threads: int, gpu: bool) -> None:
        super().__init__(hub, threads, gpu)
        self.networks = NetworkCache()

    def load(self, options: Mapping[str, Any]) -> str:
        self.networks(self._config(options))
        return self.device

    def _config(self, options: Mapping[str, Any]) -> Any:
        cfg = config_from(options)
        return cfg.replace(device=self.device.split(":")[0]) if cfg.device == "auto" else cfg

    def paint(self, job: PaintJob, key: str) -> Iterator[Frame]:
        heard = [0.0]

        def step(frame: int, iteration: int, iterations: int) -> None:
            now = time.monotonic()
            if now - heard[0] >= REPORT_S or iteration == iterations:
                heard[0] = now
                self.hub.heard.remote(job.id, frame, iteration, iterations)  # no wait

        with self.stop_flag(key) as stop:
            vgg = self.networks(self._config(job.config))
            yield from paint_job(job, vgg, self.device, step, stop)


class RayRunner(RayPool):
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
        super().__init__(
            _Painter,
            address,
            workers,
            num_cpus=num_cpus,
            options=options,
            task_retries=0,
            name="video",
        )

    @property
    def workers(self) -> str:
        n = len(self.actors)
        kinds = sorted(set(self.devices))
        return f"{n} Ray worker{'' if n == 1 else 's'} ({', '.join(kinds)})"

    def submit(self, job: PaintJob, events: queue.SimpleQueue[Event]) -> None:
        def step(job_id: str, frame: int, iteration: int, iterations: int) -> None:
            events.put(("step", job_id, frame, iteration, iterations))

        actor, key = self._take(job.id, step)
        frames = actor.paint.remote(job, key)
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
                self._free(job.id, actor, lost=True)  # one slot fewer
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
        self._free(job.id, actor)  # before the end is heard: the driver submits at once
        events.put(end)

    def _back(self, actor: Any) -> bool:
        """Wait for a dead worker's restart (Ray restarts it) and its network to load: whether it
        came back within :data:`~impasto.jobs.raypool.START_S`."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and not self._closed.is_set():
            try:
                ray.get(actor.load.remote(self._options), timeout=START_S)
                return True
            except (RayActorError, GetTimeoutError):
                time.sleep(0.5)
        return False
