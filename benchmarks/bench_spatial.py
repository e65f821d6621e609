"""Bleeding across a region boundary: --mask-propagation inside against resize.

The photo is split down the middle; the left half is painted from a red painting, the right from
a blue one (two textures of one dominant colour each, so a pixel's red-minus-blue says which
style reached it). For each side we compare the band of pixels next to the boundary with the
same side far from it:

    bleed = (s_far − s_band) / (s_far − s_other_far),    s = mean(R − B) over the pixels

0 means the band looks like its own side; 0.5 means it is halfway to the other side's style; a
negative value means the band is more its own style than the far part. Reported per side and as
their mean, with the seconds each run took. Nothing here is a test.

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
    """(left, right) bleeding of an output split down the middle, left red, right blue."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    s = (arr[..., 0] - arr[..., 2]).mean(0)  # R − B per column
    mid = arr.shape[1] // 2
    left_far, right_far = s[: mid - 2 * band].mean(), s[mid + 2 * band :].mean()
    left_band, right_band = s[mid - band : mid].mean(), s[mid : mid + band].mean()
    span = left_far - right_far
    return (left_far - left_band) / span, (right_band - right_far) / span


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
    band = max(2, w // 16)
    print(f"{w}x{h}, {args.iterations} iterations, band {band} px\n")
    print("| propagation | bleed left | bleed right | mean | seconds |")
    print("|---|---|---|---|---|")
    for mode in ("inside", "resize"):
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
        lb, rb = bleed(out, band)
        print(f"| {mode} | {lb:.3f} | {rb:.3f} | {(lb + rb) / 2:.3f} | {seconds:.1f} |")
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            out.save(args.save / f"bleed_{mode}_{args.size}.png")


if __name__ == "__main__":
    main()
