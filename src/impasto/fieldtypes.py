"""An option's value read by its dataclass field's type: the one parser of option types.

The command line (text), the server (JSON values) and the config's own ``scales`` all read values
here, so ``"1,2,3"``, ``[1, 2, 3]`` and ``1`` mean the same wherever they are given. Types are
the annotations of :class:`~impasto.config.TransferConfig` and the dataclasses beside it: int,
float, bool, str, Literal choices, tuples of those, and unions with None. A value that does not
fit is a :class:`~impasto.errors.UsageError` naming the option and the type it wants.
"""

from __future__ import annotations

import json
import math
import types
import typing
from typing import Any, Literal

from .errors import UsageError


class _Mismatch(Exception):
    pass


def parse_value(name: str, hint: Any, value: Any) -> Any:
    """``value`` (JSON: a number, a string, a list, null) as field ``name`` of type ``hint``
    wants it; lists may also be given as "a,b,c"."""
    try:
        return _as(hint, value)
    except _Mismatch:
        shown = json.dumps(value) if _jsonable(value) else repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise UsageError(f"option '{name}' must be {describe(hint)}, not {shown}") from None


def parse_text(hint: Any, text: str, flag: str) -> Any:
    """Command-line ``text`` for the option ``flag`` of type ``hint``; ``null`` (or ``none``) is
    None for an option that may be None, as in JSON (the messages offer it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional and text.strip().lower() in ("null", "none"):
        return None
    try:
        return _as(hint, text)
    except _Mismatch:
        raise UsageError(f"{flag} takes {describe(hint)}, not '{text}'") from None


def split_list(text: str) -> list[str]:
    """``"a, b, c"`` -> ``["a", "b", "c"]``: comma-separated items; ``""`` and ``","`` ->
    ``[]`` (no value, which the option refuses in its own words). An empty item beside others
    (``"1,,2"``, ``"1,2,"``) is a mismatch: a doubled comma more likely lost a value than meant
    none."""
    items = [s.strip() for s in text.split(",")]
    given = [s for s in items if s]
    if given and len(given) != len(items):
        raise _Mismatch
    return given


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
        # "did you mean". Inside a union (scales: 'auto'), the config checks the value too.
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin is tuple:
        items = split_list(value) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise _Mismatch
        return tuple(_as(args[0], i.strip() if isinstance(i, str) else i) for i in items)
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
            return int(value.strip())
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


def describe(hint: Any) -> str:
    """The type in words, for messages: "an integer", "a list of numbers", ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [describe(a) for a in args if a is not type(None)]
        if type(None) in args:
            arms.append("null")
        return " or ".join(arms)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is tuple:
        item = {int: "integers", float: "numbers"}.get(args[0], "names")
        return f"a list of {item}"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(hint, "a string")


def json_type(hint: Any) -> str:
    """The JSON type of a field: integer, number, boolean, string or array."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return json_type(arms[0])
    if origin is tuple:
        return "array"
    if origin is Literal:
        return "string"
    return {bool: "boolean", int: "integer", float: "number"}.get(hint, "string")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
