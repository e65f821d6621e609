"""Watching a transfer form: record iterates and losses from the loop, write a GIF/MP4 and a plot.

:class:`Recorder` is an ordinary ``on_step`` listener (the loop never knows it is filmed);
:func:`chain` lets it ride along with a progress bar. The writers are atomic like
:func:`impasto.imageio.save_image`: a hidden temp file in the target's folder, then a rename, so an
interrupted or failed write never leaves half a file where a good one was.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Collection, Mapping, Sequence
from fractions import Fraction
from typing import IO

import numpy as np
import PIL.Image

from . import imageio
from .errors import InputError, UsageError
from .optimize import Step

__all__ = [
    "ANIMATION_FORMATS",
    "PLOT_FORMATS",
    "Recorder",
    "chain",
    "check_animation_path",
    "check_plot_path",
    "plot_curves",
    "plot_losses",
    "save_animation",
]

ANIMATION_FORMATS: tuple[str, ...] = (".gif", ".mp4")
PLOT_FORMATS: tuple[str, ...] = (".png", ".svg", ".pdf")

StrPath = str | os.PathLike[str]
Listener = Callable[[Step], None]


# --- recording --------------------------------------------------------------------------------


class Recorder:
    """An ``on_step`` listener keeping every ``every``-th iterate (and the last) as a frame, and
    every iteration's losses.

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
        # (iteration, total, content, style) for every iteration, whatever ``every`` is
        self.losses: list[tuple[int, float, float, float]] = []

    def __call__(self, step: Step) -> None:
        self.losses.append((step.iteration, step.loss, step.content_loss, step.style_loss))
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
    no x264), atomically. Frames are brought to the first frame's size."""
    name = os.fspath(path)
    p = check_animation_path(path)
    if not frames:
        raise UsageError(f"no frames to write to '{name}'")
    if not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"the frame rate must be a positive number, not {fps}")
    size = frames[0].size
    rgb = [_rgb(f, size) for f in frames]
    if p.suffix.lower() == ".gif":
        with imageio.atomic_write(p) as f:
            _write_gif(rgb, f, fps)
        return p
    even = [_even(f) for f in rgb]
    try:
        with imageio.atomic_write(p) as f:
            _write_mp4(even, f, fps)
    except InputError:
        raise
    except Exception as exc:  # FFmpeg's own errors (not OSError): still one line
        import av

        if isinstance(exc, av.FFmpegError):
            raise InputError(f"cannot write '{name}': {exc}") from exc
        raise
    return p


def _rgb(img: PIL.Image.Image, size: tuple[int, int]) -> PIL.Image.Image:
    img = img if img.mode == "RGB" else img.convert("RGB")
    return img if img.size == size else imageio.resize_to(img, size)


def _even(img: PIL.Image.Image) -> PIL.Image.Image:
    """yuv420p halves the chroma resolution, so H.264 needs even sides: repeat the last
    column/row where a side is odd (cropping would lose the only row of a 1-pixel strip)."""
    w, h = img.size
    if w % 2 == 0 and h % 2 == 0:
        return img
    arr = np.asarray(img)  # (H, W, 3)
    arr = np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return PIL.Image.fromarray(arr)


def _write_gif(frames: Sequence[PIL.Image.Image], f: IO[bytes], fps: float) -> None:
    # Pillow merges a frame identical to the one before into it (adding its duration), so a still
    # stretch costs nothing; optimize=False skips a slow palette-shrinking pass per frame.
    frames[0].save(
        f,
        format="GIF",
        save_all=True,
        append_images=list(frames[1:]),
        duration=max(1, round(1000.0 / fps)),
        loop=0,
        optimize=False,
    )


def _mp4_codec() -> str:
    import av

    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # the wheel was built without x264 (UnknownCodecError, ValueError)
        return "mpeg4"
    return "libx264"


def _write_mp4(frames: Sequence[PIL.Image.Image], f: IO[bytes], fps: float) -> None:
    import av

    codec = _mp4_codec()
    w, h = frames[0].size
    with av.open(f, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        assert isinstance(stream, av.VideoStream)  # narrows the type: codec is a plain str
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}  # visually lossless: the textures are the point
        else:
            stream.bit_rate = max(1_000_000, int(w * h * fps * 0.5))
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")  # (H, W, 3)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder's delayed frames
            container.mux(packet)


# --- loss plots -------------------------------------------------------------------------------


def plot_losses(losses: Sequence[tuple[int, float, float, float]], path: StrPath) -> pathlib.Path:
    """Content, style and total loss (as :attr:`Recorder.losses`) against iteration, log scale."""
    its = [row[0] for row in losses]
    curves = {
        "content": list(zip(its, (row[2] for row in losses), strict=True)),
        "style": list(zip(its, (row[3] for row in losses), strict=True)),
        "total": list(zip(its, (row[1] for row in losses), strict=True)),
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
    with imageio.atomic_write(p) as f:
        fig.savefig(f, format=p.suffix.lower()[1:])
    return p
