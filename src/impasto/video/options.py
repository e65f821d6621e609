"""The video options, :class:`~impasto.videoconfig.VideoOptions`, where the video package has
always offered them (they live in :mod:`impasto.videoconfig`, which has no torch).
"""

from __future__ import annotations

from ..videoconfig import (
    CHUNK_FRAMES,
    FRAME_ITERATIONS_FRACTION,
    MAX_REACH,
    TEMPORAL_FRAMES,
    TEMPORAL_WEIGHT,
    VideoOptions,
)

__all__ = [
    "CHUNK_FRAMES",
    "FRAME_ITERATIONS_FRACTION",
    "MAX_REACH",
    "TEMPORAL_FRAMES",
    "TEMPORAL_WEIGHT",
    "VideoOptions",
]
