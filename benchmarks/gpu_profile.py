"""Where an iteration's time goes on a GPU: eager against CUDA graphs, cuDNN's autotuner on and
off, each precision; the kernels' own time; and the Python lines that make the host wait.

    python benchmarks/gpu_profile.py OUTDIR [--size 512]     # writes OUTDIR/profile.json, .txt

Steady-state time per iteration is (time of 140 iterations - time of 40) / 100, each run from the
same start in a fresh loop, so start-up, warm-up and capture cancel out. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("outdir", type=Path)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    a.outdir.mkdir(parents=True, exist_ok=True)
    from impasto import Transfer, TransferConfig, graphs
    from impasto.optimize import descend
    from impasto.precision import arithmetic

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    report: dict[str, Any] = {"size": a.size, "device": a.device, "torch": torch.__version__}
    text: list[str] = []

    def transfer(precision: str) -> Any:
        cfg = TransferConfig(
            size=a.size, scales="one", seed=0, device=a.device, precision=precision, iterations=1
        )
        return Transfer(ROOT / "examples/tubingen.jpg", [ROOT / "examples/starry_night.jpg"], cfg)

    def timed(t: Any, n: int) -> tuple[float, Any]:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = descend(t.problem, t.objective, t.objective.names, t.problem.x0, n)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start, result

    def steady(precision: str, use_graphs: bool, benchmark: bool) -> dict[str, Any]:
        graphs.ENABLED = use_graphs
        torch.backends.cudnn.benchmark = benchmark
        t = transfer(precision)
        timed(t, 8)  # warm: cuDNN, cuBLAS, the allocator
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        short, _ = timed(t, 40)
        long, result = timed(t, 140)
        row = {
            "precision": precision,
            "graphs": use_graphs,
            "cudnn_benchmark": benchmark,
            "ms_per_iteration": round(1000 * (long - short) / 100, 3),
            "replayed": result.replayed,
            "final_loss": result.final_loss,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
        }
        text.append(json.dumps(row))
        print(json.dumps(row), flush=True)
        return row

    combos = [("tf32", False, False), ("tf32", False, True), ("tf32", True, False)]
    combos += [("fp32", True, False), ("bf16", True, False), ("fp32", False, False)]
    if not cuda:
        combos = [("fp32", False, False), ("bf16", False, False)]
    report["steady"] = []
    for combo in combos:
        try:
            report["steady"].append(steady(*combo))
        except Exception as e:
            report["steady"].append({"combo": combo, "error": f"{type(e).__name__}: {e}"[:500]})
            text.append(f"{combo}: {type(e).__name__}: {e}"[:500])
    graphs.ENABLED = False
    torch.backends.cudnn.benchmark = False

    # The kernels' own time, and the launches, over 10 eager iterations.
    from torch.profiler import ProfilerActivity, profile

    t = transfer("tf32" if cuda else "fp32")
    timed(t, 5)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        wall, _ = timed(t, 10)
    events = prof.key_averages()
    device_us = sum(e.self_device_time_total for e in events) if cuda else 0.0
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel"))
    report["eager_profile"] = {
        "wall_ms_per_iteration": round(100 * wall, 2),
        "kernel_ms_per_iteration": round(device_us / 10 / 1000, 3),
        "kernel_launches_per_iteration": launches / 10,
        "aten_ops_per_iteration": sum(e.count for e in events if e.key.startswith("aten::")) / 10,
    }
    text.append(json.dumps(report["eager_profile"]))
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    text.append(events.table(sort_by=sort, row_limit=25))

    # The lines of impasto whose operations make the host wait for the GPU.
    if cuda:
        sites: collections.Counter[str] = collections.Counter()
        seen: list[str] = []

        def note(*args: Any, **kwargs: Any) -> None:
            stack = traceback.extract_stack()[:-1]
            ours = [f"{f.filename.split('/impasto/')[-1]}:{f.lineno} {f.line}" for f in stack]
            ours = [s for s in ours if "site-packages" not in s or "impasto" in s]
            seen.append(" <- ".join(reversed(ours[-4:])))

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = note
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with arithmetic("tf32", dev):
                    # A bare iteration body, outside descend, so that the warnings go to note().
                    from impasto.optimize import _Iterate

                    it = _Iterate(t.objective, t.problem.x0, t.config, dev)
                    for _ in range(3):
                        it.step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        for s in seen:
            sites[s] += 1
        report["sync_sites_per_3_iterations"] = dict(sites.most_common(12))
        text.append(json.dumps(report["sync_sites_per_3_iterations"], indent=1))
    (a.outdir / "profile.json").write_text(json.dumps(report, indent=2, default=str))
    (a.outdir / "profile.txt").write_text("\n\n".join(text))
    print(json.dumps({k: v for k, v in report.items() if k != "steady"}, default=str)[:3000])


if __name__ == "__main__":
    main()
