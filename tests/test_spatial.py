"""Spatial and scale control end to end, through the API, with the real VGG-19 at 64 px: each
region takes its own style's colours, a kept part stays the photo, stages re-propagate the masks,
label maps and style masks steer the statistics, and a fine style changes the shallow layers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import impasto
from helpers import installed_script, run_impasto
from impasto import UsageError, imageio, prepare
from impasto.config import TransferConfig
from impasto.guidance import build_regions
from impasto.optimize import Transfer
from impasto.vgg import VGG

W, H = 64, 48
FAST: dict[str, Any] = {"size": W, "iterations": 30, "seed": 5, "init": "content"}


@pytest.fixture(autouse=True)
def shared_vgg(monkeypatch: pytest.MonkeyPatch, vgg19: VGG) -> None:
    """The session's VGG-19, not a second read of the weights."""
    monkeypatch.setattr(prepare, "build_vgg", lambda *a, **k: vgg19)


def texture(rgb: tuple[int, int, int], seed: int) -> Image.Image:
    """A painting of one dominant colour: that colour in blotches over dark grey."""
    rng = np.random.default_rng(seed)
    blotches = rng.random((16, 16)) > 0.4
    big = np.kron(blotches, np.ones((4, 4), dtype=bool))  # 64x64
    arr = np.where(big[..., None], np.array(rgb), np.array([40, 40, 40])).astype(np.uint8)
    return Image.fromarray(arr)


RED = texture((230, 40, 30), 1)
BLUE = texture((30, 60, 230), 2)


def mean_colour(img: Image.Image, cols: slice) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)[:, cols].reshape(-1, 3).mean(0)


def left_right() -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.zeros(H, W)
    left[:, : W // 2] = 1.0
    return left, 1.0 - left


@pytest.mark.parametrize("propagation", ["resize", "inside"])
def test_each_region_takes_its_own_style(content_path: Any, propagation: str) -> None:
    left, right = left_right()
    photo = Image.open(content_path).convert("RGB")
    out = impasto.stylize(
        content_path, [RED, BLUE], masks=[left, right], mask_propagation=propagation, **FAST
    )
    red, blue = mean_colour(RED, slice(None)), mean_colour(BLUE, slice(None))
    lhs, rhs = slice(0, W // 2 - 6), slice(W // 2 + 6, W)  # away from the boundary
    for cols, own, other in ((lhs, red, blue), (rhs, blue, red)):
        before, after = mean_colour(photo, cols), mean_colour(out, cols)
        assert np.linalg.norm(after - own) < np.linalg.norm(before - own)  # toward its own
        assert np.linalg.norm(after - own) < np.linalg.norm(after - other)  # not the other
    # Red leads on the left, blue on the right: the regions did not swap or blend.
    left_rb = mean_colour(out, lhs)[0] - mean_colour(out, lhs)[2]
    right_rb = mean_colour(out, rhs)[0] - mean_colour(out, rhs)[2]
    assert left_rb > right_rb + 30


def test_a_kept_part_stays_the_photo(content_path: Any) -> None:
    keep = torch.zeros(H, W)
    keep[: H // 2] = 1.0  # the top half
    photo = np.asarray(Image.open(content_path).convert("RGB"), dtype=np.int16)
    out = impasto.stylize(content_path, RED, keep=keep, keep_feather=0.02, **FAST)
    got = np.asarray(out, dtype=np.int16)
    sigma = 0.02 * W
    inside = slice(0, H // 2 - int(3 * sigma) - 1)
    assert np.abs(got[inside] - photo[inside]).max() <= 1  # the photo, up to rounding
    below = slice(H // 2 + int(3 * sigma) + 1, H)
    assert np.abs(got[below] - photo[below]).mean() > 10  # painted
    edge = np.abs(got[H // 2 - 1 : H // 2 + 1] - photo[H // 2 - 1 : H // 2 + 1]).mean()
    assert 0 < edge < np.abs(got[below] - photo[below]).mean()  # a soft boundary


def test_uncovered_pixels_take_the_content_only(content_path: Any) -> None:
    left, _ = left_right()  # one style, over the left half only: the right is uncovered
    photo = np.asarray(Image.open(content_path).convert("RGB"), dtype=np.float64)
    out = np.asarray(impasto.stylize(content_path, RED, masks=[left], **FAST), dtype=np.float64)
    painted = np.abs(out[:, : W // 2 - 8] - photo[:, : W // 2 - 8]).mean()
    uncovered = np.abs(out[:, W // 2 + 8 :] - photo[:, W // 2 + 8 :]).mean()
    assert painted > 3 * uncovered, (painted, uncovered)


def test_stages_repropagate_the_masks(content_path: Any) -> None:
    left, right = left_right()
    regions = build_regions(2, masks=[left, right])
    cfg = TransferConfig(**{**FAST, "iterations": 6, "scales": (32, 64)})
    t = Transfer(content_path, [RED, BLUE], cfg, regions=regions)
    seen: list[tuple[int, int]] = []
    original = prepare.prepare

    def spy(*args: Any, **kwargs: Any) -> prepare.Prepared:
        problem = original(*args, **kwargs)
        assert problem.targets.guided is not None
        masks, _ = problem.targets.guided["conv1_1"]
        seen.append(tuple(masks.shape[2:]))  # type: ignore[arg-type]
        return problem

    import impasto.optimize as optimize

    optimize.prepare = spy  # type: ignore[assignment]
    try:
        result = t.run()
    finally:
        optimize.prepare = original
    assert seen == [(24, 32)]  # the coarse stage's own channels; the last is t.problem's
    assert t.problem.targets.guided is not None
    assert t.problem.targets.guided["conv1_1"][0].shape[2:] == (H, W)
    assert result.image.size == (W, H)


def test_label_maps_and_style_masks_steer_the_statistics(content_path: Any) -> None:
    painting = Image.new("RGB", (64, 64))
    painting.paste(RED.crop((0, 0, 64, 32)), (0, 0))
    painting.paste(BLUE.crop((0, 32, 64, 64)), (0, 32))
    seg = Image.new("RGB", (W, H), "white")
    seg.paste((0, 0, 0), (W // 2, 0, W, H))  # photo: left white, right black
    style_seg = Image.new("RGB", (64, 64), "white")
    style_seg.paste((0, 0, 0), (0, 32, 64, 64))  # painting: top (red) white, bottom (blue) black
    out = impasto.stylize(
        content_path, painting, segmentation=seg, style_segmentation=style_seg, **FAST
    )
    lhs, rhs = mean_colour(out, slice(0, W // 2 - 6)), mean_colour(out, slice(W // 2 + 6, W))
    assert lhs[0] - lhs[2] > rhs[0] - rhs[2] + 30  # red from the red part, blue from the blue
    # The same with one style mask: the statistics of the blue part only, everywhere.
    bottom = torch.zeros(64, 64)
    bottom[32:] = 1.0
    blue_only = impasto.stylize(content_path, painting, style_masks=[bottom], **FAST)
    whole = impasto.stylize(content_path, painting, **FAST)
    b, w = mean_colour(blue_only, slice(None)), mean_colour(whole, slice(None))
    assert b[2] - b[0] > w[2] - w[0] + 15


def test_a_fine_style_changes_the_shallow_statistics(content_path: Any) -> None:
    coarse_only = impasto.stylize(content_path, RED, **FAST)
    mixed = impasto.stylize(content_path, RED, fine_style=BLUE, **FAST)
    a, b = mean_colour(coarse_only, slice(None)), mean_colour(mixed, slice(None))
    assert (b[2] - b[0]) > (a[2] - a[0]) + 15  # colour lives in the shallow layers: blue's
    with pytest.raises(UsageError, match="leaves no style layer for the fine"):
        impasto.stylize(content_path, RED, fine_style=BLUE, scale_split="conv1_1", **FAST)
    with pytest.raises(UsageError, match="cannot be combined with masks"):
        impasto.stylize(content_path, RED, fine_style=BLUE, masks=[torch.ones(4, 4)], **FAST)


def test_blend_weights_with_masks_are_refused(content_path: Any) -> None:
    left, right = left_right()
    with pytest.raises(UsageError, match="does not apply with masks"):
        impasto.stylize(
            content_path, [RED, BLUE], masks=[left, right], style_blend_weights=(1, 2), **FAST
        )


# --- through the installed command ---------------------------------------------------------------


def impasto_script(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``impasto`` script pip installed next to this interpreter."""
    return run_impasto(*args, cwd=cwd, command=installed_script())


@pytest.fixture
def spatial_dir(tmp_path: Path, content_path: Path) -> Path:
    (tmp_path / "p.png").write_bytes(content_path.read_bytes())
    RED.save(tmp_path / "red.png")
    BLUE.save(tmp_path / "blue.png")
    left = Image.new("L", (W, H), 0)
    left.paste(255, (0, 0, W // 2, H))
    left.save(tmp_path / "left.png")
    Image.eval(left, lambda v: 255 - v).save(tmp_path / "right.png")
    top = Image.new("L", (16, 12), 0)  # another size: resized to the output
    top.paste(255, (0, 0, 16, 4))
    top.save(tmp_path / "top.png")
    return tmp_path


def test_cli_regions_and_a_kept_part_record_their_masks(spatial_dir: Path) -> None:
    run = impasto_script(
        "transfer", "p.png", "red.png", "blue.png", "-o", "out.png",
        "--masks", "left.png,right.png,top.png:none", "--mask-propagation", "inside",
        "--size", W, "--iterations", 8, "--seed", 1, "-q",
        cwd=spatial_dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    meta = imageio.read_metadata(spatial_dir / "out.png")
    inputs = json.loads(meta["impasto:inputs"])
    assert inputs["masks"] == "left.png,right.png,top.png:none"
    assert json.loads(meta["impasto:options"])["mask_propagation"] == "inside"
    out = np.asarray(Image.open(spatial_dir / "out.png").convert("RGB"), dtype=np.int16)
    photo = np.asarray(Image.open(spatial_dir / "p.png").convert("RGB"), dtype=np.int16)
    assert np.abs(out[:10] - photo[:10]).max() <= 1  # the kept top (16 rows at 64 px), inside
    assert np.abs(out[24:] - photo[24:]).mean() > 5


def test_cli_mix_styles_writes_a_reusable_style(spatial_dir: Path) -> None:
    run = impasto_script(
        "mix-styles", "red.png", "blue.png", "-o", "mixed.png",
        "--size", 48, "--iterations", 8, "--seed", 2, "-q",
        cwd=spatial_dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    mixed = Image.open(spatial_dir / "mixed.png")
    assert mixed.size == (48, 48)
    meta = imageio.read_metadata(spatial_dir / "mixed.png")
    assert meta["impasto:command"] == "mix-styles"
    assert json.loads(meta["impasto:inputs"]) == {"coarse": "red.png", "fine": "blue.png"}
    options = json.loads(meta["impasto:options"])
    assert options["content_weight"] == 0 and options["init"] == "noise"
    # Blue's colours (the shallow layers) over red's coarse layout: more blue than red overall.
    r, _, b = np.asarray(mixed.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
    assert b > r
