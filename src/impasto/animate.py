"""Watching a transfer form: record iterates and terms from the loop, write a GIF/MP4 and a plot.

:class:`Recorder` is an ordinary ``on_step`` listener (the loop never knows it is filmed) that
reads the objective's terms by name; :func:`chain` lets it ride along with a progress bar. The
animation is encoded by :mod:`impasto.video.sinks` (the one encoder of GIF and video) and the plot
drawn here; both are written atomically, so an interrupted or failed write never leaves half a file
where a good one was.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Collection, Mapping, Sequence
from fractions import Fraction

import PIL.Image

from . import imageio
from .atomic import atomic_write
from .errors import UsageError
from .optimize import Step
from .video import sinks

__all__ = [
    "ANIMATION_FORMATS",
    "PLOT_FORMATS",
    "Recorder",
    "chain",
    "check_animation_path",
    "check_plot_path",
    "plot_curves",
    "plot_terms",
    "save_animation",
]

ANIMATION_FORMATS: tuple[str, ...] = (".gif", ".mp4")
PLOT_FORMATS: tuple[str, ...] = (".png", ".svg", ".pdf")

StrPath = str | os.PathLike[str]
Listener = Callable[[Step], None]


# --- recording --------------------------------------------------------------------------------


class Recorder:
    """An ``on_step`` listener keeping every ``every``-th iterate (and the last) as a frame, and
    every iteration's total and terms (:attr:`history`).

    >>> rec = Recorder(every=10, max_side=256)
    >>> Transfer(content, [style], cfg).run(on_step=chain(progress, rec))
    >>> save_animation(rec.frames, "forming.gif")
    """

    def __init__(self, every: int, max_side: int | None = None) -> None:
        if every < 1:
            raise UsageError(f"--animate-every must be at least 1, not {every}")
        if max_side is not None and max_side < 1:
            raise UsageError(f"the frame size must be at least 1 pixel, not {max_side}")
        self.every = every
        self.max_side = max_side
        self.frames: list[PIL.Image.Image] = []
        self.frame_iterations: list[int] = []  # the iteration each frame shows
        # every iteration's total and terms by name, whatever ``every`` is
        self.history: list[tuple[int, dict[str, float]]] = []

    def __call__(self, step: Step) -> None:
        self.history.append((step.iteration, {"total": step.loss, **step.terms}))
        if step.iteration % self.every and step.iteration != step.iterations:
            return
        img = step.image()  # a device-to-host copy: only for the frames we keep
        if self.max_side is not None and max(img.size) > self.max_side:
            img = imageio.resize_longest(img, self.max_side)
        self.frames.append(img)
        self.frame_iterations.append(step.iteration)


def chain(*listeners: Listener | None) -> Listener:
    """One listener calling each of ``listeners`` in turn (``None`` entries are skipped)."""
    active = [f for f in listeners if f is not None]

    def call(step: Step) -> None:
        for listener in active:
            listener(step)

    return call


# --- checking paths up front ------------------------------------------------------------------


def check_animation_path(path: StrPath) -> pathlib.Path:
    """Check that ``path`` can be written as an animation; creates nothing."""
    return imageio.check_writable(path, ANIMATION_FORMATS, "animation")


def check_plot_path(path: StrPath) -> pathlib.Path:
    """Check that ``path`` can be written as a loss plot; creates nothing."""
    return imageio.check_writable(path, PLOT_FORMATS, "plot")


# --- animations -------------------------------------------------------------------------------


def save_animation(
    frames: Sequence[PIL.Image.Image], path: StrPath, fps: float = 10.0
) -> pathlib.Path:
    """Write ``frames`` as a looping GIF or an H.264 MP4 (MPEG-4 Part 2 where the PyAV wheel has
    no x264), atomically, through :mod:`impasto.video.sinks`. Frames are brought to the first
    frame's size."""
    name = os.fspath(path)
    p = check_animation_path(path)
    if not frames:
        raise UsageError(f"no frames to write to '{name}'")
    if not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"the frame rate must be a positive number, not {fps}")
    size = frames[0].size
    rgb = [_rgb(f, size) for f in frames]
    sinks.write_animation(rgb, p, Fraction(fps).limit_denominator(1001))
    return p


def _rgb(img: PIL.Image.Image, size: tuple[int, int]) -> PIL.Image.Image:
    img = img if img.mode == "RGB" else img.convert("RGB")
    return img if img.size == size else imageio.resize_to(img, size)


# --- loss plots -------------------------------------------------------------------------------


def plot_terms(history: Sequence[tuple[int, Mapping[str, float]]], path: StrPath) -> pathlib.Path:
    """Every term and the total (as :attr:`Recorder.history`) against iteration, log scale; a
    term that is zero throughout (TV when off) is left out."""
    names = [n for n in dict.fromkeys(k for _, values in history for k in values) if n != "total"]
    curves = {
        name: [(i, values.get(name, 0.0)) for i, values in history] for name in [*names, "total"]
    }
    # Total is dashed: it usually lies on top of the style curve, which would vanish under it.
    return plot_curves(curves, path, dashed=("total",))


def plot_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: StrPath,
    title: str | None = None,
    dashed: Collection[str] = (),
) -> pathlib.Path:
    """Named (iteration, loss) series on one log-scale plot, written atomically (.png/.svg/.pdf).

    A log axis cannot show zero or negative values (a content loss with α = 0, say), so those
    points are left out; a series with nothing left is left out of the legend too.
    """
    # Figure without pyplot: no global figure registry and no GUI backend, safe in threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p = check_plot_path(path)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    plotted = 0
    for label, points in curves.items():
        kept = [(i, v) for i, v in points if math.isfinite(v) and v > 0]
        if kept:
            xs, ys = zip(*kept, strict=True)
            ax.plot(
                xs,
                ys,
                label=label,
                linestyle="--" if label in dashed else "-",
                marker="." if len(kept) == 1 else None,
            )
            plotted += 1
    if plotted:
        ax.set_yscale("log")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no positive losses to show", ha="center", transform=ax.transAxes)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (weighted, log scale)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    with atomic_write(p) as f:
        fig.savefig(f, format=p.suffix.lower()[1:])
    return p
