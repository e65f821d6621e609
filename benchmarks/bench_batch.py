"""Throughput and overhead of ``impasto batch``: one process, the local executor, and Ray.

Eight tiny jobs (tubingen x four paintings x two seeds; 96 px, 20 iterations by default) run

- ``sequential``: one :class:`~impasto.jobs.worker.Worker` in a loop, no store, no files;
- ``local``: :func:`~impasto.jobs.run_jobs` with the local executor (one worker, all threads);
- ``ray1``, ``ray2``: ``run_jobs`` with :class:`~impasto.jobs.rayexec.RayExecutor` on a local Ray
  of this machine's CPUs, one worker (all threads) and two (the CPUs shared between them);

each in a fresh process, one after the other. Per mode it prints the start-up (network loaded;
for Ray also ``ray.init`` and the actors), the wall time of the eight jobs and jobs per minute,
the mean seconds a job spent optimising (inside the worker) and the mean *overhead* per job: from
its claim to its recorded end, less its optimisation (decoding, encoding, writing and recording
the result, and for Ray the task's dispatch and the transfer of the images), with the workers
warm. Peak memory is the driver's peak RSS, plus for Ray the peak RSS of each worker process and
the current RSS of Ray's own processes (GCS, raylet; sampled at the end).

    python benchmarks/bench_batch.py                      # all four modes
    python benchmarks/bench_batch.py --modes ray2 --size 128 --iterations 50
    python benchmarks/bench_batch.py --device cuda --modes local,ray1 --size 512 --iterations 100

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: no OpenMP spin-waiting
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ("starry_night", "the_scream", "shipwreck", "starry_night")
MODES = ("sequential", "local", "ray1", "ray2")


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        children = [c for c, parent in parents.items() if parent == p]
        found += children
        frontier += children
    return found


def _specs(folder: Path, size: int, iterations: int) -> list:  # type: ignore[type-arg]
    from impasto import imageio
    from impasto.jobs.plan import parse_sweep, plan

    folder.mkdir(parents=True, exist_ok=True)
    names = ["tubingen", *dict.fromkeys(PAINTINGS)]
    for name in names:
        img = imageio.resize_longest(imageio.load_image(ROOT / "examples" / f"{name}.jpg"), size)
        img.save(folder / f"{name}.png")
    styles = [str(folder / f"{p}.png") for p in dict.fromkeys(PAINTINGS)]
    options = {"size": size, "iterations": iterations}
    specs = plan([str(folder / "tubingen.png")], styles, options, sweeps=[parse_sweep("seed=0,1")])
    extra = plan(
        [str(folder / "tubingen.png")],
        [styles[0]],
        options,
        sweeps=[parse_sweep("seed=2,3")],
    )
    return [*specs, *extra][:8]


def run_mode(mode: str, size: int, iterations: int, threads: int, device: str) -> dict[str, float]:
    import torch

    from impasto.jobs import BatchListener, Job, LocalExecutor, Outcome, Store, run_jobs
    from impasto.jobs.worker import Worker

    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    specs = _specs(tmp / "in", size, iterations)
    began = time.monotonic()
    figures: dict[str, float] = {}
    if mode == "sequential":
        from impasto.jobs.driver import _task

        worker = Worker(device)
        worker.load(specs[0].options)
        figures["startup_s"] = time.monotonic() - began
        with Store.in_folder(tmp / "plan") as store:  # only to make tasks as the driver does
            store.add(specs)
            tasks = [_task(job) for job in store.jobs()]
        started = time.monotonic()
        outcomes = [worker.run(task) for task in tasks]
        figures["wall_s"] = time.monotonic() - started
        figures["optimise_s"] = sum(o.seconds for o in outcomes) / len(outcomes)
        figures["overhead_s"] = figures["wall_s"] / len(tasks) - figures["optimise_s"]
        figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return figures

    executor: object
    if mode == "local":
        executor = LocalExecutor([device])
        executor.workers[0].load(specs[0].options)
    else:
        import ray

        from impasto.jobs.rayexec import RayExecutor

        gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
        ray.init(num_cpus=threads, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
        figures["ray_init_s"] = time.monotonic() - began
        executor = RayExecutor(workers=int(mode[3:]), options=specs[0].options)
        figures["actors_s"] = executor.startup_seconds
    figures["startup_s"] = time.monotonic() - began

    class Clock(BatchListener):
        def __init__(self) -> None:
            self.began: dict[str, float] = {}
            self.spans: list[tuple[float, float]] = []  # (claim to record, optimising)

        def started(self, job: Job) -> None:
            self.began[job.id] = time.monotonic()

        def ended(self, job: Job, outcome: Outcome | None) -> None:
            assert outcome is not None and job.state == "done", job.error
            self.spans.append((time.monotonic() - self.began[job.id], outcome.seconds))

    clock = Clock()
    with Store.in_folder(tmp / "out") as store:
        started = time.monotonic()
        summary = run_jobs(specs, store, tmp / "out", executor, listener=clock)  # type: ignore[arg-type]
        figures["wall_s"] = time.monotonic() - started
    assert summary.done == len(specs), summary
    figures["optimise_s"] = sum(s[1] for s in clock.spans) / len(clock.spans)
    figures["overhead_s"] = sum(s[0] - s[1] for s in clock.spans) / len(clock.spans)
    figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if mode != "local":
        workers = executor.pids()  # type: ignore[attr-defined]
        figures["worker_peak_mib"] = sum(_kib(f"/proc/{p}/status", "VmHWM") for p in workers) / 1024
        others = [p for p in _descendants(os.getpid()) if p not in workers]
        figures["ray_rest_mib"] = sum(_kib(f"/proc/{p}/status", "VmRSS") for p in others) / 1024
    executor.close()  # type: ignore[attr-defined]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (Ray: one worker a GPU)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a mode, in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_mode(args.one, args.size, args.iterations, args.threads, args.device)))
        return
    print(f"# {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"# 8 jobs, {args.size} px, {args.iterations} iterations; torch threads {args.threads}")
    head = "mode        start s  8 jobs s  jobs/min  optimise s/job  overhead s/job  peak MiB"
    print(head)
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--one", mode, "--size", str(args.size)]
        cmd += ["--iterations", str(args.iterations), "--threads", str(args.threads)]
        cmd += ["--device", args.device]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            print(f"{mode}: failed\n{run.stderr[-2000:]}")
            continue
        f = json.loads(run.stdout.strip().splitlines()[-1])
        peak = f"{f['peak_mib']:.0f}"
        if "worker_peak_mib" in f:
            peak += f" + workers {f['worker_peak_mib']:.0f} + Ray {f['ray_rest_mib']:.0f}"
        start = f"{f['startup_s']:.1f}"
        if "ray_init_s" in f:
            start += f" (init {f['ray_init_s']:.1f}, actors+weights {f['actors_s']:.1f})"
        print(
            f"{mode:<10}  {start:<7}  {f['wall_s']:8.1f}  {8 / f['wall_s'] * 60:8.1f}  "
            f"{f['optimise_s']:14.2f}  {f['overhead_s']:14.2f}  {peak}"
        )
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
