"""How the frames of a video are tied together: :class:`VideoOptions`, beside TransferConfig.

Like :class:`~impasto.config.TransferConfig`, every field carries its default, type and help; the
``impasto video`` flags are generated from it. It lives outside :mod:`impasto.video` (which
re-exports it from :mod:`impasto.video.options`), with the clip limits and the flow methods, so
that the command line builds its help without the video package and torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Any, Literal

from .config import (
    MAX_ITERATIONS,
    MAX_WEIGHT,
    STYLE_WEIGHT,
    TransferConfig,
    check_bounds,
    check_choices,
    option,
    short_number,
)
from .errors import UsageError

FlowMethod = Literal["dis", "farneback"]
"""The optical flow methods of :mod:`impasto.flow`."""

FOLDER_RATE = Fraction(24)
"""Frame rate of a folder of images when ``--fps`` does not say."""
MIN_FPS, MAX_FPS = 0.01, 1000.0
"""The range of ``--fps``: a frame every 100 s to a thousand a second."""
MAX_FRAMES = 10_000_000
"""The most frames a clip's plan may hold (over a day at 120 fps)."""
CLIP_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
"""Names that say "a video": given to a command for still images, they get a hint to
``impasto video``."""

TEMPORAL_WEIGHT = 1e8
"""λ of the temporal loss at β = 10³ (see the module docstring and BENCHMARKS.md); by default λ
follows β (``VideoOptions.temporal_weight_for``), so the measured balance holds at every β."""

FRAME_ITERATIONS_FRACTION = 5
"""Frames after the first get ``iterations // FRAME_ITERATIONS_FRACTION`` iterations by default."""

TEMPORAL_FRAMES = (1,)
"""Ruder et al.'s J by default: the distances back of the frames each frame is tied to."""
CHUNK_FRAMES = 24
"""Frames per chunk on several workers by default (BENCHMARKS.md, "Video on Ray")."""
MAX_REACH = 1000  # frames back a tie may reach (each one kept in memory at the frames' size)


@dataclass(frozen=True)
class VideoOptions:
    """How frames are tied together; the transfer itself is set by :class:`TransferConfig`."""

    temporal: bool = option(
        True,
        "temporal consistency: start each frame from the previous output warped by optical flow "
        "and penalise departures from it (--no-temporal: each frame on its own, the naive method)",
    )
    temporal_weight: float | None = option(
        None,
        "λ, weight of the temporal loss λ·mean(c·(x − warped previous)²) in pixel levels²",
        shown=f"{short_number(TEMPORAL_WEIGHT / STYLE_WEIGHT)}·β, i.e. "
        f"{short_number(TEMPORAL_WEIGHT)} at β = {short_number(STYLE_WEIGHT)}, so that the "
        "balance with the style holds at every size and preset",
        bounds=(0, MAX_WEIGHT),
    )
    frame_iterations: int | None = option(
        None,
        "iterations of each frame after a shot's first; a shot's first frame, and every frame "
        "with --no-temporal, gets --iterations",
        shown=f"--iterations/{FRAME_ITERATIONS_FRACTION}",
        bounds=(1, MAX_ITERATIONS),
    )
    temporal_frames: tuple[int, ...] = option(
        TEMPORAL_FRAMES,
        "the earlier frames each frame is held to, by distance back (Ruder et al.'s J): 1 is "
        "the short-term loss toward the previous frame; further ones add their long-term loss, "
        "each pixel held to the nearest of them that saw it ('1' alone: short-term only)",
        metavar="J",
        bounds=(1, MAX_REACH),
    )
    cuts: bool = option(
        True,
        "detect scene cuts (the flow between two frames trusts almost nothing, or little and "
        "the colours jump) and start the new shot afresh, as a first frame",
    )
    flow: FlowMethod = option("dis", "optical flow: dis (fast) or farneback (smoother, slower)")
    chunk_frames: int | None = option(
        None,
        "split each shot into chunks of about N frames that workers paint at once, tied at "
        "keyframes so that the seams do not show",
        shown=f"{CHUNK_FRAMES} with --executor ray; otherwise none, one chain per shot",
        metavar="N",
        bounds=(1, MAX_FRAMES),
    )

    def __post_init__(self) -> None:
        check_choices(self)
        frames = self.temporal_frames
        if not frames or 1 not in frames or len(set(frames)) != len(frames):
            raise UsageError(
                "--temporal-frames must be distinct distances back that include 1 (the previous "
                f"frame), not {','.join(map(str, frames)) or 'nothing'}"
            )
        object.__setattr__(self, "temporal_frames", tuple(sorted(frames)))
        check_bounds(self)

    def temporal_weight_for(self, config: TransferConfig) -> float:
        """λ: given, or proportional to the run's β (measured as 1e8 at β = 1e3)."""
        if self.temporal_weight is not None:
            return self.temporal_weight
        return TEMPORAL_WEIGHT * config.style_weight / STYLE_WEIGHT

    @property
    def long_term(self) -> bool:
        """Whether frames are held to frames further back than the previous one."""
        return self.temporal and max(self.temporal_frames) > 1

    def frame_iterations_for(self, config: TransferConfig) -> int:
        """Iterations of a warm-started frame (one with an earlier frame to start from)."""
        if self.frame_iterations is not None:
            return self.frame_iterations
        return max(1, config.iterations // FRAME_ITERATIONS_FRACTION)

    def iterations(self, index: int, config: TransferConfig) -> int:
        """Iterations of frame ``index`` of one shot: all for its first frame and in naive
        mode."""
        if index == 0 or not self.temporal:
            return config.iterations
        return self.frame_iterations_for(config)

    def chunked(self, workers: bool) -> VideoOptions:
        """These options with the chunk length a run uses: given, or :data:`CHUNK_FRAMES` when
        ``workers`` (several workers paint at once), else none."""
        if self.chunk_frames is not None or not workers:
            return self
        return replace(self, chunk_frames=CHUNK_FRAMES)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
