"""How long ``impasto batch`` takes to plan a large sweep, and to stop when told to.

Runs ``impasto batch CONTENT --styles STYLE -o OUTDIR`` with SWEEPS options swept over VALUES
values each (5 x 10 by default: 100,000 jobs) in a fresh process, and reads its stderr as it
comes: the seconds to the first progress line, to the line that says the jobs are planned and
recorded ("N of N jobs to run"), and the peak memory; then it stops that process (SIGTERM). A
second process is sent SIGTERM at its first progress line, in the middle of planning, and the
seconds to its exit are timed (the status must be 143). Each run is a whole process, imports
included; a fresh OUTDIR each time. Prints one row per run and the median.

    python benchmarks/bench_plan.py                       # 100,000 jobs, 3 runs
    python benchmarks/bench_plan.py --sweeps 4 --runs 1   # 10,000 jobs

``--max-jobs`` is passed only to an impasto that has it (to time an older one). Nothing here is
a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "examples"
# Five options and ten values each; the first SWEEPS are swept.
SWEPT = {
    "style_weight": [f"{10**i:g}" for i in range(1, 11)],
    "content_weight": [str(i + 1) for i in range(10)],
    "tv_weight": [str(i) for i in range(10)],
    "seed": [str(i) for i in range(10)],
    "iterations": [str(i + 1) for i in range(10)],
}


def _images() -> tuple[Path, Path]:
    pictures = sorted(p for p in IMAGES.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if len(pictures) < 2:
        sys.exit(f"bench_plan: needs two pictures under {IMAGES}")
    return pictures[0], pictures[1]


def _has_max_jobs() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "impasto", "batch", "--help"], capture_output=True, text=True
    )
    return "--max-jobs" in done.stdout


def run_once(sweeps: int, values: int, max_jobs: bool, at: str) -> dict[str, float]:
    """One process, sent SIGTERM ``at`` its first planning line or once it has planned."""
    content, style = _images()
    total = values**sweeps
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        args = [sys.executable, "-m", "impasto", "batch", str(content), "--styles", str(style)]
        args += ["-o", str(Path(tmp) / "out"), "--size", "64", "--print-every", "100000"]
        for name in list(SWEPT)[:sweeps]:
            args += ["--sweep", f"{name}=" + ",".join(SWEPT[name][:values])]
        if max_jobs:
            args += ["--max-jobs", str(total)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        started = time.monotonic()
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stderr is not None
        seen: dict[str, float] = {}
        lines: list[str] = []
        planned = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip())
                now = time.monotonic() - started
                if line.startswith("batch: planning") and "first" not in seen:
                    seen["first"] = now
                    if at == "planning":
                        planned.set()
                if "jobs to run" in line:
                    seen["planned"] = now
                    planned.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while not planned.wait(0.2):
            if proc.poll() is not None:
                sys.exit("bench_plan: impasto ended before planning:\n" + "\n".join(lines[-5:]))
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait()
        stop = time.monotonic() - sent
        reader.join(5)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, of any child
    return {
        "jobs": float(total),
        "first line s": seen.get("first", float("nan")),
        "planned s": seen.get("planned", float("nan")),
        "SIGTERM to exit s": stop,
        "exit": float(status),
        "peak MiB": peak,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweeps", type=int, default=5)
    p.add_argument("--values", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    ns = p.parse_args()
    max_jobs = _has_max_jobs()
    rows = []
    for _ in range(ns.runs):
        done = run_once(ns.sweeps, ns.values, max_jobs, "planned")
        stopped = run_once(ns.sweeps, ns.values, max_jobs, "planning")
        rows.append(
            {
                "jobs": done["jobs"],
                "first line s": done["first line s"],
                "planned s": done["planned s"],
                "jobs/s": done["jobs"] / done["planned s"],
                "peak MiB": done["peak MiB"],
                "SIGTERM while planning: exit s": stopped["SIGTERM to exit s"],
                "exit": stopped["exit"],
            }
        )
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(f"{row[k]:.1f}" if k != "jobs" else f"{row[k]:,.0f}" for k in keys))
    median = {k: statistics.median(r[k] for r in rows) for k in keys}
    print("median: " + ", ".join(f"{k} {median[k]:.1f}" for k in keys[1:]))


if __name__ == "__main__":
    main()
