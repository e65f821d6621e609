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

The weight λ (``--temporal-weight``, default 1e8) was chosen by measurement
(``benchmarks/bench_video.py``, BENCHMARKS.md). With α = 1, β = 1e3 the objective's gradient at a
stylised frame is about 1e4 per pixel value, and a departure of δ levels costs 2λδ/D in the
gradient, so λ of order 1e8 balances a few levels of drift against the style: on the benchmark's
pan λ = 1e7 does little beyond the warm start alone, 1e8 cuts the warping error by another third
for about 13% more style loss, and 1e9 freezes the texture (77% more style loss). The balance
scales with β: change λ with it. Later frames start next to a good solution and get fewer
iterations: ``--frame-iterations``, by default a fifth of ``--iterations`` (a tenth left 27%
more style loss than a fifth; half took 8% of it away at 2.5 times the cost); the first frame
gets them all. We differ from Ruder et al. in using only the short-term loss (no long-term or
multi-pass terms).

A frame whose L-BFGS run diverges is redone with Adam (same iterations), with a notice, so one
bad frame does not end a long video; the redo is as deterministic as the first try. Adam runs
warm-started frames at a quarter of ``--learning-rate`` (see :func:`_warm_rate`).

Resuming. Each finished frame is saved as an 8-bit PNG in a work directory (default: next to
the output, ``OUT.work``), its cache key in a PNG text chunk; ``manifest.json`` holds the run's
options. A frame's key hashes the run (options, style pixels, frame size, seed, source plan), its
content frame and, with temporal consistency, the previous frame's key, so a frame is reused only
where everything it depends on is unchanged. Every frame is computed from what a resumed run sees:
the previous output as an 8-bit image (exactly what the PNG holds) and a seed derived from the run
seed and the frame index (the run seed is ``--seed``, else 0, so re-running the same command
finds the same keys). A run with other options refuses the work directory instead of silently
mixing frames (``--restart`` discards it). The directory is removed after a successful run unless
``--keep-work``.

Containers. Input is anything FFmpeg (PyAV) decodes, or a folder of images. The output frame rate
is the input stream's average rate; a variable-rate input is resampled to that average (each
output frame shows the input frame on screen at its time) with a one-line notice, as ``--fps``
does on request. H.264 in yuv420p needs even sides, so frames for a video file are scaled to even
sides (a stretch of under one pixel; a folder of PNGs or a GIF keeps the exact size). Audio is
copied packet by packet, unchanged, where the output container can hold its codec (else the
output is silent, with a notice). The output is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import PIL.Image
import torch
from torch import Tensor

from . import color, imageio
from .config import TransferConfig, _opt
from .errors import DivergedError, ExitStatus, InputError, Interrupted, UsageError
from .flow import FLOW_METHODS, FlowMethod
from .optimize import ImageLike, Step, Transfer, build_network, resolve_device

if TYPE_CHECKING:
    from .vgg import VGG

__all__ = [
    "TEMPORAL_WEIGHT",
    "VIDEO_FORMATS",
    "Clip",
    "FrameResult",
    "VideoOptions",
    "VideoSummary",
    "open_clip",
    "stylize_frames",
    "stylize_video",
    "video_command",
]

TEMPORAL_WEIGHT = 1e8
"""Default λ of the temporal loss (see the module docstring and BENCHMARKS.md)."""

FRAME_ITERATIONS_FRACTION = 5
"""Frames after the first get ``iterations // FRAME_ITERATIONS_FRACTION`` iterations by default."""

FOLDER_RATE = Fraction(24)
"""Frame rate of a folder of images when ``--fps`` does not say."""

# Output extension -> (FFmpeg container, codecs to try in order). GIF goes through animate.py.
VIDEO_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "mpeg4")),
    ".m4v": ("mp4", ("libx264", "mpeg4")),
    ".mov": ("mov", ("libx264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
}
_GIF = ".gif"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_CACHE_FORMAT = "impasto-video-cache/1"
_MANIFEST = "manifest.json"
_KEY_FIELD = "impasto:frame-key"
# Options that change no pixel of a frame: left out of the cache key.
_KEYLESS = ("device", "max_memory")

FrameLike = ImageLike | npt.NDArray[np.uint8]
FrameListener = Callable[[int, int], Callable[[Step], None] | None]
Notice = Callable[[str], None]


# --- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoOptions:
    """How frames are tied together; the transfer itself is set by :class:`TransferConfig`."""

    temporal: bool = _opt(
        True,
        "temporal consistency: start each frame from the previous output warped by optical flow "
        "and penalise departures from it (--no-temporal: each frame on its own, the naive method)",
    )
    temporal_weight: float = _opt(
        TEMPORAL_WEIGHT,
        "λ, weight of the temporal loss λ·mean(c·(x − warped previous)²) in pixel levels²",
    )
    frame_iterations: int | None = _opt(
        None,
        f"iterations of each frame after the first (default: --iterations/"
        f"{FRAME_ITERATIONS_FRACTION}); --no-temporal gives every frame --iterations",
    )
    flow: FlowMethod = _opt("dis", "optical flow: dis (fast) or farneback (smoother, slower)")

    def __post_init__(self) -> None:
        if not math.isfinite(self.temporal_weight) or self.temporal_weight < 0:
            raise UsageError(
                f"--temporal-weight must be a finite number >= 0, not {self.temporal_weight}"
            )
        if self.frame_iterations is not None and self.frame_iterations < 1:
            raise UsageError(f"--frame-iterations must be at least 1, not {self.frame_iterations}")
        if self.flow not in FLOW_METHODS:
            raise UsageError(f"--flow {self.flow!r} is not valid; choose from dis, farneback")

    def iterations(self, index: int, config: TransferConfig) -> int:
        """Iterations of frame ``index``: all for the first frame and in naive mode."""
        if index == 0 or not self.temporal:
            return config.iterations
        if self.frame_iterations is not None:
            return self.frame_iterations
        return max(1, config.iterations // FRAME_ITERATIONS_FRACTION)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- results ------------------------------------------------------------------------------------


@dataclass
class FrameResult:
    """One stylised frame, as :func:`stylize_frames` yields it."""

    index: int  # 0-based
    image: PIL.Image.Image
    reused: bool  # read from the work directory, not computed
    iterations: int  # run for this frame (0 when reused)
    seconds: float  # wall time for this frame, flow included
    loss: float | None = None  # final objective (temporal term included); None when reused
    coverage: float | None = None  # share of pixels the temporal loss holds (c = 1)
    note: str | None = None  # something the user should hear about (a redone frame)


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
    computed_seconds: list[float]  # wall time of each computed frame, in order
    device: str
    notices: list[str]

    @property
    def seconds_per_frame(self) -> float:
        """Mean wall time of the frames computed in this run (reused ones excluded)."""
        done = self.computed_seconds
        return sum(done) / len(done) if done else 0.0


# --- frames in, frames out ----------------------------------------------------------------------


def frame_seed(seed: int, index: int) -> int:
    """The seed of frame ``index``: fixed by the run seed, different for every frame."""
    digest = hashlib.sha256(f"impasto-frame:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def frame_size(size: tuple[int, int], longest: int, even: bool = False) -> tuple[int, int]:
    """The (W, H) frames are stylised at: scaled down so the longer side is at most
    ``longest`` (never up, except to VGG's 16 pixels), and with ``even`` rounded down to even
    sides for yuv420p."""
    bound = max(16, min(longest, max(size)))
    w, h = imageio.fit_longest(size, bound)
    if even:
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return w, h


def _as_frame(frame: FrameLike) -> PIL.Image.Image:
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise UsageError(
                f"a frame array must be uint8 (H, W, 3) or (H, W), not {frame.dtype} {frame.shape}"
            )
        return imageio.load_image(PIL.Image.fromarray(np.ascontiguousarray(frame)))
    if isinstance(frame, Tensor):
        return imageio.to_image(frame)
    return imageio.load_image(frame)


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _pixels_hash(img: PIL.Image.Image) -> str:
    return _sha(f"{img.size}", np.asarray(img.convert("RGB")).tobytes())


class FrameCache:
    """Stylised frames on disk: ``frame_000001.png``... (1-based) and ``manifest.json``.

    The manifest records the run (everything a frame depends on but its content frame); a folder
    holding another run's frames is refused unless ``restart``, which empties it first. Each PNG
    carries its frame's key, so a frame and its key are written in one atomic rename."""

    def __init__(self, folder: Path, run: Mapping[str, Any], *, restart: bool = False) -> None:
        self.folder = folder
        self.run = json.loads(json.dumps(run, sort_keys=True, default=str))  # plain JSON values
        self.key = _sha(json.dumps(self.run, sort_keys=True))
        manifest = folder / _MANIFEST
        old = self._read_manifest(manifest)
        if old is not None and old.get("key") != self.key:
            if not restart:
                frames = len(self._frame_files())
                raise UsageError(
                    f"work directory '{folder}' holds {frames} frame(s) of a run with other "
                    f"settings ({_differences(old.get('run'), self.run)}); pass --restart to "
                    "discard them, or choose another --work-dir"
                )
            self.clear()
            old = None
        if old is None:
            body = {"format": _CACHE_FORMAT, "key": self.key, "run": self.run}
            with imageio.atomic_write(manifest) as f:
                f.write(json.dumps(body, indent=1, sort_keys=True).encode())

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"key": None}  # unreadable: treated as another run's
        return data if isinstance(data, dict) else {"key": None}

    def _frame_files(self) -> list[Path]:
        return sorted(self.folder.glob("frame_*.png")) if self.folder.is_dir() else []

    def path(self, index: int) -> Path:
        return self.folder / f"frame_{index + 1:06d}.png"

    def frame_key(self, index: int, content: PIL.Image.Image, previous: str | None) -> str:
        return _sha(self.key, str(index), _pixels_hash(content), previous or "")

    def get(self, index: int, key: str) -> PIL.Image.Image | None:
        """The cached frame when its stored key is ``key``; None when absent, stale or broken."""
        p = self.path(index)
        if not p.is_file():
            return None
        try:
            if imageio.read_metadata(p).get(_KEY_FIELD) != key:
                return None
            return imageio.load_image(p)
        except InputError:
            return None

    def put(self, index: int, key: str, image: PIL.Image.Image) -> None:
        imageio.save_image(image, self.path(index), metadata={_KEY_FIELD: key})

    def clear(self) -> None:
        for p in self._frame_files():
            p.unlink(missing_ok=True)
        (self.folder / _MANIFEST).unlink(missing_ok=True)


def _differences(old: object, new: Mapping[str, Any]) -> str:
    if not isinstance(old, dict):
        return "unreadable manifest"
    names: list[str] = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            names += [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            names.append(section)
    return "differs in " + ", ".join(names[:6]) if names else "another version"


def _load_styles(styles: Sequence[ImageLike]) -> list[PIL.Image.Image]:
    return [imageio.to_image(s) if isinstance(s, Tensor) else imageio.load_image(s) for s in styles]


def stylize_frames(
    frames: Iterable[FrameLike],
    styles: Sequence[ImageLike],
    config: TransferConfig | None = None,
    options: VideoOptions | None = None,
    *,
    vgg: VGG | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    restart: bool = False,
    even: bool = False,
    source: Mapping[str, Any] | None = None,
    on_frame_start: FrameListener | None = None,
) -> Iterator[FrameResult]:
    """Stylise ``frames`` one by one, yielding each result as soon as it is done.

    ``frames`` may be any iterable (a decoded video, a folder's images, a webcam): PIL images,
    uint8 arrays (H, W, 3) or RGB tensors in [0, 1]. Every frame is scaled to the first one's
    size, bounded by ``config.size`` (see :func:`frame_size`). With ``work_dir``, finished frames
    are cached there and reused by a later call with the same inputs and options (``source``
    adds anything else that identifies the frames, e.g. the clip's frame plan).
    ``on_frame_start(index, iterations)`` may return an ``on_step`` listener for that frame.

    Ctrl-C (or a listener raising :class:`KeyboardInterrupt`) stops the iteration with
    KeyboardInterrupt; frames already yielded stay cached.

    >>> for r in stylize_frames(webcam(), ["starry_night.jpg"], TransferConfig(size=256)):
    ...     show(r.image)
    """
    cfg = config or TransferConfig()
    opts = options or VideoOptions()
    seed = cfg.seed if cfg.seed is not None else 0
    cfg = cfg.replace(seed=seed)
    style_imgs = _load_styles(styles)
    if not style_imgs and cfg.style_weight > 0:
        raise UsageError("give at least one style image")
    device = resolve_device(cfg.device)
    net = vgg
    cache: FrameCache | None = None
    size: tuple[int, int] | None = None
    prev_content: PIL.Image.Image | None = None
    prev_out: PIL.Image.Image | None = None
    prev_key: str | None = None
    for index, raw in enumerate(frames):
        start = time.perf_counter()
        frame = _as_frame(raw)
        if size is None:
            size = frame_size(frame.size, cfg.size, even)
            if work_dir is not None:
                cache = FrameCache(
                    Path(work_dir),
                    _run_identity(cfg, opts, size, style_imgs, source),
                    restart=restart,
                )
        content = frame if frame.size == size else imageio.resize_to(frame, size)
        key = None
        if cache is not None:
            key = cache.frame_key(index, content, prev_key if opts.temporal else None)
            cached = cache.get(index, key)
            if cached is not None:
                prev_content, prev_out, prev_key = content, cached, key
                yield FrameResult(index, cached, True, 0, time.perf_counter() - start)
                continue
        if net is None:
            net = build_network(cfg)
        iterations = opts.iterations(index, cfg)
        frame_cfg = cfg.replace(size=max(size), iterations=iterations, seed=frame_seed(seed, index))
        init: PIL.Image.Image | None = None
        extra: Callable[[Tensor], Tensor] | None = None
        coverage: float | None = None
        if opts.temporal and prev_out is not None and prev_content is not None:
            # Coarse-to-fine stages would restart from the content image; a warm start needs none.
            frame_cfg = frame_cfg.replace(scales="one", learning_rate=_warm_rate(cfg))
            init, extra, coverage = _temporal_term(
                prev_content, content, prev_out, opts, frame_cfg, device
            )
        note = None
        try:
            listener = on_frame_start(index, iterations) if on_frame_start else None
            transfer = Transfer(
                content, style_imgs, frame_cfg, vgg=net, init=init, extra_loss=extra
            )
            result = transfer.run(on_step=listener)
        except DivergedError as exc:
            if frame_cfg.optimizer != "lbfgs":
                raise
            # L-BFGS without a line search can overshoot on a frame; one such frame should not
            # end a long video. The redo is as deterministic as the first try (resuming holds).
            note = f"frame {index + 1}: {exc}; redone with Adam"
            frame_cfg = frame_cfg.replace(optimizer="adam")
            listener = on_frame_start(index, iterations) if on_frame_start else None
            transfer = Transfer(
                content, style_imgs, frame_cfg, vgg=net, init=init, extra_loss=extra
            )
            result = transfer.run(on_step=listener)
        if result.interrupted:
            raise KeyboardInterrupt
        if cache is not None and key is not None:
            cache.put(index, key, result.image)
        prev_content, prev_out, prev_key = content, result.image, key
        yield FrameResult(
            index,
            result.image,
            False,
            result.iterations,
            time.perf_counter() - start,
            result.final_loss,
            coverage,
            note,
        )


def _warm_rate(cfg: TransferConfig) -> float:
    """Adam's step size for a frame that starts from the previous output. Adam's first steps
    move every pixel by about the learning rate whatever the gradient, which from a warm start
    undoes much of it (measured: at 8 levels the objective first rises 70%); a quarter of it
    descends from the first step."""
    return cfg.learning_rate / 4


def _run_identity(
    cfg: TransferConfig,
    opts: VideoOptions,
    size: tuple[int, int],
    styles: Sequence[PIL.Image.Image],
    source: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Everything every frame depends on, apart from the content frames themselves."""
    options = {k: v for k, v in cfg.to_dict().items() if k not in _KEYLESS}
    video = opts.to_dict()
    video["frame_iterations"] = opts.iterations(1, cfg)  # the effective number
    return {
        "format": _CACHE_FORMAT,
        "options": options,
        "video": video,
        "frame_size": list(size),
        "styles": [_pixels_hash(s) for s in styles],
        "source": dict(source or {}),
    }


def _temporal_term(
    prev_content: PIL.Image.Image,
    content: PIL.Image.Image,
    prev_out: PIL.Image.Image,
    opts: VideoOptions,
    cfg: TransferConfig,
    device: torch.device,
) -> tuple[PIL.Image.Image, Callable[[Tensor], Tensor], float]:
    """The warm start, the temporal loss and the share of pixels it holds, for one frame."""
    from . import flow

    a, b = np.asarray(prev_content), np.asarray(content)
    backward = flow.optical_flow(b, a, opts.flow)  # frame k -> k-1: where to fetch from
    forward = flow.optical_flow(a, b, opts.flow)
    weight = flow.consistency(backward, forward)  # (H, W)
    warped = flow.warp(np.asarray(prev_out), backward)  # (H, W, 3) float32 in [0, 255]
    start = PIL.Image.fromarray(np.clip(np.rint(warped), 0, 255).astype(np.uint8))
    target = flow.to_tensor(warped, device)  # (1, 3, H, W)
    if cfg.preserve_colors == "luminance":
        target = color.luminance_only(target)  # the iterate is grey in this mode
    c = flow.to_tensor(weight, device)  # (1, 1, H, W)
    lam = opts.temporal_weight

    def temporal(x: Tensor) -> Tensor:
        return lam * flow.temporal_loss(x, target.to(x.dtype), c.to(x.dtype))

    return start, temporal, float(weight.mean())


# --- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """A source (video file or folder of images) and which of its frames the output shows.

    Open one with :func:`open_clip`; :meth:`frames` decodes the planned frames lazily."""

    path: Path
    kind: Literal["video", "folder"]
    size: tuple[int, int]  # (W, H) as displayed (rotation applied)
    rate: Fraction  # of the output
    plan: tuple[int, ...]  # source frame (presentation order) of each output frame
    origin: float  # seconds on the source's clock at which the output starts (for the audio)
    files: tuple[Path, ...] = ()  # a folder's images, in order
    audio: str | None = None  # the audio codec, when there is an audio stream
    rotation: int = 0  # degrees counter-clockwise that display the decoded frames upright
    notices: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.plan)

    @property
    def duration(self) -> float:
        return len(self.plan) / float(self.rate)

    def identity(self) -> dict[str, str]:
        """What fixes the frames besides their pixels: part of every cache key."""
        return {"plan": _sha(",".join(map(str, self.plan))), "rate": str(self.rate)}

    def frames(self) -> Iterator[PIL.Image.Image]:
        """The output's content frames in order (a source frame repeats or is skipped where the
        plan resamples)."""
        counts: dict[int, int] = {}
        for j in self.plan:
            counts[j] = counts.get(j, 0) + 1
        last = self.plan[-1]
        if self.kind == "folder":
            for j in sorted(counts):
                img = imageio.load_image(self.files[j])
                yield from [img] * counts[j]
            return
        for j, img in enumerate(_decode(self.path, self.rotation)):
            yield from [img] * counts.get(j, 0)
            if j >= last:
                return


def _decode(path: Path, rotation: int) -> Iterator[PIL.Image.Image]:
    """Every frame of the first video stream, in presentation order, upright."""
    import av

    name = str(path)
    try:
        with av.open(name) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                arr = np.asarray(frame.to_ndarray(format="rgb24"))  # (H, W, 3) uint8
                if rotation:
                    arr = np.ascontiguousarray(np.rot90(arr, k=rotation // 90))
                yield PIL.Image.fromarray(arr)
    except av.FFmpegError as exc:
        raise InputError(f"cannot decode '{name}': {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class _Probe:
    """What a source holds, before any range or rate is applied."""

    kind: Literal["video", "folder"]
    size: tuple[int, int]
    times: list[float]  # seconds from the first frame, presentation order
    rate: Fraction  # average
    start: float = 0.0  # the first frame's time on the source's clock
    files: tuple[Path, ...] = ()
    audio: str | None = None
    rotation: int = 0


def open_clip(
    path: str | os.PathLike[str],
    *,
    start: float | None = None,
    end: float | None = None,
    frames: tuple[int | None, int | None] | None = None,
    fps: float | Fraction | None = None,
) -> Clip:
    """Probe a video file (or a folder of images) and plan the output's frames.

    ``start``/``end`` are seconds from the first frame; ``frames`` a (first, stop) slice of the
    frames left after that (0-based, stop excluded); ``fps`` resamples to that rate. A variable
    frame rate is resampled to the stream's average rate, with a notice. A folder of images has
    ``fps`` frames per second (default 24) and is never resampled. Problems with the file are
    :class:`InputError`; impossible options are :class:`UsageError`."""
    p = Path(path)
    if start is not None and (not math.isfinite(start) or start < 0):
        raise UsageError(f"--start must be a number of seconds >= 0, not {start}")
    if end is not None and (not math.isfinite(end) or end <= (start or 0.0)):
        raise UsageError(f"--end must be a time after --start, not {end}")
    rate_out: Fraction | None = None
    if fps is not None:
        if not (math.isfinite(fps) and fps > 0):
            raise UsageError(f"--fps must be a positive number, not {fps}")
        rate_out = Fraction(fps).limit_denominator(1001)
    probe = _probe_folder(p, rate_out) if p.is_dir() else _probe_video(p)
    notices: list[str] = []
    if probe.kind == "folder":
        rate_out = None  # the folder's rate is --fps itself
    elif rate_out is None and _variable(probe.times, probe.rate):
        rate_out = probe.rate
        notices.append(
            f"'{p}' has a variable frame rate; resampled to its average {float(rate_out):.4g} "
            "fps (each output frame shows the input frame on screen at its time)"
        )
    t0 = start or 0.0
    plan = _plan(probe.times, probe.rate, t0, end, rate_out)
    if frames is not None:
        kept = range(len(plan))[slice(*frames)]
        plan = [plan[i] for i in kept]
        if rate_out is not None and kept:
            t0 += kept[0] / float(rate_out)
    if not plan:
        raise UsageError(f"the frames asked for are not in '{p}' ({len(probe.times)} frames)")
    origin = t0 if rate_out is not None else probe.times[plan[0]]
    return Clip(
        path=p,
        kind=probe.kind,
        size=probe.size,
        rate=rate_out or probe.rate,
        plan=tuple(plan),
        origin=probe.start + origin,
        files=probe.files,
        audio=probe.audio,
        rotation=probe.rotation,
        notices=tuple(notices),
    )


def _plan(
    times: Sequence[float],
    rate: Fraction,
    start: float,
    end: float | None,
    rate_out: Fraction | None,
) -> list[int]:
    """Source frame of each output frame. Without ``rate_out`` every frame whose time lies in
    [start, end) is kept once; with it, output frame i at time start + i/rate_out shows the last
    source frame that began at or before then."""
    eps = 1e-6
    if rate_out is None:
        return [
            j for j, t in enumerate(times) if t >= start - eps and (end is None or t < end - eps)
        ]
    stop = times[-1] + 1.0 / float(rate)  # the last frame stays up one average frame time
    if end is not None:
        stop = min(stop, end)
    plan: list[int] = []
    i = 0
    while (t := start + i / float(rate_out)) < stop - eps:
        plan.append(max(0, bisect.bisect_right(times, t + eps) - 1))
        i += 1
    return plan


def _variable(times: Sequence[float], rate: Fraction) -> bool:
    """True when some frame interval departs from 1/rate by more than a quarter of it
    (timestamp rounding is far smaller; a dropped frame or a 30/15 fps switch is not)."""
    nominal = 1.0 / float(rate)
    return any(abs(b - a - nominal) > 0.25 * nominal for a, b in itertools.pairwise(times))


def _natural(p: Path) -> list[str | int]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _probe_folder(folder: Path, rate: Fraction | None) -> _Probe:
    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file()),
        key=_natural,
    )
    if not files:
        raise InputError(f"'{folder}' holds no image files ({', '.join(_IMAGE_SUFFIXES)})")
    first = imageio.load_image(files[0])  # fails early on a broken first frame
    r = rate or FOLDER_RATE
    times = [j / float(r) for j in range(len(files))]
    return _Probe("folder", first.size, times, r, files=tuple(files))


def _probe_video(path: Path) -> _Probe:
    """Demux without decoding to learn every frame's time; decode one frame to learn that the
    codec works and how the frames are rotated."""
    import av

    name = str(path)
    if not path.exists():
        raise InputError(f"cannot read video '{name}': file not found")
    if path.stat().st_size == 0:
        raise InputError(f"cannot read video '{name}': the file is empty")
    try:
        container = av.open(name)
    except av.FFmpegError as exc:
        raise InputError(f"'{name}' is not a video file FFmpeg can read") from exc
    except OSError as exc:
        raise InputError(f"cannot read video '{name}': {exc.strerror or exc}") from exc
    with container:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise InputError(f"'{name}' is a still image, not a video; use 'impasto transfer'")
        if not container.streams.video:
            raise InputError(f"'{name}' has no video (no video stream, or an empty one)")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        tb = stream.time_base or Fraction(1)
        stamps: list[int] = []
        missing = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                if packet.pts is None:
                    missing += 1
                else:
                    stamps.append(packet.pts)
        except av.FFmpegError as exc:
            raise InputError(f"'{name}' is truncated or corrupt ({_first_line(exc)})") from exc
        if not stamps and not missing:
            raise InputError(f"'{name}' has no video frames")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate
    rotation, size = _first_frame(path, codec)
    count = len(stamps) + missing
    if missing or count < 2 or max(stamps) == min(stamps):
        # No timestamps to go by: take the frames as evenly spaced.
        r = Fraction(rate).limit_denominator(1001) if rate else FOLDER_RATE
        return _Probe(
            "video", size, [j / float(r) for j in range(count)], r, 0.0, (), audio, rotation
        )
    stamps.sort()
    times = [float((s - stamps[0]) * tb) for s in stamps]
    if not rate or rate <= 0:
        rate = Fraction(count - 1) / Fraction(times[-1]).limit_denominator(1_000_000)
    r = Fraction(rate).limit_denominator(1001)
    return _Probe("video", size, times, r, float(stamps[0] * tb), (), audio, rotation)


def _first_frame(path: Path, codec: str) -> tuple[int, tuple[int, int]]:
    """(rotation, displayed size) from the first decoded frame."""
    import av

    name = str(path)
    try:
        with av.open(name) as container:
            for frame in container.decode(container.streams.video[0]):
                rotation = (round(frame.rotation / 90) * 90) % 360
                w, h = frame.width, frame.height
                return rotation, ((h, w) if rotation % 180 else (w, h))
    except av.FFmpegError as exc:
        raise InputError(
            f"cannot decode the video of '{name}' (codec {codec}): {_first_line(exc)}"
        ) from exc
    raise InputError(f"'{name}' has no decodable video frames (codec {codec})")


# --- sinks --------------------------------------------------------------------------------------

OutputKind = Literal["video", "gif", "folder"]


def output_kind(path: str | os.PathLike[str]) -> OutputKind:
    """A folder (no extension, a trailing slash or an existing directory), a GIF or a video."""
    name = os.fspath(path)
    p = Path(name)
    if name.endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return "folder"
    suffix = p.suffix.lower()
    if suffix == _GIF:
        return "gif"
    if suffix in VIDEO_FORMATS:
        return "video"
    raise UsageError(
        f"unsupported output type '{p.suffix}' for '{name}'; use .mp4, .mov, .mkv, .webm, .gif "
        "or a folder (for PNG frames)"
    )


def _check_output(path: str | os.PathLike[str], kind: OutputKind) -> Path:
    if kind != "folder":
        return imageio.check_writable(path, (*VIDEO_FORMATS, _GIF), "video")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"cannot write frames into '{p}': it is a file")
    folder = p
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write '{p}': no permission to write in '{folder}'")
    return p


class _Sink:
    """Where frames go: a context manager whose ``write`` takes one frame at a time. On an
    exception (Ctrl-C included) nothing is left where the output goes, for a file."""

    audio = "none"

    def __enter__(self) -> _Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def write(self, image: PIL.Image.Image) -> None:
        raise NotImplementedError


class _FolderSink(_Sink):
    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0

    def write(self, image: PIL.Image.Image) -> None:
        self.count += 1
        imageio.save_image(image, self.folder / f"frame_{self.count:06d}.png")


class _GifSink(_Sink):
    def __init__(self, path: Path, rate: Fraction) -> None:
        self.path, self.rate = path, rate
        self.frames: list[PIL.Image.Image] = []

    def write(self, image: PIL.Image.Image) -> None:
        self.frames.append(image)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            from . import animate

            animate.save_animation(self.frames, self.path, fps=float(self.rate))


class _VideoSink(_Sink):
    """Encodes frames as they come into a hidden temp file, copying the source's audio packets
    alongside (interleaved by time); renamed over the output only when all went well."""

    def __init__(self, path: Path, clip: Clip | None, rate: Fraction) -> None:
        self.path, self.clip, self.rate = path, clip, rate
        self.count = 0
        self._stack = contextlib.ExitStack()
        self._audio: Iterator[tuple[float, Any]] | None = None
        self._pending: tuple[float, Any] | None = None

    def __enter__(self) -> _VideoSink:
        import av

        fmt, codecs = VIDEO_FORMATS[self.path.suffix.lower()]
        codec = _available(codecs)
        audio_in = self._audio_source(fmt)
        try:
            if audio_in is not None:
                self._stack.enter_context(audio_in[0])
            f = self._stack.enter_context(imageio.atomic_write(self.path))
            with self._errors():
                out = self._stack.enter_context(av.open(f, mode="w", format=fmt))
                stream = out.add_stream(codec, rate=self.rate)
                assert isinstance(stream, av.VideoStream)  # narrows the type: codec is a str
                self._out, self._stream = out, stream
                if audio_in is not None:
                    source, in_stream = audio_in
                    out_audio = out.add_stream_from_template(in_stream)
                    self._audio = self._audio_packets(source, in_stream, out_audio)
        except BaseException:
            self._stack.close()
            raise
        return self

    def _open_stream(self, size: tuple[int, int]) -> None:
        stream = self._stream
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if stream.codec_context.name == "libx264":
            stream.options = {"crf": "18"}  # visually lossless: the textures are the point
        elif stream.codec_context.name.startswith("libvpx"):
            stream.options = {"crf": "24", "b": "0"}
        else:
            w, h = size
            stream.bit_rate = max(1_000_000, int(w * h * float(self.rate) * 0.5))

    def _audio_source(self, fmt: str) -> tuple[Any, Any] | None:
        """The source container and its audio stream, when its codec fits ``fmt``."""
        import av

        clip = self.clip
        if clip is None or clip.kind != "video" or clip.audio is None:
            return None
        source = av.open(str(clip.path))
        in_stream = source.streams.audio[0]
        if not _fits(fmt, in_stream):
            source.close()
            self.audio = f"left out: {clip.audio} audio cannot go into {self.path.suffix} unchanged"
            return None
        self.audio = "copied"
        return source, in_stream

    def _audio_packets(
        self, source: Any, in_stream: Any, out_stream: Any
    ) -> Iterator[tuple[float, Any]]:
        """(output time, packet) of every source audio packet that overlaps the output."""
        assert self.clip is not None
        tb = in_stream.time_base
        origin, duration = self.clip.origin, self.clip.duration
        shift = round(Fraction(origin) / tb)
        for packet in source.demux(in_stream):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * tb) - origin
            if t + float((packet.duration or 0) * tb) < -1e-9:
                continue  # ends before the output starts
            if t >= duration:
                return
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = out_stream
            yield t, packet

    def _mux_audio(self, until: float) -> None:
        while self._audio is not None:
            if self._pending is None:
                self._pending = next(self._audio, None)
                if self._pending is None:
                    self._audio = None
                    return
            t, packet = self._pending
            if t >= until:
                return
            self._out.mux(packet)
            self._pending = None

    def write(self, image: PIL.Image.Image) -> None:
        import av

        with self._errors():
            if self.count == 0:
                self._open_stream(image.size)
            rgb = np.asarray(image.convert("RGB"))  # (H, W, 3)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = self.count  # in 1/rate: the encoder's time base
            self.count += 1
            self._mux_audio(self.count / float(self.rate))
            for packet in self._stream.encode(frame):
                self._out.mux(packet)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """FFmpeg's own errors (a full disk, say) as one-line InputErrors."""
        import av

        try:
            yield
        except av.FFmpegError as exc:
            raise InputError(f"cannot write '{self.path}': {_first_line(exc)}") from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                with self._errors():
                    for packet in self._stream.encode():  # flush the encoder's delayed frames
                        self._out.mux(packet)
                    self._mux_audio(math.inf)
            except BaseException:
                if not self._stack.__exit__(*sys.exc_info()):
                    raise
                return
        self._stack.__exit__(exc_type, exc, tb)


def _available(codecs: Sequence[str]) -> str:
    import av

    for name in codecs:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # built without it (UnknownCodecError, ValueError)
            continue
        return name
    raise UsageError(f"this FFmpeg build has none of the encoders {', '.join(codecs)}")


def _fits(fmt: str, stream: Any) -> bool:
    """Whether packets of ``stream``'s codec can be muxed into container ``fmt`` unchanged."""
    import io

    import av

    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True


# --- files in, file out -------------------------------------------------------------------------


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output (``frames.work`` for a folder ``frames/``)."""
    p = Path(os.fspath(output).rstrip("/" + os.sep) or ".")
    return p.with_name(p.name + ".work")


def remove_work_dir(folder: Path) -> None:
    """Delete the frames and manifest a run cached in ``folder``, and the folder when empty."""
    for p in folder.glob("frame_*.png") if folder.is_dir() else ():
        p.unlink(missing_ok=True)
    (folder / _MANIFEST).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _cached_count(folder: Path) -> int:
    return len(list(folder.glob("frame_*.png"))) if folder.is_dir() else 0


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
    on_frame_start: FrameListener | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    notice: Notice | None = None,
) -> VideoSummary:
    """Stylise a video file (or a folder of images) into ``output``: a video (.mp4, .mov, .mkv:
    H.264; .webm: VP9), a .gif, or a folder (PNG frames). ``source`` may be a :class:`Clip` from
    :func:`open_clip` to choose a range or a frame rate. Frames are cached in ``work_dir``
    (default :func:`default_work_dir`) and reused by a re-run; the directory is removed at the end
    unless ``keep_work``. ``notice`` receives one-line remarks (resampling, audio left out).

    Raises :class:`Interrupted` on Ctrl-C, naming what is kept for resuming."""
    cfg = config or TransferConfig()
    opts = options or VideoOptions()
    kind = output_kind(output)
    out = _check_output(output, kind)
    if opts.temporal:
        from .flow import require_cv2

        require_cv2()
    style_imgs = _load_styles(styles)  # a missing style fails before any decoding
    clip = source if isinstance(source, Clip) else open_clip(source)
    if out.resolve() == clip.path.resolve():
        raise UsageError(f"the output '{output}' would overwrite the input")
    say = notice or (lambda _: None)
    for line in clip.notices:
        say(line)
    work = Path(work_dir) if work_dir is not None else default_work_dir(out)
    if kind == "folder" and work.resolve() == out.resolve():
        raise UsageError("the work directory must not be the output folder; pick another one")
    even = kind == "video"
    size = frame_size(clip.size, cfg.size, even)
    sink: _Sink
    if kind == "video":
        sink = _VideoSink(out, clip, clip.rate)
    elif kind == "gif":
        sink = _GifSink(out, clip.rate)
    else:
        sink = _FolderSink(out)
    started = time.perf_counter()
    computed: list[float] = []
    notes = list(clip.notices)
    done = reused = 0
    try:
        with sink:
            if sink.audio.startswith("left out"):
                say(f"audio {sink.audio}")
            for r in stylize_frames(
                clip.frames(),
                style_imgs,
                cfg,
                opts,
                vgg=vgg,
                work_dir=work,
                restart=restart,
                even=even,
                source=clip.identity(),
                on_frame_start=on_frame_start,
            ):
                sink.write(r.image)
                done += 1
                if r.note is not None:
                    notes.append(r.note)
                    say(r.note)
                if r.reused:
                    reused += 1
                else:
                    computed.append(r.seconds)
                if on_frame is not None:
                    on_frame(r)
    except KeyboardInterrupt:
        cached = _cached_count(work)
        raise Interrupted(
            f"interrupted at frame {done + 1}/{len(clip)}; {cached} finished frame(s) are kept in "
            f"'{work}': run the same command again to resume"
        ) from None
    except InputError as exc:
        cached = _cached_count(work)
        if cached:
            raise InputError(
                f"{exc}; {cached} finished frame(s) are kept in '{work}': run the same command "
                "again to resume"
            ) from exc
        raise
    if not keep_work:
        remove_work_dir(work)
    if kind == "gif" and clip.audio is not None:
        say("audio left out: a GIF has no sound")
    audio = sink.audio if kind == "video" else ("none" if clip.audio is None else "left out")
    return VideoSummary(
        output=out,
        frames=done,
        reused=reused,
        size=size,
        rate=clip.rate,
        audio=audio,
        seconds=time.perf_counter() - started,
        computed_seconds=computed,
        device=str(resolve_device(cfg.device)),
        notices=notes,
    )


# --- the command --------------------------------------------------------------------------------


def video_command(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``impasto video`` (called by :func:`impasto.cli.build_parser`)."""
    from .cli import _add_common, add_config_options

    v = sub.add_parser(
        "video",
        help="stylise a video (or a folder of frames), kept steady by optical flow",
        description="Stylise every frame of INPUT in the style of STYLE. Each frame starts from "
        "the previous output warped by optical flow, and a temporal loss keeps it there except "
        "where things appear (Ruder et al. 2016); --no-temporal stylises each frame on its own. "
        "Finished frames are cached, so re-running the same command after a crash or Ctrl-C "
        "resumes (--seed defaults to 0 here, so that a re-run finds them).",
        allow_abbrev=False,
    )
    v.add_argument("input", metavar="INPUT", help="video file (anything FFmpeg reads) or a folder")
    v.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s) (painting)")
    v.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help=".mp4, .mov or .mkv (H.264), .webm (VP9), .gif, or a folder for PNG frames",
    )
    g = v.add_argument_group("which frames")
    g.add_argument("--start", type=_seconds, default=None, metavar="TIME", help="begin at TIME "
                   "(seconds, or M:SS) from the first frame (default: the beginning)")  # fmt: skip
    g.add_argument("--end", type=_seconds, default=None, metavar="TIME",
                   help="stop before TIME (default: the end)")  # fmt: skip
    g.add_argument("--frames", type=_frame_range, default=None, metavar="[A]:B",
                   help="only frames A (0-based, default 0) to B-1 of those left by --start/--end; "
                   "N alone means the first N")  # fmt: skip
    g.add_argument("--fps", type=float, default=None, metavar="RATE",
                   help="resample to RATE frames per second (default: the input's average rate; "
                   f"a folder of images: {FOLDER_RATE})")  # fmt: skip
    add_config_options(v.add_argument_group("temporal consistency"), VideoOptions)
    r = v.add_argument_group("resuming")
    r.add_argument("--work-dir", default=None, metavar="DIR",
                   help="cache of finished frames (default: OUT.work beside OUT)")  # fmt: skip
    r.add_argument("--restart", action="store_true",
                   help="discard frames cached by a run with other settings")  # fmt: skip
    r.add_argument("--keep-work", action="store_true",
                   help="keep the work directory after a successful run")  # fmt: skip
    add_config_options(v)
    _add_common(v)
    v.set_defaults(run=_run_video)


def _seconds(text: str) -> float:
    """``12.5``, ``1:02.5`` or ``1:00:02`` as seconds."""
    try:
        value = 0.0
        for part in text.strip().split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time (seconds or M:SS)") from None
    return value


def _frame_range(text: str) -> tuple[int | None, int | None]:
    try:
        if ":" not in text:
            return (None, int(text))
        a, b = text.split(":", 1)
        return (int(a) if a.strip() else None, int(b) if b.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a frame range (A:B or N)") from None


def video_options_from_args(ns: argparse.Namespace) -> VideoOptions:
    given = {f.name: getattr(ns, f.name, None) for f in fields(VideoOptions)}
    return VideoOptions(**{k: v for k, v in given.items() if v is not None})


class _VideoProgress:
    """A bar over frames (with its own ETA from the frames computed so far) and, inside it, the
    ordinary per-iteration bar of the frame being stylised."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.bar: Any = None
        self.inner: Any = None
        self.times: list[float] = []  # computed frames' seconds, the first frame apart
        self.done = 0
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc="frames",
                unit="frame",
                disable=None,  # no bar when stderr is not a terminal
                dynamic_ncols=True,
                file=sys.stderr,
                bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}",
            )

    def frame_start(self, index: int, iterations: int) -> Callable[[Step], None] | None:
        from .cli import _Progress

        self._close_inner()
        if self.quiet:
            return None
        self.inner = _Progress(iterations, self.quiet, None, 0, desc=f"frame {index + 1}")
        return typing.cast(Callable[[Step], None], self.inner)

    def frame_done(self, r: FrameResult) -> None:
        self._close_inner()
        self.done += 1
        if not r.reused and r.index > 0:
            self.times.append(r.seconds)
        if self.bar is not None:
            self.bar.update(1)
            if self.times:
                per = sum(self.times) / len(self.times)
                left = per * (self.total - self.done)
                self.bar.set_postfix_str(f", {per:.2f} s/frame, ETA {_clock(left)}")

    def _close_inner(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None

    def close(self) -> None:
        self._close_inner()
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    s = round(seconds)
    hours = f"{s // 3600}:" if s >= 3600 else ""
    return f"{hours}{s // 60 % 60:02d}:{s % 60:02d}" if hours else f"{s // 60}:{s % 60:02d}"


def _run_video(ns: argparse.Namespace) -> int:
    from .cli import PROG, config_from_args

    cfg = config_from_args(ns)
    opts = video_options_from_args(ns)
    kind = output_kind(ns.output)
    _check_output(ns.output, kind)
    if opts.temporal:
        from .flow import require_cv2

        require_cv2()

    def notice(line: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"{PROG}: {line}", file=sys.stderr)  # above the bars, not through them

    clip = open_clip(ns.input, start=ns.start, end=ns.end, frames=ns.frames, fps=ns.fps)
    progress = _VideoProgress(len(clip), ns.quiet)
    try:
        summary = stylize_video(
            clip,
            ns.styles,
            ns.output,
            cfg,
            opts,
            work_dir=ns.work_dir,
            restart=ns.restart,
            keep_work=ns.keep_work,
            on_frame_start=progress.frame_start,
            on_frame=progress.frame_done,
            notice=notice,
        )
    except Interrupted as exc:
        progress.close()  # before the message, so the bar does not overwrite it
        print(f"{PROG}: {exc}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    finally:
        progress.close()
    if not ns.quiet:
        print(_summary(summary, opts), file=sys.stderr)
    return ExitStatus.OK


def _summary(s: VideoSummary, opts: VideoOptions) -> str:
    w, h = s.size
    mode = f"temporal weight {opts.temporal_weight:g}" if opts.temporal else "no temporal loss"
    reused = f", {s.reused} reused from the work directory" if s.reused else ""
    per = f", {s.seconds_per_frame:.2f} s per frame" if s.computed_seconds else ""
    return (
        f"wrote {s.output} ({w}x{h}, {s.frames} frames at {float(s.rate):.4g} fps, audio "
        f"{s.audio}) in {s.seconds:.1f} s on {s.device}{per}{reused}; {mode}"
    )
