"""Where a whole ``impasto transfer`` process spends the time that is not the optimisation.

bench_speed.py times the loop and the whole process; this splits the rest into phases, in one
fresh process: importing torch, starting the device, importing impasto, reading the weights,
the network onto the device, preparing the run (images, targets), the run itself, writing the
PNG.

    python benchmarks/bench_startup.py                      # CPU, 256 px x 50 iterations
    python benchmarks/bench_startup.py --device cuda --size 512 --iterations 500

Prints one line per phase and, with ``--json FILE``, writes them; nothing here is a test.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
CONTENT = SHARED / "tubingen.jpg" if SHARED.is_dir() else ROOT / "examples" / "tubingen.jpg"
STYLE = SHARED / "starry_night.jpg" if SHARED.is_dir() else ROOT / "examples" / "starry_night.jpg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=None, help="default: 256 (CPU), 512 (GPU)")
    ap.add_argument("--iterations", type=int, default=None, help="default: 50 (CPU), 500 (GPU)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    gpu = a.device.startswith("cuda")
    size = a.size or (512 if gpu else 256)
    iterations = a.iterations or (500 if gpu else 50)
    phases: dict[str, float] = {}
    mark = [START]

    def done(name: str) -> None:
        if gpu:
            torch.cuda.synchronize()
        now = time.perf_counter()
        phases[name] = round(now - mark[0], 3)
        mark[0] = now

    import torch

    done("import torch")
    if gpu:
        torch.zeros(1, device=a.device)
    done("start the device")
    from impasto import Transfer, TransferConfig
    from impasto.prepare import build_network, network_on

    done("import impasto")
    cfg = TransferConfig(size=size, iterations=iterations, seed=0, device=a.device)
    net = build_network(cfg)
    done("read the weights")
    net = network_on(net, torch.device(a.device))
    done("network onto the device")
    t = Transfer(str(CONTENT), [str(STYLE)], cfg, vgg=net)
    done("prepare (images, targets)")
    result = t.run()
    done(f"run ({iterations} iterations)")
    with tempfile.TemporaryDirectory() as tmp:
        result.image.save(Path(tmp) / "out.png")
    done("write the PNG")
    total = time.perf_counter() - START
    for name, seconds in phases.items():
        print(f"{name:<36}{seconds:>8.3f} s")
    print(f"{'whole process (after Python starts)':<36}{total:>8.3f} s")
    if a.json:
        a.json.write_text(json.dumps({"phases": phases, "whole_s": round(total, 3)}, indent=1))


if __name__ == "__main__":
    main()
