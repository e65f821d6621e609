"""The ``impasto`` command: the top parser, and errors mapped to exit codes.

The only package that knows argparse and tqdm; nothing in impasto imports it (``__main__`` and the
console script call :func:`main`). Each command family registers itself from its own module
(:mod:`~impasto.cli.transfer`: transfer, reconstruct and grid; :mod:`~impasto.cli.spatial`:
mix-styles and transfer's mask flags; :mod:`~impasto.cli.video`;
:mod:`~impasto.cli.serve`); their flags are generated from the options dataclasses
(:mod:`~impasto.cli.options`) and their progress bars are Step listeners
(:mod:`~impasto.cli.progress`). ``main(argv) -> int`` never raises (except with ``--traceback``):
known errors become one line on stderr and an exit code from :class:`~impasto.errors.ExitStatus`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import ExitStatus, ImpastoError, UsageError
from ..version import __version__
from . import signals

# The command families (and torch, which they import) are imported by build_parser, inside
# main's handlers: a Ctrl-C or SIGTERM in the seconds torch takes to import is one line, not a
# traceback.

__all__ = ["PROG", "build_parser", "main"]

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer by the method of Gatys, Ecker and Bethge (2016).",
        allow_abbrev=False,
    )
    from . import batch, serve, spatial, transfer, video

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for family in (transfer, spatial, batch, video, serve):
        family.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; SIGTERM is handled as Ctrl-C is and ends in exit 143."""
    with signals.terminating_as_interrupt():
        status = _main(argv)
        if status == ExitStatus.INTERRUPTED and signals.terminated():
            return ExitStatus.TERMINATED
        return status


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    try:
        with signals.deferred():  # Ctrl-C while torch imports: delivered once it has
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
    except KeyboardInterrupt as e:
        if show_traceback:
            raise
        signals.forget_unhandled_interrupt()  # handled: the exit status is ours to give
        what = "terminated (SIGTERM)" if isinstance(e, signals.Terminated) else "interrupted"
        print(f"{PROG}: {what}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except OSError as e:  # the file system said no where no check foresaw it (a name too long)
        if show_traceback:
            raise
        name = f" '{os.fsdecode(e.filename)}'" if e.filename is not None else ""
        print(f"{PROG}: error: cannot use{name}: {e.strerror or e}", file=sys.stderr)
        return ExitStatus.INPUT
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
