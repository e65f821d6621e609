"""The studio's jobs as records: :class:`StudioJob`, what the server holds of one while it lives
(made anew from a row of the job store after a restart, made into a Task for a worker), and
:class:`JobStatus`, what clients see of it (every status answer and event), and the refusals the
queue answers with (each mapped to an HTTP status by the app). :mod:`impasto.serve.jobs` runs
them."""

from __future__ import annotations

import collections
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import PIL.Image
from pydantic import BaseModel, Field

from ..config import TransferConfig
from ..jobs.spec import Task, config_from
from ..jobs.store import FINISHED, Job, State
from .intake import Masks

EVENTS_KEPT = 200  # snapshots a job keeps for streams that connect late or reconnect
INTERRUPTED = "interrupted by a server stop"  # the reason of a job a stop cut short


class JobStatus(BaseModel):
    """A job as clients see it: the data of every status answer and every event."""

    id: str
    state: State
    position: int | None = Field(
        description="place in the queue while queued: 1 runs next (when a worker is free)"
    )
    iteration: int = Field(description="iterations done, counted across coarse-to-fine stages")
    iterations: int = Field(description="iterations planned")
    stage: int
    stages: int
    loss: float | None = Field(description="the objective (the sum of terms) at the last report")
    terms: dict[str, float | None] = Field(
        default_factory=dict,
        description="each weighted term of the objective by name (content, style, tv, ...)",
    )
    elapsed: float = Field(description="seconds of optimisation so far")
    error: str | None = Field(description="why the job failed, in one line")
    cancel_requested: bool
    created: float = Field(description="Unix time")
    started: float | None
    finished: float | None
    content: str = Field(description="label of the content image (its file name)")
    styles: list[str]
    masks: list[str] = Field(
        default_factory=list,
        description="labels of the style images' masks, in their order (empty: no regions)",
    )
    keep_mask: str | None = Field(
        default=None, description="label of the mask of the part kept as the photo"
    )
    options: dict[str, Any] = Field(description="the full transfer configuration")
    preview_url: str | None = Field(description="the latest iterate as a JPEG")
    result_url: str | None = Field(description="the result PNG (also after a cancel)")
    events_url: str
    interrupted: bool = Field(
        description="cancelled because the server stopped (or was stopped while it waited)"
    )
    rerun_url: str | None = Field(
        description="POST here to run a finished job again, from its stored inputs and options"
    )
    seq: int = Field(description="sequence number of this snapshot (the event id)")


class Refused(Exception):
    """A request the queue refuses; the app answers with ``status`` (and ``headers``) and the
    message as the detail."""

    status: ClassVar[int] = 400
    headers: ClassVar[dict[str, str] | None] = None


class QueueFull(Refused):
    """The queue holds ``queue_limit`` jobs already."""

    status = 429
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "30"}


class ShuttingDown(Refused):
    """The server is stopping and takes no new jobs."""

    status = 503


class StorageError(Refused):
    """The server's storage folder cannot be written, not even recreated."""

    status = 503


class ResultGone(Refused):
    """A kept job's result (or, to run it again, its inputs) was deleted behind the server's
    back, e.g. by a cleaner of /tmp."""

    status = 410


class NotFinished(Refused):
    """A job that is still queued or running cannot be run again yet."""

    status = 409


@dataclass(eq=False)
class StudioJob:
    id: str
    config: TransferConfig
    content: PIL.Image.Image | None  # dropped once the job has run
    styles: list[PIL.Image.Image]
    labels: tuple[str, list[str]]  # (content, styles), for display and the PNG metadata
    folder: Path
    token: str | None = None
    masks: Masks | None = None  # regions painted over the photo; its images dropped once run
    created: float = field(default_factory=time.time)
    state: State = "queued"
    started: float | None = None
    finished: float | None = None
    iteration: int = 0
    iterations: int = 0
    stage: int = 1
    stages: int = 1
    loss: float | None = None
    terms: dict[str, float] = field(default_factory=dict)  # by name, weighted
    elapsed: float = 0.0
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    cancelled_by_client: bool = False
    preview: bytes | None = None  # the latest, while it runs; then in preview_file
    preview_seq: int = 0
    preview_saved: bool = False
    result: Path | None = None
    events: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=EVENTS_KEPT)
    )

    @property
    def result_file(self) -> Path:
        return self.folder / "result.png"

    @property
    def preview_file(self) -> Path:
        return self.folder / "preview.jpg"

    def input_files(self, count: int) -> list[Path]:
        """Where the content and each of ``count`` styles are kept."""
        return [self.folder / "content.png"] + [
            self.folder / f"style-{i}.png" for i in range(1, count + 1)
        ]

    def mask_files(self, count: int) -> list[Path]:
        """Where the masks of ``count`` styles are kept."""
        return [self.folder / f"mask-{i}.png" for i in range(1, count + 1)]

    @property
    def keep_file(self) -> Path:
        """Where the mask of the part kept as the photo is kept."""
        return self.folder / "keep.png"

    @classmethod
    def from_row(cls, row: Job, folder: Path) -> StudioJob:
        """A job of the store, its files in ``folder``, as a server keeps it. Raises
        :class:`~impasto.errors.ImpastoError` when its options no longer make a configuration
        (written by another version of impasto)."""
        config = config_from(row.options)
        styles = row.inputs.get("styles", [])
        labels = (
            str(row.inputs.get("content", {}).get("name", "content")),
            [str(s.get("name", f"style {i + 1}")) for i, s in enumerate(styles)],
        )
        extra, terms = row.extra, dict(row.terms or {})
        job = cls(row.id, config, None, [], labels, folder, extra.get("token"))
        job.created, job.started, job.finished = row.created, row.started, row.finished
        job.state, job.error = row.state, row.error
        job.iteration = int(extra.get("iteration", 0))
        job.iterations = int(extra.get("iterations", config.iterations))
        job.stage, job.stages = int(extra.get("stage", 1)), int(extra.get("stages", 1))
        job.loss = terms.pop("total", None)
        job.terms, job.elapsed = terms, row.seconds or 0.0
        job.preview_saved = job.preview_file.is_file()
        if job.result_file.is_file():
            job.result = job.result_file
        masks, keep = row.inputs.get("masks", []), row.inputs.get("keep")
        if masks or keep:  # their names; rerun reads the images
            job.masks = Masks(
                names=tuple(str(m.get("name", f"mask {i + 1}")) for i, m in enumerate(masks)),
                keep_name=str(keep.get("name", "keep mask")) if keep else None,
            )
        return job

    def task(self, preview_s: float, preview_every: int, preview_pixels: int) -> Task:
        """The job as an executor's workers take it: its stored inputs' bytes (read now), its
        options, and how often to send previews (:class:`~impasto.jobs.spec.Task`)."""
        content, styles = self.labels
        names = {"content": content, "styles": ",".join(styles)}
        masks: tuple[bytes, ...] = ()
        keep = None
        if self.masks is not None:
            names |= self.masks.sources()
            masks = tuple(p.read_bytes() for p in self.mask_files(len(self.masks.names)))
            if self.masks.keep_name is not None:
                keep = self.keep_file.read_bytes()
        files = self.input_files(len(styles))
        return Task(
            self.id,
            files[0].read_bytes(),
            tuple(p.read_bytes() for p in files[1:]),
            json.loads(self.config.to_json()),
            names,
            masks=masks,
            keep=keep,
            preview_s=preview_s,
            preview_every=preview_every,
            preview_pixels=preview_pixels,
        )

    def status(self, position: int | None, seq: int) -> JobStatus:
        """The job's state now as clients see it: snapshot ``seq``, ``position`` in the queue
        (None unless queued)."""
        content, styles = self.labels
        base = f"/api/jobs/{self.id}"
        return JobStatus(
            id=self.id,
            state=self.state,
            position=position,
            iteration=self.iteration,
            iterations=self.iterations,
            stage=self.stage,
            stages=self.stages,
            loss=_finite(self.loss),
            terms={name: _finite(value) for name, value in self.terms.items()},
            elapsed=self.elapsed,
            error=self.error,
            cancel_requested=self.cancel.is_set(),
            created=self.created,
            started=self.started,
            finished=self.finished,
            content=content,
            styles=styles,
            masks=list(self.masks.names) if self.masks is not None else [],
            keep_mask=self.masks.keep_name if self.masks is not None else None,
            options=json.loads(self.config.to_json()),
            preview_url=(
                f"{base}/preview?v={self.preview_seq}"
                if self.preview is not None or self.preview_saved
                else None
            ),
            result_url=f"{base}/result" if self.result is not None else None,
            events_url=f"{base}/events",
            interrupted=self.state == "cancelled" and self.error == INTERRUPTED,
            rerun_url=f"{base}/rerun" if self.state in FINISHED else None,
            seq=seq,
        )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
