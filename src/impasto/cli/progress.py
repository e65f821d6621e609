"""Progress bars: listeners of the loop's Step records (and of video's frames).

The core reports, these show: a tqdm bar per run (or per panel, or per frame inside a bar over
frames), with the objective's terms by name in its postfix, read a few times a second.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from .. import imageio
from ..experiments import PanelCallback
from ..jobs.driver import BatchListener
from ..jobs.spec import Outcome
from ..jobs.store import Job
from ..optimize import Step

if TYPE_CHECKING:
    from ..video import FrameResult

Listener = Callable[[Step], None]


class ProgressBar:
    """tqdm bar over iterations, plus optional intermediate saves: a listener of the loop."""

    def __init__(
        self, total: int, quiet: bool, steps_dir: Path | None, every: int, desc: str | None = None
    ) -> None:
        self.bar: Any = None
        if not quiet:
            self.bar = tqdm(
                total=total or None,
                desc=desc,
                disable=None,  # no bar when stderr is not a terminal (logs, CI)
                unit="it",
                dynamic_ncols=True,
                leave=False,
                file=sys.stderr,
            )
        self.steps_dir, self.every = steps_dir, every
        self._shown = -math.inf

    def __call__(self, step: Step) -> None:
        if self.bar is not None:
            if self.bar.total is None:
                self.bar.total = step.iterations
            self.bar.update(1)
            now = time.monotonic()
            # Reading the terms waits for the device: do it a few times a second, not per step.
            if now - self._shown >= 0.25 or step.iteration == step.iterations:
                self._shown = now
                stage = f"stage {step.stage}/{step.stages}, " if step.stages > 1 else ""
                terms = ", ".join(f"{k} {v:.3g}" for k, v in step.terms.items() if v)
                self.bar.set_postfix_str(f"{stage}loss {step.loss:.3g} ({terms})", refresh=False)
        if self.steps_dir is not None and step.iteration % self.every == 0:
            imageio.save_image(step.image(), self.steps_dir / f"{step.iteration:05d}.png")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def panel_progress(quiet: bool) -> PanelCallback:
    """A fresh progress bar per panel, labelled 'panel i/n (label)'."""
    bars: list[ProgressBar] = []

    def start(index: int, count: int, label: str) -> Listener | None:
        for bar in bars:
            bar.close()
        bars.clear()
        if quiet:
            return None
        p = ProgressBar(0, quiet, None, 0, desc=f"panel {index + 1}/{count} ({label})")
        bars.append(p)
        return p

    return start


def notice(line: str) -> None:
    """One line on stderr above the bars, not through them."""
    tqdm.write(line, file=sys.stderr)


class VideoProgress:
    """A bar over frames (with its own ETA from the frames computed so far) and, inside it, the
    ordinary per-iteration bar of the frame being stylised; in a chunked run, where several
    workers paint at once, the frames being painted and their iterations beside it."""

    def __init__(self, total: int, quiet: bool, slots: int = 1) -> None:
        self.total, self.quiet, self.slots = total, quiet, slots
        self.bar: Any = None
        self.inner: ProgressBar | None = None
        self.times: list[float] = []  # computed frames' seconds, the first frame apart
        self.done = 0
        self.painting: dict[str, tuple[int, int, int]] = {}  # stretch: frame, iteration, of
        self._shown = -math.inf
        if not quiet:
            self.bar = outer_bar(total, "frames", "frame")

    def frame_start(self, index: int, iterations: int) -> Listener | None:
        self._close_inner()
        if self.quiet:
            return None
        self.inner = ProgressBar(iterations, self.quiet, None, 0, desc=f"frame {index + 1}")
        return self.inner

    def frame_done(self, r: FrameResult) -> None:
        self._close_inner()
        self.done += 1
        if not r.reused and r.index > 0:
            self.times.append(r.seconds)
        self.painting = {k: v for k, v in self.painting.items() if v[0] != r.index}
        if self.bar is not None:
            self.bar.update(1)
            self._show()

    def step(self, stretch: str, frame: int, iteration: int, iterations: int) -> None:
        """A chunked run's iteration, from any of its workers: the frames being painted are
        shown beside the bar over frames."""
        self.painting[stretch] = (frame, iteration, iterations)
        now = time.monotonic()
        if self.bar is not None and now - self._shown >= 0.25:
            self._shown = now
            self._show()

    def _show(self) -> None:
        text = ""
        if self.times:
            per = sum(self.times) / len(self.times) / max(1, self.slots)
            text = f", {per:.2f} s/frame, ETA {clock(per * (self.total - self.done))}"
        if self.painting:
            now = sorted(self.painting.values())
            text += "; painting " + ", ".join(f"{f + 1} ({i}/{n})" for f, i, n in now)
        self.bar.set_postfix_str(text)

    def _close_inner(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None

    def close(self) -> None:
        self._close_inner()
        if self.bar is not None:
            self.bar.close()


def outer_bar(total: int, desc: str, unit: str) -> Any:
    """A bar over whole items (a video's frames, a batch's jobs), with each item's iterations
    in a bar of their own below it; none when stderr is not a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=None,
        dynamic_ncols=True,
        file=sys.stderr,
        bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}",
    )


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    s = round(seconds)
    hours = f"{s // 3600}:" if s >= 3600 else ""
    return f"{hours}{s // 60 % 60:02d}:{s % 60:02d}" if hours else f"{s // 60}:{s % 60:02d}"


class BatchProgress(BatchListener):
    """A bar over a batch's jobs (done, failed, running, ETA) and, below it, a bar over the
    iterations of each running job."""

    def __init__(self, quiet: bool, slots: int = 1) -> None:
        self.quiet, self.slots = quiet, slots
        self.bar: Any = None
        self.inner: dict[str, Any] = {}
        self.times: list[float] = []
        self.to_run = self.done = self.failed = 0

    def planned(self, total: int, to_run: int) -> None:
        self.to_run = to_run
        if not self.quiet:
            self.bar = outer_bar(to_run, "jobs", "job")
            self._show()

    def started(self, job: Job) -> None:
        if self.bar is not None and job.id not in self.inner:
            self.inner[job.id] = tqdm(
                total=None,
                desc=f"  {job.output}",
                unit="it",
                disable=None,
                dynamic_ncols=True,
                leave=False,
                file=sys.stderr,
            )
        self._show()

    def progress(self, job_id: str, iteration: int, iterations: int) -> None:
        inner = self.inner.get(job_id)
        if inner is not None:
            inner.total = iterations
            inner.n = iteration
            inner.refresh()

    def ended(self, job: Job, outcome: Outcome | None) -> None:
        inner = self.inner.pop(job.id, None)
        if inner is not None:
            inner.close()
        if job.state == "done":
            self.done += 1
        elif job.state == "failed":
            self.failed += 1
            if not self.quiet:
                notice(f"failed: {job.output}: {job.error}")
        if outcome is not None and job.state != "cancelled":
            self.times.append(outcome.seconds)
        if self.bar is not None and job.state != "cancelled":
            self.bar.update(1)
        self._show()

    def _show(self) -> None:
        if self.bar is None:
            return
        text = f"done {self.done}, failed {self.failed}, running {len(self.inner)}"
        if self.times:
            left = self.to_run - self.done - self.failed
            per = sum(self.times) / len(self.times)
            text += f", ETA {clock(per * left / max(1, self.slots))}"
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        for inner in self.inner.values():
            inner.close()
        self.inner.clear()
        if self.bar is not None:
            self.bar.close()
