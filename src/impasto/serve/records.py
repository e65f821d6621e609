"""The studio's jobs as records: :class:`Job`, what the server holds of one while it lives, and
:class:`JobStatus`, what clients see of it (every status answer and event); the states a job
goes through, and the refusals the queue answers with (each mapped to an HTTP status by the app).
:mod:`impasto.serve.jobs` runs them."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import PIL.Image
from pydantic import BaseModel, Field

from ..config import TransferConfig
from .intake import Masks

State = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})
EVENTS_KEPT = 200  # snapshots a job keeps for streams that connect late or reconnect


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
    content_loss: float | None = Field(description="terms['content'] (kept for old clients)")
    style_loss: float | None = Field(description="terms['style'] (kept for old clients)")
    tv_loss: float | None = Field(description="terms['tv'] (kept for old clients)")
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


class QueueFull(Exception):
    """The queue holds ``queue_limit`` jobs already (HTTP 429)."""


class ShuttingDown(Exception):
    """The server is stopping and takes no new jobs (HTTP 503)."""


class StorageError(Exception):
    """The server's storage folder cannot be written, not even recreated (HTTP 503)."""


class ResultGone(Exception):
    """A kept job's result (or, to run it again, its inputs) was deleted behind the server's
    back, e.g. by a cleaner of /tmp (HTTP 410)."""


class NotFinished(Exception):
    """A job that is still queued or running cannot be run again yet (HTTP 409)."""


@dataclass(eq=False)
class Job:
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
