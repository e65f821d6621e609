"""The sky of a photo as a mask (white: sky), and the rest as its complement, for spatial control.

A pixel is sky-coloured when it is blue and bright (B − R above --blue, B above --bright). The
sky is what is sky-coloured from the top of each column down to its first run of non-sky pixels
(so a blue river or a blue window below the roofs is ground), cleaned by a median filter
(thin branches against the sky go to the sky). Writes SKY.png and GROUND.png, 8-bit grayscale
at the photo's size (or --size).

    python scripts/sky_mask.py examples/tubingen.jpg docs/experiments/tubingen_sky.png \
        docs/experiments/tubingen_ground.png --size 512
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps


def sky_mask(photo: Image.Image, blue: int, bright: int, gap: int, median: int) -> Image.Image:
    """The sky of ``photo`` (RGB) as an L image of 0 and 255."""
    arr = np.asarray(photo.convert("RGB"), dtype=np.int32)
    r, b = arr[..., 0], arr[..., 2]
    candidate = (b - r > blue) & (b > bright)
    h, w = candidate.shape
    sky = np.zeros((h, w), dtype=bool)
    for x in range(w):
        misses = 0
        for y in range(h):
            if candidate[y, x]:
                misses = 0
            else:
                misses += 1
                if misses > gap:  # a run of ground: the sky of this column ends above it
                    sky[y - misses + 1 :, x] = False
                    break
            sky[y, x] = True
        else:
            sky[h - misses :, x] = False
    img = Image.fromarray((sky * 255).astype(np.uint8))
    return img.filter(ImageFilter.MedianFilter(median))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("photo", type=Path)
    ap.add_argument("sky", type=Path, help="the sky mask to write (PNG)")
    ap.add_argument("ground", type=Path, help="its complement (PNG)")
    ap.add_argument("--size", type=int, default=None, help="longest side of the masks (px)")
    ap.add_argument("--blue", type=int, default=40, help="B − R above this: sky-coloured")
    ap.add_argument("--bright", type=int, default=120, help="B above this: sky-coloured")
    ap.add_argument("--gap", type=int, default=3, help="non-sky pixels that end a column's sky")
    ap.add_argument("--median", type=int, default=7, help="median filter size (odd, px)")
    args = ap.parse_args()

    photo = ImageOps.exif_transpose(Image.open(args.photo)).convert("RGB")
    if args.size is not None:
        scale = args.size / max(photo.size)
        photo = photo.resize(
            (round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS
        )
    sky = sky_mask(photo, args.blue, args.bright, args.gap, args.median)
    sky.save(args.sky, optimize=True)
    ImageOps.invert(sky).save(args.ground, optimize=True)
    share = np.asarray(sky).mean() / 255
    print(f"wrote {args.sky} and {args.ground} ({sky.width}x{sky.height}, sky {share:.0%})")


if __name__ == "__main__":
    main()
