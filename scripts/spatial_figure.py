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

from PIL import Image, ImageDraw, ImageFont, ImageOps

CELL = (200, 150)  # every panel fitted into this box, on white
LABEL = 34  # px of text under each panel
GAP = 4


def panel(img: Image.Image, label: str, font: ImageFont.ImageFont) -> Image.Image:
    w, h = CELL
    out = Image.new("RGB", (w, h + LABEL), "white")
    fitted = ImageOps.contain(img.convert("RGB"), CELL, Image.Resampling.LANCZOS)
    out.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(label.split("\n")):
        tw = draw.textlength(line, font=font)
        draw.text(((w - tw) / 2, h + 3 + 15 * i), line, fill="black", font=font)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("images", type=Path, help="folder of tubingen/starry_night/the_scream.jpg")
    ap.add_argument("out", type=Path, help="folder of the panels; spatial.jpg is written there")
    args = ap.parse_args()
    font = ImageFont.load_default(size=13)

    def img(name: str) -> Image.Image:  # a panel of make.sh
        return Image.open(args.out / name)

    photo, starry, scream = (
        Image.open(args.images / name)
        for name in ("tubingen.jpg", "starry_night.jpg", "the_scream.jpg")
    )
    rows = [
        [
            (photo, "photo (Tuebingen)"),
            (img("tubingen_sky.png"), "sky mask\n(scripts/sky_mask.py)"),
            (starry, "A: The Starry Night\n(for the sky)"),
            (scream, "B: The Scream\n(for the rest)"),
            (img("spatial_plain.jpg"), "plain: A and B\nblended, no masks"),
            (img("spatial_guided.jpg"), "guided: --masks\nsky.png,ground.png"),
        ],
        [
            (starry, "coarse: The Starry Night\n(conv3_1-conv5_1)"),
            (scream, "fine: The Scream\n(conv1_1, conv2_1)"),
            (img("spatial_fine.jpg"), "transfer\n--fine-style scream"),
            (img("spatial_mix.jpg"), "mix-styles\n(a new style image)"),
        ],
    ]
    width = max(len(r) for r in rows) * (CELL[0] + GAP) - GAP
    height = len(rows) * (CELL[1] + LABEL + GAP) - GAP
    sheet = Image.new("RGB", (width, height), "white")
    for y, row in enumerate(rows):
        for x, (image, label) in enumerate(row):
            sheet.paste(
                panel(image, label, font), (x * (CELL[0] + GAP), y * (CELL[1] + LABEL + GAP))
            )
    sheet.save(args.out / "spatial.jpg", quality=90)
    print(f"wrote {args.out / 'spatial.jpg'} ({width}x{height})")


if __name__ == "__main__":
    main()
