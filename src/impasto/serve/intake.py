"""What clients send, checked before it becomes a job: transfer options and uploaded images.

Options are validated by :class:`~impasto.config.TransferConfig` itself (as on the command line),
after a type check that JSON needs and argparse does not (``"size": "big"`` must be a clear 422,
not a TypeError deep in the config). A few options belong to the server, not to a job: the device,
the weights file (a path on the server) and anything else that names a file.
"""

from __future__ import annotations

import io
import json
import math
import types
import typing
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import PIL.Image

from .. import imageio
from ..config import TransferConfig, choices
from ..errors import InputError, UsageError

# Set per server (``impasto serve --device``) or fixed: a client may not name server files or
# pick the hardware. ``model`` is fixed because only the bundled VGG-19 can be loaded without a
# weights file.
SERVER_OPTIONS = ("device", "weights", "weights_format", "model", "max_memory")
INIT_CHOICES = ("content", "noise", "style")  # ``init`` may also be a file path elsewhere: not here
MAX_STAGES = 8  # coarse-to-fine stages (each prepares its own targets)

# The style-strength slider of the page: α/β on a log scale (the range of Gatys et al.'s Fig. 3).
RATIO_RANGE = (1e-5, 1e-1)


@dataclass(frozen=True)
class Limits:
    """What one server accepts; every field has an ``impasto serve`` flag."""

    max_upload_bytes: int = 20 * 2**20  # per image file
    max_pixels: int = 50_000_000  # per decoded image
    max_size: int = 1024  # longest side of the output
    max_iterations: int = 2000
    max_styles: int = 4
    queue_limit: int = 16  # jobs waiting (the running one not counted)

    def body_limit(self) -> int:
        """Bytes one job request may carry: every image at its limit, plus the form fields."""
        return self.max_upload_bytes * (self.max_styles + 1) + 2**20


def parse_options(
    raw: str | Mapping[str, Any] | None, limits: Limits, device: str
) -> TransferConfig:
    """The config for one job from a JSON object (text or parsed); :class:`UsageError` says why
    not. Omitted ``size`` and ``iterations`` default to the config's, capped by ``limits``."""
    options = _json_object(raw)
    hints = typing.get_type_hints(TransferConfig)
    given: dict[str, Any] = {}
    for name, value in options.items():
        if name in SERVER_OPTIONS:
            raise UsageError(f"option '{name}' is set by the server, not per job")
        if name in hints:  # unknown names are left for from_options' "did you mean"
            value = _coerce(name, hints[name], value)
        given[name] = value
    init = given.get("init", "content")
    if init not in INIT_CHOICES:
        raise UsageError(f"init must be one of {', '.join(INIT_CHOICES)}, not {init!r}")
    seed = given.get("seed")
    if seed is not None and not 0 <= seed < 2**63:
        raise UsageError(f"seed must be between 0 and 2^63 - 1, not {seed}")
    for name, cap in (("size", limits.max_size), ("iterations", limits.max_iterations)):
        given.setdefault(name, min(_default(name), cap))
    config = TransferConfig.from_options(given).replace(device=device)
    _check_limits(config, limits)
    return config


def _check_limits(config: TransferConfig, limits: Limits) -> None:
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


def _default(name: str) -> Any:
    for f in fields(TransferConfig):
        if f.name == name:
            return f.default
    raise KeyError(name)


class _Mismatch(Exception):
    pass


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the field's type wants it; lists may also be given as "a,b,c"."""
    try:
        return _as(hint, value)
    except _Mismatch:
        shown = json.dumps(value) if _jsonable(value) else repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise UsageError(f"option '{name}' must be {_describe(hint)}, not {shown}") from None


def _as(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is not type(None):
                try:
                    return _as(arm, value)
                except _Mismatch:
                    continue
        raise _Mismatch
    if origin is Literal:
        # A lone Literal (optimizer, ...) takes any string: the config names the choices, with a
        # "did you mean". Inside a union (scales: 'auto'), only the literal values match.
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise _Mismatch
        return tuple(
            _as(args[0], item.strip() if isinstance(item, str) else item) for item in items
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        return _int(value)
    if hint is float:
        return _float(value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _Mismatch from None
    raise _Mismatch


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float
            raise _Mismatch from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _Mismatch from None
    raise _Mismatch


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [_describe(a) for a in args if a is not type(None)]
        if type(None) in args:
            arms.append("null")
        return " or ".join(arms)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is tuple:
        item = {int: "integers", float: "numbers"}.get(args[0], "names")
        return f"a list of {item}"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(hint, "a string")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def describe_options(limits: Limits) -> list[dict[str, Any]]:
    """Every option a job may set: name, JSON type, default, choices and the config's help.

    The page builds its controls from this, so a new option or choice in the config shows up
    without touching the page."""
    hints = typing.get_type_hints(TransferConfig)
    out = []
    for f in fields(TransferConfig):
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
                "type": _json_type(hints[f.name]),
                "default": list(default) if isinstance(default, tuple) else default,
                "choices": list(allowed) if allowed is not None else None,
                "help": f.metadata.get("help", ""),
            }
        )
    return out


def _json_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return _json_type(arms[0])
    if origin is tuple:
        return "array"
    if origin is Literal:
        return "string"
    return {bool: "boolean", int: "integer", float: "number"}.get(hint, "string")


# --- images ---------------------------------------------------------------------------------------


class TooLarge(InputError):
    """An upload over the byte limit (HTTP 413); other InputErrors are 422."""


def display_name(filename: str | None, fallback: str) -> str:
    """A client's file name as a label only (never a path): its last part, printable, short."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or fallback


def decode_upload(data: bytes, label: str, limits: Limits, longest: int) -> PIL.Image.Image:
    """An uploaded file as an RGB image no larger than ``longest`` pixels on its longer side.

    The bytes are decoded from memory: nothing the client sent is used as a path. Pixel limits,
    decompression bombs, truncated files and colour handling are imageio's, as for files."""
    if len(data) > limits.max_upload_bytes:
        raise TooLarge(
            f"'{label}' is {len(data) / 2**20:.1f} MB; the limit is "
            f"{limits.max_upload_bytes / 2**20:.0f} MB per image"
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
