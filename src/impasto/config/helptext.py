"""How an option is described to a person: its value as the command line writes it, its default
in words, and its help with that default (shared by the command line, the options reference and
the studio)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any

from .presets import PRESETS

# The headings TransferConfig's options are grouped under in every --help and the commands
# reference, in this order: each field in exactly one (tests/test_help.py).
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "how it looks": (
        "preset",
        "size",
        "content_weight",
        "style_weight",
        "tv_weight",
        "style_scale",
        "style_blend_weights",
        "preserve_colors",
        "init",
        "seed",
        "jitter",
    ),
    "layers and losses": (
        "content_layers",
        "style_layers",
        "style_layer_weights",
        "style_loss",
        "content_loss",
    ),
    "optimiser": (
        "iterations",
        "scales",
        "optimizer",
        "learning_rate",
        "lr_decay",
        "lr_decay_every",
        "stop_change",
        "stage_split",
    ),
    "spatial and scale control": ("mask_propagation", "keep_feather", "scale_split"),
    "network": ("model", "weights", "weights_format", "pooling", "normalize_network"),
    "device and precision": ("device", "precision", "max_memory"),
}


def show_value(value: Any) -> str:
    """An option's value as the command line writes it: lists comma-separated, floats short."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(show_value, value))
    if isinstance(value, float):
        return short_number(value)
    return str(value)


def short_number(x: float) -> str:
    """``1e4`` rather than ``10000`` or ``1e+04`` for a large round number; else ``%g``."""
    if abs(x) >= 1e3 and math.isfinite(x) and float(f"{x:.0e}") == x:
        mantissa, exponent = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{x:g}"


def shown_default(
    f: dataclasses.Field[Any], preset: str | None = None, given: Mapping[str, str] | None = None
) -> str:
    """What an option's help says of its default: ``given[name]`` where a front end sets its own
    (a batch's seed), the preset's value where ``preset`` is fixed, else "by preset: default X,
    paper Y", the field's ``shown`` words, or its value. Every option has one: a field whose
    default is None must say in ``shown`` what None means."""
    if given and f.name in given:
        return given[f.name]
    if f.metadata.get("by_preset"):
        if preset is not None:
            return show_value(PRESETS[preset][f.name])
        values = ", ".join(f"{p} {show_value(v[f.name])}" for p, v in PRESETS.items())
        return f"by preset: {values}"
    shown = f.metadata.get("shown")
    if shown is not None:
        return str(shown)
    if f.default is MISSING or f.default is None:
        raise TypeError(f"option {f.name} has no default to show: give it shown=...")
    return show_value(f.default)


def help_text(
    f: dataclasses.Field[Any], preset: str | None = None, given: Mapping[str, str] | None = None
) -> str:
    """An option's help with its default: "(default: X)", or "(by preset: ...)" when it depends
    on the preset. The command line, the options reference and the studio all show this."""
    shown = shown_default(f, preset, given)
    paren = shown if shown.startswith("by preset:") else f"default: {shown}"
    return f"{f.metadata.get('help', '')} ({paren})"
