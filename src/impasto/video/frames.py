"""The frame loop: each frame a transfer, warm-started and held by the temporal term.

Frame k ≥ 1 starts from the previous output warped by optical flow, and its objective gets a
named ``temporal`` term (Ruder et al.'s short-term loss, see :mod:`impasto.video`), so every Step
of a video run reports it beside content, style and TV. A frame whose L-BFGS run diverges is redone
once with Adam (:func:`_run_frame`). Finished frames go through the resumable
:class:`~impasto.video.cache.FrameCache`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import PIL.Image
import torch
from torch import Tensor

from .. import color, imageio
from ..config import TransferConfig
from ..errors import DivergedError, UsageError
from ..objective import Features, Term
from ..optimize import Result, Step, Transfer
from ..prepare import (
    ImageLike,
    as_images,
    build_network,
    check_styles,
    network_on,
    resolve_device,
)
from ..vgg import MIN_SIDE, VGG
from .cache import FrameCache, run_identity
from .options import VideoOptions

FrameLike = ImageLike | npt.NDArray[np.uint8]
FrameListener = Callable[[int, int], Callable[[Step], None] | None]


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


def frame_seed(seed: int, index: int) -> int:
    """The seed of frame ``index``: fixed by the run seed, different for every frame."""
    digest = hashlib.sha256(f"impasto-frame:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def frame_size(size: tuple[int, int], longest: int, even: bool = False) -> tuple[int, int]:
    """The (W, H) frames are stylised at: scaled down so the longer side is at most
    ``longest`` (never up, except to VGG's MIN_SIDE), and with ``even`` rounded down to even
    sides for yuv420p."""
    bound = max(MIN_SIDE, min(longest, max(size)))
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
    style_imgs = as_images(styles)
    check_styles(cfg, len(style_imgs))
    device = resolve_device(cfg.device)
    net = network_on(vgg, device) if vgg is not None else None  # moved once, not per frame
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
                    run_identity(cfg, opts, size, style_imgs, source),
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
            net = build_network(cfg).to(device)
        iterations = opts.iterations(index, cfg)
        frame_cfg = cfg.replace(size=max(size), iterations=iterations, seed=frame_seed(seed, index))
        init: PIL.Image.Image | None = None
        extra: list[Term] = []
        coverage: float | None = None
        if opts.temporal and prev_out is not None and prev_content is not None:
            # Coarse-to-fine stages would restart from the content image; a warm start needs none.
            frame_cfg = frame_cfg.replace(scales="one", learning_rate=_warm_rate(cfg))
            init, temporal, coverage = _temporal_term(
                prev_content, content, prev_out, opts, frame_cfg, device
            )
            extra = [temporal]
        listen = functools.partial(on_frame_start, index, iterations) if on_frame_start else None
        result, redone = _run_frame(content, style_imgs, frame_cfg, net, init, extra, listen)
        note = f"frame {index + 1}: {redone}" if redone is not None else None
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


def _run_frame(
    content: PIL.Image.Image,
    styles: Sequence[PIL.Image.Image],
    cfg: TransferConfig,
    vgg: VGG,
    init: PIL.Image.Image | None,
    terms: Sequence[Term],
    listener: Callable[[], Callable[[Step], None] | None] | None,
) -> tuple[Result, str | None]:
    """One frame's transfer, and a note when it had to be redone. L-BFGS without a line search
    can overshoot on a frame; one such frame should not end a long video, so it is redone with
    Adam (same iterations), as deterministic as the first try (resuming holds)."""

    def run(config: TransferConfig) -> Result:
        transfer = Transfer(content, styles, config, vgg=vgg, init=init, terms=terms)
        return transfer.run(on_step=listener() if listener else None)

    try:
        return run(cfg), None
    except DivergedError as exc:
        if cfg.optimizer != "lbfgs":
            raise
        note = f"{exc}; redone with Adam"
    return run(cfg.replace(optimizer="adam")), note


def _warm_rate(cfg: TransferConfig) -> float:
    """Adam's step size for a frame that starts from the previous output. Adam's first steps
    move every pixel by about the learning rate whatever the gradient, which from a warm start
    undoes much of it (measured: at 8 levels the objective first rises 70%); a quarter of it
    descends from the first step."""
    return cfg.learning_rate / 4


def _temporal_term(
    prev_content: PIL.Image.Image,
    content: PIL.Image.Image,
    prev_out: PIL.Image.Image,
    opts: VideoOptions,
    cfg: TransferConfig,
    device: torch.device,
) -> tuple[PIL.Image.Image, Term, float]:
    """The warm start, the temporal term and the share of pixels it holds, for one frame."""
    from .. import flow

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

    def temporal(x: Tensor, features: Features) -> Tensor:
        return flow.temporal_loss(x, target.to(x.dtype), c.to(x.dtype))

    term = Term("temporal", opts.temporal_weight_for(cfg), temporal)
    return start, term, float(weight.mean())
