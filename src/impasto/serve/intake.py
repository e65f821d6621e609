"""What clients send, checked before it becomes a job: transfer options and uploaded images.

Options are validated by :class:`~impasto.config.TransferConfig` itself (as on the command line),
after a type check that JSON needs and argparse does not (``"size": "big"`` must be a clear 422,
not a TypeError deep in the config). A few options belong to the server, not to a job: the device,
the weights file (a path on the server) and anything else that names a file.
"""

from __future__ import annotations

import io
import json
import typing
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import PIL.Image

from .. import imageio
from ..config import TransferConfig, choices
from ..errors import InputError, UsageError
from ..fieldtypes import json_type, parse_value
from ..guidance import Regions, build_regions
from ..prepare import check_spatial, smallest_size
from ..vgg import MIN_SIDE
from .settings import INIT_CHOICES, MAX_STAGES, SERVER_OPTIONS, Limits, page_control


def parse_options(
    raw: str | Mapping[str, Any] | None,
    limits: Limits,
    device: str,
    config: type[TransferConfig] = TransferConfig,
) -> TransferConfig:
    """The config for one job from a JSON object (text or parsed); :class:`UsageError` says why
    not. Omitted ``size`` and ``iterations`` default to the config's, capped by ``limits``."""
    options = _json_object(raw)
    hints = typing.get_type_hints(config)
    given: dict[str, Any] = {}
    for name, value in options.items():
        if name in SERVER_OPTIONS:
            raise UsageError(f"option '{name}' is set by the server, not per job")
        if name in hints:  # unknown names are left for from_options' "did you mean"
            value = parse_value(name, hints[name], value)
        given[name] = value
    init = given.get("init", "content")
    if init not in INIT_CHOICES:
        raise UsageError(f"init must be one of {', '.join(INIT_CHOICES)}, not {init!r}")
    seed = given.get("seed")
    if seed is not None and not 0 <= seed < 2**63:
        raise UsageError(f"seed must be between 0 and 2^63 - 1, not {seed}")
    for name, cap in (("size", limits.max_size), ("iterations", limits.max_iterations)):
        given.setdefault(name, min(_default(config, name), cap))
    result = config.from_options(given).replace(device=device)
    check_limits(result, limits)
    return result


def check_limits(config: TransferConfig, limits: Limits) -> None:
    """Refuse a config over this server's limits (also one stored by an earlier server)."""
    if config.size > limits.max_size:
        raise UsageError(f"size {config.size} is over this server's limit of {limits.max_size}")
    if config.iterations > limits.max_iterations:
        raise UsageError(
            f"iterations {config.iterations} is over this server's limit of {limits.max_iterations}"
        )
    # The style images are scaled to size x style_scale: the limit applies to them too (doubled,
    # so that a large-brush style at the largest size is still possible).
    if config.size * config.style_scale > 2 * limits.max_size:
        raise UsageError(
            f"style_scale {config.style_scale} makes the style images "
            f"{config.size * config.style_scale:.0f} px; this server's limit is "
            f"{2 * limits.max_size}"
        )
    if config.scales is not None and len(config.scales) > MAX_STAGES:
        raise UsageError(f"scales has {len(config.scales)} stages; at most {MAX_STAGES}")


def _json_object(raw: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return raw
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise UsageError(f"options must be a JSON object ({e})") from None
    if not isinstance(value, dict):
        raise UsageError(f"options must be a JSON object, not {type(value).__name__}")
    return value


def _default(config: type[TransferConfig], name: str) -> Any:
    for f in fields(config):
        if f.name == name:
            return f.default
    raise KeyError(name)


def check_feasible(
    config: TransferConfig,
    content: PIL.Image.Image,
    styles: list[PIL.Image.Image],
    limits: Limits,
) -> None:
    """Refuse (422) a job that could only fail: an output size at which an image (an extreme
    aspect ratio, or a style shrunk by ``style_scale``) keeps less than VGG's MIN_SIDE."""
    least = smallest_size(content, styles, config.style_scale)
    if config.size < least:
        hint = (
            f"use size {least} or more"
            if least <= limits.max_size
            else f"that needs size {least}, over this server's limit of {limits.max_size}: "
            "crop the image or raise style_scale"
        )
        raise UsageError(
            f"size {config.size} leaves an image less than {MIN_SIDE} px on its short side; {hint}"
        )


def describe_options(
    limits: Limits, config: type[TransferConfig] = TransferConfig
) -> list[dict[str, Any]]:
    """Every option a job may set: name, JSON type, default, choices, the config's help, and how
    the page shows it (group, label, bounds: :data:`~impasto.serve.settings.PAGE`).

    The page builds its controls from this, so a new option or choice in the config shows up
    there (under "more options") without touching the page."""
    hints = typing.get_type_hints(config)
    out = []
    for f in fields(config):
        if f.name in SERVER_OPTIONS:
            continue
        default: Any = f.default if f.default is not MISSING else None
        if f.name == "size":
            default = min(int(default), limits.max_size)
        elif f.name == "iterations":
            default = min(int(default), limits.max_iterations)
        allowed = INIT_CHOICES if f.name == "init" else choices(f.name)
        out.append(
            {
                "name": f.name,
                "type": json_type(hints[f.name]),
                "default": list(default) if isinstance(default, tuple) else default,
                "choices": list(allowed) if allowed is not None else None,
                "help": f.metadata.get("help", ""),
                **page_control(f.name, limits),
            }
        )
    return out


# --- images ---------------------------------------------------------------------------------------


class TooLarge(InputError):
    """An upload over the byte limit (HTTP 413); other InputErrors are 422."""


def display_name(filename: str | None, fallback: str) -> str:
    """A client's file name as a label only (never a path): its last part, printable, short."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or fallback


def megabytes(n: int) -> str:
    """``n`` bytes in MB (2^20 bytes), rounded up to a tenth where it is not whole: a file over
    the limit never reads as the limit itself ("20.1 MB", not "20.0 MB", for 20 MB and a byte)."""
    if n % 2**20 == 0:
        return f"{n // 2**20} MB"
    tenths = -(-n * 10 // 2**20)  # ceil(n / 2^20 * 10)
    return f"{tenths / 10:.1f} MB"


def decode_upload(data: bytes, label: str, limits: Limits, longest: int) -> PIL.Image.Image:
    """An uploaded file as an RGB image no larger than ``longest`` pixels on its longer side.

    The bytes are decoded from memory: nothing the client sent is used as a path. Pixel limits,
    decompression bombs, truncated files and colour handling are imageio's, as for files."""
    if len(data) > limits.max_upload_bytes:
        raise TooLarge(
            f"'{label}' is {megabytes(len(data))}; the limit is "
            f"{megabytes(limits.max_upload_bytes)} per image"
        )
    if not data:
        raise InputError(f"'{label}' is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
        try:
            im = PIL.Image.open(io.BytesIO(data))
        except PIL.UnidentifiedImageError:
            raise InputError(
                f"'{label}' is not an image (use PNG, JPEG, WebP, GIF, TIFF or BMP)"
            ) from None
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
            raise InputError(f"'{label}' is too large to decode safely") from None
        except Exception as e:  # Pillow raises many kinds for broken headers
            raise InputError(f"'{label}' is truncated or corrupt ({type(e).__name__})") from None
    with im:
        im.filename = label  # names the image in imageio's messages
        img = imageio.load_image(im, max_pixels=limits.max_pixels)
    if max(img.size) > longest:
        img = imageio.resize_longest(img, longest)
    return img


# --- masks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Masks:
    """Regions a client painted over the photo: a grayscale mask per style image (white: that
    style paints there), in the order of the styles, and/or one of the part kept as the photo.
    Kept as images, like the photo and the paintings: they are part of what a job was given."""

    styles: tuple[PIL.Image.Image, ...] = ()
    keep: PIL.Image.Image | None = None
    names: tuple[str, ...] = ()  # labels of the style masks, for the status and the metadata
    keep_name: str | None = None

    def regions(self, style_count: int) -> Regions | None:
        """The engine's regions (None: no masks), checked by guidance as on the command line."""
        return build_regions(style_count, masks=list(self.styles) or None, keep=self.keep)

    def names_only(self) -> Masks:
        """These masks' names without their images (a job that has run needs no more)."""
        return Masks(names=self.names, keep_name=self.keep_name)

    def sources(self) -> dict[str, str]:
        """What the result's metadata records of the masks."""
        out = {"masks": ",".join(self.names)} if self.names else {}
        return out | ({"keep": self.keep_name} if self.keep_name is not None else {})


def check_mask_count(masks: int, styles: int) -> None:
    """Refuse (422) masks that are not one per style image, before anything is decoded."""
    if masks and masks != styles:
        raise UsageError(
            f"{masks} mask(s) for {styles} style image(s): send one per style image, in their "
            "order (uploaded styles first, then style_examples), or none"
        )


def check_masks(masks: Masks, config: TransferConfig, style_count: int) -> None:
    """Refuse (422) masks that could only fail: one that covers nothing, a kept part that
    covers a whole region, or masks with ``style_blend_weights`` (each region has one style)."""
    named = [*zip(masks.names, masks.styles, strict=True)]
    if masks.keep is not None:
        named.append((masks.keep_name or "keep", masks.keep))
    for name, img in named:
        if img.getextrema()[1] == 0:  # (min, max) of an L image
            raise UsageError(
                f"mask '{name}' covers nothing (it is all black); paint its region in white"
            )
    if masks.styles and config.style_blend_weights is not None:
        raise UsageError("style_blend_weights does not apply with masks (one style per region)")
    check_spatial(config, style_count, masks.regions(style_count), fine_style=False)


def examples_folder() -> Path | None:
    """The bundled example images: in a source checkout, the repository's ``examples/``."""
    for folder in (
        Path(__file__).resolve().parents[1] / "data" / "examples",  # if ever packaged
        Path(__file__).resolve().parents[3] / "examples",
    ):
        if folder.is_dir():
            return folder
    return None


def find_examples() -> dict[str, Path]:
    """Example name (file stem) -> file. Clients pick by name; the path never leaves here."""
    folder = examples_folder()
    if folder is None:
        return {}
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file()
    }
