"""Spatial control (Gatys et al. 2017, section 4): regions, their masks, and their guidance
channels at each layer of the network.

A :class:`Regions` says which part of the photo takes its statistics from which style image (and
from which part of it), and which part of the photo is kept as it is. It is built by
:func:`build_regions` from masks (paths, PIL images or tensors in [0, 1]) or from two colour-coded
label maps (:func:`label_masks`), which it checks; :mod:`impasto.prepare` resizes its masks to
each stage's size and :func:`propagate` carries them to each style layer's resolution, where
:func:`impasto.losses.guided_gram` weighs the features by them.

Propagation, two ways (``mask_propagation``):

- ``resize`` (the default): the mask is 2x2-average-pooled wherever the network pools (flooring
  odd sizes as VGG does), so a layer's guidance channel is the mask downsampled to that layer's
  resolution: the fraction of the region under each position. A position straddling a boundary
  counts, in part, for both regions, and a deep layer's large receptive field can carry one
  region's style a little way over the boundary.
- ``inside`` (the paper's eroded channels): the mask is carried through the network's own
  receptive fields, taking the *minimum* over each 3x3 convolution window (the image's border
  does not erode) and each 2x2 pooling window, so a position is guided by a region only as far
  as its whole receptive field lies inside it; nothing straddles a boundary. The price is a seam
  along every boundary, as wide as the deep layers' receptive fields, that those layers leave
  unstyled. Where some region is eroded away entirely at a layer (a region narrower than the
  layer's receptive field; a boundary erodes conv1_1 by 1 px, conv2_1 by 4, conv3_1 by 12,
  conv4_1 by 32 and conv5_1 by 80 px of the input), that layer uses
  the ``resize`` channels of all regions instead.

Measured with ``benchmarks/bench_spatial.py`` (a grey photo split down the middle, a red painting
on the left, a blue one on the right, 256 px; BENCHMARKS.md): neither variant bleeds (the other
side's colour holds at most 2-4% of the pixels within 8 px of the boundary with ``resize``, none
with ``inside``, 14-37% without masks), while ``inside`` leaves the first 4-8 px along the
boundary less styled and matches each region's own painting less closely (E_l 1.5x): hence the
default.

Pixels that no style region covers take no style statistics at all: only the content loss (and
TV) acts there, so with the default start from the photo they stay close to it (they are not
pinned to it: a kept region, ``:none``, is). A kept region is blended back over the result with
a feathered edge (:func:`feather`), so outside the stylised regions the output is the photo.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor

from . import imageio
from .config import MaskPropagation
from .errors import UsageError
from .losses import region_mass
from .vgg import ModelName, layer_names

__all__ = [
    "MAX_LABELS",
    "MaskLike",
    "Regions",
    "as_mask",
    "build_regions",
    "feather",
    "label_masks",
    "propagate",
    "resize_masks",
]

MaskLike = str | os.PathLike[str] | PIL.Image.Image | Tensor

MAX_LABELS = 32  # colours of a label map: more is a photo or a JPEG, not a map


def _name(source: MaskLike, what: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"{what} '{os.fspath(source)}'"
    return what


def as_mask(source: MaskLike, what: str = "the mask") -> Tensor:
    """A grayscale mask as a (1, 1, H, W) float32 tensor in [0, 1] on the CPU: white is inside.

    A path or PIL image is read as the images are (EXIF orientation, transparency over white)
    and converted to grayscale; a tensor must be (H, W), (1, H, W) or (1, 1, H, W), finite, in
    [0, 1]. Raises :class:`~impasto.errors.InputError` for a file that cannot be read and
    :class:`~impasto.errors.UsageError` for a tensor of the wrong shape or range, or a mask that
    covers nothing."""
    if isinstance(source, Tensor):
        t = source.detach().to("cpu", torch.float32)
        if t.dim() == 2:
            t = t[None, None]
        elif t.dim() == 3 and t.shape[0] == 1:
            t = t[None]
        if t.dim() != 4 or t.shape[:2] != (1, 1) or min(t.shape[2:]) < 1:
            shape = "x".join(map(str, source.shape))
            raise UsageError(f"{what} must be an (H, W) or (1, H, W) tensor, not {shape}")
        if not bool(torch.isfinite(t).all()) or float(t.min()) < 0 or float(t.max()) > 1:
            raise UsageError(f"{what} must hold values in [0, 1]")
        mask = t.contiguous()
    else:
        img = imageio.load_image(source).convert("L")
        arr = np.asarray(img, dtype=np.float32) / 255.0  # (H, W)
        mask = torch.from_numpy(arr.copy())[None, None]
    if float(mask.max()) <= 0:
        raise UsageError(f"{_name(source, what)} covers nothing (it is all black)")
    return mask


def label_masks(
    segmentation: MaskLike, style_segmentation: MaskLike
) -> tuple[list[tuple[int, int, int]], list[Tensor], list[Tensor]]:
    """Corresponding regions from two colour-coded label maps (the photo's, the painting's):
    each colour is a region, present in both. Returns (colours, the photo's masks, the painting's
    masks), each mask (1, 1, H, W) of zeros and ones, colours sorted. A colour found in one map
    only, or a map of more than :data:`MAX_LABELS` colours (a JPEG's ringing, say: save label
    maps as PNG), is a :class:`~impasto.errors.UsageError`."""
    content = _labels(segmentation, "--segmentation")
    style = _labels(style_segmentation, "--style-segmentation")
    only_content = sorted(set(content) - set(style))
    only_style = sorted(set(style) - set(content))
    if only_content or only_style:
        which, where, other = (
            (only_content, "--segmentation", "--style-segmentation")
            if only_content
            else (only_style, "--style-segmentation", "--segmentation")
        )
        shown = ", ".join(_hex(c) for c in which[:4]) + (" ..." if len(which) > 4 else "")
        raise UsageError(f"colour(s) {shown} of {where} are not in {other}; the maps must match")
    colours = sorted(content)
    return colours, [content[c] for c in colours], [style[c] for c in colours]


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _labels(source: MaskLike, flag: str) -> dict[tuple[int, int, int], Tensor]:
    img = imageio.to_image(source) if isinstance(source, Tensor) else imageio.load_image(source)
    arr = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
    codes = arr[..., 0].astype(np.int64) << 16 | arr[..., 1].astype(np.int64) << 8 | arr[..., 2]
    found = np.unique(codes)
    if len(found) > MAX_LABELS:
        raise UsageError(
            f"{_name(source, flag)} has {len(found)} colours, more than a label map's "
            f"{MAX_LABELS}; paint flat colours and save it as PNG (not JPEG)"
        )
    out: dict[tuple[int, int, int], Tensor] = {}
    for code in found.tolist():
        colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
        out[colour] = torch.from_numpy((codes == code).astype(np.float32))[None, None]
    return out


def resize_masks(masks: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
    """Masks of any sizes, each (1, 1, H, W), resized to ``size`` (W, H) and stacked:
    (R, 1, H', W'). Antialiased bilinear, so soft edges stay soft and thin ones do not vanish."""
    w, h = size
    out = []
    for m in masks:
        if tuple(m.shape[2:]) == (h, w):
            out.append(m.float())
        else:
            r = F.interpolate(m.float(), size=(h, w), mode="bilinear", antialias=True)
            out.append(r.clamp(0.0, 1.0))
    return torch.cat(out) if out else torch.zeros(0, 1, h, w)


def _erode(t: Tensor, window: int) -> Tensor:
    """The minimum over each window (3: a 3x3 convolution's, same size, the border replicated;
    2: a 2x2 pooling's, half size, odd sizes floored)."""
    if window == 3:
        return -F.max_pool2d(F.pad(-t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return -F.max_pool2d(-t, 2, stride=2)


def propagate(
    masks: Tensor,
    layers: Sequence[str],
    model: ModelName = "vgg19",
    mode: MaskPropagation = "resize",
) -> dict[str, Tensor]:
    """Guidance channels (R, 1, h, w) at each of ``layers`` for masks (R, 1, H, W) over the
    network's input: of the same shapes as the network's responses, odd sizes included (both
    variants pool as VGG does, flooring). See the module's docstring for the two ``mode``s."""
    if mode not in ("inside", "resize"):
        raise UsageError(f"--mask-propagation must be inside or resize, not {mode!r}")
    order = layer_names(model)
    wanted = set(layers)
    last = max(order.index(name) for name in wanted)
    out: dict[str, Tensor] = {}
    t = masks.float()
    for name in order[: last + 1]:
        if name.startswith("pool"):
            t = F.avg_pool2d(t, 2, stride=2) if mode == "resize" else _erode(t, 2)
        elif mode == "inside":
            t = _erode(t, 3)
        if name in wanted:
            out[name] = t
    if mode == "inside":  # a layer where some region is eroded away takes the resized channels
        resized = propagate(masks, layers, model, "resize")
        for name, channel in out.items():
            vanished = (region_mass(channel) <= 0) & (region_mass(resized[name]) > 0)
            if bool(vanished.any()):
                out[name] = resized[name]
    return out


def feather(mask: Tensor, sigma: float) -> Tensor:
    """``mask`` (1, 1, H, W) blurred by a Gaussian of ``sigma`` pixels (the border replicated):
    a soft edge for blending a kept region back; ``sigma`` 0 leaves it as it is."""
    if sigma <= 0:
        return mask
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=mask.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    t = F.pad(mask.float(), (radius, radius, radius, radius), mode="replicate")
    t = F.conv2d(t, k.view(1, 1, -1, 1))  # down the columns, then along the rows
    return F.conv2d(t, k.view(1, 1, 1, -1)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class Regions:
    """Which part of the photo is painted from which style, and what is kept.

    Region r covers ``masks[r]`` of the photo and takes the statistics of style image
    ``styles[r]``, from the part ``style_masks[r]`` of it (None: all of it). With no regions
    (only a kept part) the styles blend over the whole picture, as without masks. ``keep``
    covers what stays the photo. Masks are (1, 1, H, W) in [0, 1] at their own sizes; they are
    resized to each stage's size."""

    masks: tuple[Tensor, ...] = ()
    styles: tuple[int, ...] = ()
    style_masks: tuple[Tensor | None, ...] = ()
    keep: Tensor | None = None
    labels: tuple[str, ...] = ()  # a name per region, for messages ("#87ceeb", "mask 2")

    def count(self) -> int:
        """How many guided regions the style term has (a kept part alone makes one)."""
        return len(self.masks) or 1

    def content_masks(self, size: tuple[int, int]) -> Tensor:
        """The regions at ``size`` (W, H), less the kept part: (R, 1, H, W)."""
        masks = resize_masks(self.masks, size)
        if self.keep is not None:
            masks = masks * (1.0 - resize_masks([self.keep], size))
        return masks

    def keep_alpha(self, size: tuple[int, int], sigma: float) -> Tensor | None:
        """The kept part at ``size`` (W, H), feathered by ``sigma`` pixels: (1, 1, H, W)."""
        if self.keep is None:
            return None
        return feather(resize_masks([self.keep], size), sigma)


def _mask_list(masks: MaskLike | Sequence[MaskLike] | None) -> list[MaskLike] | None:
    if masks is None:
        return None
    if isinstance(masks, (str, os.PathLike, PIL.Image.Image, Tensor)):
        return [masks]
    return list(masks)


def build_regions(
    style_count: int,
    *,
    masks: MaskLike | Sequence[MaskLike] | None = None,
    style_masks: Sequence[MaskLike | None] | None = None,
    keep: MaskLike | Sequence[MaskLike] | None = None,
    segmentation: MaskLike | None = None,
    style_segmentation: MaskLike | None = None,
) -> Regions | None:
    """Check and load the spatial inputs of a transfer with ``style_count`` style images; None
    when there are none (an unguided transfer).

    ``masks``: one per style image, over the photo (style i paints mask i). ``style_masks``: one
    per style image (None for all of it), over that painting. ``keep``: one or more masks of the
    photo to keep (their union). ``segmentation`` and ``style_segmentation``: two label maps
    whose colours pair regions of the photo with regions of the one painting. Raises
    :class:`~impasto.errors.UsageError` for counts that do not match, masks that cover nothing
    and label maps that do not match; :class:`~impasto.errors.InputError` for unreadable files."""
    content_list = _mask_list(masks)
    keep_list = _mask_list(keep)
    if content_list is not None and segmentation is not None:
        raise UsageError("give --masks or --segmentation, not both")
    if (segmentation is None) != (style_segmentation is None):
        raise UsageError("--segmentation and --style-segmentation go together")
    if content_list is not None and not content_list and not keep_list:
        content_list = None
    if style_masks is not None and len(style_masks) == 0:
        style_masks = None
    if content_list is None and segmentation is None and style_masks is None and not keep_list:
        return None
    kept: Tensor | None = None
    for i, k in enumerate(keep_list or []):
        m = as_mask(k, "the kept region" + (f" {i + 1}" if len(keep_list or []) > 1 else ""))
        kept = m if kept is None else torch.maximum(kept, resize_masks([m], _wh(kept))[:1])

    if segmentation is not None and style_segmentation is not None:
        if style_masks is not None:
            raise UsageError("--style-masks cannot be combined with --segmentation")
        if style_count != 1:
            raise UsageError(
                f"--segmentation pairs regions of one painting; {style_count} style images given"
            )
        colours, content, style = label_masks(segmentation, style_segmentation)
        regions = Regions(
            tuple(content), (0,) * len(colours), tuple(style), kept, tuple(map(_hex, colours))
        )
        return _check_cover(regions)

    if content_list is not None and content_list and len(content_list) != style_count:
        raise UsageError(
            f"--masks has {len(content_list)} style mask(s) for {style_count} style image(s); "
            "give one per style image (and NAME:none for a part to keep)"
        )
    if style_masks is not None and len(style_masks) != style_count:
        raise UsageError(
            f"--style-masks has {len(style_masks)} mask(s) for {style_count} style image(s)"
        )
    loaded = [as_mask(m, f"style mask {i + 1}") for i, m in enumerate(content_list or [])]
    painted = [
        None if m is None else as_mask(m, f"the mask of style image {i + 1}")
        for i, m in enumerate(style_masks or [None] * style_count)
    ]
    if not loaded and style_masks is not None:
        if style_count != 1:
            raise UsageError("with several style images, --style-masks needs --masks")
        loaded = [torch.ones(1, 1, 1, 1)]  # the whole photo, from part of the painting
    labels = tuple(f"mask {i + 1}" for i in range(len(loaded)))
    regions = Regions(
        tuple(loaded), tuple(range(len(loaded))), tuple(painted[: len(loaded)]), kept, labels
    )
    return _check_cover(regions)


def _wh(mask: Tensor) -> tuple[int, int]:
    return int(mask.shape[3]), int(mask.shape[2])


def _check_cover(regions: Regions) -> Regions:
    """Refuse regions that the kept part covers entirely (nothing of them is left to paint)."""
    if regions.keep is None or not regions.masks:
        if regions.keep is not None and float(regions.keep.min()) >= 1:
            raise UsageError("the kept region covers the whole photo; nothing is left to paint")
        return regions
    size = _wh(regions.keep)
    left = region_mass(regions.content_masks(size))
    for label, mass in zip(regions.labels, left.tolist(), strict=True):
        if mass <= 0:
            raise UsageError(f"the kept region covers all of {label}; nothing is left to paint")
    return regions
