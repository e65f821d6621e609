"""Texture synthesis with each style loss, side by side: the cases where Gram matrices fail.

Each panel is synthesised from white noise with no content term, the style statistics of every
style layer (conv1_1 ... conv5_1) matched: what ``impasto reconstruct style IMAGE --style-loss
LOSS`` paints in its last panel (the paper's preset, as reconstruct takes it). The textures:

* ``bricks``: a regular pattern (drawn here, seeded): Gram matrices keep no arrangement, and
  neither do the other losses' distributions; the mortar's grid is what each loses least or most.
* ``dots``: sparse saturated dots on a plain ground (drawn here, seeded): a distribution of
  colours that is far from Gaussian, which second moments blur into a mixture of colours.
* ``starry_night`` and ``shipwreck``: paintings with large structures (swirls, waves).
* a ``mix-styles`` row: Starry Night's coarse layers with The Scream's fine ones, as
  ``impasto mix-styles`` makes it (its defaults: content weight 0, from noise).

Each output is scored against its texture with the quality yardstick (impasto.quality): the
sliced distance per style layer on fixed directions, the palette distance in levels and E_l.

    python benchmarks/bench_texture.py --size 256 --iterations 300 --out out/texture

Writes a contact sheet (rows: textures; columns: the texture and one panel per loss) and every
panel to --out. Prints figures; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # two shared cores (see bench_quality.py)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
IMAGES = SHARED if SHARED.is_dir() else ROOT / "examples"
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
LOSSES = ("gram", "sliced", "remd")


def bricks(size: int, seed: int = 1) -> Any:
    """A running-bond brick wall: bricks of slightly varied reds in pale mortar."""
    import numpy as np
    import PIL.Image
    import PIL.ImageDraw

    rng = np.random.default_rng(seed)
    img = PIL.Image.new("RGB", (size, size), (205, 200, 190))
    draw = PIL.ImageDraw.Draw(img)
    bw, bh, mortar = size // 5, size // 12, max(2, size // 64)
    for row, y in enumerate(range(-bh, size + bh, bh)):
        offset = (bw // 2) * (row % 2)
        for x in range(-bw, size + bw, bw):
            r, g, b = (int(v) for v in rng.normal((150, 60, 45), (12, 8, 6)).clip(0, 255))
            draw.rectangle((x + offset, y, x + offset + bw - mortar, y + bh - mortar), (r, g, b))
    return img


def dots(size: int, seed: int = 2) -> Any:
    """Sparse dots of four saturated colours on a cream ground."""
    import numpy as np
    import PIL.Image
    import PIL.ImageDraw

    rng = np.random.default_rng(seed)
    img = PIL.Image.new("RGB", (size, size), (242, 234, 214))
    draw = PIL.ImageDraw.Draw(img)
    colours = [(200, 30, 40), (30, 70, 170), (240, 180, 20), (30, 130, 70)]
    for _ in range(size * size // 900):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(size / 60, size / 30)
        draw.ellipse((x - r, y - r, x + r, y + r), colours[rng.integers(len(colours))])
    return img


def synthesise(
    texture: Any, loss: str, a: argparse.Namespace, vgg: Any, fine: Any = None
) -> tuple[Any, float]:
    """From noise with no content: reconstruct style's last panel, or mix-styles with ``fine``."""
    from impasto import Transfer, TransferConfig

    if fine is None:  # as impasto.experiments.reconstruct_style builds its panels
        cfg = TransferConfig(
            preset="paper",
            content_weight=0.0,
            style_weight=1.0,
            init="noise",
            size=a.size,
            iterations=a.iterations,
            seed=a.seed,
            style_loss=loss,  # type: ignore[arg-type]
        )
    else:  # as impasto mix-styles: its own defaults, content weight 0, from noise
        cfg = TransferConfig(
            content_weight=0.0,
            init="noise",
            size=a.size,
            iterations=a.iterations,
            seed=a.seed,
            style_loss=loss,  # type: ignore[arg-type]
        )
    start = time.perf_counter()
    result = Transfer(texture, [texture], cfg, vgg=vgg, fine_style=fine).run()
    return result.image, time.perf_counter() - start


def scorer(texture: Any, size: int, vgg: Any) -> Any:
    """A function scoring an image against ``texture``: sliced distances, palette, E_l."""
    import torch

    from impasto import imageio, quality
    from impasto.losses import gram
    from impasto.vgg import channels

    tex = imageio.resize_longest(texture, size)
    t = imageio.to_tensor(tex) * 255.0
    with torch.no_grad():
        feats = vgg(t, set(LAYERS))
    grams = {k: gram(v) for k, v in feats.items()}
    directions = {k: quality.yardstick_directions(channels(k), channels(k)) for k in LAYERS}
    palette = quality.yardstick_directions(3, 64)

    def score(image: Any) -> dict[str, float]:
        x = imageio.to_tensor(imageio.resize_to(image, tex.size)) * 255.0
        with torch.no_grad():
            f = vgg(x, set(LAYERS))
        out = {f"sw:{k}": v for k, v in quality.sliced_distances(f, feats, directions).items()}
        out.update(quality.style_errors(f, grams))
        out["palette"] = quality.palette_distance(x, t, palette)
        return out

    return score


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--losses", default=",".join(LOSSES))
    p.add_argument("--textures", default="bricks,dots,starry_night,shipwreck,mix")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "texture")
    a = p.parse_args()

    import torch

    from impasto import experiments, imageio
    from impasto.vgg import build_vgg

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); {a.size} px, {a.iterations} iterations, "
        f"seed {a.seed}"
    )
    a.out.mkdir(parents=True, exist_ok=True)
    vgg = build_vgg("vgg19", None, "avg", "auto")
    losses = a.losses.split(",")
    made = {"bricks": bricks, "dots": dots}
    rows, labels, results = [], [], {}
    for name in a.textures.split(","):
        fine = None
        if name == "mix":
            texture = imageio.load_image(str(IMAGES / "starry_night.jpg"))
            fine = imageio.load_image(str(IMAGES / "the_scream.jpg"))
            label = "mix: starry_night coarse, the_scream fine"
        elif name in made:
            texture = made[name](a.size)
            texture.save(a.out / f"{name}.png")
            label = name
        else:
            texture = imageio.load_image(str(IMAGES / f"{name}.jpg"))
            label = name
        score = scorer(texture, a.size, vgg)
        shown = imageio.resize_longest(texture, a.size)
        panels = [experiments.Panel("texture" if fine is None else "coarse", shown, 0.0)]
        results[name] = {}
        for loss in losses:
            image, seconds = synthesise(texture, loss, a, vgg, fine)
            image.save(a.out / f"{name}_{loss}_{a.size}.png")
            s = score(image)
            results[name][loss] = {"seconds": seconds, **s}
            panels.append(experiments.Panel(f"{loss} (palette {s['palette']:.0f})", image, 0.0))
            print(f"  {name} {loss}: {seconds:.0f} s", flush=True)
        print(f"\n{label}: sliced distance per layer, palette distance (levels), E_l")
        print(f"{'loss':<10}" + "".join(f"{'sw ' + k[4:]:>10}" for k in LAYERS), end="")
        print(f"{'palette':>9}" + "".join(f"{'E ' + k[4:]:>10}" for k in LAYERS))
        for loss, s in results[name].items():
            print(
                f"{loss:<10}"
                + "".join(f"{s['sw:' + k]:>10.3g}" for k in LAYERS)
                + f"{s['palette']:>9.1f}"
                + "".join(f"{s[k]:>10.3g}" for k in LAYERS),
                flush=True,
            )
        rows.append(panels)
        labels.append(label if fine is None else "mix-styles")
    sheet = experiments.contact_sheet(
        rows,
        row_labels=labels,
        title=f"{a.size} px from noise, {a.iterations} iterations; palette distance to the texture",
    )
    sheet.save(a.out / f"texture_{a.size}.png")
    (a.out / f"texture_{a.size}.json").write_text(json.dumps(results, indent=1))
    print(f"\ncontact sheet: {a.out / f'texture_{a.size}.png'}")


if __name__ == "__main__":
    main()
