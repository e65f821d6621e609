"""impasto: neural style transfer by the optimisation method of Gatys, Ecker and Bethge (2016).

>>> import impasto
>>> image = impasto.stylize("photo.jpg", "starry_night.jpg", size=384, iterations=300)
>>> image.save("photo_starry.png")

For the loop itself (a callback per step, the terms, the seed) use :class:`Transfer`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import (
    DivergedError,
    ExitStatus,
    ImpastoError,
    InputError,
    ResourceError,
    UsageError,
)
from .version import __version__

if TYPE_CHECKING:
    import PIL.Image

    from .config import TransferConfig
    from .guidance import MaskLike
    from .optimize import Result, Step, Transfer
    from .prepare import ImageLike


# Imported on first use (PEP 562): ``import impasto`` (and the ``impasto`` command's first
# moments, when a Ctrl-C must be one line) does not wait for torch.
_LAZY = {
    "TransferConfig": "config",
    "Result": "optimize",
    "Step": "optimize",
    "Transfer": "optimize",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DivergedError",
    "ExitStatus",
    "ImpastoError",
    "InputError",
    "ResourceError",
    "Result",
    "Step",
    "Transfer",
    "TransferConfig",
    "UsageError",
    "__version__",
    "stylize",
]


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    on_step: Callable[[Step], None] | None = None,
    masks: Sequence[MaskLike] | None = None,
    style_masks: Sequence[MaskLike | None] | None = None,
    keep: MaskLike | Sequence[MaskLike] | None = None,
    segmentation: MaskLike | None = None,
    style_segmentation: MaskLike | None = None,
    fine_style: ImageLike | None = None,
    **options: Any,
) -> PIL.Image.Image:
    """Render ``content`` in the style of ``styles`` and return the image.

    ``content`` and each style may be a path, a PIL image or an RGB tensor in [0, 1] of shape
    (3, H, W) or (1, 3, H, W). ``options`` are the fields of :class:`TransferConfig`
    (``size=``, ``iterations=``, ``style_weight=``, ...); an unknown name raises
    :class:`UsageError` with a suggestion.

    Spatial control (Gatys et al. 2017); a mask is a path, a PIL image or a tensor (H, W) or
    (1, H, W) in [0, 1], white inside, at any size: ``masks``, one per style, paints mask i of
    the photo from style i; ``style_masks``, one per style (None: all of it), takes style i's
    statistics from that part of the painting; ``keep`` (one mask or several) keeps that part of
    the photo, with a feathered edge; ``segmentation`` and ``style_segmentation``, two label
    maps, pair the regions of matching colours of the photo and of one painting. Scale control:
    ``fine_style`` paints the fine strokes (the style layers before ``scale_split``) and
    ``styles`` the coarse shapes. See :mod:`impasto.guidance`.
    """
    style_list: list[ImageLike] = (
        list(styles) if isinstance(styles, (list, tuple)) else [styles]  # type: ignore[list-item]
    )
    from .config import TransferConfig
    from .guidance import build_regions
    from .optimize import Transfer

    config = TransferConfig.from_options(options)
    regions = build_regions(
        len(style_list),
        masks=masks,
        style_masks=style_masks,
        keep=keep,
        segmentation=segmentation,
        style_segmentation=style_segmentation,
    )
    transfer = Transfer(content, style_list, config, regions=regions, fine_style=fine_style)
    return transfer.run(on_step=on_step).image
