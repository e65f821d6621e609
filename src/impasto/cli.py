"""The ``impasto`` command: parse into a config, call the API, map errors to exit codes.

Every transfer option is generated from :class:`~impasto.config.TransferConfig`, so names,
defaults and help cannot drift from the API. ``main(argv) -> int`` never raises (except with
``--traceback``): known errors become one line on stderr and an exit code from
:class:`~impasto.errors.ExitStatus`.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NoReturn

import PIL.Image

from . import __version__, animate, experiments, imageio
from .config import PAPER_STYLE_LAYERS, TransferConfig
from .errors import ExitStatus, ImpastoError, UsageError
from .optimize import Result, Step, Transfer

PROG = "impasto"


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line, with a hint) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()
            flags = _all_flags(self)
            for arg in bad:
                close = difflib.get_close_matches(arg.split("=")[0], flags, n=1)
                if close:
                    message = f"unknown option '{arg}'; did you mean {close[0]}?"
                    break
            else:
                message = f"unexpected argument(s): {' '.join(bad)}"
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _all_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Option strings of ``parser`` and its subcommands: argparse reports a subcommand's
    unknown options through the top-level parser, whose own actions lack the subcommand's flags."""
    flags: list[str] = []
    for action in parser._actions:
        flags += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += _all_flags(sub)
    return flags


def _split(text: str) -> list[str]:
    return [p for p in (s.strip() for s in text.split(",")) if p]


def _floats(flag: str) -> Callable[[str], tuple[float, ...]]:
    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(float(p) for p in _split(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes comma-separated numbers") from None

    return parse


def _strings(text: str) -> tuple[str, ...]:
    return tuple(_split(text))


def _parser_for(annotation: object, flag: str) -> Callable[[str], Any]:
    """The argparse ``type=`` for a config field's annotation."""
    hint = annotation
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if hint is int:
        return int
    if hint is float:
        return float
    if typing.get_origin(hint) is tuple:
        return _floats(flag) if args[0] is float else _strings  # ints are checked by the config
    return str


def add_config_options(
    parser: argparse._ActionsContainer, options: type[Any] = TransferConfig
) -> None:
    """One ``--flag`` per field of an options dataclass (TransferConfig, or video's
    VideoOptions), with its help from the field; defaults stay None so the dataclass decides."""
    hints = typing.get_type_hints(options)
    defaults = options()
    for f in fields(options):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name) if f.default is not MISSING else None
        help_text = f.metadata.get("help", "")
        if hints[f.name] is bool:
            # --flag / --no-flag; None (not given) leaves the config's default in charge.
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{help_text} (default: {'on' if default else 'off'})",
            )
            continue
        # A None default, or one that depends on other options, is explained by the help.
        if default is not None and not f.metadata.get("auto"):
            shown = (
                ",".join(map(str, default))
                if isinstance(default, tuple)
                else f"{default:g}"
                if isinstance(default, float)
                else default
            )
            help_text = f"{help_text} (default: {shown})"
        parser.add_argument(
            flag,
            dest=f.name,
            type=_parser_for(hints[f.name], flag),
            default=None,
            metavar=f.name.split("_")[-1].upper(),
            help=help_text,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer by the method of Gatys, Ecker and Bethge (2016).",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser(
        "transfer",
        help="render a content image in the style of one or more paintings",
        description="Render CONTENT in the style of STYLE (several styles are blended).",
        allow_abbrev=False,
    )
    t.add_argument("content", metavar="CONTENT", help="content image (photo)")
    t.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s) (painting)")
    t.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output image: .png (with reproducible metadata), .jpg or .webp",
    )
    add_config_options(t)
    _add_common(t)
    _add_watch_options(t, plot_help="content, style and total loss against iteration")
    t.set_defaults(run=_run_transfer)
    t.add_argument(
        "--save-every",
        type=int,
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
        allow_abbrev=False,
    )
    r.add_argument("kind", choices=("content", "style"), help="which representation")
    r.add_argument("image", metavar="IMAGE", help="the image to reconstruct")
    r.add_argument("-o", "--output", required=True, metavar="SHEET", help="contact sheet image")
    r.add_argument(
        "--layers",
        type=_strings,
        default=None,
        metavar="LAYERS",
        help="comma-separated layers (default: conv1_1,conv2_1,conv3_1,conv4_1,"
        "conv5_1); for style, set k uses the first k",
    )
    r.add_argument(
        "--each",
        action="store_true",
        help="also write each panel as SHEET_<layer>.png beside the sheet",
    )
    add_config_options(r)
    _add_common(r)
    _add_watch_options(r, plot_help="the total loss of each panel against iteration")
    r.set_defaults(run=_run_experiment)

    g = sub.add_parser(
        "grid",
        help="the KTH report's Figure 5: α/β ratios x growing style-layer sets",
        description="Rows: style layer sets {conv1_1}, {conv1_1, conv2_1}, ...; columns: α/β "
        "ratios; each cell a full transfer of CONTENT in the style of STYLE.",
        allow_abbrev=False,
    )
    g.add_argument("content", metavar="CONTENT")
    g.add_argument("style", metavar="STYLE")
    g.add_argument("-o", "--output", required=True, metavar="GRID", help="grid image")
    g.add_argument(
        "--ratios",
        type=_floats("--ratios"),
        default=None,
        metavar="RATIOS",
        help="comma-separated α/β ratios (default: 1e-5,1e-4,1e-3,1e-2,1e-1)",
    )
    g.add_argument(
        "--layers",
        type=_strings,
        default=None,
        metavar="LAYERS",
        help="style layers; row k uses the first k (default: conv1_1..conv5_1)",
    )
    add_config_options(g)
    _add_common(g)
    g.set_defaults(run=_run_experiment)
    # Commands that live in their own modules register themselves here, each setting its own
    # ``run`` default; they import their heavy dependencies only when run.
    from .video import video_command

    video_command(sub)
    from .serve import serve_command

    serve_command(sub)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback on errors (for bug reports)",
    )


def _add_watch_options(p: argparse.ArgumentParser, plot_help: str) -> None:
    """--animate, --animate-every and --plot: the run as a film and as a loss curve."""
    g = p.add_argument_group("watching it form")
    g.add_argument(
        "--animate",
        default=None,
        metavar="ANIM",
        help="also write the iterates as an animation: .gif (looping) or .mp4 (H.264)",
    )
    g.add_argument(
        "--animate-every",
        type=int,
        default=None,
        metavar="K",
        help="a frame every K iterations, plus the last (default: iterations/50 rounded up)",
    )
    g.add_argument(
        "--plot",
        default=None,
        metavar="PLOT",
        help=f"also plot {plot_help} on a log scale: .png, .svg or .pdf",
    )


def _watch_every(ns: argparse.Namespace, iterations: int, out: Path) -> int | None:
    """Check the --animate/--plot paths before any work; the frame interval when either is
    asked for, else None."""
    if ns.animate_every is not None and ns.animate_every < 1:
        raise UsageError(f"--animate-every must be at least 1, not {ns.animate_every}")
    if ns.animate is not None:
        animate.check_animation_path(ns.animate)
    if ns.plot is not None and animate.check_plot_path(ns.plot).resolve() == out.resolve():
        raise UsageError(f"--plot '{ns.plot}' would overwrite the output image; pick another name")
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


def _recording_panels(
    listen: experiments.PanelCallback,
    every: int | None,
    recorded: list[tuple[str, animate.Recorder]],
) -> experiments.PanelCallback:
    """``listen``, plus a fresh Recorder per panel (appended to ``recorded``) when ``every``."""

    def start(index: int, count: int, label: str) -> Callable[[Step], None] | None:
        bar = listen(index, count, label)
        if not every or not count:  # count 0: the call that only closes the last bar
            return bar
        recorder = animate.Recorder(every)
        recorded.append((label, recorder))
        return animate.chain(bar, recorder)

    return start


def config_from_args(ns: argparse.Namespace) -> TransferConfig:
    """The options the user gave, on top of the config's defaults."""
    given = {f.name: getattr(ns, f.name) for f in fields(TransferConfig)}
    return TransferConfig.from_options({k: v for k, v in given.items() if v is not None})


class _Progress:
    """tqdm bar over iterations, plus optional intermediate saves: a listener of the loop."""

    def __init__(
        self, total: int, quiet: bool, steps_dir: Path | None, every: int, desc: str | None = None
    ) -> None:
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total or None,
                desc=desc,
                disable=None,  # no bar when stderr is not a terminal (logs, CI)
                unit="it",
                dynamic_ncols=True,
                leave=False,
                file=sys.stderr,
            )
        self.steps_dir, self.every = steps_dir, every
        self._shown = -math.inf

    def __call__(self, step: Step) -> None:
        if self.bar is not None:
            if self.bar.total is None:
                self.bar.total = step.iterations
            self.bar.update(1)
            now = time.monotonic()
            # Reading the losses waits for the device: do it a few times a second, not per step.
            if now - self._shown >= 0.25 or step.iteration == step.iterations:
                self._shown = now
                stage = f"stage {step.stage}/{step.stages}, " if step.stages > 1 else ""
                self.bar.set_postfix_str(
                    f"{stage}loss {step.loss:.3g} (content {step.content_loss:.3g}, "
                    f"style {step.style_loss:.3g})",
                    refresh=False,
                )
        if self.steps_dir is not None and step.iteration % self.every == 0:
            imageio.save_image(step.image(), self.steps_dir / f"{step.iteration:05d}.png")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_transfer(ns: argparse.Namespace) -> int:
    out = imageio.check_output_path(ns.output)
    if ns.save_every < 0:
        raise UsageError("--save-every must be 0 (off) or a positive number")
    cfg = config_from_args(ns)
    every = _watch_every(ns, cfg.iterations, out)
    recorder = animate.Recorder(every) if every else None
    transfer = Transfer(ns.content, ns.styles, cfg)
    steps_dir = out.with_name(out.stem + "_steps") if ns.save_every else None
    progress = _Progress(cfg.iterations, ns.quiet, steps_dir, ns.save_every)
    try:
        result = transfer.run(on_step=animate.chain(progress, recorder))
    finally:
        progress.close()

    def save_watch() -> None:  # after the image itself: it matters more than the film
        if recorder is not None:
            losses = recorder.losses
            _save_watch(ns, recorder.frames, lambda path: animate.plot_losses(losses, path))

    sources = {"content": str(ns.content), "styles": ",".join(map(str, ns.styles))}
    if result.interrupted:
        partial = out.with_name(f"{out.stem}.interrupted{out.suffix}")
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
        print(_summary(result, out), file=sys.stderr)
    save_watch()
    return ExitStatus.OK


def _panel_progress(quiet: bool) -> experiments.PanelCallback:
    """A fresh progress bar per panel, labelled 'panel i/n (label)'."""
    bars: list[_Progress] = []

    def start(index: int, count: int, label: str) -> Callable[[Step], None] | None:
        for bar in bars:
            bar.close()
        bars.clear()
        if quiet:
            return None
        p = _Progress(0, quiet, None, 0, desc=f"panel {index + 1}/{count} ({label})")
        bars.append(p)
        return p

    return start


def _save_panel_watch(
    ns: argparse.Namespace, recorded: Sequence[tuple[str, animate.Recorder]], title: str
) -> None:
    """The panels filmed side by side (a panel that has finished holds its last frame) and
    each panel's total loss on one plot."""
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
    curves = {label: [(it, total) for it, total, _, _ in rec.losses] for label, rec in recorded}
    _save_watch(
        ns, sheets, lambda path: animate.plot_curves(curves, path, title="total loss per panel")
    )


def _run_experiment(ns: argparse.Namespace) -> int:
    out = imageio.check_output_path(ns.output)
    cfg = config_from_args(ns)
    listen = _panel_progress(ns.quiet)
    layers = tuple(ns.layers) if ns.layers else PAPER_STYLE_LAYERS
    recorded: list[tuple[str, animate.Recorder]] = []  # (panel label, its recording)
    title = ""
    if ns.command == "reconstruct":
        every = _watch_every(ns, cfg.iterations, out)
        listen = _recording_panels(listen, every, recorded)
        fn = (
            experiments.reconstruct_content
            if ns.kind == "content"
            else (experiments.reconstruct_style)
        )
        panels = fn(ns.image, cfg, layers, on_panel=listen)
        title = f"{ns.kind} reconstructions of {Path(ns.image).name} from white noise"
        sheet = experiments.contact_sheet([panels], title=title)
        if ns.each:
            for p in panels:
                name = p.label.replace("…", "-").replace("+", "-")
                imageio.save_image(p.image, out.with_name(f"{out.stem}_{name}.png"))
        meta = {"impasto:command": f"reconstruct {ns.kind}", "impasto:options": cfg.to_json()}
    else:
        ratios = tuple(ns.ratios) if ns.ratios else experiments.DEFAULT_RATIOS
        rows = experiments.ratio_grid(ns.content, ns.style, cfg, ratios, layers, on_panel=listen)
        labels = [
            f"conv1_1…{s[-1]}" if len(s) > 1 else s[0] for s in experiments.growing_sets(layers)
        ]
        sheet = experiments.contact_sheet(
            rows, row_labels=labels, title="rows: style layers; columns: α/β"
        )
        meta = {"impasto:command": "grid", "impasto:options": cfg.to_json()}
    listen(0, 0, "")  # closes the last bar
    imageio.save_image(sheet, out, metadata=meta)
    if not ns.quiet:
        print(f"wrote {out} ({sheet.width}x{sheet.height})", file=sys.stderr)
    if recorded:
        _save_panel_watch(ns, recorded, title)
    return ExitStatus.OK


def _summary(result: Result, out: Path) -> str:
    _, c, s, _ = result.losses[-1] if result.losses else (result.final_loss, 0, 0, 0)
    w, h = result.image.size
    return (
        f"wrote {out} ({w}x{h}) in {result.elapsed:.1f} s on {result.device}: "
        f"{result.iterations} iterations, loss {result.final_loss:.4g} "
        f"(content {c:.3g}, style {s:.3g}), seed {result.seed}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    try:
        parser = build_parser()
        ns = parser.parse_args(args)
        if ns.command is None:
            # One line, like every other usage error (the full help is one --help away).
            raise UsageError(f"no command given; see '{PROG} --help'")
        return int(ns.run(ns))
    except SystemExit as e:  # --help and --version exit through argparse
        return int(e.code or 0)
    except ImpastoError as e:
        if show_traceback:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        if show_traceback:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except MemoryError:
        if show_traceback:
            raise
        print(f"{PROG}: error: out of memory; try a smaller --size", file=sys.stderr)
        return ExitStatus.RESOURCE
    except Exception as e:  # a bug: say so in one line, show it with --traceback
        if show_traceback:
            raise
        print(
            f"{PROG}: unexpected error: {type(e).__name__}: {e} "
            "(run again with --traceback and report it)",
            file=sys.stderr,
        )
        return ExitStatus.ERROR
