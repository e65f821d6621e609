"""Time to a finished picture: candidate plans and arithmetic, each run as a user runs it (the
``impasto transfer`` command, its own process), scored by bench_quality.py's yardstick against
the first candidate (the baseline: today's default), with their wall and CPU time.

    python benchmarks/bench_time_to_quality.py                     # 512 px, the four pairs
    python benchmarks/bench_time_to_quality.py --size 256 --pairs tubingen:starry_night \
        --candidate "old=--precision fp32 --scales auto --iterations 350 --stop-change 0" \
        --candidate "new=" --rounds 2

A candidate is ``NAME=FLAGS``: ``impasto transfer`` options added to ``--size`` and ``--seed``
(an empty FLAGS: all defaults). The candidates take turns, pair by pair and round by round, so
that a shared machine's load falls on all alike; with several rounds each figure is the median.
"Finished" (issue 29): every E_l ≤ 1.1x the baseline's, the content loss ≤ 1.1x and the chroma
grain ≤ 1.1x, all scored by bench_quality's Yardstick; and, looked at side by side, the same
picture: the contact sheet (rows = pairs, columns = candidates) and the sheet of details (the
middle third at twice the size) are written to --out to be looked at. Prints figures; nothing
here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_quality: before torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality

ROOT = bench_quality.ROOT
# Today's default before issue 29 (fp32; 200, 100 and 50 iterations at 256, 362 and 512 px),
# and the defaults of the tree being measured.
OLD_DEFAULT = "--precision fp32 --scales 256,362,512 --iterations 350 --stop-change 0"
CANDIDATES = [f"old={OLD_DEFAULT}", "new="]
WITHIN = 1.1  # "finished": each score at most 1.1x the baseline's
LAYERS = bench_quality.LAYERS


def run_cli(
    content: Path, style: Path, out: Path, size: int, seed: int, flags: str
) -> dict[str, Any]:
    """One ``impasto transfer`` in its own process: wall and CPU seconds (its own and its
    children's), and its summary line."""
    cmd = [sys.executable, "-m", "impasto", "transfer", str(content), str(style), "-o", str(out)]
    cmd += ["--size", str(size), "--seed", str(seed), *shlex.split(flags)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.startswith("wrote ")]
    return {"wall": wall, "cpu": cpu, "summary": lines[-1] if lines else ""}


def verdict(scores: dict[str, float], base: dict[str, float]) -> tuple[float, bool]:
    """(the worst ratio to the baseline over every E_l, the content loss and the grain, whether
    all are within WITHIN)."""
    worst = max(scores[k] / base[k] for k in (*LAYERS, "content", "grain"))
    return worst, worst <= WITHIN


def report(pair: str, names: list[str], rows: dict[str, dict[str, Any]]) -> None:
    base = rows[names[0]]["scores"]
    print(f"\n{pair}: ratios to {names[0]} (finished: every one ≤ {WITHIN})")
    head = f"{'candidate':<14}{'wall s':>8}{'cpu s':>8}{'content':>9}"
    print(head + "".join(f"{x:>9}" for x in LAYERS) + f"{'grain':>7}{'worst':>7}  finished")
    for name in names:
        r = rows[name]
        s = r["scores"]
        worst, done = verdict(s, base)
        print(
            f"{name:<14}{r['wall']:>8.0f}{r['cpu']:>8.0f}{s['content'] / base['content']:>9.3f}"
            + "".join(f"{s[x] / base[x]:>9.3f}" for x in LAYERS)
            + f"{s['grain'] / base['grain']:>7.3f}{worst:>7.3f}  {'yes' if done else 'NO'}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pairs", default=",".join(bench_quality.PAIRS))
    p.add_argument(
        "--candidate",
        action="append",
        default=None,
        metavar="NAME=FLAGS",
        help=f"impasto transfer flags; the first is the baseline (default: {CANDIDATES})",
    )
    p.add_argument("--rounds", type=int, default=1, help="turns of every candidate on every pair")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--reuse",
        default="",
        metavar="NAMES",
        help="comma-separated candidates not run again: their pictures and times are read from "
        "an earlier invocation's results in --out (same size and seed)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "out" / "time_to_quality")
    a = p.parse_args()
    candidates = dict(c.split("=", 1) for c in (a.candidate or CANDIDATES))
    names = list(candidates)
    pairs = a.pairs.split(",")
    a.out.mkdir(parents=True, exist_ok=True)

    import torch

    from impasto import experiments, imageio
    from impasto.precision import cpu_has_bf16
    from impasto.vgg import build_vgg

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs (bf16 in hardware: "
        f"{cpu_has_bf16()}), torch {torch.__version__}; load {os.getloadavg()[0]:.1f}; "
        f"{a.size} px, seed {a.seed}, {a.rounds} round(s)"
    )
    for name in names:
        print(f"  {name}: impasto transfer --size {a.size} --seed {a.seed} {candidates[name]}")
    times: dict[tuple[str, str], list[dict[str, Any]]] = {}
    reuse = set(filter(None, a.reuse.split(",")))
    if reuse:
        earlier = json.loads((a.out / f"results_{a.size}.json").read_text())
        for pair in pairs:
            for name in reuse:
                times[(pair, name)] = earlier[pair][name]["runs"]
    for k in range(a.rounds):
        for pair in pairs:
            content, style = bench_quality.PAIRS[pair]
            # Each round starts with another candidate, so none always runs first.
            order = names[k % len(names) :] + names[: k % len(names)]
            for name in (n for n in order if n not in reuse):
                out = a.out / f"{pair.replace(':', '_')}_{name}_{a.size}.png"
                t = run_cli(content, style, out, a.size, a.seed, candidates[name])
                times.setdefault((pair, name), []).append(t)
                print(
                    f"  round {k + 1} {pair} {name}: wall {t['wall']:.0f} s, cpu {t['cpu']:.0f} s, "
                    f"load {os.getloadavg()[0]:.1f}\n    {t['summary']}",
                    flush=True,
                )
    vgg = build_vgg("vgg19", None, "avg", "auto")
    results: dict[str, Any] = {}
    sheet_rows: list[list[Any]] = []
    detail_rows: list[list[Any]] = []
    for pair in pairs:
        content, style = bench_quality.PAIRS[pair]
        stick = bench_quality.Yardstick(content, style, a.size, vgg)
        rows: dict[str, dict[str, Any]] = {}
        panels, details = [], []
        for name in names:
            image = imageio.load_image(str(a.out / f"{pair.replace(':', '_')}_{name}_{a.size}.png"))
            runs = times[(pair, name)]
            rows[name] = {
                "wall": statistics.median(t["wall"] for t in runs),
                "cpu": statistics.median(t["cpu"] for t in runs),
                "runs": runs,
                "scores": stick.score(image),
            }
            panels.append(experiments.Panel(f"{name} ({rows[name]['wall']:.0f} s)", image, 0.0))
            details.append(experiments.Panel(name, bench_quality.detail(image), 0.0))
        report(pair, names, rows)
        results[pair] = rows
        sheet_rows.append(panels)
        detail_rows.append(details)
    labels = [x.replace(":", " × ") for x in pairs]
    title = f"{a.size} px; in brackets: the whole process's wall time (median)"
    experiments.contact_sheet(sheet_rows, row_labels=labels, title=title).save(
        a.out / f"sheet_{a.size}.png"
    )
    experiments.contact_sheet(
        detail_rows, row_labels=labels, title=f"{a.size} px: the middle third, twice the size"
    ).save(a.out / f"details_{a.size}.png")
    (a.out / f"results_{a.size}.json").write_text(json.dumps(results, indent=1))
    print(f"\nsheets: {a.out / f'sheet_{a.size}.png'}, {a.out / f'details_{a.size}.png'}")


if __name__ == "__main__":
    main()
