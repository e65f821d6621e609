"""Reading and writing still images: decoding (files and in-memory uploads alike), colour and
orientation handling, resizing, tensors and metadata.

Every image enters as 8-bit sRGB RGB (EXIF orientation applied, ICC profiles converted,
transparency composited over white, high bit depths scaled) and leaves through an atomic write
(:mod:`impasto.atomic`), so an interrupted run never leaves a half-written picture where a good
one was. Video containers and animations are encoded in :mod:`impasto.video.sinks`; the web
server's JPEG previews are encoded by its workers.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import pathlib
import struct
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from .atomic import atomic_write
from .errors import InputError, UsageError, first_line, unreadable
from .paths import check_name_length, check_regular_file

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: every image is taken to be sRGB already
    ImageCms = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "check_output_path",
    "check_writable",
    "decode_image",
    "encode_image",
    "fit_longest",
    "load_image",
    "read_metadata",
    "resize_longest",
    "resize_to",
    "save_image",
    "to_image",
    "to_tensor",
]

DEFAULT_MAX_PIXELS: int = 100_000_000
"""Refuse images above this many pixels; Pillow's own bomb limit (about 89.5M) also applies."""

OUTPUT_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
}

StrPath = str | os.PathLike[str]

_WHITE = (255, 255, 255)
_EXIF_USER_COMMENT = 0x9286
_ASCII_CODE = b"ASCII\0\0\0"  # EXIF UserComment character-code prefix
# Everything Pillow raises for a file it identified but cannot decode (truncated, broken chunks).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


# --- loading ----------------------------------------------------------------------------------


def load_image(
    source: str | os.PathLike[str] | Image.Image,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    at_least: int | None = None,
) -> Image.Image:
    """Load a file (or take a PIL image) as a new, fully loaded 8-bit sRGB ``RGB`` image.

    ``at_least``: the caller wants the image no larger than about this many pixels on its
    longer side; it is then decoded small where the format can (JPEG's scaled decoding) and
    halved, quartered... (by whole factors, never below ``at_least``) as soon as it is decoded,
    before any colour conversion copies it, so that a large picture is held at full size once,
    briefly. The caller resizes it exactly."""
    if isinstance(source, Image.Image):
        name = os.fsdecode(getattr(source, "filename", "") or "<image>")
        with _bomb_guard(name):
            _check_size(source, name, max_pixels)
            return _to_srgb(_decode_small(source, name, at_least), name)

    name = os.fspath(source)
    with _open_file(name) as fp, _bomb_guard(name):
        im = _identify(fp, name)
        try:
            _check_size(im, name, max_pixels)  # from the header, before any pixel is decoded
            return _to_srgb(_decode_small(im, name, at_least), name)
        finally:
            im.close()


def decode_image(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An image file's bytes (read elsewhere: a batch job's inputs) as :func:`load_image` reads
    the file; ``name`` names it in messages."""
    if not data:
        raise InputError(f"cannot read image '{name}': the file is empty")
    with _bomb_guard(name):
        im = _identify(io.BytesIO(data), name)
        try:
            _check_size(im, name, max_pixels)
            _decode(im, name)
            return _to_srgb(im, name)
        finally:
            im.close()


@contextlib.contextmanager
def _open_file(name: str) -> Iterator[IO[bytes]]:
    # We open the file ourselves so that it is closed on every path, and so that each OS-level
    # failure gets its own plain-words message.
    if os.path.isdir(name):
        raise unreadable(f"image '{name}'", IsADirectoryError())
    check_regular_file(name, "the image")
    try:
        fp = open(name, "rb")  # noqa: SIM115 (closed below, after the caller is done)
    except OSError as exc:
        raise unreadable(f"image '{name}'", exc) from exc
    with fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise InputError(f"cannot read image '{name}': the file is empty")
        yield fp


@contextlib.contextmanager
def _bomb_guard(name: str) -> Iterator[None]:
    # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; we refuse both. The filter is
    # local to this block so the caller's warning settings are left as they were.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            limit = _pixels(Image.MAX_IMAGE_PIXELS or 0)
            raise InputError(
                f"'{name}' is too large to decode safely (over {limit}, Pillow's limit)"
            ) from exc


def _identify(fp: IO[bytes], name: str) -> ImageFile.ImageFile:
    try:
        return Image.open(fp)
    except UnidentifiedImageError as exc:
        raise InputError(f"'{name}' is not an image Pillow can read") from exc
    except _DECODE_ERRORS as exc:
        raise InputError(f"'{name}' is truncated or corrupt ({first_line(exc)})") from exc


def _check_size(im: Image.Image, name: str, max_pixels: int) -> None:
    width, height = im.size
    if width * height > max_pixels:
        raise InputError(
            f"'{name}' is {width}x{height} pixels ({_pixels(width * height)}); "
            f"the limit is {_pixels(max_pixels)}"
        )


_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})  # what Image.reduce takes


def _decode_small(im: Image.Image, name: str, at_least: int | None) -> Image.Image:
    """``im`` decoded (:func:`_decode`), at a reduced scale when ``at_least`` allows one."""
    if at_least is None or max(im.size) < 2 * at_least:
        _decode(im, name)
        return im
    with contextlib.suppress(ValueError, OSError):  # only JPEG decodes small; others ignore it
        im.draft(im.mode, (at_least, at_least))  # the scaled size is at least at_least a side
    _decode(im, name)
    factor = max(im.size) // at_least
    if factor < 2 or im.mode not in _REDUCIBLE:
        return im
    small = im.reduce(factor)  # box averages; keeps im.info (the ICC profile, EXIF)
    im.close()  # the full-size pixels go now, not when the caller is done
    return small


def _decode(im: Image.Image, name: str) -> None:
    # LOAD_TRUNCATED_IMAGES stays off (we never set it), so a cut-off file fails here rather than
    # coming back with a grey band.
    try:
        im.load()
    except _DECODE_ERRORS as exc:
        raise InputError(f"'{name}' is truncated or corrupt ({first_line(exc)})") from exc


def _to_srgb(im: Image.Image, name: str) -> Image.Image:
    icc = im.info.get("icc_profile")
    try:
        im = ImageOps.exif_transpose(im)  # always a new image, so the input is never touched
    except (*_DECODE_ERRORS, KeyError, TypeError):
        im = im.copy()  # a broken EXIF block should not cost the user the picture
    im = _to_8bit(im)
    colour, alpha = _split_alpha(im)
    converted = _icc_to_srgb(colour, icc if isinstance(icc, bytes) else None)
    if converted is not None:
        colour = converted
    try:
        rgb = colour if colour.mode == "RGB" else colour.convert("RGB")
    except ValueError as exc:
        msg = f"'{name}' has colour mode {colour.mode}, which cannot become RGB"
        raise InputError(msg) from exc
    out = _over_white(rgb, alpha)
    # The old profile, EXIF and transparency describe pixels we have changed; a later save must not
    # write them back out.
    out.info = {}
    return out


def _to_8bit(im: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit and float greyscale to ``L`` by their real range (Pillow saturates)."""
    if im.mode == "1":
        return im.convert("L")
    if not (im.mode in ("I", "F") or im.mode.startswith("I;16")):
        return im
    arr = np.asarray(im).astype(np.float32)
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(arr.max()) if arr.size else 0.0
    if im.mode == "F":
        scale = 255.0 if peak <= 1.0 else 1.0  # floats are 0..1, or else already 0..255
    elif im.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    elif peak <= 255.0:  # 32-bit 'I' holding 8-bit values
        scale = 1.0
    elif peak <= 65535.0:  # 'I' holding 16-bit values (older Pillow's 16-bit PNGs)
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / peak
    out = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def _split_alpha(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Separate colour from alpha, so that ICC conversion sees plain colour channels."""
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    elif im.mode in ("L", "RGB") and "transparency" in im.info:
        im = im.convert(im.mode + "A")  # a tRNS colour key becomes a real alpha channel
    elif im.mode in ("La", "RGBa"):
        im = im.convert(im.mode.upper())  # un-premultiply
    if im.mode not in ("LA", "RGBA"):
        return im, None
    alpha = im.getchannel("A")
    colour = im.convert(im.mode[:-1])
    return colour, (None if alpha.getextrema() == (255, 255) else alpha)


def _over_white(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    # White, not black: transparent areas of logos and scans are meant to be paper.
    if alpha is None:
        return rgb
    return Image.composite(rgb, Image.new("RGB", rgb.size, _WHITE), alpha)


def _flatten(im: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB, without colour management."""
    if im.mode == "RGB":
        return im
    colour, alpha = _split_alpha(_to_8bit(im))
    return _over_white(colour.convert("RGB"), alpha)


@functools.cache
def _srgb_profile() -> Any:
    assert ImageCms is not None
    return ImageCms.createProfile("sRGB")


def _icc_to_srgb(colour: Image.Image, icc: bytes | None) -> Image.Image | None:
    """Convert by the embedded profile, or None when there is none or LittleCMS refuses it."""
    if not icc or ImageCms is None or colour.mode not in ("RGB", "L", "CMYK", "LAB"):
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(colour, source, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or mismatched profile (an RGB profile on a grey image, say) is common in the
        # wild; the pixels are still usable as if they were sRGB.
        return None


def _pixels(n: int) -> str:
    if n < 1_000_000:
        return f"{n:,} pixels"
    mp = n / 1_000_000
    return f"{mp:,.0f} megapixels" if mp >= 100 else f"{mp:.3g} megapixels"


# --- resizing and tensors ---------------------------------------------------------------------


def resize_longest(img: Image.Image, longest: int) -> Image.Image:
    """Scale so the longer side is ``longest`` pixels, keeping the aspect ratio."""
    return resize_to(img, fit_longest(img.size, longest))


def fit_longest(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The (width, height) that ``resize_longest`` gives an image of ``size``."""
    if longest < 1:
        raise UsageError(f"the longest side must be at least 1 pixel, not {longest}")
    width, height = size
    if width >= height:
        return (longest, max(1, round(height * longest / width)))
    return (max(1, round(width * longest / height)), longest)


def resize_to(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to exactly ``size`` = (width, height); returns a new image."""
    width, height = size
    if width < 1 or height < 1:
        raise UsageError(f"an image size must be at least 1x1 pixels, not {width}x{height}")
    if img.size == (width, height):
        return img.copy()
    # Lanczos anti-aliases when shrinking; bicubic rings less when enlarging.
    shrinking = width < img.width or height < img.height
    resample = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
    return img.resize((width, height), resample)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB image to a (1, 3, H, W) float32 tensor in [0, 1]."""
    arr = np.array(_flatten(img), dtype=np.uint8)  # (H, W, 3); a copy, so torch may write to it
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()


def to_image(t: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) or (3, H, W) tensor, any device or dtype, to an 8-bit RGB image."""
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got {tuple(t.shape)}")
    t = torch.nan_to_num(t.detach().to("cpu", torch.float32), nan=0.0)
    arr = t.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(arr.numpy())  # (H, W, 3) uint8 -> RGB


# --- saving -----------------------------------------------------------------------------------


def check_output_path(path: StrPath) -> pathlib.Path:
    """Check that ``path`` can be written as an image; creates nothing."""
    return check_writable(path, tuple(OUTPUT_FORMATS), "output")


def check_writable(path: StrPath, formats: Sequence[str], what: str) -> pathlib.Path:
    """Check ``path``'s extension is one of ``formats`` and that its folder can be written (or
    created); creates nothing. ``what`` names the kind of file in the message."""
    name = os.fspath(path)
    p = pathlib.Path(path)
    if p.suffix.lower() not in formats:
        kind = f"unsupported {what} type '{p.suffix}'" if p.suffix else "no file extension"
        shown = [f for f in formats if f != ".jpeg"]  # .jpeg works, but .jpg is the one to offer
        choices = ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else shown[0]
        raise UsageError(f"{kind} for '{name}'; use {choices}")
    if "\0" in name:
        raise UsageError(f"the path {name!r} holds a NUL character")
    check_name_length(p)
    if p.is_dir():
        raise InputError(f"cannot write '{name}': it is a directory")
    # The writers create missing folders, so what matters is the nearest one that exists.
    folder = p.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write '{name}': '{folder}' is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write '{name}': no permission to write in '{folder}'")
    return p


def save_image(
    img: Image.Image, path: StrPath, *, metadata: Mapping[str, str] | None = None
) -> pathlib.Path:
    """Write ``img`` atomically (temp file, fsync, rename), with ``metadata`` embedded."""
    p = check_output_path(path)
    fmt = OUTPUT_FORMATS[p.suffix.lower()]
    img, params = _encoder_args(img, fmt, metadata or {})
    with atomic_write(p) as f:
        img.save(f, format=fmt, **params)
    return p


def encode_image(img: Image.Image, suffix: str, metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes :func:`save_image` would write to a file ending in ``suffix`` (``.png``, ...):
    for workers that hand an image back to the process that writes it."""
    fmt = OUTPUT_FORMATS[suffix.lower()]
    img, params = _encoder_args(img, fmt, metadata or {})
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _encoder_args(
    img: Image.Image, fmt: str, metadata: Mapping[str, str]
) -> tuple[Image.Image, dict[str, Any]]:
    params: dict[str, Any] = {}
    if fmt == "PNG":
        if img.mode not in ("RGB", "RGBA", "L", "LA"):
            img = _flatten(img)
        if metadata:
            info = PngImagePlugin.PngInfo()
            for key, value in metadata.items():
                info.add_text(key, value)  # tEXt, or iTXt when not Latin-1
            params["pnginfo"] = info
        return img, params

    if fmt == "JPEG":
        img = img if img.mode in ("RGB", "L") else _flatten(img)
        # 4:4:4 keeps the fine colour detail that stylised textures are made of.
        params.update(quality=95, subsampling=0)
        if metadata:
            params["comment"] = json.dumps(dict(metadata))  # ASCII-only JSON in the COM marker
    else:  # WEBP
        img = img if img.mode in ("RGB", "RGBA") else _flatten(img)
        params["quality"] = 95
        if metadata:
            # Pillow's WebP writer has no comment field; EXIF UserComment is the portable slot.
            comment = _ASCII_CODE + json.dumps(dict(metadata)).encode("ascii")
            exif = Image.Exif()
            exif.get_ifd(ExifTags.IFD.Exif)[_EXIF_USER_COMMENT] = comment
            params["exif"] = exif
    return img, params


# --- reading metadata back --------------------------------------------------------------------


def read_metadata(path: StrPath) -> dict[str, str]:
    """What :func:`save_image` stored: PNG text chunks, or the JPEG/WebP JSON comment."""
    name = os.fspath(path)
    with _open_file(name) as fp, _bomb_guard(name), _identify(fp, name) as im:
        if isinstance(im, PngImagePlugin.PngImageFile):
            _check_size(im, name, DEFAULT_MAX_PIXELS)
            try:
                text = im.text  # may decode pixels to reach chunks after the image data
            except _DECODE_ERRORS as exc:
                msg = f"'{name}' is truncated or corrupt ({first_line(exc)})"
                raise InputError(msg) from exc
            return {str(k): str(v) for k, v in text.items()}
        comment = im.info.get("comment")
        if not comment:
            comment = _user_comment(im)
        return _parse_comment(comment)


def _user_comment(im: Image.Image) -> bytes | None:
    try:
        value = im.getexif().get_ifd(ExifTags.IFD.Exif).get(_EXIF_USER_COMMENT)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if not isinstance(value, bytes):
        return None
    if value[:8] in (_ASCII_CODE, b"\0" * 8):
        value = value[8:]
    return value


def _parse_comment(comment: object) -> dict[str, str]:
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", errors="replace")
    if not isinstance(comment, str) or not comment:
        return {}
    try:
        data = json.loads(comment)
    except ValueError:
        return {"comment": comment}
    if not isinstance(data, dict):
        return {"comment": comment}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
