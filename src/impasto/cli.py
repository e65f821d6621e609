"""The ``impasto`` command: parse into a config, call the API, map errors to exit codes.

Every transfer option is generated from :class:`~impasto.config.TransferConfig`, so names,
defaults and help cannot drift from the API. ``main(argv) -> int`` never raises (except with
``--traceback``): known errors become one line on stderr and an exit code from
:class:`~impasto.errors.ExitStatus`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, imageio
from .config import TransferConfig
from .errors import ExitStatus, ImpastoError, UsageError
from .optimize import Result, Step, Transfer

PROG = "impasto"


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line, with a hint) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()
            flags = [s for a in self._actions for s in a.option_strings]
            for arg in bad:
                close = difflib.get_close_matches(arg.split("=")[0], flags, n=1)
                if close:
                    message = f"unknown option '{arg}'; did you mean {close[0]}?"
                    break
            else:
                message = f"unexpected argument(s): {' '.join(bad)}"
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


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
        return _floats(flag) if args[0] is float else _strings
    return str


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per TransferConfig field; defaults stay None so the config decides."""
    hints = typing.get_type_hints(TransferConfig)
    defaults = TransferConfig()
    for f in fields(TransferConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name) if f.default is not MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{f.metadata.get('help', '')} (default: {shown})"
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
    t.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save every N-th iterate into OUT_steps/ (default: off)",
    )
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback on errors (for bug reports)",
    )


def config_from_args(ns: argparse.Namespace) -> TransferConfig:
    """The options the user gave, on top of the config's defaults."""
    given = {f.name: getattr(ns, f.name) for f in fields(TransferConfig)}
    return TransferConfig.from_options({k: v for k, v in given.items() if v is not None})


class _Progress:
    """tqdm bar over iterations, plus optional intermediate saves: a listener of the loop."""

    def __init__(self, total: int, quiet: bool, steps_dir: Path | None, every: int) -> None:
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="it", dynamic_ncols=True, leave=False, file=sys.stderr
            )
        self.steps_dir, self.every = steps_dir, every

    def __call__(self, step: Step) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(
                f"loss {step.loss:.3g} (content {step.content_loss:.3g}, "
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
    transfer = Transfer(ns.content, ns.styles, cfg)
    steps_dir = out.with_name(out.stem + "_steps") if ns.save_every else None
    progress = _Progress(cfg.iterations, ns.quiet, steps_dir, ns.save_every)
    try:
        result = transfer.run(on_step=progress)
    finally:
        progress.close()
    sources = {"content": str(ns.content), "styles": ",".join(map(str, ns.styles))}
    if result.interrupted:
        partial = out.with_name(f"{out.stem}.interrupted{out.suffix}")
        imageio.save_image(result.image, partial, metadata=result.metadata(sources))
        print(
            f"{PROG}: interrupted at iteration {result.iterations}/{cfg.iterations}; "
            f"best image so far saved to {partial}",
            file=sys.stderr,
        )
        return ExitStatus.INTERRUPTED
    imageio.save_image(result.image, out, metadata=result.metadata(sources))
    if not ns.quiet:
        print(_summary(result, out), file=sys.stderr)
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
            parser.print_help(sys.stderr)
            return ExitStatus.USAGE
        return _run_transfer(ns)
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
