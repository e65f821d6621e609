"""A worker: runs one :class:`~impasto.jobs.spec.Task` on one device and hands back an Outcome.

A :class:`Worker` keeps its network between jobs (the VGG weights are loaded once per worker,
not per job; again only when a job asks for another network). It reads nothing from disk but the
weights and writes nothing: the images come as bytes and the result goes back as PNG bytes, for
the driver to write. Every error a job can cause becomes a failed Outcome with its one-line
message; ``stop`` (an event) ends a running job early with its best image so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .. import imageio
from ..config import TransferConfig
from ..errors import ExitStatus, ImpastoError, first_line
from ..optimize import Step, Transfer
from ..prepare import build_network
from ..vgg import VGG
from .spec import Outcome, Task, config_from

__all__ = ["Progress", "Worker"]

Progress = Callable[[str, int, int], None]
"""(job id, iteration, iterations): a worker's report of a running job."""

_NetworkKey = tuple[str, str | None, str, str, bool]


class Worker:
    """One device's worker. ``device`` is ``cpu``, ``cuda:N`` or ``mps``; a job whose options
    say ``auto`` (the default) runs there."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._network: tuple[_NetworkKey, VGG] | None = None
        self.networks_loaded = 0  # how many times weights were read: once, for one network

    def _vgg(self, config: TransferConfig) -> VGG:
        key = (
            config.model,
            config.weights,
            config.weights_format,
            config.pooling,
            config.normalize_network,
        )
        if self._network is None or self._network[0] != key:
            self._network = None  # let the old one go before loading another
            self._network = (key, build_network(config))
            self.networks_loaded += 1
        return self._network[1]

    def load(self, options: Mapping[str, Any] | None = None) -> None:
        """Read the network a job of ``options`` would use now (a worker warming up)."""
        self._vgg(config_from(options or {}))

    def run(
        self,
        task: Task,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
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
            transfer = Transfer(content, styles, config, vgg=self._vgg(config))

            def on_step(step: Step) -> None:
                if progress is not None:
                    progress(task.id, step.iteration, step.iterations)
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
            return self._failed(task, started, device, why, ExitStatus.ERROR)
        losses = dict(result.history[-1]) if result.history else {}
        image = None
        if result.iterations > 0:
            image = imageio.encode_image(
                result.image, task.suffix, result.metadata(dict(task.names))
            )
        return Outcome(
            task.id,
            image,
            losses,
            result.elapsed,
            result.device,
            iterations=result.iterations,
            interrupted=result.interrupted,
        )

    @staticmethod
    def _failed(task: Task, started: float, device: str, why: str, status: int) -> Outcome:
        seconds = time.monotonic() - started
        return Outcome(task.id, None, {}, seconds, device, error=why, exit_status=int(status))
