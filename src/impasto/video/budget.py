"""How much memory a video run needs: a frame's transfer, the earlier frames it is tied to, and
as many of those as there are workers; the one-line refusal when that is more than is free.

A still's estimate (:func:`impasto.memory.estimate_memory`) leaves out what a video adds: the
painter keeps the frames ``--temporal-frames`` can reach back to (content and output, 8-bit),
and a warm frame makes one tie per distance in ``--temporal-frames`` (two optical flows, the
warped output, its certainty, and the stacked targets on the device). With ``--temporal-frames``
reaching up to a thousand frames back, that is the larger part at any size. Workers on one
machine (a local Ray) each hold all of it.
"""

from __future__ import annotations

import torch

from ..config import TransferConfig
from ..errors import ResourceError
from ..memory import estimate_memory, memory_limit
from .options import VideoOptions

__all__ = ["check_video_memory", "frame_memory"]

KEPT_BYTES_PER_PIXEL = 6  # a remembered frame: content and output, 8-bit RGB
# A tie: the flows both ways (2 x 2 float32), the warped output (3 float32), the certainty and
# its long-term weight (2 float32), the target and certainty stacked on the device (4 float32):
# 60 bytes a pixel; we budget 64 for the flow's own temporaries.
TIE_BYTES_PER_PIXEL = 64


def frame_memory(size: tuple[int, int], config: TransferConfig, options: VideoOptions) -> int:
    """Bytes one painter needs for a frame of ``size`` (W, H), roughly (the peak)."""
    need = estimate_memory(size, config)
    if not options.temporal:
        return need
    pixels = size[0] * size[1]
    kept = max(options.temporal_frames) * KEPT_BYTES_PER_PIXEL
    ties = len(options.temporal_frames) * TIE_BYTES_PER_PIXEL
    return need + pixels * (kept + ties)


def check_video_memory(
    size: tuple[int, int],
    config: TransferConfig,
    options: VideoOptions,
    device: torch.device,
    workers: int = 1,
) -> None:
    """Raise :class:`ResourceError` when ``workers`` painters of frames of ``size`` would need
    more than ``device`` has free (or ``--max-memory``), saying how many would fit."""
    limit = memory_limit(config, device)
    each = frame_memory(size, config, options)
    need = each * workers
    if limit is None or need <= limit:
        return
    gib = 2**30
    at = f"{size[0]}x{size[1]} frames"
    if options.temporal and len(options.temporal_frames) > 1:
        at += f" held to {len(options.temporal_frames)} earlier frames"
    have = f"{limit / gib:.1f} GiB is available on {device.type}"
    if workers > 1:
        fits = limit // each
        advice = f"try --workers {fits} or fewer" if fits >= 1 else "try a smaller --size"
        raise ResourceError(
            f"--workers {workers} need about {need / gib:.1f} GiB ({each / gib:.1f} GiB each, "
            f"{at}) but {have}; {advice}"
        )
    advice = "try a smaller --size"
    if options.temporal and len(options.temporal_frames) > 1:
        advice += " or fewer --temporal-frames"
    raise ResourceError(f"{at} need about {need / gib:.1f} GiB but {have}; {advice}")
