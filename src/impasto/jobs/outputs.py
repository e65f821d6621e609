"""Who may write an output: a batch's names checked against what its store recorded.

Output names tell settings apart by a wide digest, but a name is not an identity: a jobs file
may give two jobs one ``output``, and two input files may share a name. So a job whose output
is the finished result of another job recorded in the store is refused
(:func:`refuse_clash`, from the recorded inputs and settings), and a file at a planned output
that no job of the store recorded, a user's own, is never written over
(:func:`unrecorded_files`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ImpastoError, UsageError
from .spec import JobSpec, Source, config_from

__all__ = ["refuse_clash", "taken_outputs", "unrecorded_files"]


def refuse_clash(db: sqlite3.Connection, spec: JobSpec, path: Path) -> None:
    """Refuse ``spec`` when its output is the finished result of another job recorded here:
    other settings, or other input files (not just new bytes of the same files, which is the
    same job to run again). Told from what the store recorded, not from names: a name cannot
    tell two jobs apart that it was never meant to."""
    rows = db.execute(
        "SELECT inputs, options FROM jobs WHERE output = ? AND id != ? AND kind = 'transfer' "
        "AND state = 'done'",
        (spec.output, spec.id),
    ).fetchall()
    for row in rows:
        try:
            content, styles = JobSpec.sources_from_json(row["inputs"])
            recorded = json.loads(config_from(json.loads(row["options"])).to_json())
        except (ValueError, TypeError, KeyError, ImpastoError):
            recorded, content, styles = {}, Source("?", ""), ()
        wanted = json.loads(spec.settings)
        differ = [k for k in sorted(wanted) if recorded.get(k) != wanted[k]]
        paths = (content.path, [s.path for s in styles])
        if not differ and paths == (spec.content.path, [s.path for s in spec.styles]):
            continue  # the same job, its inputs changed since: run again
        if differ:
            shown = ", ".join(f"{k} {recorded.get(k)!r}, not {wanted[k]!r}" for k in differ[:3])
            what = f"recorded with other settings: {shown}"
        else:
            what = f"made from '{content.path}'"
        raise UsageError(
            f"'{spec.output}' is the finished result of another job of the batch in "
            f"'{path.parent}' ({what}); impasto does not overwrite it: give this job another "
            "output name or OUTDIR"
        )


def taken_outputs(db: sqlite3.Connection, specs: Sequence[JobSpec]) -> set[str]:
    """Those of the specs' outputs that rows of the store of ``db`` write already."""
    outputs = json.dumps(list(dict.fromkeys(s.output for s in specs)))
    rows = db.execute(
        "SELECT DISTINCT output FROM jobs WHERE output IN (SELECT value FROM json_each(?))",
        (outputs,),
    )
    return {r[0] for r in rows}


def planned_again(
    db: sqlite3.Connection, spec: JobSpec, inputs: str, retry_failed: bool, path: Path
) -> bool:
    """A job of a plan whose output a row of the store writes already: its own row (same id)
    kept and queued again if it was cancelled (or failed, with ``retry_failed``): True; or the
    other row, of other inputs, deleted (unless running: then the clash is refused) so that
    the caller inserts this one: False."""
    row = db.execute("SELECT state FROM jobs WHERE id = ?", (spec.id,)).fetchone()
    if row is not None:
        # Same contents, perhaps other paths: the next attempt reads these.
        db.execute(
            "UPDATE jobs SET inputs = ? WHERE id = ? AND state != 'running'", (inputs, spec.id)
        )
        again = ("cancelled", "failed") if retry_failed else ("cancelled",)
        if row["state"] in again:
            db.execute("UPDATE jobs SET state = 'queued', error = NULL WHERE id = ?", (spec.id,))
        return True
    refuse_clash(db, spec, path)
    db.execute(
        "DELETE FROM jobs WHERE output = ? AND id != ? AND state != 'running'",
        (spec.output, spec.id),
    )
    return False


def insert_rows(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert queued jobs' rows (id, seq, inputs, options, output, labels, created) in one call,
    and empty the list."""
    db.executemany(
        "INSERT INTO jobs (id, seq, inputs, options, output, labels, state, created)"
        " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
        rows,
    )
    rows.clear()


def unrecorded_files(
    folder: Path,
    planned: Iterable[tuple[str, str]],
    recorded: Callable[[Sequence[str]], set[str]],
) -> list[str]:
    """The names of ``planned`` (name, the job's output it belongs to: the result itself, or
    its interrupted file) that exist in ``folder`` although no job recorded that output:
    ``recorded`` answers which outputs of a list the store has."""
    listed: set[str] | None
    try:
        listed = set(os.listdir(folder))
    except FileNotFoundError:  # no folder yet: nothing in it
        return []
    except OSError:  # none to list: each name asked for
        listed = None

    def exists(name: str) -> bool:
        if listed is not None and os.sep not in name and "/" not in name:
            return name in listed  # one listing, not a look-up for each of thousands
        return os.path.lexists(folder / name)

    present = [(n, owner) for n, owner in planned if exists(n)]
    if not present:
        return []
    known = recorded(list(dict.fromkeys(owner for _, owner in present)))
    return [n for n, owner in present if owner not in known]
