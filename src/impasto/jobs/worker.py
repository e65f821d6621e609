"""A worker: runs one :class:`~impasto.jobs.spec.Task` on one device and hands back an Outcome.

A :class:`Worker` keeps its network between jobs (the VGG weights are loaded once per worker,
not per job; again only when a job asks for another network). It reads nothing from disk but the
weights and writes nothing: the images come as bytes and the result goes back as PNG bytes, for
the driver to write. Every error a job can cause becomes a failed Outcome with its one-line
message; ``stop`` (an event) ends a running job early with its best image so far.

Two channels report a running job: ``progress`` hears every iteration (the batch's bars), and
``report`` hears :class:`~impasto.jobs.spec.Report` s with the terms, a few times a second, and
JPEG previews when the task asks for them (the studio).
"""

from __future__ import annotations

import io
import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import PIL.Image
import torch

from .. import imageio
from ..errors import ExitStatus, ImpastoError, first_line
from ..guidance import build_regions
from ..optimize import Step, Transfer
from ..prepare import NetworkCache
from .spec import Outcome, Report, Task, config_from

__all__ = ["Progress", "Reporter", "Worker", "preview_jpeg"]

Progress = Callable[[str, int, int], None]
"""(job id, iteration, iterations): a worker's report of a running job."""

Reporter = Callable[[Report], None]
"""A listener of a running job's :class:`~impasto.jobs.spec.Report` s."""

REPORT_EVERY_S = 0.25  # reports at most this often (reading the terms syncs the device)


def preview_jpeg(img: PIL.Image.Image, pixels: int) -> bytes:
    """A preview: ``img`` as a JPEG whose longest side is at most ``pixels``."""
    if max(img.size) > pixels:
        img = imageio.resize_longest(img, pixels)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class Worker:
    """One device's worker. ``device`` is ``cpu``, ``cuda:N`` or ``mps``: a job whose options
    say ``auto`` (the default) runs there; or ``auto``: such a job picks its device as a transfer
    does (the studio's one local worker)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._vgg = NetworkCache()

    @property
    def networks_loaded(self) -> int:
        """How many times weights were read: once, for one network."""
        return self._vgg.loads

    def load(self, options: Mapping[str, Any] | None = None) -> None:
        """Read the network a job of ``options`` would use now (a worker warming up)."""
        self._vgg(config_from(options or {}))

    def run(
        self,
        task: Task,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
        report: Reporter | None = None,
    ) -> Outcome:
        started = time.monotonic()
        device = self.device
        try:
            config = config_from(task.options)
            if config.device == "auto":
                kind = device.split(":")[0]
                config = config.replace(device=kind)
                if kind == "cuda" and ":" in device:
                    torch.cuda.set_device(int(device.split(":")[1]))  # this thread's GPU
            else:
                device = config.device
            content = imageio.decode_image(task.content, task.names.get("content", "content"))
            names = task.names.get("styles", "").split(",")
            styles = [
                imageio.decode_image(data, names[i] if i < len(names) else f"style {i + 1}")
                for i, data in enumerate(task.styles)
            ]
            regions = None
            if task.masks or task.keep is not None:
                masks = [imageio.decode_image(m, "mask").convert("L") for m in task.masks]
                keep = None
                if task.keep is not None:
                    keep = imageio.decode_image(task.keep, "keep mask").convert("L")
                regions = build_regions(len(styles), masks=masks or None, keep=keep)
            vgg = self._vgg(config)
            transfer = Transfer(content, styles, config, vgg=vgg, regions=regions)
            reporting = _Reporting(task, report) if report is not None else None

            def on_step(step: Step) -> None:
                if progress is not None:
                    progress(task.id, step.iteration, step.iterations)
                if reporting is not None:
                    reporting(step)
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt  # the loop ends with its best image so far

            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            result = transfer.run(on_step=on_step)
        except KeyboardInterrupt:
            # Stopped before the first step: nothing to keep.
            return Outcome(task.id, None, {}, time.monotonic() - started, device, interrupted=True)
        except ImpastoError as e:
            return self._failed(task, started, device, first_line(e), e.exit_status)
        except torch.OutOfMemoryError:
            return self._failed(task, started, device, "out of memory", ExitStatus.RESOURCE)
        except Exception as e:  # a bug, or a case no check foresaw: this job fails, not the batch
            why = f"unexpected error: {type(e).__name__}: {first_line(e)}"
            trace = traceback.format_exc()
            return self._failed(task, started, device, why, ExitStatus.ERROR, trace)
        terms = dict(result.history[-1]) if result.history else {}
        image = None
        if result.iterations > 0:
            image = imageio.encode_image(
                result.image, task.suffix, result.metadata(dict(task.names))
            )
        # The job's time is all of it here (images, network, the run, the encoding): the clock
        # of the batch's log lines, which count from the job's start (issue 33: "iteration
        # 20/20, 11.5 s" then "done ... 10.4 s", the run's time alone).
        return Outcome(
            task.id,
            image,
            terms,
            time.monotonic() - started,
            result.device,
            iterations=result.iterations,
            interrupted=result.interrupted,
        )

    @staticmethod
    def _failed(
        task: Task, started: float, device: str, why: str, status: int, trace: str | None = None
    ) -> Outcome:
        seconds = time.monotonic() - started
        return Outcome(
            task.id, None, {}, seconds, device, error=why, exit_status=int(status), trace=trace
        )


class _Reporting:
    """Turns Step records into Reports: at most every :data:`REPORT_EVERY_S`, with a preview at
    the first and last iterations and, between, at multiples of ``task.preview_every`` iterations
    at most every ``task.preview_s``."""

    def __init__(self, task: Task, report: Reporter) -> None:
        self.task, self.report = task, report
        self._reported = self._previewed = -math.inf

    def __call__(self, step: Step) -> None:
        now = time.monotonic()
        every = self.task.preview_s
        preview = every is not None and (
            step.iteration in (1, step.iterations)
            or (step.iteration % self.task.preview_every == 0 and now - self._previewed >= every)
        )
        if not (preview or now - self._reported >= REPORT_EVERY_S):
            return
        self._reported = now
        jpeg = None
        if preview:
            self._previewed = now
            jpeg = preview_jpeg(step.image(), self.task.preview_pixels)
        self.report(
            Report(
                self.task.id,
                step.iteration,
                step.iterations,
                step.stage,
                step.stages,
                step.elapsed,
                step.loss,
                step.terms,
                jpeg,
            )
        )
