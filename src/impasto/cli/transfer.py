"""``impasto transfer``, ``reconstruct`` and ``grid``: one image, or a contact sheet of panels.

Each command parses into a :class:`~impasto.config.TransferConfig`, runs the API
(:class:`~impasto.optimize.Transfer`, :mod:`impasto.experiments`) with progress bars and
recorders as listeners, and writes the outputs (image, --save-every steps, --animate, --plot).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import MAX_ITERATIONS, PAPER_STYLE_LAYERS
from ..errors import ExitStatus, InputError, UsageError
from ..eta import WorkPlan
from ..paths import Named, check_apart, interrupted_path
from ..videoconfig import CLIP_SUFFIXES
from . import PROG
from .options import (
    SPATIAL_FIELDS,
    ConfigFlags,
    add_common,
    add_config_options,
    add_styles_and_output,
    bounded_int,
    check_output_folders,
    comma_floats,
    comma_strings,
    config_from_args,
    config_inputs,
    examples,
)
from .spatial import add_spatial_options, regions_from_args, spatial_inputs, spatial_sources

if TYPE_CHECKING:
    import PIL.Image

    from .. import animate, experiments
    from ..optimize import Step

# The engine (torch and the network), the progress bars and the summary line are imported where
# a command runs, not here: building the parser (--help, --version, a mistyped option) waits
# for none of them. main() imports a command's ENGINE first, with Ctrl-C held (cli.signals).
ENGINE = (
    "impasto.optimize",
    "impasto.guidance",
    "impasto.animate",
    "impasto.cli.progress",
    "impasto.cli.summary",
)
EXPERIMENT_ENGINE = (*ENGINE, "impasto.experiments")
# The files a command writes, by dest: one whose folder does not exist is refused.
OUTPUT_FILES = (("output", ""), ("animate", "the --animate file "), ("plot", "the --plot file "))

# What the paper's experiments set themselves (experiments.py): the preset (paper's), the
# weights and layers each panel varies; and what they cannot use (blends, masks, colours).
_EXPERIMENTS_SET = {"preset", "style_weight", "style_layer_weights", "style_layers"}
_ONE_STYLE = {"style_blend_weights", *SPATIAL_FIELDS}
RECONSTRUCT_SETS = frozenset(
    {*_EXPERIMENTS_SET, *_ONE_STYLE, "content_weight", "content_layers", "init", "preserve_colors"}
)
GRID_SETS = frozenset({*_EXPERIMENTS_SET, *_ONE_STYLE, "content_weight"})


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``transfer``, ``reconstruct`` and ``grid`` to the top parser's subcommands."""
    t = sub.add_parser(
        "transfer",
        help="render a content image in the style of one or more paintings",
        description="Render CONTENT in the style of STYLE (several styles are blended).",
        epilog=examples(
            "impasto transfer photo.jpg starry_night.jpg -o out.png",
            "impasto transfer photo.jpg starry_night.jpg -o out.png --size 256 --iterations 100",
            "impasto transfer photo.jpg starry_night.jpg -o out.png --preserve-colors luminance",
            "impasto transfer photo.jpg sky.jpg town.jpg -o out.png --masks sky.png,town.png",
            "impasto transfer photo.jpg starry_night.jpg -o out.png --seed 1 --animate out.gif",
        ),
        allow_abbrev=False,
    )
    t.add_argument("content", metavar="CONTENT", help="content image (photo)")
    add_styles_and_output(t, "output image: .png (with reproducible metadata), .jpg or .webp")
    add_config_options(t)
    add_spatial_options(t)
    add_common(t)
    _add_watch_options(t, plot_help="each loss term and the total against iteration")
    t.set_defaults(run=_run_transfer, engine=ENGINE, output_files=OUTPUT_FILES)
    t.add_argument(
        "--save-every",
        type=bounded_int("--save-every", 0, MAX_ITERATIONS),
        default=0,
        metavar="N",
        help="also save every N-th iterate into OUT_steps/ (default: off)",
    )

    r = sub.add_parser(
        "reconstruct",
        help="the paper's Figure 4: reconstruct an image from one layer's content or style",
        description="From white noise, reconstruct IMAGE from the content representation of each "
        "layer (content), or from the Gram matrices of growing layer sets (style), and lay the "
        "results out as one labelled contact sheet.",
        epilog=examples(
            "impasto reconstruct content photo.jpg -o content.png --size 128 --iterations 100",
            "impasto reconstruct style starry_night.jpg -o style.png --size 256 --each",
        ),
        allow_abbrev=False,
    )
    r.add_argument(
        "representation",
        metavar="{content,style}",
        choices=("content", "style"),
        help="which representation: each layer's responses (content) or the Gram matrices of "
        "growing layer sets (style)",
    )
    r.add_argument("image", metavar="IMAGE", help="the image to reconstruct")
    r.add_argument("-o", "--output", required=True, metavar="SHEET", help="contact sheet image")
    r.add_argument(
        "--layers",
        type=comma_strings("--layers"),
        default=None,
        metavar="LAYERS",
        help="comma-separated layers; for style, set k uses the first k (default: conv1_1,"
        "conv2_1,conv3_1,conv4_1,conv5_1)",
    )
    r.add_argument(
        "--each",
        action="store_true",
        help="also write each panel as SHEET_<layer>.png beside the sheet",
    )
    add_config_options(r, ConfigFlags(leave_out=RECONSTRUCT_SETS, preset="paper"))
    add_common(r)
    _add_watch_options(r, plot_help="the total loss of each panel against iteration")
    r.set_defaults(run=_run_experiment, engine=EXPERIMENT_ENGINE, output_files=OUTPUT_FILES)

    g = sub.add_parser(
        "grid",
        help="the KTH report's Figure 5: α/β ratios x growing style-layer sets",
        description="Rows: style layer sets {conv1_1}, {conv1_1, conv2_1}, ...; columns: α/β "
        "ratios; each cell a full transfer of CONTENT in the style of STYLE.",
        epilog=examples(
            "impasto grid photo.jpg starry_night.jpg -o grid.png --size 128 --iterations 100",
            "impasto grid photo.jpg starry_night.jpg -o grid.png --ratios 1e-4,1e-3 "
            "--layers conv1_1,conv2_1,conv3_1",
        ),
        allow_abbrev=False,
    )
    g.add_argument("content", metavar="CONTENT", help="content image (photo)")
    g.add_argument("style", metavar="STYLE", help="style image (painting)")
    g.add_argument("-o", "--output", required=True, metavar="GRID", help="grid image")
    g.add_argument(
        "--ratios",
        type=comma_floats("--ratios"),
        default=None,
        metavar="RATIOS",
        help="comma-separated α/β ratios (default: 1e-5,1e-4,1e-3,1e-2,1e-1)",
    )
    g.add_argument(
        "--layers",
        type=comma_strings("--layers"),
        default=None,
        metavar="LAYERS",
        help="style layers; row k uses the first k (default: conv1_1..conv5_1)",
    )
    add_config_options(
        g, ConfigFlags(leave_out=GRID_SETS, preset="paper", given={"init": "content"})
    )
    add_common(g)
    g.set_defaults(run=_run_experiment, engine=EXPERIMENT_ENGINE, output_files=OUTPUT_FILES)


def _add_watch_options(p: argparse.ArgumentParser, plot_help: str) -> None:
    """--animate, --animate-every and --plot: the run as a film and as a loss curve."""
    g = p.add_argument_group("watching it form")
    g.add_argument(
        "--animate",
        default=None,
        metavar="ANIM",
        help="also write the iterates as an animation: .gif (looping) or .mp4 (H.264) "
        "(default: off)",
    )
    g.add_argument(
        "--animate-every",
        type=bounded_int("--animate-every", 1, MAX_ITERATIONS),
        default=None,
        metavar="K",
        help="a frame every K iterations, plus the last (default: iterations/50 rounded up)",
    )
    g.add_argument(
        "--plot",
        default=None,
        metavar="PLOT",
        help=f"also plot {plot_help} on a log scale: .png, .svg or .pdf (default: off)",
    )


def _watch_every(ns: argparse.Namespace, iterations: int) -> int | None:
    """Check the --animate/--plot paths before any work; the frame interval when either is
    asked for, else None."""
    if ns.animate_every is not None and ns.animate_every < 1:
        raise UsageError(f"--animate-every must be at least 1, not {ns.animate_every}")
    from .. import animate

    if ns.animate is not None:
        animate.check_animation_path(ns.animate)
    if ns.plot is not None:
        animate.check_plot_path(ns.plot)
    if ns.animate is None and ns.plot is None:
        return None
    every: int = ns.animate_every or max(1, -(-iterations // 50))  # ceil(iterations / 50)
    return every


def _save_watch(
    ns: argparse.Namespace,
    frames: Sequence[PIL.Image.Image],
    plot: Callable[[str], object],
) -> None:
    """Write the animation (if frames were recorded) and the plot; one line each unless -q."""
    from .. import animate

    if ns.animate is not None:
        if frames:
            path = animate.save_animation(frames, ns.animate)
            if not ns.quiet:
                print(f"wrote {path} ({len(frames)} frames)", file=sys.stderr)
        else:
            print(f"{PROG}: no frames recorded; {ns.animate} not written", file=sys.stderr)
    if ns.plot is not None:
        plot(ns.plot)
        if not ns.quiet:
            print(f"wrote {ns.plot}", file=sys.stderr)


def _watch_outputs(ns: argparse.Namespace) -> list[Named]:
    named: list[Named] = []
    if getattr(ns, "animate", None) is not None:
        named.append(("--animate", ns.animate))
    if getattr(ns, "plot", None) is not None:
        named.append(("--plot", ns.plot))
    return named


def _recording_panels(
    listen: experiments.PanelCallback,
    every: int | None,
    recorded: list[tuple[str, animate.Recorder]],
) -> experiments.PanelCallback:
    """``listen``, plus a fresh Recorder per panel (appended to ``recorded``) when ``every``."""
    from .. import animate

    def start(index: int, count: int, label: str) -> Callable[[Step], None] | None:
        bar = listen(index, count, label)
        if not every or not count:  # count 0: the call that only closes the last bar
            return bar
        recorder = animate.Recorder(every)
        recorded.append((label, recorder))
        return animate.chain(bar, recorder)

    return start


def _refuse_clips(named: Sequence[tuple[str, str]]) -> None:
    """A video given where a still image goes: one line pointing to ``impasto video`` (the
    reverse mistake is told to use ``impasto transfer``)."""
    for what, path in named:
        if Path(path).suffix.lower() in CLIP_SUFFIXES:
            raise InputError(
                f"{what} '{path}' is a video, not a still image; use 'impasto video' "
                f"({PROG} video {path} STYLE -o OUT.mp4)"
            )


def _run_transfer(ns: argparse.Namespace) -> int:
    _refuse_clips([("the content image", ns.content), *(("the style image", s) for s in ns.styles)])
    from .. import animate, imageio
    from ..optimize import Transfer, stage_plan
    from .progress import ProgressBar
    from .summary import result_line

    out = imageio.check_output_path(ns.output)
    if ns.save_every < 0:
        raise UsageError("--save-every must be 0 (off) or a positive number")
    cfg = config_from_args(ns)
    every = _watch_every(ns, cfg.iterations)
    steps_dir = out.with_name(out.stem + "_steps") if ns.save_every else None
    inputs: list[Named] = [("the content image", ns.content)]
    inputs += [("the style image", s) for s in ns.styles]
    inputs += spatial_inputs(ns)
    outputs: list[Named] = [("the output", out), ("the interrupted file", interrupted_path(out))]
    if steps_dir is not None:
        outputs.append(("the --save-every folder", steps_dir))
    check_apart(inputs + config_inputs(cfg), outputs + _watch_outputs(ns))
    check_output_folders(ns)
    regions = regions_from_args(ns, len(ns.styles))
    recorder = animate.Recorder(every) if every else None
    transfer = Transfer(ns.content, ns.styles, cfg, regions=regions, fine_style=ns.fine_style)
    plan = stage_plan(cfg, transfer.smallest_size)
    progress = ProgressBar(
        cfg.iterations,
        ns.quiet,
        steps_dir,
        ns.save_every,
        plan=WorkPlan.from_sizes([(st.size, st.iterations) for st in plan]),
        print_every=ns.print_every,
    )
    try:
        result = transfer.run(on_step=animate.chain(progress, recorder))
    finally:
        progress.close()

    def save_watch() -> None:  # after the image itself: it matters more than the film
        if recorder is not None:
            history = recorder.history
            sizes = {k + 1: st.size for k, st in enumerate(plan)}
            marks = [
                (i, f"stage {k}: {sizes.get(k, '?')} px")
                for i, k in recorder.stage_starts
                if len(plan) > 1
            ]
            _save_watch(ns, recorder.frames, lambda path: animate.plot_terms(history, path, marks))

    sources = {"content": str(ns.content), "styles": ",".join(map(str, ns.styles))}
    sources |= spatial_sources(ns)
    if result.interrupted:
        partial = interrupted_path(out)
        imageio.save_image(result.image, partial, metadata=result.metadata(sources))
        save_watch()  # what was recorded is kept after Ctrl-C too
        print(
            f"{PROG}: interrupted at iteration {result.iterations}/{cfg.iterations}; "
            f"best image so far saved to {partial}",
            file=sys.stderr,
        )
        return ExitStatus.INTERRUPTED
    imageio.save_image(result.image, out, metadata=result.metadata(sources))
    if not ns.quiet:
        print(result_line(out, result, plan), file=sys.stderr)
    save_watch()
    return ExitStatus.OK


def _save_panel_watch(
    ns: argparse.Namespace, recorded: Sequence[tuple[str, animate.Recorder]], title: str
) -> None:
    """The panels filmed side by side (a panel that has finished holds its last frame) and
    each panel's total loss on one plot."""
    from .. import animate, experiments

    filmed = [(label, rec.frames) for label, rec in recorded if rec.frames]
    count = max((len(frames) for _, frames in filmed), default=0)
    sheets = [
        experiments.contact_sheet(
            [
                [
                    experiments.Panel(label, frames[min(i, len(frames) - 1)], 0.0)
                    for label, frames in filmed
                ]
            ],
            title=title,
        )
        for i in range(count)
    ]
    curves = {label: [(it, v["total"]) for it, v in rec.history] for label, rec in recorded}
    _save_watch(
        ns, sheets, lambda path: animate.plot_curves(curves, path, title="total loss per panel")
    )


def _run_experiment(ns: argparse.Namespace) -> int:
    from .. import experiments, imageio
    from .progress import panel_progress
    from .summary import wrote_line

    out = imageio.check_output_path(ns.output)
    cfg = config_from_args(ns)
    if ns.command == "reconstruct":
        inputs: list[Named] = [("the image", ns.image)]
    else:
        inputs = [("the content image", ns.content), ("the style image", ns.style)]
    inputs += config_inputs(cfg)
    outputs: list[Named] = [("the output", out), ("the interrupted file", interrupted_path(out))]
    check_apart(inputs, outputs + _watch_outputs(ns))
    check_output_folders(ns)
    started = time.perf_counter()
    listen = panel_progress(ns.quiet, ns.print_every)
    layers = tuple(ns.layers) if ns.layers else PAPER_STYLE_LAYERS
    recorded: list[tuple[str, animate.Recorder]] = []  # (panel label, its recording)
    title = ""
    if ns.command == "reconstruct":
        every = _watch_every(ns, cfg.iterations)
        listen = _recording_panels(listen, every, recorded)
        fn = (
            experiments.reconstruct_content
            if ns.representation == "content"
            else (experiments.reconstruct_style)
        )
        panels = fn(ns.image, cfg, layers, on_panel=listen)
        title = f"{ns.representation} reconstructions of {Path(ns.image).name} from white noise"
        sheet = experiments.contact_sheet([panels], title=title)
        interrupted = panels[-1].interrupted
        if ns.each and not interrupted:
            for p in panels:
                name = p.label.replace("…", "-").replace("+", "-")
                panel = out.with_name(f"{out.stem}_{name}.png")
                check_apart(inputs, [("the panel", panel)])
                imageio.save_image(p.image, panel)
        meta = {
            "impasto:command": f"reconstruct {ns.representation}",
            "impasto:options": cfg.to_json(),
        }
    else:
        ratios = tuple(ns.ratios) if ns.ratios else experiments.DEFAULT_RATIOS
        rows = experiments.ratio_grid(ns.content, ns.style, cfg, ratios, layers, on_panel=listen)
        labels = [
            f"conv1_1…{s[-1]}" if len(s) > 1 else s[0] for s in experiments.growing_sets(layers)
        ]
        sheet = experiments.contact_sheet(
            rows, row_labels=labels, title="rows: style layers; columns: α/β"
        )
        interrupted = rows[-1][-1].interrupted
        meta = {"impasto:command": "grid", "impasto:options": cfg.to_json()}
    listen(0, 0, "")  # closes the last bar
    if interrupted:  # the panels done so far, the last one cut short
        partial = imageio.save_image(sheet, interrupted_path(out), metadata=meta)
        if recorded:
            _save_panel_watch(ns, recorded, title)
        print(f"{PROG}: interrupted; the panels so far saved to {partial}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    imageio.save_image(sheet, out, metadata=meta)
    if not ns.quiet:
        count = len(panels) if ns.command == "reconstruct" else sum(len(r) for r in rows)
        details = f"{count} panels of {cfg.iterations} iterations"
        line = wrote_line(out, sheet.size, time.perf_counter() - started, details=details)
        print(line, file=sys.stderr)
    if recorded:
        _save_panel_watch(ns, recorded, title)
    return ExitStatus.OK
