"""Compose docs/experiments/spatial.jpg from the spatial and scale control panels of make.sh.

Row 1, spatial control: the photo, the sky mask, the two paintings, the plain transfer (both
paintings blended) and the guided one (sky from one, the rest from the other). Row 2, scale
control: the coarse and the fine painting, the --fine-style transfer and the mix-styles
texture. Each panel is fitted into one cell and labelled.

    python scripts/spatial_figure.py ../shared/images docs/experiments
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageOps

from impasto.layout import Panel, lay_out

CELL = (200, 150)  # every panel fitted into this box, on white


def panel(img: Image.Image, label: str) -> Panel:
    w, h = CELL
    out = Image.new("RGB", CELL, "white")
    fitted = ImageOps.contain(img.convert("RGB"), CELL, Image.Resampling.LANCZOS)
    out.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
    return Panel(label, out, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("images", type=Path, help="folder of tubingen/starry_night/the_scream.jpg")
    ap.add_argument("out", type=Path, help="folder of the panels; spatial.jpg is written there")
    args = ap.parse_args()

    def img(name: str) -> Image.Image:  # a panel of make.sh
        return Image.open(args.out / name)

    photo, starry, scream = (
        Image.open(args.images / name)
        for name in ("tubingen.jpg", "starry_night.jpg", "the_scream.jpg")
    )
    rows = [
        [
            (photo, "photo (Tuebingen)"),
            (img("tubingen_sky.png"), "sky mask (scripts/sky_mask.py)"),
            (starry, "A: The Starry Night (for the sky)"),
            (scream, "B: The Scream (for the rest)"),
            (img("spatial_plain.jpg"), "plain: A and B blended, no masks"),
            (img("spatial_guided.jpg"), "guided: --masks sky.png,ground.png"),
        ],
        [
            (starry, "coarse: The Starry Night (conv3_1-conv5_1)"),
            (scream, "fine: The Scream (conv1_1, conv2_1)"),
            (img("spatial_fine.jpg"), "transfer --fine-style scream"),
            (img("spatial_mix.jpg"), "mix-styles (a new style image)"),
        ],
    ]
    sheet = lay_out([[panel(image, label) for image, label in row] for row in rows], gap=4).image
    sheet.save(args.out / "spatial.jpg", quality=90)
    print(f"wrote {args.out / 'spatial.jpg'} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
