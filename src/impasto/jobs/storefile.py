"""Whose file is it: a job store's identity, read before anything is written to it.

A file at a store's path may be a stranger's: another program's SQLite database that happens
to be called ``impasto.sqlite``, or a file that is no database at all. Nothing may change its
bytes, not even the switch to WAL mode (which rewrites the header), so it is recognised first
through a read-only connection (``mode=ro``), and only an empty file or impasto's own store is
then opened for writing.

impasto's stores carry SQLite's ``application_id`` (:data:`APPLICATION_ID`) and the schema
version as ``user_version``, set in the transaction that makes the store. Stores made before
that (schema 1 and 2, application id 0) are recognised by their own marker, a ``meta`` table
with a ``schema`` row beside a ``jobs`` table with the store's columns, and are given the
application id on their next writable open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from ..errors import InputError

__all__ = ["APPLICATION_ID", "Kind", "kind_of", "recognise", "stamp"]

APPLICATION_ID = 0x494D5041  # "IMPA": PRAGMA application_id of impasto's job stores
# The columns every version of the store has had: a ``jobs`` table without them is a stranger's.
_JOBS_COLUMNS = frozenset({"id", "seq", "inputs", "options", "output", "state", "created"})

Kind = Literal["empty", "ours", "legacy"]


def _refusal(path: Path, why: str) -> InputError:
    return InputError(
        f"cannot use the job store '{path}': {why}; impasto leaves it as it is (use another "
        "folder, or move the file away)"
    )


def kind_of(db: sqlite3.Connection, path: Path) -> Kind:
    """What the database of ``db`` is: ``empty`` (no tables: a new store, or one another
    process is making), ``ours`` (impasto's application id) or ``legacy`` (a store made before
    the application id); anything else is refused with one line. Reads only."""
    (app_id,) = db.execute("PRAGMA application_id").fetchone()
    if app_id == APPLICATION_ID:
        return "ours"
    if app_id != 0:
        raise _refusal(path, f"it is another program's SQLite database (application id {app_id})")
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    (user_version,) = db.execute("PRAGMA user_version").fetchone()
    if not names and user_version == 0:
        return "empty"
    if "meta" in names and "jobs" in names and _marked(db):
        columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
        if columns >= _JOBS_COLUMNS:
            return "legacy"
    shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    what = f"an SQLite database with tables {shown}" if names else "an SQLite database"
    raise _refusal(path, f"it is {what}, not an impasto job store")


def _marked(db: sqlite3.Connection) -> bool:
    """Whether ``meta`` holds a ``schema`` row, as every impasto store before the application
    id did (a version that does not parse is the version check's to refuse, by name)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError:  # a stranger's meta table without those columns
        return False
    return row is not None


def recognise(path: Path, busy_timeout_s: float) -> Kind:
    """The identity of the file at ``path``, read through a read-only connection that changes
    no byte of it: ``empty`` for no file or an empty one. A stranger's file is refused."""
    try:
        if path.stat().st_size == 0:
            return "empty"
    except FileNotFoundError:
        return "empty"
    except OSError as e:
        raise InputError(f"cannot use the job store '{path}': {e.strerror or e}") from None
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        try:
            return _read_kind(uri, path, busy_timeout_s)
        except sqlite3.OperationalError:
            # Read-only media: SQLite cannot make a WAL file's index beside it; read the file
            # as one nothing changes (nothing can, there).
            return _read_kind(uri + "&immutable=1", path, busy_timeout_s)
    except sqlite3.DatabaseError as e:
        raise InputError(f"cannot use the job store '{path}': {e}") from None


def _read_kind(uri: str, path: Path, busy_timeout_s: float) -> Kind:
    db = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None)
    try:
        return kind_of(db, path)
    finally:
        db.close()


def stamp(db: sqlite3.Connection, version: int) -> None:
    """Mark the store of ``db`` as impasto's, of schema ``version`` (in the caller's write
    transaction: with the schema it is made or migrated with)."""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {int(version)}")
