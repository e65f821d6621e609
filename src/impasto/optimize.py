"""The optimisation loop: minimise the objective's weighted terms over the pixels.

:class:`Transfer` is the front door: it loads the images, checks memory, asks
:mod:`impasto.prepare` for the targets and the start, builds the :mod:`impasto.objective`, and
runs the plan of coarse-to-fine stages (:func:`stage_plan`, :func:`run_stages`). The loop itself
(:func:`descend`) runs L-BFGS or Adam from a start image and reports a flat :class:`Step` record
(every term by name) to an optional callback after every iteration. It never prints and never
writes files: progress bars, intermediate saves, the web page and video are listeners.

The records it reports are :mod:`impasto.records`'; the state a step keeps on the device, and
the step itself, :mod:`impasto.iterate`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import PIL.Image
import torch
from torch import Tensor

from . import graphs, imageio
from .config import MAX_SIZE, TransferConfig
from .errors import UsageError
from .guidance import Regions
from .iterate import CHECK_EVERY, Iterate, Rows, Values, check_finite, renderer
from .memory import (
    check_memory,
    fits_memory,
    memory_limit,
    out_of_memory,
    output_size,
    peak_memory,
    too_little_memory,
)
from .objective import Objective, Term, jitter_for, transfer_terms
from .precision import arithmetic, check_precision
from .prepare import (
    ImageLike,
    Prepared,
    as_image,
    as_images,
    build_network,
    check_spatial,
    check_styles,
    network_on,
    prepare,
    resolve_device,
    smallest_size,
)
from .records import TOTAL, Listener, Result, Step
from .vgg import MIN_SIDE, VGG

__all__ = [
    "TOTAL",
    "ImageLike",
    "Listener",
    "Result",
    "Stage",
    "StagePosition",
    "StageRun",
    "Step",
    "Transfer",
    "build_network",
    "descend",
    "resolve_device",
    "run_stages",
    "stage_plan",
]

# --- the plan of stages -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of a coarse-to-fine run: the output's longest side and its iterations."""

    size: int
    iterations: int


def stage_plan(config: TransferConfig, smallest: int) -> list[Stage]:
    """The stages a transfer runs, coarse to fine, ending at ``config.size``, as the config
    plans them (:meth:`TransferConfig.stage_plan`); coarse stages too small for some image's
    short side (``smallest``) are left out."""
    return [Stage(size, n) for size, n in config.stage_plan(smallest)]


def stage_config(config: TransferConfig, stage: Stage, seed: int) -> TransferConfig:
    """The configuration of a coarse stage: a one-stage transfer at the stage's size."""
    return config.replace(size=stage.size, iterations=stage.iterations, scales="one", seed=seed)


@dataclass(frozen=True)
class StagePosition:
    """Where a stage sits in the whole run, for numbering its Steps."""

    done: int = 0  # iterations before this stage
    total: int = 0  # iterations of the whole run
    elapsed: float = 0.0
    stage: int = 1
    stages: int = 1
    show: tuple[int, int] | None = None  # (W, H) the Step images are scaled to, if not the stage's


@dataclass(frozen=True)
class StageRun:
    """One stage, ready to run: its problem, its objective and the start."""

    problem: Prepared
    objective: Objective
    x0: Tensor


def run_stages(
    plan: Sequence[Stage],
    ready: Callable[[int, PIL.Image.Image | None], StageRun],
    size: tuple[int, int],
    on_step: Listener | None = None,
) -> Result:
    """Run ``plan`` to an output of ``size`` (W, H): stage k is made ready by ``ready(k, the
    previous stage's image or None)`` and optimised from its start; Steps are numbered across
    stages and show the image at ``size``. Returns the last stage's result (with every stage's
    history). An interrupted stage ends the run early, its image scaled to ``size``."""
    total = sum(s.iterations for s in plan)
    history: list[dict[str, float]] = []
    done, elapsed, replayed = 0, 0.0, 0
    previous: PIL.Image.Image | None = None
    for k, stage in enumerate(plan):
        run = ready(k, previous)
        last = k == len(plan) - 1
        at = StagePosition(done, total, elapsed, k + 1, len(plan), None if last else size)
        result = descend(run.problem, run.objective, run.x0, stage.iterations, on_step, at)
        history += result.history
        replayed += result.replayed
        result = dataclasses.replace(result, history=history, replayed=replayed)
        if last or result.interrupted:
            if not last:
                result.image = imageio.resize_to(result.image, size)
            return result
        done, elapsed = result.iterations, result.elapsed
        previous = result.image
    raise ValueError("a plan needs at least one stage")


# --- the loop -----------------------------------------------------------------------------------


def descend(
    problem: Prepared,
    objective: Objective,
    x0: Tensor,
    iterations: int,
    on_step: Listener | None = None,
    at: StagePosition | None = None,
) -> Result:
    """``iterations`` steps from ``x0`` on ``objective`` (its total, then each of its terms).
    Nothing is read back to the host inside a step (the terms, the best iterate and the
    divergence flag stay on the device) unless a listener asks for a value; divergence is checked
    every few steps."""
    cfg, device = problem.config, problem.device
    at = at or StagePosition(total=iterations)
    labels = (TOTAL, *objective.names)
    it = Iterate(objective, x0, cfg, device)
    history = Rows(len(labels), device)  # (total, *terms) per step, grown as steps are done
    # On a GPU, after a few eager iterations one is captured as a CUDA graph and replayed.
    # (Not with jitter: its shift is drawn on the host, and a captured graph would replay one.)
    capture = graphs.usable(device, cfg.optimizer, iterations) and cfg.jitter == 0
    warm = graphs.Warmup() if capture else None
    replay: graphs.Replay | None = None
    replayed = 0
    start = time.perf_counter()
    done = 0
    interrupted = False
    last: Step | None = None  # the last iteration's: reported with the returned image's loss
    try:
        with arithmetic(cfg.precision, device):
            for i in range(1, iterations + 1):
                if warm is not None and i > graphs.WARMUP:
                    warm.done()
                    warm = None
                    replay = graphs.capture(it.step)  # None: it could not be, go on eagerly
                with warm.running() if warm is not None else contextlib.nullcontext():
                    if replay is not None:
                        row = history.append(replay())
                        replayed += 1
                    else:
                        row = history.append(it.step())
                    done = i
                    if i % CHECK_EVERY == 0 or i == iterations:
                        since = (i - 1) // CHECK_EVERY * CHECK_EVERY
                        check_finite(history.since(since), at.done)
                    if on_step is not None:
                        step = Step(
                            at.done + i,
                            at.total or iterations,
                            at.elapsed + time.perf_counter() - start,
                            it.learning_rate,
                            Values(row, labels, at.done + i),
                            renderer(problem, it.x, at.show),
                            at.stage,
                            at.stages,
                            peak_memory(device),
                        )
                        if i < iterations:
                            on_step(step)
                        else:
                            last = step
    except KeyboardInterrupt:
        interrupted = True
    except (torch.OutOfMemoryError, MemoryError) as e:
        raise out_of_memory(cfg.size) from e
    except RuntimeError as e:
        if "can't allocate memory" in str(e) or "out of memory" in str(e):
            raise out_of_memory(cfg.size) from e
        raise
    finally:
        if warm is not None:
            warm.done()
    check_finite(history.since(0), at.done)
    rows = [dict(zip(labels, r, strict=True)) for r in history.since(0)[1].tolist()]
    best, best_value = it.best, float(it.best_loss)
    if not interrupted:
        # One final loss per run. A Step's loss is the objective before its update, so the last
        # update's result has no loss yet: evaluate it and keep it if it is best; else the best
        # earlier iterate is evaluated again, for its terms. Either way the returned image's total
        # and terms replace the last Step's (in history[-1] and in the last Step reported, whose
        # picture is the returned one), so that every face shows the loss of what was returned.
        with torch.no_grad(), arithmetic(cfg.precision, device):
            final = torch.stack(objective(it.x.detach())).detach().float()  # (total, *terms)
            if math.isfinite(float(final[0])) and float(final[0]) <= best_value:
                best = it.x.detach()
            elif done:
                final = torch.stack(objective(best)).detach().float()
        best_value = float(final[0])
        if rows:
            rows[-1] = dict(zip(labels, final.tolist(), strict=True))
    elapsed = time.perf_counter() - start  # the last Step's time too: one clock
    if last is not None and on_step is not None and not interrupted:
        values, render = Values(final, labels, last.iteration), renderer(problem, best, at.show)
        try:
            on_step(
                dataclasses.replace(
                    last, elapsed=at.elapsed + elapsed, _values=values, _render=render
                )
            )
        except KeyboardInterrupt:  # as inside the loop: the run ends with what it has
            interrupted = True
    image = imageio.to_image(problem.render(best) / 255.0)
    return Result(
        image=image,
        config=cfg.replace(seed=problem.seed),
        seed=problem.seed,
        iterations=at.done + done,
        elapsed=at.elapsed + elapsed,
        history=rows,
        final_loss=best_value,
        interrupted=interrupted,
        device=str(device),
        peak_memory=peak_memory(device),
        replayed=replayed,
    )


# --- the front door -----------------------------------------------------------------------------


class Transfer:
    """One content image, one or more styles, one configuration: targets once, then the loop.

    >>> t = Transfer("photo.jpg", ["painting.jpg"], TransferConfig(size=256))
    >>> result = t.run(on_step=lambda s: print(s.iteration, s.loss, s.terms))
    """

    def __init__(
        self,
        content: ImageLike,
        styles: Sequence[ImageLike],
        config: TransferConfig | None = None,
        *,
        vgg: VGG | None = None,
        init: ImageLike | None = None,
        terms: Sequence[Term] = (),
        regions: Regions | None = None,
        fine_style: ImageLike | None = None,
    ) -> None:
        """``init`` (an image, resized to the output) overrides ``config.init``; ``terms`` are
        added to the objective at the output's size (e.g. the temporal term of video transfer:
        it is named, weighted and reported like the others). ``regions``
        (:func:`impasto.guidance.build_regions`) paint each part of the photo from its own style
        and keep what they keep; ``fine_style`` gives the style layers before
        ``config.scale_split`` its statistics (scale control)."""
        self.config = cfg = config or TransferConfig()
        check_styles(cfg, len(styles))
        check_spatial(cfg, len(styles), regions, fine_style is not None)
        self.device = resolve_device(cfg.device)
        check_precision(cfg.precision, self.device)
        self.seed = cfg.seed if cfg.seed is not None else secrets.randbits(31)

        source = as_image(content)
        # Full-size originals are kept for coarse-to-fine stages, which resize them again.
        self._source = source
        self._style_sources = as_images(styles)
        self._regions = regions
        self._fine = as_image(fine_style) if fine_style is not None else None
        self.smallest_size = smallest_size(
            source, [*self._style_sources, *([self._fine] if self._fine else [])], cfg.style_scale
        )
        # Refuse a run that cannot fit before allocating anything large (the resize included),
        # and advise only a size that both fits and keeps VGG's MIN_SIDE.
        guided = regions.count() if regions is not None else 0
        out_size = output_size(source.size, cfg.size)
        check_memory(out_size, cfg, self.device, self.smallest_size, guided)
        if cfg.size < self.smallest_size:
            least = self.smallest_size
            at_least = cfg.replace(size=least) if least <= MAX_SIZE else None
            if at_least and fits_memory(
                output_size(source.size, least), at_least, self.device, guided
            ):
                hint = f"use --size {least} or more"
            elif at_least is None:
                hint = f"no --size up to {MAX_SIZE} is enough: crop the image to a less extreme "
                hint += "aspect ratio"
            else:
                limit = memory_limit(at_least, self.device) or 0
                hint = too_little_memory(source.size, at_least, least, guided, limit)
            raise UsageError(
                f"--size {cfg.size} leaves an image less than {MIN_SIDE} px on its short side, "
                f"too small for VGG's pooling; {hint}"
            )
        try:
            if vgg is not None:
                self.vgg = network_on(vgg, self.device)
            else:
                self.vgg = build_network(cfg).to(self.device)
            start = as_image(init) if init is not None else None
            self.problem = prepare(
                source,
                self._style_sources,
                cfg,
                self.vgg,
                self.device,
                self.seed,
                start,
                regions,
                self._fine,
            )
        except torch.OutOfMemoryError as e:
            raise out_of_memory(cfg.size) from e
        top = self.problem
        self.objective = Objective(
            self.vgg,
            [*transfer_terms(cfg, top.targets), *terms],
            jitter_for(cfg, top.view(top.content_rgb), self.seed),
        )
        self.size = self.problem.size  # (W, H) of the output
        self.content_image = self.problem.content_image
        self.style_images = self.problem.style_images

    def render(self, x: Tensor) -> Tensor:
        """The picture for iterate ``x`` (see :meth:`impasto.prepare.Prepared.render`)."""
        return self.problem.render(x)

    def run(self, on_step: Listener | None = None) -> Result:
        """Optimise; Ctrl-C or a callback raising :class:`KeyboardInterrupt` ends the run early
        with ``Result.interrupted`` set and the best image so far.

        With ``config.scales`` the run is coarse to fine (:func:`stage_plan`): each stage but the
        last is a transfer at a smaller size, started from the previous stage's result; its
        steps are reported with the image scaled up to the output's size, numbered on across
        the stages."""
        plan = stage_plan(self.config, self.smallest_size)

        def ready(k: int, previous: PIL.Image.Image | None) -> StageRun:
            if k == len(plan) - 1:  # the output's size: this transfer's own problem
                top = self.problem
                x0 = top.x0 if previous is None else top.start_from(previous)
                return StageRun(top, self.objective, x0)
            cfg = stage_config(self.config, plan[k], self.seed)
            problem = prepare(
                self._source,
                self._style_sources,
                cfg,
                self.vgg,
                self.device,
                self.seed,
                previous,
                self._regions,
                self._fine,
            )
            objective = Objective(
                self.vgg,
                transfer_terms(cfg, problem.targets),
                jitter_for(cfg, problem.view(problem.content_rgb), self.seed),
            )
            return StageRun(problem, objective, problem.x0)

        result = run_stages(plan, ready, self.size, on_step)
        return dataclasses.replace(result, config=self.config.replace(seed=self.seed))


# The names tests and benchmarks/gpu_profile.py take from here.
_Iterate, _Rows = Iterate, Rows
