"""What a job is: its inputs (by path and content hash), its options, its output; and what runs.

A :class:`JobSpec` is what the store keeps and what a re-run compares: its :attr:`~JobSpec.id` is
a hash of the inputs' contents, the resolved options (the seed included) and the output name, so
an unchanged job has the same id on every run and a changed one gets a new id. A :class:`Task` is
the same job made self-contained for a worker (the images' bytes rather than paths), and an
:class:`Outcome` is what a worker hands back; neither holds anything a process could not pickle,
so a worker may run anywhere (a thread here, a Ray actor elsewhere).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from ..config import TransferConfig, type_hints
from ..fieldtypes import parse_value
from ..paths import check_regular_file

__all__ = [
    "JobSpec",
    "Outcome",
    "Report",
    "Source",
    "Task",
    "config_from",
    "file_sha256",
    "options_hash",
]

_HINTS = type_hints(TransferConfig)


def config_from(options: Mapping[str, Any]) -> TransferConfig:
    """The config of a job's options, given as Python values or read back from JSON (lists
    for tuples): each value is read by its field's type, and the config checks the rest (an
    unknown name gets its "did you mean")."""
    typed = {k: parse_value(k, _HINTS[k], v) if k in _HINTS else v for k, v in options.items()}
    return TransferConfig.from_options(typed)


@dataclass(frozen=True)
class Source:
    """An input image: where it was read (as given) and the SHA-256 of its bytes."""

    path: str
    sha256: str

    @functools.cached_property
    def name(self) -> str:
        """The file name without its extension: the part of output names and labels."""
        return Path(self.path).stem


def file_sha256(path: str | Path) -> str:
    check_regular_file(path, "the image")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


_string: Callable[[str], str] = encode_basestring_ascii  # a JSON string, as json.dumps writes it


NAME_DIGITS = 32  # hex digits (128 bits) of a settings digest in an output's name


def options_hash(options: Mapping[str, Any] | str) -> str:
    """The part of an output's name that tells two settings apart: 32 hex digits (128 bits) of
    SHA-256 over the resolved options (every option, the seed included; ``options`` may be
    given resolved, as :attr:`JobSpec.settings`). Wide enough that two settings never share
    one (the eight digits of old did: 7 pairs in 200,000 rows)."""
    resolved = options if isinstance(options, str) else config_from(options).to_json()
    return hashlib.sha256(resolved.encode()).hexdigest()[:NAME_DIGITS]


@dataclass(frozen=True)
class JobSpec:
    """One transfer to run: a content image, its style image(s) (several are blended), the
    options the user gave (JSON values, the seed included; the config's defaults fill the rest),
    the output's file name inside the batch's folder and labels for tables and contact sheets
    (``content``, ``style``, and ``sweep`` when options were swept)."""

    content: Source
    styles: tuple[Source, ...]
    options: Mapping[str, Any]
    output: str
    labels: Mapping[str, str] = field(default_factory=dict)
    # The options resolved (TransferConfig.to_json), when the planner has them already.
    resolved: str | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def settings(self) -> str:
        """The resolved options as JSON (every option, defaults filled in), made once."""
        return self.resolved if self.resolved is not None else self.config().to_json()

    @functools.cached_property
    def id(self) -> str:
        """32 hex digits of SHA-256 over the inputs' contents, the resolved options and the
        output name: equal for an unchanged job, whatever the paths were called."""
        return hashlib.sha256(self._key().encode()).hexdigest()[:32]

    def _key(self) -> str:
        """What :attr:`id` hashes: the JSON of ``{"content", "options", "output", "styles"}``
        (sorted keys, no spaces), written out directly: a plan makes 100,000 of them."""
        styles = ",".join(_string(s.sha256) for s in self.styles)
        return (
            f'{{"content":{_string(self.content.sha256)},"options":{_string(self.settings)},'
            f'"output":{_string(self.output)},"styles":[{styles}]}}'
        )

    def config(self) -> TransferConfig:
        return config_from(self.options)

    def inputs_json(self) -> str:
        """The inputs as the store records them."""
        return _canonical(
            {
                "content": {"path": self.content.path, "sha256": self.content.sha256},
                "styles": [{"path": s.path, "sha256": s.sha256} for s in self.styles],
            }
        )

    @staticmethod
    def sources_from_json(text: str) -> tuple[Source, tuple[Source, ...]]:
        data = json.loads(text)
        content = Source(data["content"]["path"], data["content"]["sha256"])
        return content, tuple(Source(s["path"], s["sha256"]) for s in data["styles"])


@dataclass(frozen=True)
class Task:
    """A job as a worker receives it: everything it needs, nothing it must read from disk (the
    weights apart, which every worker has). ``names`` label the inputs in the output's
    metadata. ``masks`` (one grayscale image per style, white where it paints) and ``keep`` (the
    part kept as the photo) are the studio's regions, as image bytes; batch sends none.
    ``preview_s``: send a :class:`Report` with a JPEG of the image (longest side at most
    ``preview_pixels``) at most this often, besides the first and last iterations (None: no
    previews, as in batch), and then only at iterations that are multiples of
    ``preview_every``."""

    id: str
    content: bytes
    styles: tuple[bytes, ...]
    options: Mapping[str, Any]
    names: Mapping[str, str]  # {"content": ..., "styles": "a,b"}: the output's recorded inputs
    suffix: str = ".png"  # the output's type: .png, .jpg/.jpeg or .webp
    masks: tuple[bytes, ...] = ()
    keep: bytes | None = None
    preview_s: float | None = None
    preview_every: int = 1
    preview_pixels: int = 640


@dataclass(frozen=True)
class Report:
    """A running job's state, as a worker reports it to a listener that shows it (the studio):
    small enough to cross a process boundary several times a second. ``terms`` are the weighted
    loss terms by name; ``preview`` a JPEG of the current image, when one was due."""

    job_id: str
    iteration: int
    iterations: int
    stage: int
    stages: int
    elapsed: float
    loss: float | None
    terms: Mapping[str, float]
    preview: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """What a worker hands back. ``image`` is the result encoded (as the task's ``suffix`` says)
    with its metadata (the
    best image so far when ``interrupted``); None when the job failed, with ``error`` saying why
    in one line and ``exit_status`` the code the command line gives that error; ``trace`` is the
    traceback of an error no check foresaw (a bug), for a front end that logs it. ``retries``
    counts the times the worker running it died and the job was run again (Ray's executor)."""

    id: str
    image: bytes | None
    terms: Mapping[str, float]  # the final weighted terms by name, and "total"
    seconds: float
    device: str
    iterations: int = 0
    interrupted: bool = False
    error: str | None = None
    exit_status: int = 0
    retries: int = 0
    trace: str | None = None
