"""Spatial control, measured: bleeding across a region boundary (--mask-propagation resize
against inside) and what the guidance costs per iteration.

The photo (Tübingen, made grey so that its own sky and river count for neither style) is split
down the middle; the left half is painted from a red painting, the right from a blue one: two
synthetic textures of one dominant colour each (blotches of red or blue over dark grey), so a
pixel's red-minus-blue says which style reached it (R − B above 60: red; below −60: blue; an
unstyled grey pixel: neither). For each variant, and for a plain run (no masks, the two styles
blended) as the reference, it prints

- **which style wins against the distance from the boundary**: per band of columns on each side,
  the share of pixels in the other side's colour (and in the side's own), and the *reach*: the
  width of the band along the boundary where the other side's colour holds more than 2% of the
  pixels (from the boundary to the first 4 px wide group of columns at or below 2%);
- **the style statistics inside each region**: E_l (paper eq. 4, per position: the region's
  guided Gram matrix over its mass against a painting's Gram matrix over its size, layers weighted
  as the defaults weigh them, 1/N_l²) against its own painting and against the other, and the
  distance of the region's mean colour to each painting's mean colour (RGB, 0..255);
- **the time per iteration** of the optimisation (setup and the first step excluded), guided
  (2 regions) and plain, in the same process, one after another: wall-clock, and this process's
  CPU time, which a CPU shared with other work disturbs less.

    python benchmarks/bench_spatial.py                       # 256 px, 100 iterations, CPU
    python benchmarks/bench_spatial.py --size 384 --save out/
    python benchmarks/bench_spatial.py --size 512 --iterations 300 --device cuda
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import impasto
from impasto import imageio
from impasto.guidance import propagate
from impasto.losses import gram, guided_gram, region_mass
from impasto.optimize import Step
from impasto.vgg import build_vgg

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "tubingen.jpg"
RED, BLUE = (230, 40, 30), (30, 60, 230)
THRESHOLD = 60  # |R − B| above this: the pixel is in one of the two styles' colours
REACH_SHARE = 0.02  # the wrong colour "reaches" a column where it holds more than this share
BANDS = (0, 4, 8, 16, 32, 64)  # px from the boundary; the last band runs to the edge
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
WEIGHTS = (12.8, 3.2, 0.8, 0.2, 0.2)  # the defaults' 1/N_l² layer weights


def texture(rgb: tuple[int, int, int], seed: int, size: int) -> Image.Image:
    """A painting of one dominant colour: 8 px blotches of it over dark grey."""
    rng = np.random.default_rng(seed)
    cells = size // 8
    blotches = np.kron(rng.random((cells, cells)) > 0.4, np.ones((8, 8), dtype=bool))
    arr = np.where(blotches[..., None], np.array(rgb), np.array([40, 40, 40]))
    return Image.fromarray(arr.astype(np.uint8))


def side_profiles(img: Image.Image) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per side, per column (ordered by distance from the boundary, 0 first): the share of the
    column in the other side's colour and in its own."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    d = arr[..., 0] - arr[..., 2]  # R − B
    mid = arr.shape[1] // 2
    left, right = d[:, :mid][:, ::-1], d[:, mid:]
    return {
        "left (red)": ((left < -THRESHOLD).mean(0), (left > THRESHOLD).mean(0)),
        "right (blue)": ((right > THRESHOLD).mean(0), (right < -THRESHOLD).mean(0)),
    }


def reach(wrong: np.ndarray) -> int:
    """How far the wrong colour reaches past the boundary: the px from the boundary to the first
    4-column group where it holds 2% of the pixels or less."""
    groups = wrong[: len(wrong) // 4 * 4].reshape(-1, 4).mean(1)
    below = np.nonzero(groups <= REACH_SHARE)[0]
    return 4 * int(below[0]) if len(below) else len(wrong)


def band_shares(share: np.ndarray) -> list[float]:
    edges = [*BANDS, max(len(share), BANDS[-1] + 1)]
    return [
        float(share[a:b].mean()) if a < len(share) else float("nan")
        for a, b in itertools.pairwise(edges)
    ]


class Statistics:
    """E_l of each half of a picture against each painting, and its mean colour's distances."""

    def __init__(self, paintings: list[Image.Image], wh: tuple[int, int], device: str) -> None:
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        self.vgg = build_vgg().to(self.device)
        w, h = wh
        left = torch.zeros(1, 1, h, w)
        left[..., : w // 2] = 1.0
        halves = torch.cat([left, 1.0 - left]).to(self.device)
        self.channels = propagate(halves, LAYERS, mode="resize")
        self.targets: list[dict[str, torch.Tensor]] = []  # per painting: Gram per position
        self.colours: list[np.ndarray] = []
        for p in paintings:
            feats = self.features(imageio.resize_to(p, wh))
            self.targets.append(
                {n: gram(f)[0] / (f.shape[2] * f.shape[3]) for n, f in feats.items()}
            )
            self.colours.append(np.asarray(p.convert("RGB"), dtype=np.float64).mean((0, 1)))

    def features(self, img: Image.Image) -> dict[str, torch.Tensor]:
        x = imageio.to_tensor(img).to(self.device) * 255.0
        with torch.no_grad():
            return self.vgg(x, set(LAYERS))

    def errors(self, img: Image.Image) -> list[tuple[float, float, float, float]]:
        """Per half (left, right): (E against its own painting, E against the other, colour
        distance to its own, to the other)."""
        feats = self.features(img)
        e = np.zeros((2, 2))  # region, painting
        for name, weight in zip(LAYERS, WEIGHTS, strict=True):
            f, t = feats[name], self.channels[name]
            n = f.shape[1]
            with torch.no_grad():
                per_position = guided_gram(f, t)[0] / region_mass(t).view(-1, 1, 1)
                for p, targets in enumerate(self.targets):
                    diff = (per_position - targets[name]).pow(2).sum((1, 2)) / (4.0 * n * n)
                    e[:, p] += weight * diff.cpu().numpy()
        arr = np.asarray(img.convert("RGB"), dtype=np.float64)
        mid = arr.shape[1] // 2
        means = [arr[:, :mid].mean((0, 1)), arr[:, mid:].mean((0, 1))]
        dist = [[float(np.linalg.norm(m - c)) for c in self.colours] for m in means]
        return [
            (e[0, 0], e[0, 1], dist[0][0], dist[0][1]),
            (e[1, 1], e[1, 0], dist[1][1], dist[1][0]),
        ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=256, help="longest side of the output (px)")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--modes",
        default="resize,inside,plain",
        help="comma-separated runs: resize, inside (guided) and plain (no masks, styles blended)",
    )
    ap.add_argument("--save", type=Path, default=None, help="folder for the output images")
    args = ap.parse_args()

    photo = imageio.resize_longest(imageio.load_image(CONTENT), args.size).convert("L")
    photo = photo.convert("RGB")
    w, h = photo.size
    left = torch.zeros(h, w)
    left[:, : w // 2] = 1.0
    side = max(w, h)
    paintings = [texture(RED, 1, side), texture(BLUE, 2, side)]
    stats = Statistics(paintings, (w, h), args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{w}x{h}, one scale, {args.iterations} iterations, torch threads "
        f"{torch.get_num_threads()}, load average {load:.2f} at the start\n"
    )
    results = []
    for mode in args.modes.split(","):
        clock: list[tuple[float, float]] = []  # per step: (wall, this process's CPU) seconds

        def tick(step: Step, clock: list[tuple[float, float]] = clock) -> None:
            clock.append((step.elapsed, time.process_time()))

        guided = mode in ("resize", "inside")
        out = impasto.stylize(
            photo,
            paintings,
            on_step=tick,
            masks=[left, 1.0 - left] if guided else None,
            mask_propagation=mode if guided else "resize",
            size=args.size,
            scales="one",
            iterations=args.iterations,
            seed=args.seed,
            device=args.device,
        )
        # from the first step's end to the last's: the setup and the first step's warm-up left out
        n = len(clock) - 1
        per_iteration = (
            (clock[-1][0] - clock[0][0]) / n,
            (clock[-1][1] - clock[0][1]) / n,
        )
        results.append((mode, out, per_iteration, stats.errors(out)))
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            out.save(args.save / f"bleed_{mode}_{args.size}.png")

    bands = [f"{a}–{b} px" for a, b in itertools.pairwise(BANDS)]
    bands.append(f"{BANDS[-1]} px–edge")
    print("Which style wins: the share of pixels in the other side's colour (own colour)\n")
    print("| run | side | " + " | ".join(bands) + " | reach |")
    print("|---" * (len(bands) + 3) + "|")
    for mode, out, _, _ in results:
        for name, (wrong, own) in side_profiles(out).items():
            cells = [
                f"{x:.2f} ({y:.2f})"
                for x, y in zip(band_shares(wrong), band_shares(own), strict=True)
            ]
            print(f"| {mode} | {name} | {' | '.join(cells)} | {reach(wrong)} px |")

    print("\nInside each region: E (Σ w_l E_l) and mean-colour distance, own painting / other\n")
    print("| run | region | E own | E other | colour own | colour other | s/iteration (CPU s) |")
    print("|---" * 7 + "|")
    for mode, _, per_iteration, errs in results:
        for name, (e_own, e_other, c_own, c_other) in zip(("left", "right"), errs, strict=True):
            print(
                f"| {mode} | {name} | {e_own:.3g} | {e_other:.3g} | {c_own:.0f} | {c_other:.0f} "
                f"| {per_iteration[0]:.3f} ({per_iteration[1]:.3f}) |"
            )
    plain = [r[2] for r in results if r[0] == "plain"]
    if plain:
        print()
        for mode, _, per_iteration, _ in results:
            if mode != "plain":
                wall, cpu = (a / b for a, b in zip(per_iteration, plain[0], strict=True))
                print(
                    f"{mode}: {wall:.2f}× the plain run's time per iteration "
                    f"({cpu:.2f}× its CPU time)"
                )


if __name__ == "__main__":
    main()
