"""The driver of a chunked run: plan, hand stretches to a runner's workers, keep the cache.

:func:`paint_chunked` takes the clip's content frames (at the frames' size), finds the scene cuts
(:func:`impasto.video.cuts.find_cuts`), plans the chunks (:func:`impasto.video.chunks.plan_chunks`)
and gives every frame its cache key before any work: a keyframe's key chains from the previous
keyframe's (none at a shot's start), a chunk frame's from the frame before it and the next
keyframe's. Frames whose key the cache holds are reused. The rest are painted as
:class:`~impasto.video.chunks.Stretch` es by a runner (:mod:`impasto.video.workers`: here in a
thread, or on Ray workers at once): a stretch is submitted once the frames it starts from are
painted, keyframes first (they are the chain the rest waits on). Each frame is written to the
cache as soon as it comes back, by this thread only, so the cache stays the one record of
what is finished: a killed worker's stretch is submitted again with the frames it finished (none
is painted twice), and a killed driver's rerun finds them all.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import PIL.Image

from ..config import TransferConfig
from ..errors import ExitStatus, ImpastoError
from .cache import FrameCache
from .chunks import Chunk, Stretch, plan_chunks, stretches
from .cuts import find_cuts
from .frames import FrameResult
from .options import VideoOptions
from .workers import Event, Frame, PaintJob, Runner

__all__ = ["ChunkedRun", "StepHook", "paint_chunked"]

Uint8 = npt.NDArray[np.uint8]
StepHook = Callable[[str, int, int, int], None]  # (stretch id, frame, iteration, iterations)
RETRIES = 2  # resubmissions of a stretch whose worker died, before the run fails
POLL_S = 0.2


class StretchFailed(ImpastoError):
    """A stretch could not be painted (its message says why)."""

    def __init__(self, message: str, status: int = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.exit_status = ExitStatus(status)


@dataclass
class ChunkedRun:
    """What :func:`paint_chunked` did."""

    outputs: list[Uint8]
    cuts: list[int]
    chunks: list[Chunk]
    reused: int = 0
    retries: int = 0  # stretches submitted again after their worker died
    seconds: list[float] = field(default_factory=list)  # of each frame painted in this run


def _frame_keys(
    cache: FrameCache, contents: Sequence[Uint8], chunks: Sequence[Chunk], temporal: bool
) -> list[str]:
    keys = [""] * len(contents)

    def key(index: int, previous: str | None) -> str:
        return cache.frame_key(index, PIL.Image.fromarray(contents[index]), previous)

    for c in chunks:  # keyframes first: chunk frames chain onto the next one's key
        after = keys[c.after] if temporal and c.after is not None else None
        keys[c.start] = key(c.start, after)
    for c in chunks:
        for k in range(c.start + 1, c.end):
            if temporal:
                ahead = keys[c.next_key] if c.next_key is not None else ""
                keys[k] = key(k, f"{keys[k - 1]}|{ahead}")
            else:
                keys[k] = key(k, None)
    return keys


def plan_stretches(chunks: Sequence[Chunk], temporal: bool) -> list[Stretch]:
    """Keyframes first (the chain), then the chunks' other frames; naive runs: each chunk one
    stretch of independent frames."""
    if not temporal:
        return [Stretch(None, range(c.start, c.end)) for c in chunks]
    keys, rests = [], []
    for c in chunks:
        key, rest = stretches(c)
        keys.append(key)
        if rest is not None:
            rests.append(rest)
    return keys + rests


def paint_chunked(
    contents: Sequence[Uint8],
    styles: Sequence[PIL.Image.Image],
    config: TransferConfig,
    options: VideoOptions,
    runner: Runner,
    cache: FrameCache,
    *,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_step: StepHook | None = None,
    on_cuts: Callable[[list[int]], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> ChunkedRun:
    """Paint every frame of ``contents`` (see the module notes); ``config`` carries the run's
    seed and ``options.chunk_frames`` the chunk length. Frames are reported to ``on_frame`` as
    they are reused or painted (in the order they finish), iterations to ``on_step``, the cuts
    found to ``on_cuts`` before any painting; ``notice`` hears of a worker lost and its stretch
    submitted again. Raises KeyboardInterrupt after stopping the
    runner on Ctrl-C, :class:`StretchFailed` when a stretch cannot be painted."""
    temporal = options.temporal
    cuts = list(find_cuts(contents, options.flow)) if temporal and options.cuts else []
    if on_cuts is not None:
        on_cuts(cuts)
    chunks = plan_chunks(len(contents), cuts, options.chunk_frames)
    keys = _frame_keys(cache, contents, chunks, temporal)
    run = ChunkedRun([np.zeros(0, np.uint8)] * len(contents), cuts, chunks)
    done: set[int] = set()
    cut_set = set(cuts)
    for k, key in enumerate(keys):
        cached = cache.get(k, key)
        if cached is not None:
            run.outputs[k] = np.asarray(cached)
            done.add(k)
            run.reused += 1
            if on_frame is not None:
                on_frame(FrameResult(k, cached, True, 0, 0.0, cut=k in cut_set))
    todo = [s for s in plan_stretches(chunks, temporal) if not set(s.frames) <= done]
    style_arrays = tuple(np.asarray(s.convert("RGB")) for s in styles)
    cfg_dict, opts_dict = config.to_dict(), options.to_dict()
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    running: dict[str, Stretch] = {}
    attempts: dict[int, int] = {}  # per stretch (by its first frame)

    def job(s: Stretch) -> PaintJob:
        reads = [*s.needs, *s.frames]
        known = {i: run.outputs[i] for i in (*s.needs, *s.frames) if i in done}
        return PaintJob(
            f"frames {s.frames.start + 1}-{s.frames.stop}#{attempts.get(s.frames.start, 0)}",
            s, {i: contents[i] for i in reads}, known, style_arrays, cfg_dict, opts_dict,
        )  # fmt: skip

    def ready(s: Stretch) -> bool:
        return all(i in done for i in s.needs)

    try:
        while todo or running:
            while len(running) < runner.slots:
                nxt = next((s for s in todo if ready(s)), None)
                if nxt is None:
                    break
                todo.remove(nxt)
                j = job(nxt)
                running[j.id] = nxt
                runner.submit(j, events)
            if not running:
                raise StretchFailed("nothing can run: a stretch waits on frames never painted")
            try:
                event = events.get(timeout=POLL_S)
            except queue.Empty:
                continue
            kind, job_id = event[0], event[1]
            if kind == "step":
                if on_step is not None:
                    on_step(job_id, event[2], event[3], event[4])
            elif kind == "frame":
                frame: Frame = event[2]
                k = frame.index
                image = PIL.Image.fromarray(frame.image)
                cache.put(k, keys[k], image)
                run.outputs[k] = frame.image
                done.add(k)
                run.seconds.append(frame.seconds)
                if on_frame is not None:
                    on_frame(_result(frame, image, k in cut_set))
            elif kind == "done":
                s = running.pop(job_id)
                if not set(s.frames) <= done:  # a worker that stopped short: paint the rest
                    todo.insert(0, s)
            elif kind == "lost":  # its worker died: again, from the frames it finished
                s = running.pop(job_id)
                tries = attempts[s.frames.start] = attempts.get(s.frames.start, 0) + 1
                if tries > RETRIES:  # workers that keep dying are most often out of memory
                    raise StretchFailed(
                        f"{job_id.split('#')[0]}: {event[2]} ({tries} tries; try fewer --workers)",
                        ExitStatus.RESOURCE,
                    )
                run.retries += 1
                todo.insert(0, s)
                if notice is not None:
                    kept = len(set(s.frames) & done)
                    notice(
                        f"{job_id.split('#')[0]}: {event[2]}; submitted again, its {kept} "
                        "finished frame(s) kept"
                    )
            else:  # failed: an error no retry mends
                raise StretchFailed(f"{job_id.split('#')[0]}: {event[2]}", *event[3:4])
    except BaseException:
        runner.stop()
        raise
    return run


def _result(frame: Frame, image: PIL.Image.Image, cut: bool) -> FrameResult:
    return FrameResult(
        frame.index, image, False, frame.iterations, frame.seconds, None, frame.coverage,
        frame.note, cut,
    )  # fmt: skip
