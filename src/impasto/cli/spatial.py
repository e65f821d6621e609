"""Spatial and scale control on the command line: ``transfer``'s mask flags, and ``mix-styles``.

``--masks``, ``--style-masks``, ``--segmentation``/``--style-segmentation`` and ``--fine-style``
name files, like the style images, so they are arguments of the command rather than fields of
:class:`~impasto.config.TransferConfig` (whose spatial options, ``--mask-propagation``,
``--keep-feather`` and ``--scale-split``, come with the other config flags). They are read into a
:class:`~impasto.guidance.Regions` by :func:`impasto.guidance.build_regions`, which the API and
the server use too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ..config import TransferConfig
from ..errors import ExitStatus, UsageError
from ..eta import WorkPlan
from ..paths import Named, check_apart, interrupted_path
from . import PROG
from .options import (
    ConfigFlags,
    add_common,
    add_config_options,
    check_output_folders,
    config_inputs,
    examples,
    titled_group,
)

if TYPE_CHECKING:
    from ..guidance import Regions

# The masks' reader (torch), the engine and the progress bar are imported where they are used,
# not here: the parser is built (--help, a mistyped option) without them. main() imports a
# command's ENGINE first, with Ctrl-C held (cli.signals).
ENGINE = ("impasto.optimize", "impasto.guidance", "impasto.cli.progress", "impasto.cli.summary")

KEEP_SUFFIX = ":none"


def add_spatial_options(p: argparse.ArgumentParser) -> None:
    """The mask and fine-style flags of ``transfer``."""
    g = titled_group(
        p,
        "spatial and scale control",
        "Gatys et al. 2017. Masks are grayscale images over the photo (white: inside; soft values "
        "allowed; any size, resized to the output). Pixels no style mask covers get the content "
        "loss only.",
    )
    g.add_argument(
        "--masks",
        default=None,
        metavar="MASKS",
        help="comma-separated masks, one per style image in order: style i paints mask i; a "
        "mask written FILE:none is kept as the photo (soft edge: --keep-feather) and needs no "
        "style (only FILE:none masks: the styles paint the rest as usual); a comma in a file "
        "name is written \\, (default: none)",
    )
    g.add_argument(
        "--style-masks",
        default=None,
        metavar="MASKS",
        help="comma-separated masks, one per style image, over that painting: its statistics "
        "are taken from that part only ('-' for all of it) (default: none)",
    )
    g.add_argument(
        "--segmentation",
        default=None,
        metavar="MAP",
        help="a colour-coded label map of the photo (flat colours, PNG); with "
        "--style-segmentation, each colour is painted from the same colour's region of the one "
        "painting (default: none)",
    )
    g.add_argument(
        "--style-segmentation",
        default=None,
        metavar="MAP",
        help="the painting's label map, with the same colours as --segmentation (default: none)",
    )
    g.add_argument(
        "--fine-style",
        default=None,
        metavar="FILE",
        help="scale control: this painting gives the fine strokes (the style layers before "
        "--scale-split), the STYLE image(s) the coarse shapes (default: none)",
    )


SPATIAL_FLAGS = (
    "--masks",
    "--style-masks",
    "--segmentation",
    "--style-segmentation",
    "--fine-style",
)


def refuse_spatial_options(p: argparse.ArgumentParser, command: str) -> None:
    """Accept the spatial flags on a command that cannot use them, so that giving one is a clear
    refusal (:func:`check_no_spatial`) rather than argparse's "unknown option"."""
    for flag in SPATIAL_FLAGS:
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
    p.set_defaults(refuses_spatial=command)


def check_no_spatial(ns: argparse.Namespace) -> None:
    """Raise :class:`UsageError` when a command that refuses spatial flags was given one."""
    for flag in SPATIAL_FLAGS:
        if getattr(ns, flag[2:].replace("-", "_"), None) is not None:
            raise UsageError(
                f"{ns.refuses_spatial} does not take {flag}: spatial and scale control are "
                "options of impasto transfer (and of impasto.stylize)"
            )


def _split(text: str | None) -> list[str]:
    """A comma-separated list of files; a file whose name holds a comma is given whole (it
    exists) or with the comma escaped (``a\\,b.png``)."""
    if text is None:
        return []
    if "," in text and os.path.isfile(text.removesuffix(KEEP_SUFFIX)):
        return [text]
    parts = re.split(r"(?<!\\),", text)  # at the commas not escaped
    return [p.replace("\\,", ",").strip() for p in parts if p.strip()]


def spatial_inputs(ns: argparse.Namespace) -> list[Named]:
    """The files the spatial flags read, for :func:`~impasto.paths.check_apart`."""
    named: list[Named] = []
    for item in _split(ns.masks):
        named.append(("the mask", item.removesuffix(KEEP_SUFFIX)))
    named += [("the style mask", m) for m in _split(ns.style_masks) if m != "-"]
    for flag in ("segmentation", "style_segmentation", "fine_style"):
        value = getattr(ns, flag)
        if value is not None:
            named.append((f"the --{flag.replace('_', '-')} file", value))
    return named


def spatial_sources(ns: argparse.Namespace) -> dict[str, str]:
    """What the output's metadata records of the spatial inputs (paths as given)."""
    out: dict[str, str] = {}
    for flag in ("masks", "style_masks", "segmentation", "style_segmentation", "fine_style"):
        value = getattr(ns, flag)
        if value is not None:
            out[flag] = str(value)
    return out


def regions_from_args(ns: argparse.Namespace, style_count: int) -> Regions | None:
    """Read and check the masks named on the command line (before any weights are loaded)."""
    from ..guidance import build_regions

    items = _split(ns.masks)
    if ns.masks is not None and not items:
        raise UsageError("--masks needs at least one file")
    keep = [i.removesuffix(KEEP_SUFFIX) for i in items if i.endswith(KEEP_SUFFIX)]
    painted = [i for i in items if not i.endswith(KEEP_SUFFIX)]
    style_masks = _split(ns.style_masks)
    return build_regions(
        style_count,
        masks=painted if painted else None,
        style_masks=[None if m == "-" else m for m in style_masks] if style_masks else None,
        keep=keep or None,
        segmentation=ns.segmentation,
        style_segmentation=ns.style_segmentation,
    )


# --- mix-styles ----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``mix-styles``."""
    m = sub.add_parser(
        "mix-styles",
        help="a new style image: the coarse shapes of one painting, the fine strokes of another",
        description="Synthesise a new style image from white noise (Gatys et al. 2017, scale "
        "control): the style layers from --scale-split on (default conv3_1: conv3_1, conv4_1, "
        "conv5_1) match COARSE's Gram matrices, the layers before it FINE's; there is no content "
        "term (--content-weight is 0 and --init noise unless given). The result takes "
        "COARSE's aspect ratio and can be used as a STYLE of transfer.",
        epilog=examples(
            "impasto mix-styles the_scream.jpg starry_night.jpg -o mixed.png --size 256",
            "impasto transfer photo.jpg mixed.png -o out.png",
        ),
        allow_abbrev=False,
    )
    m.add_argument("coarse", metavar="COARSE", help="painting that gives the large-scale shapes")
    m.add_argument("fine", metavar="FINE", help="painting that gives the fine strokes")
    m.add_argument("-o", "--output", required=True, metavar="OUT", help="the new style image")
    # One coarse painting, no content: no blending, masks or colours to keep.
    mix = {"content_weight": "0 (texture synthesis: no content)", "init": "noise"}
    unused = {"mask_propagation", "keep_feather", "style_blend_weights", "preserve_colors"}
    add_config_options(m, ConfigFlags(leave_out=frozenset(unused), given=mix))
    add_common(m)
    m.set_defaults(run=_run_mix, engine=ENGINE, output_files=(("output", ""),))


def _run_mix(ns: argparse.Namespace) -> int:
    from .. import imageio
    from ..optimize import Transfer, stage_plan
    from .progress import ProgressBar
    from .summary import result_line

    out = imageio.check_output_path(ns.output)
    given = {f.name: getattr(ns, f.name, None) for f in fields(TransferConfig)}
    given = {k: v for k, v in given.items() if v is not None}
    given.setdefault("content_weight", 0.0)  # texture synthesis: no content
    given.setdefault("init", "noise")
    cfg = TransferConfig.from_options(given)
    inputs: list[Named] = [("the coarse painting", ns.coarse), ("the fine painting", ns.fine)]
    outputs: list[Named] = [("the output", out), ("the interrupted file", interrupted_path(out))]
    check_apart(inputs + config_inputs(cfg), outputs)
    check_output_folders(ns)
    transfer = Transfer(ns.coarse, [ns.coarse], cfg, fine_style=ns.fine)
    plan = stage_plan(cfg, transfer.smallest_size)
    work = WorkPlan.from_sizes([(st.size, st.iterations) for st in plan])
    progress = ProgressBar(cfg.iterations, ns.quiet, None, 0, plan=work, print_every=ns.print_every)
    try:
        result = transfer.run(on_step=progress)
    finally:
        progress.close()
    sources = {"coarse": str(ns.coarse), "fine": str(ns.fine)}
    meta = {**result.metadata(sources), "impasto:command": "mix-styles"}
    if result.interrupted:  # as transfer does: the best image so far, beside the output
        partial = imageio.save_image(result.image, interrupted_path(out), metadata=meta)
        print(
            f"{PROG}: interrupted at iteration {result.iterations}/{cfg.iterations}; "
            f"best image so far saved to {partial}",
            file=sys.stderr,
        )
        return ExitStatus.INTERRUPTED
    imageio.save_image(result.image, out, metadata=meta)
    if not ns.quiet:
        print(result_line(out, result, plan), file=sys.stderr)
    return ExitStatus.OK
