"""The ranges of the numeric options and the check that holds an options dataclass to them (the
one place that says what a number outside its range is told)."""

from __future__ import annotations

import math
from dataclasses import Field, fields
from typing import Any

from ..errors import UsageError
from ..layers import MIN_SIDE
from .fields import flag_name

# The ranges of the numeric options (``bounds`` of their fields, checked by check_bounds, the one
# place that holds an option to its range).
# 16384 px is 16x the server's default limit and beyond any GPU's memory at full resolution;
# 100000 iterations are days of work at any size (each keeps a row of loss values); weights
# stop at 1e38, under float32's largest (3.4e38), beyond which a weight is infinite on the
# device (a large one can still make the loss overflow: that is exit 5, diverged); the style
# image may be 8x the output.
MAX_SIZE = 16384
MAX_ITERATIONS = 100_000
MAX_WEIGHT = 1e38
MAX_LEARNING_RATE = 1e4
MAX_STYLE_SCALE = 8.0
MAX_SEED = 2**63 - 1
MAX_MEMORY_GIB = 2.0**20  # a pebibyte
MAX_STAGES = 16  # coarse-to-fine stages ('auto' makes at most 13: 256 px to 16384 px)
POSITIVE = 1e-12  # as the least of a range: "a positive number" (no finer number is meant)
TOO_SMALL = f"VGG needs at least {MIN_SIDE} pixels"  # why a size under MIN_SIDE is refused


def _num(x: float) -> str:
    """A number for a message: integers in full (2^63 - 1 too), others short."""
    if isinstance(x, int) or (math.isfinite(x) and x.is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def check_bounds(options: Any) -> None:
    """Hold every numeric field of an options dataclass to its ``bounds`` metadata: a value
    outside (or not finite) is a :class:`UsageError` saying what the option must be. The ranges
    keep every value the code can take in (an iteration count no loop or allocation chokes on, a
    weight no float32 loss overflows at once); the dataclasses' own checks say more where a value
    is merely unwise."""
    for f, bounds in _bounded_fields(type(options)):
        value = getattr(options, f.name)
        if value is None:
            continue
        lo, hi = bounds
        if type(value) in _PLAIN and lo <= value <= hi:  # the common case, decided at once
            continue  # (every range's ends are finite, so a value between them is finite)
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, (int, float)) and not (math.isfinite(v) and lo <= v <= hi):
                flag = f.metadata.get("flag") or f"--{flag_name(f.name)}"
                raise UsageError(_refusal(flag, v, lo, hi, f.metadata.get("below"), str(f.type)))


_PLAIN = (int, float)  # exactly these types (a bool, a tuple or an Auto value: the full check)
_BOUNDED_FIELDS: dict[type[Any], list[tuple[Field[Any], tuple[float, float]]]] = {}


def _bounded_fields(cls: type[Any]) -> list[tuple[Field[Any], tuple[float, float]]]:
    """The fields of an options dataclass that have ``bounds``, with them (found once: every
    config of a batch's thousands is checked)."""
    found = _BOUNDED_FIELDS.get(cls)
    if found is None:
        found = [(f, b) for f in fields(cls) if (b := f.metadata.get("bounds")) is not None]
        _BOUNDED_FIELDS[cls] = found
    return found


def _refusal(flag: str, v: float, lo: float, hi: float, below: str | None, kind: str) -> str:
    """What an option of type ``kind`` is told of a value ``v`` outside [lo, hi]."""
    counted = "int" in kind and "float" not in kind  # a count, a size: not an amount
    if lo == POSITIVE:
        within = f"between 1 and {_num(hi)}" if counted else f"in (0, {_num(hi)}]"
    else:
        within = f"between {_num(lo)} and {_num(hi)}"
    if math.isfinite(v) and v > hi:
        return f"{flag} must be {within}, not {_num(v)}"
    if counted and lo >= 1 > v:
        return f"{flag} must be at least {_num(lo)}, not {_num(v)}"
    if below is not None and math.isfinite(v):
        return f"{flag} {_num(v)} is too small; {below}"
    if lo == POSITIVE:
        return f"{flag} must be a positive number, not {_num(v)}"
    if lo == 0 and not counted:
        return f"{flag} must be a finite number >= 0, not {_num(v)}"
    return f"{flag} must be {within}, not {_num(v)}"


def check_weights(flag: str, values: tuple[float, ...]) -> None:
    """Weights (each held to its range by check_bounds) that add up to something."""
    if sum(values) <= 0:
        raise UsageError(f"--{flag} must be numbers >= 0 with a positive sum")
