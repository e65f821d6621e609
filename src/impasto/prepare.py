"""Preparation of one size of a transfer: the images on the device, the targets, the start.

:func:`prepare` turns loaded images and a config into a :class:`Prepared` problem: the content
and style images at this size as tensors in [0, 255], the colour views the network sees
(luminance and histogram modes), the content features and style Gram matrices
(:class:`~impasto.objective.Targets`) and the start image. It runs the network forward only; the
loop in :mod:`impasto.optimize` never prepares anything. The device and network choices
(:func:`resolve_device`, :func:`build_network`) live here too.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import PIL.Image
import torch
from torch import Tensor

from . import color, imageio
from .config import TransferConfig
from .errors import InputError, UsageError
from .guidance import Regions, propagate, resize_masks
from .losses import blend_grams, gram, guided_gram, region_mass, self_similarity
from .memory import output_size
from .objective import Targets
from .samples import Sampler, generator, pooled, sample_targets, style_part
from .vgg import MIN_SIDE, VGG, build_vgg

ImageLike = str | PIL.Image.Image | Tensor


def build_network(config: TransferConfig) -> VGG:
    """The frozen VGG a configuration asks for (model, weights file and format, pooling, and
    whether its filters are normalised to mean activation one)."""
    return build_vgg(
        config.model,
        config.weights,
        config.pooling,
        config.weights_format,
        normalize=config.normalize_network,
    )


class NetworkCache:
    """The network of the last configuration asked for, kept for the next job that wants the
    same one (reading the weights takes a second or more); a job that wants another replaces it.
    ``build`` makes a network (:func:`build_network` unless given); ``loads`` counts its calls."""

    def __init__(self, build: Callable[[TransferConfig], VGG] | None = None) -> None:
        self._build = build or build_network
        self._kept: tuple[tuple[object, ...], VGG] | None = None
        self.loads = 0

    def __call__(self, config: TransferConfig) -> VGG:
        device = resolve_device(config.device)
        key = (
            config.model,
            config.weights,
            config.weights_format,
            config.pooling,
            config.normalize_network,
            device,
        )
        if self._kept is None or self._kept[0] != key:
            self._kept = None  # let the old network go before loading another
            self._kept = (key, self._build(config).to(device))
            self.loads += 1
        return self._kept[1]


def network_on(vgg: VGG, device: torch.device) -> VGG:
    """``vgg`` on ``device``: itself where it is there already, else a copy there. A caller's
    network is never moved (``Module.to`` moves in place): one shared between a CPU and a GPU
    run stayed on the GPU and broke the CPU's (seen in the first GPU run of the tests)."""
    param = next(vgg.parameters(), None)
    if (
        param is None
        or param.device == device
        or (device.index is None and param.device.type == device.type)
    ):
        return vgg
    return copy.deepcopy(vgg).to(device)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here (use --device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Apple's MPS is not available here (use --device auto)")
    return torch.device(name)


def check_styles(config: TransferConfig, count: int) -> None:
    """Refuse a run whose ``count`` style images do not fit the config: none while the style
    counts, or a blend-weight count that differs (for the CLI, the API and the server alike)."""
    if count == 0 and config.style_weight > 0:
        raise UsageError("give at least one style image")
    blend = config.style_blend_weights
    if blend is not None and len(blend) != count:
        raise UsageError(f"--style-blend-weights has {len(blend)} values for {count} style images")


def check_spatial(
    config: TransferConfig, count: int, regions: Regions | None, fine_style: bool
) -> None:
    """Refuse spatial or scale control that cannot work with ``count`` style images: regions
    made for another number of styles, blend weights with regions (each region takes one
    style), a fine style with regions, or a --scale-split that leaves either scale no layer."""
    if regions is not None:
        if any(s >= count for s in regions.styles):
            raise UsageError(f"the masks are for more style images than the {count} given")
        if regions.masks and config.style_blend_weights is not None:
            raise UsageError("--style-blend-weights does not apply with masks (one style each)")
        if fine_style:
            raise UsageError("--fine-style cannot be combined with masks")
    if fine_style:
        fine = config.fine_layers()
        if not fine or len(fine) == len(config.style_layers):
            raise UsageError(
                f"--scale-split {config.scale_split} leaves no style layer for the "
                f"{'fine' if not fine else 'coarse'} style; the style layers are "
                f"{','.join(config.style_layers)}"
            )


def as_image(source: ImageLike) -> PIL.Image.Image:
    """A path, PIL image or RGB tensor in [0, 1] as an 8-bit RGB image; anything else, or a
    tensor that is not one (its shape, an integer dtype, NaN, values past [0, 1]), is a
    :class:`UsageError` that says so."""
    if isinstance(source, Tensor):
        check_image_tensor(source)
        return imageio.to_image(source)
    if not isinstance(source, (str, os.PathLike, PIL.Image.Image)):
        raise UsageError(
            f"an image must be a path, a PIL image or a tensor, not {type(source).__name__}"
        )
    return imageio.load_image(source)


def check_image_tensor(t: Tensor) -> None:
    """Refuse a tensor that is not an RGB image in [0, 1] of shape (3, H, W) or (1, 3, H, W)."""
    shape = tuple(t.shape)
    rgb = shape[-3:] == (3, *shape[-2:]) and (len(shape) == 3 or shape[:1] == (1,))
    if len(shape) not in (3, 4) or not rgb or min(shape[-2:], default=0) < 1:
        raise UsageError(
            f"an image tensor must be (3, H, W) or (1, 3, H, W) with H and W at least 1, "
            f"not {shape}"
        )
    if not t.is_floating_point():
        raise UsageError(
            f"an image tensor must hold floats in [0, 1], not {t.dtype} (divide 0-255 values "
            "by 255)"
        )
    values = t.detach().float()
    if not bool(torch.isfinite(values).all()):
        raise UsageError("an image tensor must hold finite values in [0, 1], not NaN or inf")
    low, high = float(values.min()), float(values.max())
    if low < -IMAGE_SLACK or high > 1 + IMAGE_SLACK:
        raise UsageError(
            f"an image tensor must hold values in [0, 1], not {low:g} to {high:g}"
            + (" (divide 0-255 values by 255)" if high > 2 else "")
        )


IMAGE_SLACK = 1e-3  # past [0, 1] by rounding: clamped, not refused


def as_images(sources: Sequence[ImageLike]) -> list[PIL.Image.Image]:
    return [as_image(s) for s in sources]


def smallest_size(
    content: PIL.Image.Image, styles: Sequence[PIL.Image.Image], style_scale: float
) -> int:
    """The smallest --size at which content and styles keep MIN_SIDE on their short sides."""

    def need(img: PIL.Image.Image, scale: float) -> int:
        return math.ceil(MIN_SIDE * max(img.size) / min(img.size) / scale)

    return max([need(content, 1.0)] + [need(s, style_scale) for s in styles])


@dataclass
class Prepared:
    """One size of one transfer, ready for the loop (all tensors (1, 3, H, W) in [0, 255])."""

    config: TransferConfig
    device: torch.device
    vgg: VGG
    seed: int
    size: tuple[int, int]  # (W, H)
    content_image: PIL.Image.Image
    style_images: list[PIL.Image.Image]
    content_rgb: Tensor
    targets: Targets
    x0: Tensor  # the start, as the optimisation sees it
    keep: Tensor | None = None  # (1, 1, H, W): where the photo is blended back (feathered)

    def tensor(self, img: PIL.Image.Image) -> Tensor:
        return _tensor(img, self.device)

    def view(self, x: Tensor) -> Tensor:
        """The content or a start image as the optimisation sees it."""
        return _view(self.config, x)

    def start_from(self, image: PIL.Image.Image) -> Tensor:
        """``image`` (a coarser stage's result, a warped frame) as a start at this size."""
        return self.view(self.tensor(imageio.resize_to(image, self.size)))

    def render(self, x: Tensor) -> Tensor:
        """The picture for iterate ``x``: in luminance mode, x's luminance with the content's
        I and Q (YIQ) channels; always clamped to [0, 255]; with a kept region, the photo
        blended back over it (through its feathered edge)."""
        x = x.detach()
        if self.config.preserve_colors == "luminance":
            x = color.recombine_luminance(x, self.content_rgb)
        x = x.clamp(0.0, 255.0)
        if self.keep is not None:
            x = self.keep * self.content_rgb + (1.0 - self.keep) * x
        return x


def _view(config: TransferConfig, x: Tensor) -> Tensor:
    if config.preserve_colors == "luminance":
        return color.luminance_only(x)
    return x


def prepare(
    content: PIL.Image.Image,
    styles: Sequence[PIL.Image.Image],
    config: TransferConfig,
    vgg: VGG,
    device: torch.device,
    seed: int,
    start: PIL.Image.Image | None = None,
    regions: Regions | None = None,
    fine_style: PIL.Image.Image | None = None,
) -> Prepared:
    """The problem at ``config.size``: ``content`` and ``styles`` (full-size originals) scaled,
    targets computed, and the start image built (``start`` resized, else ``config.init``).
    ``regions`` (masks at any size) are resized to this size and propagated to the style layers;
    ``fine_style`` gives the style layers before ``config.scale_split`` their statistics."""
    content_img = imageio.resize_to(content, output_size(content.size, config.size))
    size = content_img.size
    longest = round(max(size) * config.style_scale)
    style_imgs = [imageio.resize_to(s, output_size(s.size, longest)) for s in styles]
    fine_img = None
    if fine_style is not None:
        fine_img = imageio.resize_to(fine_style, output_size(fine_style.size, longest))
    content_rgb = _tensor(content_img, device)
    targets = _targets(
        config,
        vgg,
        _view(config, content_rgb),
        content_rgb,
        style_imgs,
        device,
        regions,
        fine_img,
        seed,
    )
    keep = None
    if regions is not None:
        keep = regions.keep_alpha(size, config.keep_feather * max(size))
    problem = Prepared(
        config, device, vgg, seed, size, content_img, style_imgs, content_rgb, targets, content_rgb
    )
    problem.keep = None if keep is None else keep.to(device)
    if start is not None:
        problem.x0 = problem.start_from(start)
    else:
        problem.x0 = problem.view(_initial_rgb(problem, config.init))
    return problem


def _tensor(img: PIL.Image.Image, device: torch.device) -> Tensor:
    return (imageio.to_tensor(img) * 255.0).to(device)  # (1, 3, H, W) in [0, 255]


def style_view(config: TransferConfig, style: Tensor, content_rgb: Tensor) -> Tensor:
    """A style image prepared for colour preservation (Gatys, Bethge et al. 2016).

    histogram: the style's colours are mapped onto the content's mean and covariance, then
    transferred as usual. luminance: the style's luminance, matched to the content's mean and
    standard deviation, is transferred alone; colour comes back from the content at the end.
    """
    mode = config.preserve_colors
    if mode == "histogram":
        return color.match_histogram(style, content_rgb).clamp(0.0, 255.0)
    if mode == "luminance":
        y_style = color.rgb_to_yiq(style)[:, :1]
        y_content = color.rgb_to_yiq(content_rgb)[:, :1]
        return color.match_luminance(y_style, y_content).expand(-1, 3, -1, -1).contiguous()
    return style


@torch.no_grad()
def _targets(
    cfg: TransferConfig,
    vgg: VGG,
    content_view: Tensor,
    content_rgb: Tensor,
    style_imgs: Sequence[PIL.Image.Image],
    device: torch.device,
    regions: Regions | None = None,
    fine_img: PIL.Image.Image | None = None,
    seed: int = 0,
) -> Targets:
    # One pass gives the content targets and, from the style layers' shapes, the number of
    # positions M per style layer in the output (for the Gram rescaling below).
    feats = vgg(content_view, set(cfg.content_layers) | set(cfg.style_layers))
    content = {k: feats[k].detach() for k in cfg.content_layers}
    m_out = {k: feats[k].shape[2] * feats[k].shape[3] for k in cfg.style_layers}
    grams = []
    region_targets: dict[int, dict[str, Tensor]] = {}  # region -> layer -> (N, N) per position
    weights = list(cfg.style_blend_weights or [1.0] * len(style_imgs))
    gen = generator(device, seed)
    sampler = None  # the painting's samples, for the style losses other than gram
    if cfg.style_loss != "gram" and style_imgs:
        sizes = [img.size for img in style_imgs]
        sampler = Sampler(cfg.style_layers, weights, sizes, gen, model=cfg.model)
    for i, img in enumerate(style_imgs):
        view = style_view(cfg, _tensor(img, device), content_rgb)
        sf = vgg(view, cfg.style_layers)
        # Gatys et al. take the style image at the output's size, so A and G sum over the
        # same number of positions M. For a style image of another size (--style-scale, or
        # a different aspect ratio) we rescale A by M_out/M_style: identical to the paper
        # when the sizes agree, and the per-position statistics match otherwise.
        unscaled = {k: gram(v) for k, v in sf.items()}
        grams.append(
            {k: g * (m_out[k] / (sf[k].shape[2] * sf[k].shape[3])) for k, g in unscaled.items()}
        )
        per_position = {k: g / (sf[k].shape[2] * sf[k].shape[3]) for k, g in unscaled.items()}
        for r, s in enumerate(regions.styles if regions is not None else ()):
            if s == i:
                assert regions is not None
                region_targets[r] = _region_target(
                    cfg, regions.style_masks[r], sf, per_position, img.size, device
                )
        if sampler is not None:
            parts = {}
            if regions is not None:
                for r, s in enumerate(regions.styles):
                    if s == i:
                        parts[r] = style_part(cfg, regions.style_masks[r], img.size, device)
            sampler.add_style(i, sf, view, parts)
        del sf
    style = blend_grams(grams, weights) if grams else {}
    if fine_img is not None:
        # Scale control (Gatys et al. 2017, section 6): the fine style's statistics on the
        # shallow layers (small receptive fields: strokes), the style's on the deep ones.
        fine_view = style_view(cfg, _tensor(fine_img, device), content_rgb)
        ff = vgg(fine_view, cfg.fine_layers())
        for k, v in ff.items():
            style[k] = gram(v) * (m_out[k] / (v.shape[2] * v.shape[3]))
        if sampler is not None:
            sampler.add_fine(ff, fine_view)
    guided = None
    size = (content_rgb.shape[3], content_rgb.shape[2])
    if regions is not None and style:
        guided = _guided(cfg, regions, feats, style, m_out, region_targets, size, device)
    samples = None
    if sampler is not None:
        masks = _output_masks(regions, size).to(device) if guided is not None else None
        samples = sample_targets(sampler, cfg, masks, gen)
    similar = None
    if cfg.content_loss == "self-similarity":
        similar = {k: self_similarity(pooled(v)) for k, v in content.items()}
    return Targets(content, style, cfg.layer_weights(), guided, samples, similar)


def _output_masks(regions: Regions | None, size: tuple[int, int]) -> Tensor:
    """The guided regions over the output at ``size`` (W, H): (R, 1, H, W), the masks less the
    kept part, or, with only a kept part, the rest as one region."""
    assert regions is not None
    if regions.masks:
        return regions.content_masks(size)
    assert regions.keep is not None  # Regions holds masks or a kept part
    return 1.0 - resize_masks([regions.keep], size)


def _guided(
    cfg: TransferConfig,
    regions: Regions,
    feats: dict[str, Tensor],
    style: dict[str, Tensor],
    m_out: dict[str, int],
    region_targets: dict[int, dict[str, Tensor]],
    size: tuple[int, int],
    device: torch.device,
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per style layer: the regions' guidance channels over the output (R, 1, h, w), shaped as
    the content's features ``feats``, and their per-position targets (R, N, N)."""
    masks = _output_masks(regions, size)
    if regions.masks:
        targets = {
            k: torch.stack([region_targets[r][k] for r in range(len(regions.masks))])
            for k in cfg.style_layers
        }
    else:  # only a kept part: the (blended) styles over the rest, as one region
        targets = {k: style[k][0][None] / m_out[k] for k in cfg.style_layers}
    channels = propagate(masks.to(device), cfg.style_layers, cfg.model, cfg.mask_propagation)
    for k, c in channels.items():
        if tuple(c.shape[2:]) != tuple(feats[k].shape[2:]):  # a bug, not a user's error
            raise RuntimeError(f"guidance {tuple(c.shape)} does not fit {k} {feats[k].shape}")
    return {k: (channels[k], targets[k]) for k in cfg.style_layers}


def _region_target(
    cfg: TransferConfig,
    style_mask: Tensor | None,
    features: dict[str, Tensor],
    per_position: dict[str, Tensor],
    size: tuple[int, int],
    device: torch.device,
) -> dict[str, Tensor]:
    """A region's style statistics per position, (N, N) per layer: the whole painting's, or
    the guided Gram of the part ``style_mask`` covers divided by that part's mass (where the
    part vanishes at a layer, the whole painting's)."""
    if style_mask is None:
        return {k: g[0] for k, g in per_position.items()}
    channels = propagate(
        resize_masks([style_mask], size).to(device),
        cfg.style_layers,
        cfg.model,
        cfg.mask_propagation,
    )
    out = {}
    for k, v in features.items():
        mass = float(region_mass(channels[k])[0])
        out[k] = guided_gram(v, channels[k])[0, 0] / mass if mass > 0 else per_position[k][0]
    return out


def _initial_rgb(problem: Prepared, init: str) -> Tensor:
    w, h = problem.size
    if init == "content":
        return problem.content_rgb.clone()
    if init == "noise":
        # White noise (the paper's start), drawn on the CPU so a seed gives the same start
        # on every device; centred on mid-grey with a spread of about a quarter of the range.
        gen = torch.Generator().manual_seed(problem.seed)
        noise = torch.randn((1, 3, h, w), generator=gen) * 64.0 + 127.5
        return noise.clamp(0, 255).to(problem.device)
    if init == "style":
        if not problem.style_images:
            raise UsageError("--init style needs a style image")
        return problem.tensor(imageio.resize_to(problem.style_images[0], (w, h)))
    try:
        img = imageio.load_image(init)
    except InputError as e:
        raise UsageError(f"--init must be noise, content, style or an image file ({e})") from e
    return problem.tensor(imageio.resize_to(img, (w, h)))
