"""Stylising a video frame by frame, kept steady by optical flow (Ruder, Dosovitskiy and Brox 2016).

Done naively (``--no-temporal``), every frame is a transfer of its own and lands in its own local
minimum: the textures swim and flicker from frame to frame. With temporal consistency (the
default) frame k, for k ≥ 1:

1. starts from the previous *stylised* frame warped to frame k by the optical flow between the
   two *content* frames (OpenCV's DIS, or Farnebäck), rather than from the content image; and
2. adds Ruder et al.'s short-term temporal loss to the objective,

       L_temporal = λ · (1/D) · Σ c ⊙ (x − ω(x_{k−1}))²,     D = 3·H·W,

   with x the frame being optimised and ω(x_{k−1}) the warped previous output, both in 0–255
   pixel levels, and c ∈ {0, 1} per pixel: 0 where the forward–backward flow check finds an
   occlusion, at motion boundaries and where content has just come into view
   (:func:`impasto.flow.consistency`), so new content is free to take the style.

The weight λ (``--temporal-weight``; 1e8 at β = 1e3, by default proportional to β) was chosen by
measurement (``benchmarks/bench_video.py``, BENCHMARKS.md). With α = 1, β = 1e3 the objective's
gradient at a stylised frame is about 1e4 per pixel value, and a departure of δ levels costs 2λδ/D
in the gradient, so λ of order 1e8 balances a few levels of drift against the style: on the
benchmark's pan λ = 1e7 does little beyond the warm start alone, 1e8 cuts the warping error by
another third for about 13% more style loss, and 1e9 freezes the texture (77% more style loss). The
balance scales with β, and so does the default λ. Later frames start next to a good solution and
get fewer iterations: ``--frame-iterations``, by default a fifth of ``--iterations`` (a tenth left
27% more style loss than a fifth; half took 8% of it away at 2.5 times the cost); the first frame
gets them all. We differ from Ruder et al. in using only the short-term loss (no long-term or
multi-pass terms).

The temporal loss is a named term of the frame's objective (``temporal``), so every Step of a
video run reports it beside content, style and TV, and the terms add up to the total.

A frame whose L-BFGS run diverges is redone with Adam (same iterations), with a notice, so one
bad frame does not end a long video; the redo is as deterministic as the first try. Adam runs
warm-started frames at a quarter of ``--learning-rate``.

Resuming. Each finished frame is saved as an 8-bit PNG in a work directory (default: next to
the output, ``OUT.work``), its cache key in a PNG text chunk; ``manifest.json`` holds the run's
options. A frame's key hashes the run (options, style pixels, frame size, seed, source plan), its
content frame and, with temporal consistency, the previous frame's key, so a frame is reused only
where everything it depends on is unchanged. Every frame is computed from what a resumed run sees:
the previous output as an 8-bit image (exactly what the PNG holds) and a seed derived from the run
seed and the frame index (the run seed is ``--seed``, else 0, so re-running the same command
finds the same keys). A run with other options refuses the work directory instead of silently
mixing frames (``--restart`` discards it). The directory is removed after a successful run unless
``--keep-work``: only the frames its manifest lists as written by impasto, and the manifest; a
folder impasto did not make is refused, never adopted (:mod:`~impasto.video.cache`).

Containers. Input is anything FFmpeg (PyAV) decodes, or a folder of images. The output frame rate
is the input stream's average rate; a variable-rate input is resampled to that average (each
output frame shows the input frame on screen at its time) with a one-line notice, as ``--fps``
does on request. H.264 in yuv420p needs even sides, so frames for a video file are scaled to even
sides (a stretch of under one pixel; a folder of PNGs or a GIF keeps the exact size). Audio is
copied packet by packet, unchanged, where the output container can hold its codec (else the
output is silent, with a notice). The output is written to a temporary file and renamed.

The package, by job: :mod:`~impasto.video.options` (VideoOptions), :mod:`~impasto.video.clip`
(probing and decoding sources), :mod:`~impasto.video.frames` (the frame loop),
:mod:`~impasto.video.cache` (the resumable work directory) and :mod:`~impasto.video.sinks` (every
encoder). :func:`stylize_video`, here, ties them together.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import PIL.Image

from .. import imageio
from ..config import TransferConfig
from ..errors import ExitStatus, ImpastoError, InputError, Interrupted
from ..flow import require_cv2 as require_flow
from ..jobs.executor import ExecutorOptions, require_ray
from ..paths import Named, check_apart
from ..prepare import ImageLike, as_images, build_network, check_styles, network_on, resolve_device
from ..vgg import VGG
from .budget import check_video_memory
from .cache import (
    FrameCache,
    cached_count,
    check_work_dir,
    default_work_dir,
    remove_work_dir,
    run_identity,
)
from .chunked import StepHook, StretchFailed, paint_chunked
from .clip import FOLDER_RATE, Clip, open_clip
from .frames import FrameListener, FrameResult, frame_seed, frame_size, stylize_frames
from .options import TEMPORAL_WEIGHT, VideoOptions
from .sinks import VIDEO_FORMATS, OutputKind, Sink, check_output, open_sink, output_kind
from .workers import LocalRunner, Runner

__all__ = [
    "FOLDER_RATE",
    "TEMPORAL_WEIGHT",
    "VIDEO_FORMATS",
    "Clip",
    "FrameCache",
    "FrameResult",
    "VideoOptions",
    "VideoSummary",
    "check_output",
    "default_work_dir",
    "frame_seed",
    "frame_size",
    "open_clip",
    "output_kind",
    "require_flow",
    "stylize_frames",
    "stylize_video",
]

Notice = Callable[[str], None]


@dataclass
class VideoSummary:
    """What :func:`stylize_video` wrote."""

    output: Path
    frames: int
    reused: int
    size: tuple[int, int]
    rate: Fraction
    audio: str  # "copied", "none" or why it was left out
    seconds: float
    computed_seconds: list[float]  # wall time of each computed frame (in the order they ended)
    device: str
    notices: list[str]
    cuts: list[int] = field(default_factory=list)  # 0-based frames that begin a new shot
    workers: str = "this process"  # where the frames were painted
    chunks: int = 0  # chunks the shots were split into (0: one chain per shot)
    first_seconds: float | None = None  # the first frame's, when computed in this run

    @property
    def seconds_per_frame(self) -> float:
        """Mean wall time of the frames computed in this run after the first (reused ones
        excluded): the first starts from nothing and takes longer; the progress bar's figure."""
        done = list(self.computed_seconds)
        if self.first_seconds is not None and done:
            done = done[1:]
        return sum(done) / len(done) if done else 0.0


def stylize_video(
    source: str | os.PathLike[str] | Clip,
    styles: Sequence[ImageLike],
    output: str | os.PathLike[str],
    config: TransferConfig | None = None,
    options: VideoOptions | None = None,
    *,
    vgg: VGG | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    restart: bool = False,
    keep_work: bool = False,
    executor: ExecutorOptions | None = None,
    on_frame_start: FrameListener | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_step: StepHook | None = None,
    on_cuts: Callable[[list[int]], None] | None = None,
    notice: Notice | None = None,
) -> VideoSummary:
    """Stylise a video file (or a folder of images) into ``output``: a video (.mp4, .mov, .mkv:
    H.264; .webm: VP9), a .gif, or a folder (PNG frames). ``source`` may be a :class:`Clip` from
    :func:`open_clip` to choose a range or a frame rate. Frames are cached in ``work_dir``
    (default :func:`default_work_dir`) and reused by a re-run; the directory is removed at the end
    unless ``keep_work``. ``notice`` receives one-line remarks (resampling, audio left out, the
    scene cuts found).

    With ``options.chunk_frames``, or on Ray (``executor``), the shots are split into chunks
    painted at once (:mod:`impasto.video.chunks`); frames then finish out of order and reach
    ``on_frame`` as they do, their iterations ``on_step`` (stretch, frame, iteration,
    iterations), and the cuts ``on_cuts`` before any painting. Otherwise frames are painted in
    order, ``on_frame_start(index, iterations)`` giving each frame's step listener.

    Raises :class:`Interrupted` on Ctrl-C, naming what is kept for resuming."""
    cfg = config or TransferConfig()
    where = executor or ExecutorOptions()
    opts = (options or VideoOptions()).chunked(where.executor == "ray")
    kind = output_kind(output)
    work = Path(work_dir) if work_dir is not None else default_work_dir(output)
    inputs: list[Named] = [("the style image", s) for s in styles if isinstance(s, str | Path)]
    if not isinstance(source, Clip):
        inputs.append(("the input", source))
    outputs: list[Named] = [("the output", output), ("the work directory", work)]
    check_apart(inputs, outputs)  # before anything is read or written
    out = check_output(output, kind)
    check_work_dir(work)  # a file, or a folder impasto did not make: refused before any work
    if opts.temporal:
        require_flow()
    if where.executor == "ray":
        require_ray()
    style_imgs = as_images(styles)  # a missing style fails before any decoding
    clip = source if isinstance(source, Clip) else open_clip(source)
    check_apart([("the input", clip.path)], outputs)
    say = notice or (lambda _: None)
    for line in clip.notices:
        say(line)
    even = kind == "video"
    size = frame_size(clip.size, cfg.size, even)
    if where.executor == "ray":
        if where.ray_address is None:  # workers on this machine: its memory holds them all
            _check_local_workers(size, cfg, opts, where.workers or 1)
    elif opts.chunk_frames is not None and opts.long_term:
        check_video_memory(size, cfg, opts, resolve_device(cfg.device))
    started = time.perf_counter()
    state = _Progress(list(clip.notices), say, on_frame)
    try:
        if opts.chunk_frames is None:
            sink = open_sink(out, kind, clip.rate, clip)
            with sink:
                state.audio(sink)
                frames = stylize_frames(
                    clip.frames(), style_imgs, cfg, opts, vgg=vgg, work_dir=work, restart=restart,
                    even=even, source=clip.identity(), on_frame_start=on_frame_start,
                )  # fmt: skip
                for r in frames:
                    sink.write(r.image)
                    state.frame(r)
        else:
            state.chunks = _stylize_chunked(
                clip, style_imgs, out, kind, size, cfg, opts, where, state, vgg=vgg, work=work,
                restart=restart, on_step=on_step, on_cuts=on_cuts,
            )  # fmt: skip
    except KeyboardInterrupt:
        cached = cached_count(work)
        at = f" at frame {state.done + 1}/{len(clip)}" if opts.chunk_frames is None else ""
        raise Interrupted(
            f"interrupted{at}; {cached} finished frame(s) are kept in '{work}': run the same "
            "command again to resume"
        ) from None
    except ImpastoError as exc:
        cached = cached_count(work)
        if not cached:  # nothing to resume: no manifest is left behind to stand in the way
            with contextlib.suppress(OSError):
                remove_work_dir(work)
        elif isinstance(exc, InputError):
            raise InputError(
                f"{exc}; {cached} finished frame(s) are kept in '{work}': run the same command "
                "again to resume"
            ) from exc
        raise
    if not keep_work:
        try:
            remove_work_dir(work)
        except OSError as exc:  # the video is made: a clean-up problem is a warning, not a failure
            say(f"warning: could not remove the work directory '{work}' ({exc.strerror or exc})")
    if kind == "gif" and clip.audio is not None:
        say("audio left out: a GIF has no sound")
    audio = state.sink_audio if kind == "video" else ("none" if clip.audio is None else "left out")
    return VideoSummary(
        output=out,
        frames=state.done,
        reused=state.reused,
        size=size,
        rate=clip.rate,
        audio=audio,
        seconds=time.perf_counter() - started,
        computed_seconds=state.computed,
        device=str(resolve_device(cfg.device)),
        notices=state.notes,
        cuts=state.cuts,
        workers=state.workers,
        chunks=state.chunks,
        first_seconds=state.first,
    )


class _Progress:
    """What a run has done so far, for the summary (and the listener's calls)."""

    def __init__(
        self, notes: list[str], say: Notice, on_frame: Callable[[FrameResult], None] | None
    ) -> None:
        self.notes, self.say, self.on_frame = notes, say, on_frame
        self.done = self.reused = self.chunks = 0
        self.computed: list[float] = []
        self.cuts: list[int] = []
        self.cuts_told = False  # the cuts were found before any frame (a chunked run)
        self.sink_audio = "none"
        self.workers = "this process"
        self.first: float | None = None  # the first frame's seconds, when computed in this run

    def audio(self, sink: Sink) -> None:
        self.sink_audio = sink.audio
        if sink.audio.startswith("left out"):
            self.say(f"audio {sink.audio}")

    def note(self, line: str) -> None:
        self.notes.append(line)
        self.say(line)

    def frame(self, r: FrameResult) -> None:
        self.done += 1
        if r.cut and not self.cuts_told:
            self.cuts.append(r.index)
            if not r.reused:
                self.note(f"scene cut before frame {r.index + 1}: a new shot starts afresh")
        if r.note is not None:
            self.note(r.note)
        if r.reused:
            self.reused += 1
        elif r.index == 0:  # first in the list, whenever it ends (VideoSummary leaves it out)
            self.first = r.seconds
            self.computed.insert(0, r.seconds)
        else:
            self.computed.append(r.seconds)
        if self.on_frame is not None:
            self.on_frame(r)


def _stylize_chunked(
    clip: Clip,
    styles: list[PIL.Image.Image],
    out: Path,
    kind: OutputKind,
    size: tuple[int, int],
    cfg: TransferConfig,
    opts: VideoOptions,
    where: ExecutorOptions,
    state: _Progress,
    *,
    vgg: VGG | None,
    work: Path,
    restart: bool,
    on_step: StepHook | None,
    on_cuts: Callable[[list[int]], None] | None,
) -> int:
    """The chunked run: every frame decoded first (for the cuts and the plan), painted by a
    runner, then the output written in order. Returns the number of chunks."""
    cfg = cfg.replace(seed=cfg.seed if cfg.seed is not None else 0)
    check_styles(cfg, len(styles))
    contents = [_sized(f, size) for f in clip.frames()]
    cache = FrameCache(work, run_identity(cfg, opts, size, styles, clip.identity()),
                       restart=restart)  # fmt: skip
    runner = _runner(cfg, where, vgg)
    state.workers = runner.workers

    def heard_cuts(found: list[int]) -> None:
        state.cuts, state.cuts_told = list(found), True
        if found:
            shown = ", ".join(str(i + 1) for i in found)
            state.note(f"{len(found)} scene cut(s): new shots start at frame(s) {shown}")
        if on_cuts is not None:
            on_cuts(found)

    try:
        run = paint_chunked(
            contents, styles, cfg, opts, runner, cache, on_frame=state.frame, on_step=on_step,
            on_cuts=heard_cuts, notice=state.note,
        )  # fmt: skip
    except StretchFailed as e:
        cached = cached_count(work)
        if not cached:
            raise
        again = "run the same command again to resume"
        if e.exit_status == ExitStatus.RESOURCE:  # the same command would run out again
            again = "fewer --workers (the other options the same) resume from them"
        raise StretchFailed(
            f"{e}; {cached} finished frame(s) are kept in '{work}': {again}", e.exit_status
        ) from None
    finally:
        runner.close()
    with open_sink(out, kind, clip.rate, clip) as sink:
        state.audio(sink)
        for image in run.outputs:
            sink.write(PIL.Image.fromarray(image))
    return len(run.chunks)


def _check_local_workers(
    size: tuple[int, int], cfg: TransferConfig, opts: VideoOptions, workers: int
) -> None:
    """Refuse, before Ray starts, more CPU workers on this machine than its memory holds (on
    GPUs each worker checks its own frames as it paints them)."""
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        check_video_memory(size, cfg, opts, device, workers)


def _sized(frame: PIL.Image.Image, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    img = frame.convert("RGB")
    return np.asarray(img if img.size == size else imageio.resize_to(img, size))


def _runner(cfg: TransferConfig, where: ExecutorOptions, vgg: VGG | None) -> Runner:
    if where.executor == "ray":
        from .cluster import RayRunner

        return RayRunner(where.ray_address, where.workers, options=cfg.to_dict())
    device = resolve_device(cfg.device)
    net = network_on(vgg, device) if vgg is not None else build_network(cfg).to(device)
    return LocalRunner(net, device)
