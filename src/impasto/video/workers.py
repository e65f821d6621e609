"""Painting a stretch of frames on a worker, and the runners that hand stretches to workers.

A :class:`PaintJob` is a :class:`~impasto.video.chunks.Stretch` made self-contained: the content
frames and earlier outputs it reads (8-bit arrays, exactly what the cache holds), the style
images and the options. :func:`paint_job` paints it on one device and yields each frame as soon as
it is done; it reads and writes no file, so it runs the same in a thread here or in a Ray actor
elsewhere (:mod:`impasto.video.cluster`). A frame already painted (``known``) is not painted
again: a job resubmitted after its worker died carries the frames it had finished.

A runner (:class:`Runner`) runs jobs, at most :attr:`Runner.slots` at once, and reports through
one queue of :data:`Event` s, read by the driver (:mod:`impasto.video.chunked`) in its own
thread: ``("step", job id, frame, iteration, iterations)``, ``("frame", job id, Frame)``,
``("done", job id, None)`` or ``("failed", job id, message)``. :class:`LocalRunner` runs them in
a thread of this process.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import PIL.Image
import torch

from ..config import TransferConfig
from ..errors import ImpastoError, first_line
from ..optimize import Step
from ..vgg import VGG
from . import longterm
from .chunks import Stretch, seam_share
from .frames import frame_seed
from .options import VideoOptions
from .painter import Painter

__all__ = ["Event", "Frame", "LocalRunner", "PaintJob", "Runner", "paint_job"]

Uint8 = npt.NDArray[np.uint8]
Event = tuple[Any, ...]
StepHook = Callable[[int, int, int], None]  # (frame, iteration, iterations)


@dataclass(frozen=True)
class PaintJob:
    """A stretch with everything it reads; nothing in it a process could not pickle."""

    id: str
    stretch: Stretch
    contents: Mapping[int, Uint8]  # content frames (H, W, 3) at the frames' size
    known: Mapping[int, Uint8]  # outputs painted already: the root, the seam keyframe, and
    # frames of the stretch finished by an earlier attempt
    styles: tuple[Uint8, ...]
    config: Mapping[str, Any]  # TransferConfig.to_dict(), the run's seed included
    options: Mapping[str, Any]  # VideoOptions.to_dict()

    def transfer_config(self) -> TransferConfig:
        from ..jobs.spec import config_from

        return config_from(self.config)

    def video_options(self) -> VideoOptions:
        return VideoOptions(**self.options)


@dataclass(frozen=True)
class Frame:
    """One painted frame, as a worker hands it back."""

    index: int
    image: Uint8
    iterations: int
    seconds: float
    coverage: float | None
    note: str | None


def paint_job(
    job: PaintJob,
    vgg: VGG,
    device: str | torch.device = "cpu",
    on_step: StepHook | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Frame]:
    """Paint ``job`` in order, yielding each frame painted (never a known one). ``on_step``
    hears every iteration; ``stop`` set ends the job at the next iteration (KeyboardInterrupt)."""
    cfg, opts = job.transfer_config(), job.video_options()
    seed = cfg.seed if cfg.seed is not None else 0
    if cfg.device == "auto":
        cfg = cfg.replace(device=torch.device(device).type)
    styles = [PIL.Image.fromarray(s) for s in job.styles]
    painter = Painter(styles, cfg, opts, vgg, torch.device(device))
    stretch = job.stretch
    if stretch.root is not None:
        painter.remember(stretch.root, job.contents[stretch.root], job.known[stretch.root])
    for k in stretch.frames:
        content = job.contents[k]
        if k in job.known:
            painter.remember(k, content, job.known[k])
            continue
        started = time.perf_counter()
        seam = None
        if stretch.seam is not None and opts.temporal:
            far = longterm.tie(content, job.contents[stretch.seam], job.known[stretch.seam],
                               k - stretch.seam, opts.flow)  # fmt: skip
            seam = (far, seam_share(k, stretch.chunk_start, stretch.seam))

        def listen(frame: int = k) -> Callable[[Step], None]:
            def heard(step: Step) -> None:
                if on_step is not None:
                    on_step(frame, step.iteration, step.iterations)
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt

            return heard

        painted = painter.paint(
            k, PIL.Image.fromarray(content), frame_seed(seed, k), seam=seam, listener=listen
        )
        if painted.result.interrupted:
            raise KeyboardInterrupt
        out = np.asarray(painted.result.image)
        if opts.temporal:
            painter.remember(k, content, out)
        seconds = time.perf_counter() - started
        yield Frame(k, out, painted.iterations, seconds, painted.coverage, painted.note)


class Runner(Protocol):
    @property
    def slots(self) -> int:
        """How many jobs it runs at once."""
        ...

    @property
    def workers(self) -> str:
        """Where the jobs run, in words (for the summary)."""
        ...

    def submit(self, job: PaintJob, events: queue.SimpleQueue[Event]) -> None:
        """Start ``job`` (a slot must be free); its events go to ``events``."""
        ...

    def stop(self) -> None:
        """Ask the running jobs to end at their next iteration (nothing half-done is kept)."""
        ...

    def close(self) -> None:
        """Let the workers go."""
        ...


class LocalRunner:
    """One job at a time in a thread of this process, on ``vgg``'s device."""

    def __init__(self, vgg: VGG, device: torch.device) -> None:
        self.vgg, self.device = vgg, device
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="impasto-painter")
        self._stop = threading.Event()

    @property
    def slots(self) -> int:
        return 1

    @property
    def workers(self) -> str:
        return "this process"

    def submit(self, job: PaintJob, events: queue.SimpleQueue[Event]) -> None:
        self._pool.submit(self._run, job, events)

    def _run(self, job: PaintJob, events: queue.SimpleQueue[Event]) -> None:
        def step(frame: int, iteration: int, iterations: int) -> None:
            events.put(("step", job.id, frame, iteration, iterations))

        try:
            for frame in paint_job(job, self.vgg, self.device, step, self._stop):
                events.put(("frame", job.id, frame))
        except KeyboardInterrupt:
            events.put(("failed", job.id, "stopped"))
            return
        except ImpastoError as e:
            events.put(("failed", job.id, first_line(e), e.exit_status))
            return
        except Exception as e:  # a bug: the driver reports it and stops
            events.put(("failed", job.id, f"{type(e).__name__}: {first_line(e)}"))
            return
        events.put(("done", job.id, None))

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
