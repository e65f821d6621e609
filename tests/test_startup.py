"""Startup: the commands that need no network answer without importing torch.

``impasto --version``, ``--help`` (the top one and each command's), a mistyped option or command
and ``impasto batch status`` build the parser (generated from the options dataclasses) and read
the job store, and nothing more: each is run here as a user runs it, ``python -m impasto``, with
``-X importtime``, which names every module the process imported. Not a timed test: how long
startup takes is measured by benchmarks/bench_startup.py (BENCHMARKS.md).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from helpers import run_impasto
from impasto.jobs.plan import plan
from impasto.jobs.store import Store

# What a command that runs no transfer must not wait for (numpy would be acceptable, were it
# needed; none of these is).
HEAVY = ("torch", "torchvision", "ray", "fastapi", "uvicorn", "cv2", "matplotlib", "av")
_IMPORTED = re.compile(r"^import time:\s*\d+\s*\|\s*\d+\s*\|\s*(\S+)\s*$")


def imported(stderr: str) -> set[str]:
    """The top-level packages ``-X importtime`` reported as imported."""
    names = set()
    for line in stderr.splitlines():
        match = _IMPORTED.match(line)
        if match:
            names.add(match.group(1).split(".")[0])
    return names


def run_timed(args: list[str], cwd: Path) -> tuple[int, str, set[str]]:
    run = run_impasto(*args, cwd=cwd, command=(sys.executable, "-X", "importtime", "-m", "impasto"))
    said = "\n".join(line for line in run.stderr.splitlines() if not _IMPORTED.match(line))
    return run.returncode, run.stdout + said, imported(run.stderr)


CASES = {
    "version": (["--version"], 0, r"^impasto \d"),
    "help": (["--help"], 0, r"usage: impasto"),
    "transfer help": (["transfer", "--help"], 0, r"usage: impasto transfer"),
    "video help": (["video", "--help"], 0, r"usage: impasto video"),
    "serve help": (["serve", "--help"], 0, r"usage: impasto serve"),
    "batch help": (["batch", "--help"], 0, r"usage: impasto batch"),
    "batch status help": (["batch", "status", "--help"], 0, r"usage: impasto batch status"),
    "mistyped option": (
        ["transfer", "a.png", "b.png", "-o", "c.png", "--itertions", "5"],
        2,
        r"did you mean --iterations\?",
    ),
    "another command's option": (
        ["transfer", "a.png", "b.png", "-o", "c.png", "--fps", "5"],
        2,
        r"it is an option of 'impasto video'",
    ),
    "mistyped command": (["trasnfer", "a.png"], 2, r"did you mean transfer\?"),
    "bad value": (["transfer", "a.png", "b.png", "-o", "c.png", "--size", "x"], 2, r"--size"),
    "batch status of nothing": (["batch", "status", "nowhere"], 3, r"no batch in 'nowhere'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_answers_without_importing_torch(case: str, tmp_path: Path) -> None:
    args, status, said = CASES[case]
    code, output, modules = run_timed(args, tmp_path)
    assert code == status, output
    assert re.search(said, output, re.MULTILINE), output
    assert "impasto" in modules  # -X importtime did report
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_batch_status_of_a_real_batch_reads_the_store_without_torch(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    specs = plan([str(content_path)], [str(style_path)], {"size": 32, "iterations": 2})
    with Store.in_folder(tmp_path / "out") as store:
        store.add(specs)
    code, output, modules = run_timed(["batch", "status", "out"], tmp_path)
    assert code == 0, output
    assert "1 job: 1 queued" in output
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_a_transfer_still_imports_torch(tmp_path: Path) -> None:
    """The check above can fail: a command that runs the network reports torch among its
    imports (here it stops at the missing content image, after loading the engine)."""
    code, output, modules = run_timed(["transfer", "a.png", "b.png", "-o", "c.png"], tmp_path)
    assert code == 3, output
    assert "torch" in modules
