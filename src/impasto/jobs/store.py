"""The job store: one SQLite file (the standard library's ``sqlite3``), safe for several processes.

One row per job: its inputs (paths and content hashes), options, output, state (queued, running,
done, failed, cancelled), attempts, the worker that holds it and its device, timestamps, seconds,
the final terms by name and the error text. The file is in WAL mode (readers never block the
writer) with a busy timeout, and every change is one short transaction.

A file is recognised read-only before anything writes to it (:mod:`~impasto.jobs.storefile`):
a stranger's SQLite file is refused and left byte-identical; a new store is made and marked
impasto's in one transaction, then switched to WAL.
Opening is safe from any number of processes at once. Switching a new file to WAL rewrites its
header, and SQLite answers that switch with "database is locked" at once, without waiting for
the busy timeout, while another process is doing the same (it holds a read lock, and SQLite
never waits while holding one, to avoid a deadlock): the switch is tried again until the busy
timeout. A file system that cannot give WAL mode (SQLite then stays in another journal mode) is
refused with one clear line rather than used without the guarantees above. ``readonly=True``
opens an existing store for reading only (``impasto batch status``): it takes no write lock.

Claiming: :meth:`Store.claim` moves one queued job to running inside ``BEGIN IMMEDIATE`` (which
takes the write lock at once) with ``UPDATE ... WHERE state = 'queued' RETURNING``, so two
processes can never both get it. A claim records the worker (``host:pid:token``) and a lease
timestamp that :meth:`Store.heartbeat` renews; :meth:`Store.recover` puts back to queued a
running job whose process is gone (same host, pid not alive) or whose lease is older than
``STALE_AFTER_S`` (a process elsewhere, or one frozen that long). Finishing checks that the job
is still this worker's, so a worker that lost its job records nothing over the new holder's.

Rows have a ``kind``: ``transfer`` for ``impasto batch``'s jobs, ``studio`` for the web
studio's (:meth:`Store.insert`, :meth:`Store.recent`); claims, recovery and listings keep to one
kind. :meth:`Store.expire` is the retention policy of a kind (a count and an age of finished
jobs), and :meth:`Store.interrupt` records as cancelled the jobs a stopped process left behind.

Schema versions: 1, the first; 2 added ``extra`` (JSON a front end keeps with a row: the
studio's iterations and client token) and an index by kind. A version-1 store is migrated in
place when it is opened; a newer one is refused.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import InputError
from .leases import STALE_AFTER_S, abandoned, worker_id
from .outputs import insert_rows, planned_again, taken_outputs
from .rows import FINISHED, STATES, Job, State
from .schema import INDEXES_V2, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from .spec import JobSpec, Source
from .storefile import kind_of, recognise, stamp

__all__ = [
    "FINISHED",
    "STALE_AFTER_S",
    "STATES",
    "STORE_NAME",
    "Job",
    "State",
    "Store",
    "abandoned",
    "worker_id",
]

STORE_NAME = "impasto.sqlite"
BUSY_TIMEOUT_MS = 30_000

StrPath = str | os.PathLike[str]


_SORTED = json.JSONEncoder(sort_keys=True)  # json.dumps(..., sort_keys=True), made once


def _busy(e: sqlite3.Error) -> bool:
    """Whether SQLite said "database is locked" (SQLITE_BUSY, with any extended code)."""
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return "locked" in str(e)
    return bool(code & 0xFF == sqlite3.SQLITE_BUSY)


def _canonical(obj: Mapping[str, Any]) -> str:
    return json.dumps(dict(obj), sort_keys=True)


class Store:
    """A job store in ``path`` (a file; :meth:`in_folder` for ``FOLDER/impasto.sqlite``).

    One connection per instance, for one thread at a time; every process (and thread) opens
    its own, unless ``shared``: then threads may take turns with it, and the caller makes sure
    that they do (one lock around every call). ``create=False`` refuses a file that does not
    exist yet; ``readonly=True`` too, and opens it for reading only (a file with no store in it
    yet, one being made, say, or a store of an older schema is made or migrated first, by one
    writable open)."""

    def __init__(
        self, path: StrPath, *, create: bool = True, shared: bool = False, readonly: bool = False
    ) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection
        self._scoped: tuple[str, ...] | None = None  # the ids in temp.scope (claim)
        if (readonly or not create) and not self.path.is_file():
            raise InputError(f"no job store at '{self.path}'")
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"cannot make the folder of '{self.path}': {e.strerror}") from e
        # Whose file it is, read-only, before anything could write to it (a stranger's file
        # stays byte-identical).
        recognise(self.path, BUSY_TIMEOUT_MS / 1000)
        try:
            try:
                version = self._open(readonly, shared)
            except sqlite3.OperationalError:
                if not readonly:
                    raise
                # Read-only media: SQLite cannot make the WAL's index file beside the store, so
                # it reads the file as one that nothing changes (nothing can, there).
                version = self._open(readonly, shared, immutable=True)
        except sqlite3.DatabaseError as e:
            raise InputError(f"cannot use the job store '{self.path}': {e}") from e
        if readonly and (version or 0) < SCHEMA_VERSION:  # new or older: made or migrated first
            self._db.close()
            with Store(self.path, create=False):
                pass
            self._db = self._connect(readonly, shared)

    def _open(self, readonly: bool, shared: bool, immutable: bool = False) -> int | None:
        """Connect, and make or check the schema (writable) or read its version (readonly)."""
        self._db = self._connect(readonly, shared, immutable)
        try:
            if readonly:
                return self._read_version()
            self._open_for_writing()
            return SCHEMA_VERSION
        except BaseException:
            self._db.close()
            raise

    def _connect(self, readonly: bool, shared: bool, immutable: bool = False) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro" + (
            "&immutable=1" if immutable else ""
        )
        target = uri if readonly else self.path
        db = sqlite3.connect(
            target,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=not shared,
            uri=readonly,
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return db

    def _open_for_writing(self) -> None:
        """The schema made (marked impasto's, in the same transaction) or migrated, then WAL
        mode on. The file's identity is read again under the write lock: another process may
        have made the store since it was recognised, and nothing is written to a stranger's."""
        with self._write():
            kind = kind_of(self._db, self.path)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            migrated = self._check_version()
            self._db.execute(INDEXES_V2)
            if kind != "ours" or migrated:
                stamp(self._db, SCHEMA_VERSION)
        self._wal()
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints

    def _wal(self) -> None:
        """WAL mode on (a no-op on a store that has it), or a clear refusal where it cannot be."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                (mode,) = self._db.execute("PRAGMA journal_mode = WAL").fetchone()
                break
            except sqlite3.OperationalError as e:
                # Another process is switching the new file to WAL too: SQLite gives up at once
                # rather than wait (see the module's notes), so wait here, a little at random.
                if not _busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.002, 0.02))
        if str(mode).lower() != "wal":
            raise InputError(
                f"cannot use the job store '{self.path}': SQLite cannot use WAL mode there (it "
                f"stays in {mode!r} mode), which several processes need; put the folder on a "
                "local disk"
            )

    @classmethod
    def in_folder(
        cls, folder: StrPath, *, create: bool = True, shared: bool = False, readonly: bool = False
    ) -> Store:
        return cls(Path(folder) / STORE_NAME, create=create, shared=shared, readonly=readonly)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its first statement."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:  # locked past the busy timeout, read-only, disk full
            raise InputError(f"cannot write the job store '{self.path}': {e}") from e
        try:
            yield self._db
        except BaseException as e:
            self._db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise InputError(f"cannot write the job store '{self.path}': {e}") from e
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise InputError(f"cannot write the job store '{self.path}': {e}") from e

    def _read_version(self) -> int | None:
        """The store's schema version (a newer one than this impasto reads is refused); None
        when none is recorded yet (a new file, or one another process is making a store of)."""
        made = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        if self._db.execute(made).fetchone() is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            return None
        try:
            version = int(row["value"])
        except ValueError:
            raise InputError(
                f"the job store '{self.path}' has an unreadable schema version {row['value']!r}"
            ) from None
        if version < 1:
            raise InputError(
                f"the job store '{self.path}' has an unreadable schema version {row['value']!r}"
            )
        if version > SCHEMA_VERSION:
            raise InputError(
                f"the job store '{self.path}' was made by a newer impasto "
                f"(schema {version}, this one reads {SCHEMA_VERSION})"
            )
        return version

    def _check_version(self) -> bool:
        """Record the version of a new store, or migrate an older one; whether it was either."""
        version = self._read_version()
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return True
        # In the caller's transaction: a migration is done whole or not at all.
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                self._db.execute(statement)
        if version < SCHEMA_VERSION:
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),)
            )
        return version < SCHEMA_VERSION

    # --- submitting ---------------------------------------------------------------------------
    def add(self, specs: Sequence[JobSpec], *, retry_failed: bool = False) -> list[str]:
        """Record jobs to run, in order; their ids. A job already in the store (same id: same
        inputs, options and output) keeps its row: done stays done, cancelled is queued again,
        failed is queued again only with ``retry_failed``, running is left to its holder (or to
        :meth:`recover`). A job whose output another row planned (its inputs changed) replaces
        that row, unless that one is running."""
        now = time.time()
        ids: list[str] = []
        inputs: dict[tuple[Source, tuple[Source, ...]], str] = {}  # each pair's JSON made once
        with self._write() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
            taken = taken_outputs(db, specs)
            new: list[tuple[Any, ...]] = []  # rows to insert, sent together (executemany)
            for spec in specs:
                job_id = spec.id
                ids.append(job_id)
                pair = (spec.content, spec.styles)
                if pair not in inputs:
                    inputs[pair] = spec.inputs_json()
                # No row writes this output (nor has this id, which names the output): the
                # common case of a new plan, recorded without looking further.
                if spec.output in taken:
                    insert_rows(db, new)  # what follows reads the rows before it
                    if planned_again(db, spec, inputs[pair], retry_failed, self.path):
                        continue
                taken.add(spec.output)
                seq += 1
                options = _SORTED.encode(dict(spec.options))
                labels = _SORTED.encode(dict(spec.labels))
                new.append((job_id, seq, inputs[pair], options, spec.output, labels, now))
            insert_rows(db, new)
        return ids

    def insert(
        self,
        job_id: str,
        *,
        kind: str,
        inputs: Mapping[str, Any],
        options: Mapping[str, Any],
        output: str,
        labels: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one queued job under an id of the caller's choosing (the studio's random
        ids), after every other job. An id already present is an error."""
        with self._write() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
            db.execute(
                "INSERT INTO jobs (id, seq, kind, inputs, options, output, labels, state, "
                "created, extra) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    job_id,
                    seq,
                    kind,
                    _canonical(inputs),
                    _canonical(options),
                    output,
                    _canonical(labels or {}),
                    time.time(),
                    _canonical(extra or {}),
                ),
            )

    # --- running ------------------------------------------------------------------------------
    def recover(self, now: float | None = None, kind: str = "transfer") -> int:
        """Queue again every running job of ``kind`` whose holder is gone or silent; how many."""
        now = time.time() if now is None else now
        count = 0
        with self._write() as db:
            rows = db.execute(
                "SELECT id, worker, lease FROM jobs WHERE state = 'running' AND kind = ?", (kind,)
            )
            for row in rows.fetchall():
                if abandoned(row["worker"], row["lease"], now):
                    db.execute(
                        "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL "
                        "WHERE id = ? AND state = 'running'",
                        (row["id"],),
                    )
                    count += 1
        return count

    def claim(
        self, worker: str, ids: Sequence[str] | None = None, kind: str = "transfer"
    ) -> Job | None:
        """Take the first queued job (of ``ids`` when given, else of ``kind``) for ``worker``;
        None when none is left. Atomic: no two callers, in any processes, get the same job."""
        now = time.time()
        params: tuple[str, ...] = ()
        if ids is not None:
            only = "AND id IN (SELECT id FROM temp.scope)"
        else:
            only, params = "AND kind = ?", (kind,)
        scope = None if ids is None else tuple(ids)
        with self._write() as db:
            if scope is not None and scope != self._scoped:
                self._scoped = None  # until this transaction commits it
                db.execute("CREATE TEMP TABLE IF NOT EXISTS scope (id TEXT PRIMARY KEY)")
                db.execute("DELETE FROM temp.scope")
                db.executemany("INSERT OR IGNORE INTO temp.scope VALUES (?)", ((i,) for i in scope))
            row = db.execute(
                "UPDATE jobs SET state = 'running', worker = ?, lease = ?, started = ?, "
                "finished = NULL, attempts = attempts + 1, error = NULL, device = NULL, "
                "seconds = NULL, losses = NULL "
                "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
                f"{only} ORDER BY seq LIMIT 1) AND state = 'queued' RETURNING *",
                (worker, now, now, *params),
            ).fetchone()
        if scope is not None:  # its ids sent once for the claims of one plan, not every time
            self._scoped = scope
        return self._job(row) if row is not None else None

    def heartbeat(self, worker: str) -> None:
        """Renew the lease of every job ``worker`` holds."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET lease = ? WHERE worker = ? AND state = 'running'",
                (time.time(), worker),
            )

    def finish(
        self,
        job_id: str,
        worker: str,
        state: State,
        *,
        device: str | None = None,
        seconds: float | None = None,
        terms: Mapping[str, float] | None = None,
        error: str | None = None,
        extra: Mapping[str, Any] | None = None,
        retries: int = 0,
    ) -> bool:
        """Record the end of a job ``worker`` holds; False (nothing recorded) when it no longer
        holds it. ``extra``'s keys are merged into the row's; ``retries`` (reruns after its
        remote worker died) are counted as attempts."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET state = ?, device = ?, seconds = ?, losses = ?, error = ?, "
                "finished = ?, lease = NULL, extra = json_patch(extra, ?), "
                "attempts = attempts + ? "
                "WHERE id = ? AND worker = ? AND state = 'running'",
                (
                    state,
                    device,
                    seconds,
                    json.dumps(dict(terms), sort_keys=True) if terms is not None else None,
                    error,
                    time.time(),
                    _canonical(extra or {}),
                    retries,
                    job_id,
                    worker,
                ),
            )
            return cur.rowcount == 1

    def requeue(self, ids: Sequence[str]) -> int:
        """Queue again the done jobs of ``ids`` (their results were lost); how many."""
        if not ids:
            return 0
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL, "
                "extra = json_remove(extra, '$.bytes', '$.sha256') "
                "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'done'",
                (json.dumps(list(ids)),),
            )
            return cur.rowcount

    def has_output(self, output: str, kind: str = "transfer") -> bool:
        """Whether a job of ``kind`` writes ``output`` (a path relative to the store's folder)."""
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE output = ? AND kind = ? LIMIT 1", (output, kind)
        ).fetchone()
        return row is not None

    def recorded_outputs(self, outputs: Sequence[str], kind: str = "transfer") -> set[str]:
        """Those of ``outputs`` that a job of ``kind`` recorded here writes."""
        rows = self._db.execute(
            "SELECT DISTINCT output FROM jobs WHERE kind = ? AND output IN "
            "(SELECT value FROM json_each(?))",
            (kind, json.dumps(list(outputs))),
        )
        return {r["output"] for r in rows}

    def release(self, worker: str) -> int:
        """Queue again every job ``worker`` still holds (a driver stopping halfway); how many."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL "
                "WHERE worker = ? AND state = 'running'",
                (worker,),
            )
            return cur.rowcount

    def cancel(self, job_id: str, error: str | None = None) -> bool:
        """Cancel a queued job (a running one is stopped by its holder, who records it)."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET state = 'cancelled', error = ?, finished = ? "
                "WHERE id = ? AND state = 'queued'",
                (error, time.time(), job_id),
            )
            return cur.rowcount == 1

    def interrupt(self, kind: str, error: str) -> list[str]:
        """Record as cancelled, with ``error`` as the reason, every queued or running job of
        ``kind``: what a process that owns that kind alone (the studio, which locks its folder)
        finds left by its predecessor when it starts. Their ids."""
        with self._write() as db:
            rows = db.execute(
                "UPDATE jobs SET state = 'cancelled', error = ?, worker = NULL, lease = NULL, "
                "finished = ? WHERE kind = ? AND state IN ('queued', 'running') RETURNING id",
                (error, time.time(), kind),
            ).fetchall()
        return [r["id"] for r in rows]

    def expire(self, kind: str, keep: int, max_age_s: float, now: float | None = None) -> list[Job]:
        """The retention policy of ``kind``: delete its finished jobs beyond the ``keep`` most
        recently finished, and those finished more than ``max_age_s`` seconds ago. The rows
        deleted, for the caller to delete their files."""
        now = time.time() if now is None else now
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE kind = ? AND state IN ('done', 'failed', 'cancelled') "
                "ORDER BY finished DESC, seq DESC",
                (kind,),
            ).fetchall()
            gone = [
                self._job(r)
                for i, r in enumerate(rows)
                if i >= keep or now - (r["finished"] or now) > max_age_s
            ]
            db.execute(
                "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([j.id for j in gone]),),
            )
        return gone

    # --- reading ------------------------------------------------------------------------------
    def _job(self, row: sqlite3.Row) -> Job:
        """A row as a Job; a row damaged outside impasto (JSON that does not parse, a value of
        the wrong type) is an input error that names it."""
        try:
            return Job._from_row(row)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise InputError(
                f"the job store '{self.path}' has a damaged row ({str(row['id'])[:40]!r}): "
                f"{type(e).__name__}: {e}"
            ) from None

    def get(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row is not None else None

    def jobs(
        self, ids: Sequence[str] | None = None, kind: str = "transfer", state: str | None = None
    ) -> list[Job]:
        """Jobs in submission order: those of ``ids`` when given, else every job of ``kind``;
        only those in ``state`` when given (a plan of 100,000 jobs is not read whole to find
        its few cancelled ones)."""
        only, more = ("AND state = ?", (state,)) if state is not None else ("", ())
        if ids is None:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE kind = ? {only} ORDER BY seq", (kind, *more)
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?)) {only} "
                "ORDER BY seq",
                (json.dumps(list(ids)), *more),
            ).fetchall()
        return [self._job(r) for r in rows]

    def states(self, ids: Sequence[str]) -> dict[str, str]:
        """The state of each job of ``ids`` (those in the store), by id: read without the rest
        of the rows."""
        rows = self._db.execute(
            "SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        return {r[0]: r[1] for r in rows}

    def recent(self, kind: str, limit: int | None = None) -> list[Job]:
        """The jobs of ``kind``, newest first (the ``limit`` newest, when given)."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE kind = ? ORDER BY seq DESC LIMIT ?",
            (kind, -1 if limit is None else limit),
        ).fetchall()
        return [self._job(r) for r in rows]

    def counts(self, ids: Sequence[str] | None = None) -> dict[str, int]:
        """How many jobs are in each state (every state present, zeros included)."""
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        if ids is None:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE kind = 'transfer' GROUP BY state"
            )
        else:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE id IN (SELECT value FROM json_each(?)) "
                "GROUP BY state",
                (json.dumps(list(ids)),),
            )
        for state, n in rows:
            counts[state] = counts.get(state, 0) + n
        return counts
