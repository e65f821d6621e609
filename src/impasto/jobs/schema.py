"""The job store's SQLite schema: its version, its tables and indexes, and the migration steps
that take an older store to the current version (run by :class:`~impasto.jobs.store.Store`)."""

from __future__ import annotations

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id        TEXT PRIMARY KEY,            -- JobSpec.id: hash of inputs, options, output name
    seq       INTEGER NOT NULL,            -- order of submission
    kind      TEXT NOT NULL DEFAULT 'transfer',
    inputs    TEXT NOT NULL,               -- JSON {"content": {path, sha256}, "styles": [...]}
    options   TEXT NOT NULL,               -- JSON: the options given (seed included)
    output    TEXT NOT NULL,               -- the result's path, relative to the store's folder
    labels    TEXT NOT NULL DEFAULT '{}',  -- JSON {"content", "style", "sweep"}
    state     TEXT NOT NULL CHECK (state IN
                  ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts  INTEGER NOT NULL DEFAULT 0,  -- claims so far, and reruns after a worker died
    worker    TEXT,                        -- host:pid:token of the claim
    device    TEXT,
    lease     REAL,                        -- Unix time of the holder's last heartbeat
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    seconds   REAL,                        -- optimisation time of the last attempt
    losses    TEXT,                        -- JSON {term: value}, "total" included: Job.terms
    error     TEXT,                        -- one line, when failed or cancelled
    extra     TEXT NOT NULL DEFAULT '{}'   -- JSON: what a front end keeps with the row (v2)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_output ON jobs (output);
"""

# Run after the version check (and any migration): they name version-2 columns.
INDEXES_V2 = "CREATE INDEX IF NOT EXISTS jobs_kind ON jobs (kind, state, finished)"

# Each step takes a store of the version before it to the next one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE jobs ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'",),
}
