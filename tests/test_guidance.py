"""impasto.guidance: masks read and checked, label maps paired, guidance channels propagated to
every layer's shape (odd sizes too), kept parts feathered."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto import InputError, UsageError
from impasto.guidance import (
    as_mask,
    build_regions,
    feather,
    label_masks,
    propagate,
    resize_masks,
)
from impasto.losses import region_mass
from impasto.vgg import VGG

LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def half(h: int = 24, w: int = 32) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w)
    m[..., : w // 2] = 1.0
    return m


# --- reading masks -------------------------------------------------------------------------------


def test_mask_from_file_pil_and_tensor_agree(tmp_path: Path) -> None:
    img = Image.new("L", (8, 6), 0)
    img.paste(255, (0, 0, 4, 6))
    img.save(tmp_path / "m.png")
    from_file = as_mask(tmp_path / "m.png")
    from_pil = as_mask(img)
    from_tensor = as_mask(torch.from_numpy(__import__("numpy").asarray(img) / 255.0))
    assert from_file.shape == (1, 1, 6, 8)
    assert torch.equal(from_file, from_pil)
    assert torch.allclose(from_file, from_tensor.float())
    assert from_file[..., :4].min() == 1.0 and from_file[..., 4:].max() == 0.0


def test_soft_values_are_kept() -> None:
    m = as_mask(Image.new("L", (4, 4), 128))
    assert abs(float(m.mean()) - 128 / 255) < 1e-6


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        (torch.zeros(4, 4), "covers nothing"),
        (torch.full((4, 4), 2.0), "in [0, 1]"),
        (torch.full((4, 4), float("nan")), "in [0, 1]"),
        (torch.ones(3, 4, 4), "(H, W) or (1, H, W)"),
    ],
)
def test_bad_mask_tensors_are_usage_errors(tensor: torch.Tensor, words: str) -> None:
    with pytest.raises(UsageError) as e:
        as_mask(tensor)
    assert words in str(e.value)


def test_unreadable_mask_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        as_mask(tmp_path / "empty.png")


# --- label maps ----------------------------------------------------------------------------------


def two_colour_map(size: tuple[int, int], split: int) -> Image.Image:
    img = Image.new("RGB", size, (135, 206, 235))  # sky blue
    img.paste((34, 139, 34), (0, split, size[0], size[1]))  # green below
    return img


def test_label_maps_pair_regions_by_colour() -> None:
    colours, content, style = label_masks(two_colour_map((8, 6), 2), two_colour_map((10, 10), 7))
    assert colours == [(34, 139, 34), (135, 206, 235)]
    assert [float(region_mass(m)[0]) for m in content] == [32.0, 16.0]
    assert [float(region_mass(m)[0]) for m in style] == [30.0, 70.0]
    assert torch.equal(content[0] + content[1], torch.ones(1, 1, 6, 8))


def test_a_colour_in_one_map_only_is_refused() -> None:
    style = two_colour_map((8, 8), 4)
    content = two_colour_map((8, 8), 4)
    content.paste((255, 0, 0), (0, 0, 2, 2))
    with pytest.raises(UsageError, match="#ff0000 of --segmentation are not in"):
        label_masks(content, style)
    with pytest.raises(UsageError, match="of --style-segmentation are not in --segmentation"):
        label_masks(style, content)


def test_a_photo_is_not_a_label_map() -> None:
    noise = Image.effect_noise((16, 16), 64).convert("RGB")
    with pytest.raises(UsageError, match="save it as PNG"):
        label_masks(noise, noise)


# --- propagation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(37, 29), (64, 48), (33, 17)])
@pytest.mark.parametrize("mode", ["inside", "resize"])
def test_channels_have_the_features_shapes(vgg19: VGG, size: tuple[int, int], mode: str) -> None:
    w, h = size
    feats = vgg19(torch.rand(1, 3, h, w) * 255, LAYERS)
    channels = propagate(half(h, w), LAYERS, "vgg19", mode)  # type: ignore[arg-type]
    for name in LAYERS:
        assert channels[name].shape[2:] == feats[name].shape[2:], name


def test_resize_is_the_fraction_under_each_position() -> None:
    channels = propagate(half(8, 8), ("conv2_1",), mode="resize")
    assert channels["conv2_1"].shape == (1, 1, 4, 4)
    assert channels["conv2_1"][..., :2].min() == 1 and channels["conv2_1"][..., 2:].max() == 0
    m = torch.zeros(1, 1, 4, 4)
    m[..., :1, :1] = 1.0  # one pixel of a 2x2 block: a quarter at the next level
    assert float(propagate(m, ("conv2_1",), mode="resize")["conv2_1"][0, 0, 0, 0]) == 0.25


def test_inside_erodes_by_the_receptive_field() -> None:
    m = half(16, 16)  # columns 0-7 inside
    conv1 = propagate(m, ("conv1_1",), mode="inside")["conv1_1"][0, 0]
    # a 3x3 window: column 7 sees column 8, which is outside; the image's border does not erode
    assert conv1[:, :7].min() == 1 and conv1[:, 7:].max() == 0
    conv2 = propagate(m, ("conv2_1",), mode="inside")["conv2_1"][0, 0]  # 8 columns
    # conv1_1, conv1_2: columns 0-5 left; pool1: columns 0-2 (of 8); conv2_1: 0-1
    assert conv2[:, :2].min() == 1 and conv2[:, 2:].max() == 0
    resized = propagate(m, ("conv2_1",), mode="resize")["conv2_1"][0, 0]
    assert float(resized.sum()) > float(conv2.sum())  # inside is stricter


def test_inside_falls_back_to_resize_where_a_region_vanishes() -> None:
    m = torch.zeros(1, 1, 64, 64)
    m[..., 30:34, 30:34] = 1.0  # 4 px: eroded away long before conv5_1
    inside = propagate(m, LAYERS, mode="inside")
    resized = propagate(m, LAYERS, mode="resize")
    assert float(region_mass(inside["conv1_1"])[0]) > 0
    assert torch.equal(inside["conv5_1"], resized["conv5_1"])
    assert float(region_mass(inside["conv5_1"])[0]) > 0


def test_unknown_propagation_is_refused() -> None:
    with pytest.raises(UsageError, match="inside or resize"):
        propagate(half(), LAYERS, mode="blur")  # type: ignore[arg-type]


def test_resize_masks_to_any_size() -> None:
    out = resize_masks([half(24, 32), torch.ones(1, 1, 5, 5)], (15, 11))
    assert out.shape == (2, 1, 11, 15)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.allclose(out[1], torch.ones(1, 11, 15))


# --- feathering ----------------------------------------------------------------------------------


def test_feather_softens_only_the_edge() -> None:
    m = half(20, 40)
    soft = feather(m, 2.0)
    assert soft.shape == m.shape
    assert torch.equal(feather(m, 0.0), m)
    row = soft[0, 0, 10]
    assert float(row[0]) == pytest.approx(1.0) and float(row[-1]) == pytest.approx(0.0, abs=1e-6)
    assert 0.3 < float(row[19]) < 0.8 and 0.2 < float(row[20]) < 0.7  # the edge is soft
    assert torch.all(row[1:] <= row[:-1] + 1e-6)  # and falls monotonically


# --- regions -------------------------------------------------------------------------------------


def test_no_spatial_input_is_no_regions() -> None:
    assert build_regions(2) is None
    assert build_regions(1, masks=[]) is None


def test_regions_pair_mask_i_with_style_i() -> None:
    r = build_regions(2, masks=[half(), 1 - half()], style_masks=[None, torch.ones(8, 8)])
    assert r is not None
    assert r.styles == (0, 1) and r.style_masks[0] is None and r.style_masks[1] is not None
    assert r.content_masks((16, 12)).shape == (2, 1, 12, 16)


def test_the_kept_part_is_taken_out_of_the_regions() -> None:
    keep = torch.zeros(24, 32)
    keep[:12] = 1.0
    r = build_regions(2, masks=[half(), 1 - half()], keep=keep)
    assert r is not None
    masks = r.content_masks((32, 24))
    assert float(masks[:, :, :12].max()) == 0 and float(masks[:, :, 12:].min()) >= 0
    assert float(region_mass(masks).sum()) == 12 * 32


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"masks": [torch.ones(4, 4)]}, "1 style mask(s) for 2 style image(s)"),
        ({"style_masks": [torch.ones(4, 4)]}, "--style-masks has 1 mask(s) for 2"),
        ({"masks": [torch.ones(4, 4)] * 2, "segmentation": Image.new("RGB", (4, 4))}, "not both"),
        ({"segmentation": Image.new("RGB", (4, 4))}, "go together"),
        ({"masks": [torch.ones(4, 4), torch.zeros(4, 4)]}, "style mask 2 covers nothing"),
        ({"keep": torch.ones(4, 4)}, "covers the whole photo"),
        ({"masks": [half(), half()], "keep": half()}, "covers all of mask 1"),
        (
            {
                "segmentation": Image.new("RGB", (4, 4)),
                "style_segmentation": Image.new("RGB", (4, 4)),
            },
            "one painting; 2 style images",
        ),
    ],
)
def test_regions_that_cannot_work_are_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError) as e:
        build_regions(2, **kwargs)  # type: ignore[arg-type]
    assert words in str(e.value)
