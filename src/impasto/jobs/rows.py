"""A job as the store holds it: :class:`Job` (one row), its states, and a row read back with
each column checked (SQLite keeps whatever a column is given)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .spec import JobSpec, Source

State = Literal["queued", "running", "done", "failed", "cancelled"]
STATES: tuple[State, ...] = ("queued", "running", "done", "failed", "cancelled")
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class Job:
    """A row of the store."""

    id: str
    seq: int
    inputs: Mapping[str, Any]
    options: Mapping[str, Any]
    output: str
    labels: Mapping[str, str]
    state: State
    attempts: int
    worker: str | None
    device: str | None
    lease: float | None
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    terms: Mapping[str, float] | None  # the final weighted terms by name, and "total"
    error: str | None
    kind: str = "transfer"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def sources(self) -> tuple[Source, tuple[Source, ...]]:
        return JobSpec.sources_from_json(json.dumps(self.inputs))

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        """The row as a Job; TypeError or ValueError for a row no impasto wrote (SQLite keeps
        whatever a column is given)."""
        return cls(
            id=_typed(row, "id", str),
            seq=_typed(row, "seq", int),
            inputs=_json(row, "inputs", dict),
            options=_json(row, "options", dict),
            output=_typed(row, "output", str),
            labels=_json(row, "labels", dict),
            state=row["state"],
            attempts=_typed(row, "attempts", int),
            worker=_typed(row, "worker", str, None),
            device=_typed(row, "device", str, None),
            lease=_typed(row, "lease", float, None),
            created=_typed(row, "created", float),
            started=_typed(row, "started", float, None),
            finished=_typed(row, "finished", float, None),
            seconds=_typed(row, "seconds", float, None),
            terms=_json(row, "losses", dict) if row["losses"] else None,
            error=_typed(row, "error", str, None),
            kind=_typed(row, "kind", str),
            extra=_json(row, "extra", dict),
        )


def _typed(row: sqlite3.Row, key: str, kind: type, *none: None) -> Any:
    value = row[key]
    if value is None and none:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind):
        raise TypeError(f"{key} is {value!r}, not {kind.__name__}")
    return value


def _json(row: sqlite3.Row, key: str, kind: type) -> Any:
    value = json.loads(_typed(row, key, str))
    if not isinstance(value, kind):
        raise TypeError(f"{key} is {type(value).__name__}, not {kind.__name__}")
    return value
