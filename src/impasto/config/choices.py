"""The options whose values are a fixed few: their Literal types (the one place each list of
choices is written) and the check that holds an options dataclass's fields to them."""

from __future__ import annotations

import difflib
import typing
from typing import Any, Literal, get_args, get_origin

from ..errors import UsageError
from .fields import flag_name

Optimizer = Literal["lbfgs", "adam"]
Pooling = Literal["avg", "max"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "tf32", "bf16"]
PreserveColors = Literal["none", "luminance", "histogram"]
InitKind = str  # "noise", "content", "style" or an image path
Preset = Literal["default", "paper"]
MaskPropagation = Literal["inside", "resize"]
# The style and content losses (docs/style-losses.md): the paper's, and later work's.
StyleLoss = Literal["gram", "sliced", "remd"]
ContentLoss = Literal["features", "self-similarity"]


_LITERAL_FIELDS: dict[type[Any], dict[str, tuple[str, ...]]] = {}


def literal_fields(options: type[Any]) -> dict[str, tuple[str, ...]]:
    """The Literal-typed fields of an options dataclass and the values each type lists."""
    found = _LITERAL_FIELDS.get(options)
    if found is None:
        hints = typing.get_type_hints(options)
        found = {name: get_args(t) for name, t in hints.items() if get_origin(t) is Literal}
        _LITERAL_FIELDS[options] = found
    return found


def check_choices(options: Any) -> None:
    """Refuse a value of a Literal-typed field of ``options`` that its type does not list, with
    a "did you mean" hint when one is close."""
    for name, allowed in literal_fields(type(options)).items():
        value = getattr(options, name)
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(
                f"--{flag_name(name)} {value!r} is not valid; "
                f"{hint}choose from {', '.join(allowed)}"
            )
