"""One frame's transfer, tied to the frames painted before it: :class:`Painter`.

A painter keeps the frames of the current shot that later frames may be tied to (content and
output, 8-bit, as a resumed run sees them) and paints the next one:

- a frame with nothing before it (the first frame, or the first after a cut) is a still: the
  transfer's own schedule (``config.iterations``, its coarse-to-fine stages, its start);
- a later frame starts from the nearest earlier output warped to it by optical flow
  (:func:`warm_start`) and is optimised for ``VideoOptions.frame_iterations_for`` steps
  against the transfer's terms plus

  - ``temporal``: Ruder et al.'s short-term loss toward that warped output,
  - ``longterm``: their long-term loss toward the outputs ``VideoOptions.temporal_frames``
    back, each pixel held to the nearest of them that saw it (:mod:`impasto.video.longterm`),
  - ``seam`` (chunked runs only): toward a later keyframe, so that two chunks meet without a
    jump (:mod:`impasto.video.chunks`).

All are named terms of the frame's objective, so each Step reports them by name. A frame whose
L-BFGS run diverges is redone once with Adam (:func:`run_frame`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import PIL.Image
import torch
from torch import Tensor

from .. import color
from ..config import TransferConfig
from ..errors import DivergedError
from ..objective import Features, Term
from ..optimize import Result, Step, Transfer
from ..vgg import VGG
from . import longterm
from .longterm import Tie
from .options import VideoOptions

__all__ = ["Painted", "Painter", "Remembered", "run_frame", "warm_start"]

Uint8 = npt.NDArray[np.uint8]
StepListener = Callable[[], Callable[[Step], None] | None]


@dataclass(frozen=True)
class Remembered:
    """A painted frame later frames may be tied to (both 8-bit (H, W, 3))."""

    index: int
    content: Uint8
    output: Uint8


@dataclass
class Painted:
    """One frame's outcome."""

    result: Result
    iterations: int  # planned
    coverage: float | None  # share of pixels some temporal term holds (None: a fresh start)
    note: str | None  # a frame redone with Adam


def warm_start(tie: Tie) -> PIL.Image.Image:
    """The start of a warm frame: the tie's warped output, everywhere, as Ruder et al. start it
    (8-bit, as a resumed run would see it). Measured on bigbuckbunny (BENCHMARKS.md, "Video"):
    starting the pixels the flow does not trust from the content frame instead left them less
    painted after a warm frame's few iterations (conv1_1's E_l 1.70x the still's at frame 15,
    against 1.37x) and flickered more (k-1 error +3%, k-5 +15%)."""
    return PIL.Image.fromarray(np.clip(np.rint(tie.warped), 0, 255).astype(np.uint8))


class Painter:
    """Paints the frames of one shot in order (see the module notes). ``restart`` forgets the
    shot (a cut); ``remember`` records a frame painted elsewhere (read from the cache, or a
    keyframe a chunk starts from)."""

    def __init__(
        self,
        styles: Sequence[PIL.Image.Image],
        config: TransferConfig,
        options: VideoOptions,
        vgg: VGG,
        device: torch.device,
    ) -> None:
        self.styles, self.config, self.options = styles, config, options
        self.vgg, self.device = vgg, device
        self.frames: deque[Remembered] = deque()
        self.reach = max(options.temporal_frames)  # how far back ties go

    @property
    def fresh(self) -> bool:
        """Nothing to tie the next frame to: it is painted as a still."""
        return not self.frames

    def restart(self) -> None:
        self.frames.clear()

    def remember(self, index: int, content: Uint8, output: Uint8) -> None:
        self.frames.append(Remembered(index, content, output))
        # Keep what a later frame can still reach, and always the latest (a keyframe's chunk).
        while len(self.frames) > 1 and self.frames[0].index < index + 1 - self.reach:
            self.frames.popleft()

    def nearest(self, content: Uint8, index: int) -> Tie | None:
        """The tie to the latest remembered frame (the short-term term's), or None."""
        if not self.frames:
            return None
        last = self.frames[-1]
        return longterm.tie(content, last.content, last.output, index - last.index,
                            self.options.flow)  # fmt: skip

    def ties(self, content: Uint8, index: int, nearest: Tie) -> list[Tie]:
        """The long-term ties: to the remembered frames ``temporal_frames`` back, beyond the
        nearest (whose tie is ``nearest``), nearest first."""
        wanted = {index - j for j in self.options.temporal_frames}
        last = self.frames[-1].index if self.frames else None
        found = [f for f in reversed(self.frames) if f.index in wanted and f.index != last]
        return [
            longterm.tie(content, f.content, f.output, index - f.index, self.options.flow)
            for f in found
        ]

    def paint(
        self,
        index: int,
        content: PIL.Image.Image,
        seed: int,
        *,
        nearest: Tie | None = None,
        seam: tuple[Tie, float] | None = None,
        listener: StepListener | None = None,
    ) -> Painted:
        """Paint frame ``index`` (``content`` at the frames' size) with ``seed``; ``nearest`` is
        :meth:`nearest`'s tie when the caller made it already (for a cut check); ``seam`` a tie
        to a later keyframe and its weight relative to λ. Does not remember the frame."""
        cfg, opts = self.config, self.options
        pixels = np.asarray(content)
        if not opts.temporal or self.fresh:
            frame_cfg = cfg.replace(size=max(content.size), seed=seed)
            painted = run_frame(content, self.styles, frame_cfg, self.vgg, None, (), listener)
            return Painted(painted[0], cfg.iterations, None, painted[1])
        near = nearest if nearest is not None else self.nearest(pixels, index)
        assert near is not None
        iterations = opts.frame_iterations_for(cfg)
        # Coarse-to-fine stages would restart from the content image; a warm start needs none.
        frame_cfg = cfg.replace(
            size=max(content.size), iterations=iterations, seed=seed, scales="one",
            learning_rate=_warm_rate(cfg),
        )  # fmt: skip
        far = self.ties(pixels, index, near)
        weights = longterm.certainty_weights([near.certainty, *(t.certainty for t in far)])
        lam = opts.temporal_weight_for(cfg)
        terms = [_term("temporal", lam, [near], weights[:1], frame_cfg, self.device)]
        if opts.long_term:
            terms.append(_term("longterm", lam, far, weights[1:], frame_cfg, self.device))
        if seam is not None:
            tie, share = seam
            terms.append(_term("seam", lam * share, [tie], None, frame_cfg, self.device))
        start = warm_start(near)
        result, note = run_frame(content, self.styles, frame_cfg, self.vgg, start, terms, listener)
        coverage = float(np.clip(sum(weights), 0, 1).mean())
        return Painted(result, iterations, coverage, note)


def _term(
    name: str,
    weight: float,
    ties: Sequence[Tie],
    certainties: Sequence[npt.NDArray[np.float32]] | None,
    cfg: TransferConfig,
    device: torch.device,
) -> Term:
    """A temporal term over ``ties`` (none: a term that is always 0, so that every warm frame of
    a run reports the same terms)."""
    if not ties:

        def nothing(x: Tensor, features: Features) -> Tensor:
            return x.new_zeros(())

        return Term(name, weight, nothing)
    targets, certainty = longterm.stack_ties(ties, device, certainties)
    if cfg.preserve_colors == "luminance":
        targets = color.luminance_only(targets)  # the iterate is grey in this mode

    def temporal(x: Tensor, features: Features) -> Tensor:
        return longterm.sum_of_ties(x, targets.to(x.dtype), certainty.to(x.dtype))

    return Term(name, weight, temporal)


def run_frame(
    content: PIL.Image.Image,
    styles: Sequence[PIL.Image.Image],
    cfg: TransferConfig,
    vgg: VGG,
    init: PIL.Image.Image | None,
    terms: Sequence[Term],
    listener: StepListener | None,
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
