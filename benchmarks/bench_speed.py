"""Speed and memory of impasto against pastiche 1.6.0, on the same machine, in one run.

Each tool runs in its own Python process (so whole-process time and peak memory are its own) on
the same content and style, output size, iteration count, optimiser, pooling, layers and VGG-19
weights. Inside each process the optimisation loop is timed on its own. Afterwards both images
are scored by one objective: impasto's (Gatys et al.'s losses, fp32, the same weights), so the
final objective compares like with like. (pastiche optimises its own loss normalisation, so its
score under ours says how good its image is by the paper's measure, not how well it converged.)

    python benchmarks/bench_speed.py                 # CPU: 256 px x 50 L-BFGS iterations
    python benchmarks/bench_speed.py --device cuda   # GPU: 512 px x 500 iterations, impasto in
                                                     # fp32, tf32 and bf16 (each rescored in fp32)
    python benchmarks/bench_speed.py --device cuda --size 3840 --scales auto \
        --iterations 300 --tools impasto             # print sizes, coarse to fine

Prints a table and the ratios; nothing here is a test.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
CONTENT = SHARED / "tubingen.jpg" if SHARED.is_dir() else ROOT / "examples" / "tubingen.jpg"
STYLE = SHARED / "starry_night.jpg" if SHARED.is_dir() else ROOT / "examples" / "starry_night.jpg"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _peak_host_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_impasto(a: argparse.Namespace) -> dict[str, float]:
    import torch

    from impasto import Transfer, TransferConfig

    cfg = TransferConfig(
        size=a.size,
        iterations=a.iterations,
        optimizer=a.optimizer,
        device=a.device,
        seed=0,
        pooling="avg",
        precision=a.tool.split("-")[1] if "-" in a.tool else a.precision,
        scales=a.scales,
    )
    t = Transfer(str(a.content), [str(a.style)], cfg)
    _sync(a.device)
    start = time.perf_counter()
    result = t.run()
    _sync(a.device)
    opt = time.perf_counter() - start
    result.image.save(a.out)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda") else 0.0
    return {"opt_s": opt, "peak_gpu_mb": gpu, "replayed": result.replayed}


def run_pastiche(a: argparse.Namespace) -> dict[str, float]:
    import torch
    from pastiche.pastiche import PasticheArtist

    torch.manual_seed(0)
    blocks = {
        "conv1_1": "block1_relu1",
        "conv2_1": "block2_relu1",
        "conv3_1": "block3_relu1",
        "conv4_1": "block4_relu1",
        "conv5_1": "block5_relu1",
    }
    artist = PasticheArtist(
        str(a.content),
        [str(a.style)],
        pooling="avg",
        optimizer=a.optimizer,
        device=a.device,
        content_layers=["block4_relu2"],
        style_layers=[blocks[x] for x in STYLE_LAYERS],
        size=a.size,
        style_size=a.size,
    )
    _sync(a.device)
    start = time.perf_counter()
    for _ in range(a.iterations):
        artist.draw()
    _sync(a.device)
    opt = time.perf_counter() - start
    from pastiche.pastiche import save_image

    save_image(artist.pastiche, a.out)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda") else 0.0
    return {"opt_s": opt, "peak_gpu_mb": gpu}


def child(a: argparse.Namespace) -> None:
    figures = (run_pastiche if a.tool == "pastiche" else run_impasto)(a)
    figures["peak_host_mb"] = _peak_host_mb()
    print("RESULT " + json.dumps(figures))


def score(image: Path, a: argparse.Namespace) -> float:
    """The fp32 objective of impasto's defaults (α, β, layers) at ``image``."""
    import torch

    from impasto import Transfer, TransferConfig, imageio
    from impasto.optimize import arithmetic

    cfg = TransferConfig(size=a.size, iterations=1, device=a.device, seed=0, precision="fp32")
    t = Transfer(str(a.content), [str(a.style)], cfg)
    img = imageio.load_image(image)
    if img.size != t.size:
        img = imageio.resize_to(img, t.size)
    x = (imageio.to_tensor(img) * 255).to(t.device)
    with torch.no_grad(), arithmetic("fp32", t.device):  # TF32 off, whatever cuDNN's default
        return float(t.objective(x)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    p.add_argument("--content", type=Path, default=CONTENT)
    p.add_argument("--style", type=Path, default=STYLE)
    p.add_argument(
        "--tools",
        default=None,
        help="comma-separated: impasto (at --precision), impasto-fp32 (exact arithmetic), "
        "impasto-tf32, impasto-bf16, impasto-MODE-eager (no CUDA graphs), pastiche "
        "(default: impasto,pastiche on a CPU, where impasto "
        "is fp32 anyway; on CUDA impasto in all three precisions and pastiche)",
    )
    p.add_argument("--precision", default="auto", help="impasto's --precision")
    p.add_argument("--scales", default=None, help="impasto's --scales (e.g. auto)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    p.add_argument("--tool", help=argparse.SUPPRESS)  # child mode
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    gpu = a.device.startswith("cuda")
    a.size = a.size or (512 if gpu else 256)
    a.iterations = a.iterations or (500 if gpu else 50)
    a.tools = a.tools or (
        "impasto-fp32,impasto-tf32,impasto-bf16,pastiche" if gpu else "impasto,pastiche"
    )
    if a.tool:
        child(a)
        return

    import platform

    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"device {a.device}" + (f" ({torch.cuda.get_device_name()})" if gpu else "")
    )
    print(
        f"inputs: {a.content.name} + {a.style.name}, {a.size} px, {a.iterations} "
        f"{a.optimizer} iterations, avg pooling, conv4_2 / conv1_1..conv5_1, impasto "
        f"--precision {a.precision}" + (f" --scales {a.scales}" if a.scales else "") + "\n"
    )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tool in a.tools.split(","):
            out = Path(tmp) / f"{tool}.png"
            cmd = [
                sys.executable,
                __file__,
                "--tool",
                tool,
                "--out",
                str(out),
                "--device",
                a.device,
                "--size",
                str(a.size),
                "--iterations",
                str(a.iterations),
                "--optimizer",
                a.optimizer,
                "--content",
                str(a.content),
                "--style",
                str(a.style),
                "--precision",
                a.precision,
            ] + (["--scales", a.scales] if a.scales else [])
            # impasto-MODE-eager: without CUDA graphs (impasto.graphs), for comparison.
            env = dict(os.environ, IMPASTO_CUDA_GRAPHS="0" if tool.endswith("-eager") else "1")
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            whole = time.perf_counter() - start
            line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                print(f"{tool} failed:\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(line[len("RESULT ") :])
            r["whole_s"] = whole
            r["ms_per_it"] = 1000 * r["opt_s"] / a.iterations
            r["objective"] = score(out, a)
            rows[tool] = r
    header = (
        f"{'tool':<14}{'optimise s':>12}{'ms/it':>10}{'whole s':>10}"
        f"{'host MB':>10}{'GPU MB':>10}{'objective':>14}"
    )
    print(header)
    for tool, r in rows.items():
        print(
            f"{tool:<14}{r['opt_s']:>12.2f}{r['ms_per_it']:>10.1f}{r['whole_s']:>10.2f}"
            f"{r['peak_host_mb']:>10.0f}{r['peak_gpu_mb']:>10.0f}{r['objective']:>14.4g}"
        )
    summary = compare(rows, a.precision, gpu)
    for line in summary["lines"]:
        print(line)
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, **summary}, indent=2))


def compare(rows: dict[str, dict[str, float]], precision: str, gpu: bool) -> dict[str, Any]:
    """Ratios: impasto at its default precision (tf32 on CUDA, fp32 elsewhere) against pastiche,
    and each fast precision's objective against exact fp32 (every image rescored in fp32)."""
    out: dict[str, Any] = {"lines": [], "vs_pastiche": {}, "vs_fp32": {}}
    default = "impasto" if "impasto" in rows else f"impasto-{'tf32' if gpu else 'fp32'}"
    if default in rows and "pastiche" in rows:
        i, q = rows[default], rows["pastiche"]
        out["vs_pastiche"] = {
            "tool": default,
            "optimisation_speedup": q["opt_s"] / i["opt_s"],
            "whole_process_speedup": q["whole_s"] / i["whole_s"],
            "objective_ratio": i["objective"] / q["objective"],
        }
        v = out["vs_pastiche"]
        out["lines"].append(
            f"\n{default} is {v['optimisation_speedup']:.2f}x faster than pastiche in the "
            f"optimisation and {v['whole_process_speedup']:.2f}x over the whole process; its "
            f"objective is {v['objective_ratio']:.3f}x pastiche's"
        )
    exact = rows.get("impasto-fp32")
    if exact is not None:
        fast = {t: r for t, r in rows.items() if t.startswith("impasto") and t != "impasto-fp32"}
        for tool, r in fast.items():
            mode = tool.split("-", 1)[1] if "-" in tool else precision
            if mode.endswith("-eager"):
                continue
            out["vs_fp32"][mode] = {
                "speedup": exact["opt_s"] / r["opt_s"],
                "objective_change": r["objective"] / exact["objective"] - 1,
            }
            v = out["vs_fp32"][mode]
            out["lines"].append(
                f"impasto --precision {mode} vs exact fp32: {v['speedup']:.2f}x faster, "
                f"objective {100 * v['objective_change']:+.2f}%"
            )
    eager, graphed = rows.get(f"{default}-eager"), rows.get(default)
    if eager is not None and graphed is not None:
        out["graphs_speedup"] = eager["opt_s"] / graphed["opt_s"]
        out["lines"].append(
            f"{default} with CUDA graphs is {out['graphs_speedup']:.2f}x faster in the "
            "optimisation than without"
        )
    return out


if __name__ == "__main__":
    main()
