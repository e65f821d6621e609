"""Jobs: the SQLite job store and the executors, shared by ``impasto batch`` (and the server).

- :mod:`~impasto.jobs.spec`: :class:`JobSpec` (what to run, with its identity), :class:`Task`
  (a job made self-contained for a worker) and :class:`Outcome` (what a worker hands back)
- :mod:`~impasto.jobs.plan`: contents x styles x sweeps, or a jobs file, as JobSpecs
- :mod:`~impasto.jobs.store`: :class:`Store`, the jobs of a folder in ``impasto.sqlite``; its
  rows (:class:`Job`) in :mod:`~impasto.jobs.rows`, its tables and migrations in
  :mod:`~impasto.jobs.schema`, who holds a running job in :mod:`~impasto.jobs.leases`
- :mod:`~impasto.jobs.worker`: :class:`Worker`, one device's runner of tasks
- :mod:`~impasto.jobs.executor`: the :class:`Executor` interface and :class:`LocalExecutor`
- :mod:`~impasto.jobs.rayexec`: ``RayExecutor``, on a Ray cluster (not imported here: it needs
  Ray, the ``impasto[ray]`` extra)
- :mod:`~impasto.jobs.driver`: :func:`run_jobs`, which claims, runs, writes and records
- :mod:`~impasto.jobs.sheet`: the contact sheet of a batch's results
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import BatchListener, Summary, run_jobs
    from .executor import Executor, ExecutorOptions, LocalExecutor, local_devices, require_ray
    from .spec import JobSpec, Outcome, Report, Source, Task
    from .store import STORE_NAME, Job, Store

# Imported on first use (PEP 562): ``impasto batch status`` and the command line's help read the
# store and the options without waiting for torch, which the worker (and so the driver) loads.
_LAZY = {
    "BatchListener": "driver",
    "Summary": "driver",
    "run_jobs": "driver",
    "Executor": "executor",
    "ExecutorOptions": "executor",
    "LocalExecutor": "executor",
    "local_devices": "executor",
    "require_ray": "executor",
    "JobSpec": "spec",
    "Outcome": "spec",
    "Report": "spec",
    "Source": "spec",
    "Task": "spec",
    "STORE_NAME": "store",
    "Job": "store",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STORE_NAME",
    "BatchListener",
    "Executor",
    "ExecutorOptions",
    "Job",
    "JobSpec",
    "LocalExecutor",
    "Outcome",
    "Report",
    "Source",
    "Store",
    "Summary",
    "Task",
    "local_devices",
    "require_ray",
    "run_jobs",
]
