"""Bleeding across a region boundary: --mask-propagation inside against resize.

The photo is split down the middle; the left half is painted from a red painting, the right from
a blue one (two textures of one dominant colour each, so a pixel's red-minus-blue says which
style reached it). Bleeding is the share of pixels within a band of the boundary that the other
side's colour has taken (R − B below −60 on the red side, above 60 on the blue side), for bands
of 4, 8 and 16 px, left/right; the same share far from the boundary (beyond a quarter of
the width) is the baseline. An unstyled seam shows the photo's own colours, which this counts
where they are the other side's (Tübingen's sky and river are blue): look at the images too.

    python benchmarks/bench_spatial.py                       # 128 px, 100 iterations, CPU
    python benchmarks/bench_spatial.py --size 512 --iterations 300 --device cuda --save out/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import impasto
from impasto import imageio

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "tubingen.jpg"


def texture(rgb: tuple[int, int, int], seed: int, size: int = 256) -> Image.Image:
    """A painting of one dominant colour: blotches of it over dark grey."""
    rng = np.random.default_rng(seed)
    cells = size // 8
    blotches = np.kron(rng.random((cells, cells)) > 0.4, np.ones((8, 8), dtype=bool))
    arr = np.where(blotches[..., None], np.array(rgb), np.array([40, 40, 40]))
    return Image.fromarray(arr.astype(np.uint8))


def bleed(img: Image.Image, band: int) -> tuple[float, float]:
    """(left, right): the share of the ``band`` px beside the boundary in the other's colour."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    d = arr[..., 0] - arr[..., 2]  # R − B
    mid = arr.shape[1] // 2
    left, right = d[:, max(0, mid - band) : mid], d[:, mid : mid + band]
    return float((left < -60).mean()), float((right > 60).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", type=Path, default=None, help="folder for the output images")
    args = ap.parse_args()

    photo = imageio.resize_longest(imageio.load_image(CONTENT), args.size)
    w, h = photo.size
    left = torch.zeros(h, w)
    left[:, : w // 2] = 1.0
    red, blue = texture((230, 40, 30), 1), texture((30, 60, 230), 2)
    bands = (4, 8, 16)
    print(f"{w}x{h}, {args.iterations} iterations; other side's colour, left/right\n")
    print("| propagation | " + " | ".join(f"{b} px" for b in bands) + " | far | seconds |")
    print("|---" * (len(bands) + 3) + "|")
    for mode in ("resize", "inside"):
        start = time.perf_counter()
        out = impasto.stylize(
            photo,
            [red, blue],
            masks=[left, 1.0 - left],
            mask_propagation=mode,
            size=args.size,
            iterations=args.iterations,
            seed=args.seed,
            device=args.device,
        )
        seconds = time.perf_counter() - start
        cells = ["{:.2f}/{:.2f}".format(*bleed(out, b)) for b in bands]
        arr = np.asarray(out, dtype=np.float64)
        d, mid, q = arr[..., 0] - arr[..., 2], w // 2, w // 4
        far = f"{(d[:, : mid - q] < -60).mean():.2f}/{(d[:, mid + q :] > 60).mean():.2f}"
        print(f"| {mode} | {' | '.join(cells)} | {far} | {seconds:.1f} |")
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            out.save(args.save / f"bleed_{mode}_{args.size}.png")


if __name__ == "__main__":
    main()
