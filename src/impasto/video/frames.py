"""The frame loop: frames in order, each painted by a :class:`~impasto.video.painter.Painter`.

Frame k ≥ 1 of a shot starts from the earlier output warped by optical flow and is held to it by
named temporal terms (see :mod:`impasto.video.painter`); before each frame the pair is checked
for a scene cut (:mod:`impasto.video.cuts`), after which the painter starts afresh. Finished
frames go through the resumable :class:`~impasto.video.cache.FrameCache`, each keyed by its
content, the run and, within a shot, the key of the frame before it.
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
from torch import Tensor

from .. import imageio
from ..config import TransferConfig
from ..errors import UsageError
from ..optimize import Step
from ..prepare import (
    ImageLike,
    as_images,
    build_network,
    check_styles,
    network_on,
    resolve_device,
)
from ..vgg import MIN_SIDE, VGG
from . import cuts
from .budget import check_video_memory
from .cache import FrameCache, run_identity
from .options import VideoOptions
from .painter import Painter

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
    coverage: float | None = None  # share of pixels the temporal terms hold (c = 1)
    note: str | None = None  # something the user should hear about (a redone frame)
    cut: bool = False  # this frame begins a new shot (a scene cut was found before it)


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
    With temporal consistency and ``options.cuts``, a frame that begins a new shot
    (:mod:`impasto.video.cuts`) is painted afresh and its result says ``cut``.

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
    painter: Painter | None = None
    prev_key: str | None = None
    for index, raw in enumerate(frames):
        start = time.perf_counter()
        frame = _as_frame(raw)
        if size is None:
            size = frame_size(frame.size, cfg.size, even)
            if opts.long_term:  # the earlier frames kept count too (before any folder is made)
                check_video_memory(size, cfg, opts, device)
            if work_dir is not None:
                cache = FrameCache(
                    Path(work_dir),
                    run_identity(cfg, opts, size, style_imgs, source),
                    restart=restart,
                )
        content = frame if frame.size == size else imageio.resize_to(frame, size)
        pixels = np.asarray(content)
        if net is None:
            net = build_network(cfg).to(device)
        if painter is None:
            painter = Painter(style_imgs, cfg, opts, net, device)
        nearest, check = None, None
        if opts.temporal and not painter.fresh:
            nearest = painter.nearest(pixels, index)
            assert nearest is not None
            if opts.cuts:
                check = cuts.check_pair(painter.frames[-1].content, pixels, nearest.certainty)
                if check.cut:
                    painter.restart()
                    nearest = None
        cut = check is not None and check.cut
        key = None
        if cache is not None:
            chained = prev_key if opts.temporal and not painter.fresh else None
            key = cache.frame_key(index, content, chained)
            cached = cache.get(index, key)
            if cached is not None:
                prev_key = key
                if opts.temporal:
                    painter.remember(index, pixels, np.asarray(cached))
                seconds = time.perf_counter() - start
                yield FrameResult(index, cached, True, 0, seconds, cut=cut)
                continue
        iterations = opts.iterations(0 if painter.fresh else index, cfg)
        listen = functools.partial(on_frame_start, index, iterations) if on_frame_start else None
        painted = painter.paint(
            index, content, frame_seed(seed, index), nearest=nearest, listener=listen
        )
        result = painted.result
        note = f"frame {index + 1}: {painted.note}" if painted.note is not None else None
        if result.interrupted:
            raise KeyboardInterrupt
        if cache is not None and key is not None:
            cache.put(index, key, result.image)
        prev_key = key
        if opts.temporal:
            painter.remember(index, pixels, np.asarray(result.image))
        yield FrameResult(
            index,
            result.image,
            False,
            result.iterations,
            time.perf_counter() - start,
            result.final_loss,
            painted.coverage,
            note,
            cut,
        )
