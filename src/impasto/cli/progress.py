"""Progress bars and log lines: listeners of the loop's Step records (and of video's frames).

The core reports, these show: on a terminal, a tqdm bar per run (or per panel, or per frame
inside a bar over frames), with the objective's terms by name in its postfix, read a few times a
second; elsewhere (a log file, CI), where tqdm shows nothing, a plain line every
``--print-every`` iterations with the losses and the time.
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
from ..eta import WorkPlan
from ..experiments import PanelCallback
from ..jobs.driver import BatchListener
from ..jobs.spec import Outcome
from ..jobs.store import Job
from ..optimize import Step

if TYPE_CHECKING:
    from ..video import FrameResult

Listener = Callable[[Step], None]
# tqdm's bar without its own remaining time (the postfix has the plan's ETA).
PLANNED_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def logging_lines(quiet: bool, print_every: int) -> bool:
    """Whether to print log lines: not quiet, asked for, and stderr not a terminal (where the
    bars show instead)."""
    return not quiet and print_every > 0 and not _is_terminal(sys.stderr)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        return False


def step_line(step: Step, desc: str | None = None) -> str:
    """One log line: ``[desc: ]iteration i/n[, stage s/S]: loss L (content c, style s, ...),
    T s``."""
    stage = f", stage {step.stage}/{step.stages}" if step.stages > 1 else ""
    terms = ", ".join(f"{k} {v:.4g}" for k, v in step.terms.items())
    head = f"{desc}: " if desc else ""
    return (
        f"{head}iteration {step.iteration}/{step.iterations}{stage}: loss {step.loss:.4g} "
        f"({terms}), {step.elapsed:.1f} s"
    )


class StepLog:
    """A listener that prints :func:`step_line` every ``every`` iterations and at the last."""

    def __init__(self, every: int, desc: str | None = None) -> None:
        self.every, self.desc = every, desc

    def __call__(self, step: Step) -> None:
        if step.iteration % self.every == 0 or step.iteration == step.iterations:
            print(step_line(step, self.desc), file=sys.stderr, flush=True)


class ProgressBar:
    """tqdm bar over iterations (or, in a log, a line every ``print_every`` iterations), plus
    optional intermediate saves: a listener of the loop.

    With the run's ``plan`` the bar's ETA is the plan's (:mod:`impasto.eta`: the iterations of
    a larger stage cost more), not tqdm's rate per iteration, which says about half the real
    time while the first stage of a coarse-to-fine run goes."""

    def __init__(
        self,
        total: int,
        quiet: bool,
        steps_dir: Path | None,
        every: int,
        desc: str | None = None,
        plan: WorkPlan | None = None,
        print_every: int = 0,
    ) -> None:
        self.bar: Any = None
        self.plan = plan
        self.log = StepLog(print_every, desc) if logging_lines(quiet, print_every) else None
        if not quiet and self.log is None:
            self.bar = tqdm(
                total=total or None,
                desc=desc,
                disable=None,  # no bar when stderr is not a terminal (logs, CI)
                unit="it",
                dynamic_ncols=True,
                leave=False,
                file=sys.stderr,
                bar_format=None if plan is None else PLANNED_FORMAT,
            )
        self.steps_dir, self.every = steps_dir, every
        self._shown = -math.inf

    def __call__(self, step: Step) -> None:
        if self.log is not None:
            self.log(step)
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
                eta = ""
                if self.plan is not None:
                    left = self.plan.seconds_left(step.iteration, step.elapsed)
                    eta = f"ETA {clock(left)}, " if left is not None else "ETA …, "
                text = f"{eta}{stage}loss {step.loss:.3g} ({terms})"
                self.bar.set_postfix_str(text, refresh=False)
        if self.steps_dir is not None and step.iteration % self.every == 0:
            imageio.save_image(step.image(), self.steps_dir / f"{step.iteration:05d}.png")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def panel_progress(quiet: bool, print_every: int = 0) -> PanelCallback:
    """A fresh progress bar (or log) per panel, labelled 'panel i/n (label)'."""
    bars: list[ProgressBar] = []

    def start(index: int, count: int, label: str) -> Listener | None:
        for bar in bars:
            bar.close()
        bars.clear()
        if quiet:
            return None
        desc = f"panel {index + 1}/{count} ({label})"
        p = ProgressBar(0, quiet, None, 0, desc=desc, print_every=print_every)
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

    def __init__(self, total: int, quiet: bool, print_every: int = 0, slots: int = 1) -> None:
        self.total, self.quiet, self.print_every, self.slots = total, quiet, print_every, slots
        self.log = logging_lines(quiet, print_every)
        self.bar: Any = None
        self.inner: ProgressBar | None = None
        self.times: list[float] = []  # computed frames' seconds, the first frame apart
        self.done = 0
        self.painting: dict[str, tuple[int, int, int]] = {}  # stretch: frame, iteration, of
        self._shown = -math.inf
        if not quiet and not self.log:
            self.bar = outer_bar(total, "frames", "frame")

    def frame_start(self, index: int, iterations: int) -> Listener | None:
        self._close_inner()
        if self.quiet:
            return None
        desc = f"frame {index + 1}/{self.total}"
        self.inner = ProgressBar(
            iterations, self.quiet, None, 0, desc, print_every=self.print_every
        )
        return self.inner

    def frame_done(self, r: FrameResult) -> None:
        self._close_inner()
        self.done += 1
        if not r.reused and r.index > 0:
            self.times.append(r.seconds)
        self.painting = {k: v for k, v in self.painting.items() if v[0] != r.index}
        if self.log:
            per = self._per_frame()
            left = per * (self.total - self.done) if per is not None else None
            how = "reused" if r.reused else f"{r.seconds:.1f} s"
            eta = f", ETA {clock(left)}" if left is not None else ""
            print(
                f"frame {r.index + 1}/{self.total} done ({how}){eta}", file=sys.stderr, flush=True
            )
        if self.bar is not None:
            self.bar.update(1)
            self._show()

    def _per_frame(self) -> float | None:
        """Seconds a frame, all workers together (the first frame apart)."""
        if not self.times:
            return None
        return sum(self.times) / len(self.times) / max(1, self.slots)

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
        per = self._per_frame()
        if per is not None:
            text = f"{per:.2f} s/frame, ETA {clock(per * (self.total - self.done))}"
        if self.painting:
            now = sorted(self.painting.values())
            text += (
                ("; " if text else "")
                + "painting "
                + ", ".join(f"{f + 1} ({i}/{n})" for f, i, n in now)
            )
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

    def __init__(self, quiet: bool, slots: int = 1, print_every: int = 0) -> None:
        self.quiet, self.slots, self.print_every = quiet, slots, print_every
        self.log = logging_lines(quiet, print_every)
        self.outputs: dict[str, str] = {}  # job id -> output, for the log lines
        self.started_at: dict[str, float] = {}
        self.bar: Any = None
        self.inner: dict[str, Any] = {}
        self.times: list[float] = []
        self.to_run = self.done = self.failed = 0

    def planned(self, total: int, to_run: int) -> None:
        self.to_run = to_run
        if self.log:
            print(f"batch: {to_run} of {total} jobs to run", file=sys.stderr, flush=True)
        elif not self.quiet:
            self.bar = outer_bar(to_run, "jobs", "job")
            self._show()

    def started(self, job: Job) -> None:
        self.outputs[job.id] = job.output
        self.started_at.setdefault(job.id, time.monotonic())
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
        if self.log and (iteration % self.print_every == 0 or iteration == iterations):
            seconds = time.monotonic() - self.started_at.get(job_id, time.monotonic())
            print(
                f"{self.outputs.get(job_id, job_id)}: iteration {iteration}/{iterations}, "
                f"{seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        inner = self.inner.get(job_id)
        if inner is not None:
            inner.total = iterations
            inner.n = iteration
            inner.refresh()

    def ended(self, job: Job, outcome: Outcome | None) -> None:
        inner = self.inner.pop(job.id, None)
        if inner is not None:
            inner.close()
        started = self.started_at.pop(job.id, None)
        if self.log:
            # On the clock of the job's iteration lines, which started with it.
            seconds = time.monotonic() - started if started is not None else None
            print(_job_line(job, outcome, self, seconds), file=sys.stderr, flush=True)
        if job.state == "done":
            self.done += 1
        elif job.state == "failed":
            self.failed += 1
            if not self.quiet and not self.log:
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


def _job_line(
    job: Job, outcome: Outcome | None, progress: BatchProgress, seconds: float | None = None
) -> str:
    """A batch's log line for a job that ended: its state, losses and time (``seconds``, else
    the outcome's)."""
    ended = progress.done + progress.failed + 1
    head = f"job {ended}/{progress.to_run} {job.state}: {job.output}"
    if job.state == "failed":
        return f"{head}: {job.error}"
    if outcome is None:
        return head
    took = outcome.seconds if seconds is None else seconds
    terms = dict(outcome.terms or {})
    total = terms.pop("total", None)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in terms.items())
    if total is not None:
        losses = f"loss {total:.4g}" + (f" ({losses})" if losses else "")
    return f"{head}: {losses}, {took:.1f} s" if losses else f"{head}, {took:.1f} s"
