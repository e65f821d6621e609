"""Reconstructions, the α/β grid, contact sheets and colour preservation, on real weights."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import run_impasto
from impasto import Transfer, TransferConfig, color, experiments, imageio
from impasto.prepare import style_view
from impasto.vgg import VGG


def _open(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im.copy()


def _mse(a: Image.Image, b: Image.Image) -> float:
    return float((imageio.to_tensor(a) - imageio.to_tensor(b)).pow(2).mean())


def test_growing_sets() -> None:
    assert experiments.growing_sets(["a", "b", "c"]) == [("a",), ("a", "b"), ("a", "b", "c")]


def test_contact_sheet_layout() -> None:
    red, blue = Image.new("RGB", (20, 10), "red"), Image.new("RGB", (20, 10), "blue")
    rows = [[experiments.Panel("x", red, 0.0)] * 3, [experiments.Panel("y", blue, 0.0)] * 3]
    sheet = experiments.contact_sheet(rows, gap=4)
    assert sheet.width == 3 * (20 + 4) + 4
    assert sheet.height > 2 * 10
    # The first panel sits at the top-left gap, the second row's panels are blue.
    assert sheet.getpixel((4, 4)) == (255, 0, 0)
    assert (0, 0, 255) in {
        sheet.getpixel((x, y))
        for x in range(sheet.width)
        for y in range(sheet.height // 2, sheet.height)
    }
    with pytest.raises(ValueError):
        experiments.contact_sheet([])


@pytest.mark.slow
def test_low_layers_reconstruct_content_better(content_path: Path, vgg19: VGG) -> None:
    """Paper Fig. 4: conv1_1 gives back nearly the pixels, conv5_1 only the arrangement."""
    cfg = TransferConfig(size=64, iterations=40, seed=3)
    original = imageio.resize_longest(imageio.load_image(content_path), 64)
    errors = {}
    for layer in ("conv1_1", "conv5_1"):
        run = Transfer(
            content_path,
            [],
            cfg.replace(content_layers=(layer,), style_weight=0.0, init="noise"),
            vgg=vgg19,
        ).run()
        errors[layer] = _mse(run.image, original)
    assert errors["conv1_1"] < 0.5 * errors["conv5_1"]


@pytest.mark.slow
def test_grid_ratio_trades_content_for_style(content_path: Path, style_path: Path) -> None:
    cfg = TransferConfig(size=64, iterations=15, seed=1, init="noise")
    rows = experiments.ratio_grid(
        content_path, style_path, cfg, ratios=(1e-5, 1e0), layers=("conv1_1", "conv2_1")
    )
    assert [len(r) for r in rows] == [2, 2]
    assert rows[1][0].label == "α/β=1e-05"
    original = imageio.resize_longest(imageio.load_image(content_path), 64)
    # More content weight (higher α/β) gives an image closer to the photograph.
    for row in rows:
        assert _mse(row[1].image, original) < _mse(row[0].image, original)


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_impasto(*args, cwd=tmp)


@pytest.mark.slow
def test_cli_reconstruct_style_sheet_and_panels(tmp_path: Path, style_path: Path) -> None:
    out = tmp_path / "sheet.png"
    proc = _cli(
        tmp_path,
        "reconstruct",
        "style",
        str(style_path),
        "-o",
        str(out),
        "--size",
        "32",
        "--iterations",
        "2",
        "--layers",
        "conv1_1,conv2_1,conv3_1",
        "--each",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    sheet = _open(out)
    panels = sorted(tmp_path.glob("sheet_*.png"))
    assert len(panels) == 3
    w = _open(panels[0]).width
    assert sheet.width >= 3 * w and sheet.width < 4 * w + 40
    assert "reconstruct style" in imageio.read_metadata(out)["impasto:command"]


@pytest.mark.slow
def test_cli_grid_and_bad_ratio(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    out = tmp_path / "grid.png"
    proc = _cli(
        tmp_path,
        "grid",
        str(content_path),
        str(style_path),
        "-o",
        str(out),
        "--size",
        "32",
        "--iterations",
        "1",
        "--layers",
        "conv1_1,conv2_1",
        "--ratios",
        "1e-3,1e-1",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    assert _open(out).height >= 2 * 24
    bad = _cli(
        tmp_path, "grid", str(content_path), str(style_path), "-o", "g2.png", "--ratios", "0,1"
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g2.png").exists()


def _chroma(img: Image.Image) -> torch.Tensor:
    return color.rgb_to_yiq(imageio.to_tensor(img) * 255)[:, 1:]


@pytest.mark.slow
def test_preserve_colors_luminance_keeps_content_chroma(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    cfg = TransferConfig(size=64, iterations=15, seed=2)
    content = imageio.resize_longest(imageio.load_image(content_path), 64)
    plain = Transfer(content_path, [style_path], cfg, vgg=vgg19).run().image
    kept = (
        Transfer(content_path, [style_path], cfg.replace(preserve_colors="luminance"), vgg=vgg19)
        .run()
        .image
    )
    err_kept = float((_chroma(kept) - _chroma(content)).abs().mean())
    err_plain = float((_chroma(plain) - _chroma(content)).abs().mean())
    assert err_kept < 2.0  # levels of I/Q (8-bit rounding and clamping only)
    assert err_kept < 0.25 * err_plain
    # ... while the luminance still changed: the strokes are there.
    y = lambda im: color.rgb_to_yiq(imageio.to_tensor(im) * 255)[:, :1]  # noqa: E731
    assert float((y(kept) - y(content)).abs().mean()) > 3.0


@pytest.mark.slow
def test_preserve_colors_histogram_recolours_the_style(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    cfg = TransferConfig(size=64, iterations=10, seed=2, preserve_colors="histogram")
    t = Transfer(content_path, [style_path], cfg, vgg=vgg19)
    style = t.problem.tensor(t.style_images[0])
    target = t.problem.content_rgb
    moved = style_view(cfg, style, target)
    mean = lambda x: x.mean(dim=(0, 2, 3))  # noqa: E731
    assert torch.allclose(mean(moved), mean(target), atol=2.0)
    assert not torch.allclose(mean(style), mean(target), atol=5.0)
    result = t.run().image
    plain = (
        Transfer(content_path, [style_path], cfg.replace(preserve_colors="none"), vgg=vgg19)
        .run()
        .image
    )
    content_mean = mean(imageio.to_tensor(t.content_image))
    gap = lambda im: float((mean(imageio.to_tensor(im)) - content_mean).abs().sum())  # noqa: E731
    assert gap(result) < gap(plain)


def test_labels_draw_greek_letters_not_boxes() -> None:
    """α and β appear in the grid's labels: a font without them draws the same box for both."""
    from PIL import ImageDraw

    from impasto.layout import font as sized

    font = sized(16)

    def ink(text: str) -> bytes:
        img = Image.new("L", (24, 24), 0)
        ImageDraw.Draw(img).text((2, 2), text, fill=255, font=font)
        return img.tobytes()

    assert ink("α") != ink("β")
    assert any(ink("α"))
