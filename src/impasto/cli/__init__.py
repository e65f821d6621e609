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
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import ExitStatus, ImpastoError, UsageError
from ..version import __version__
from . import signals
from .options import examples

# The command families are imported by build_parser, and the modules a command runs on (torch,
# the network: its parser's ``engine``) once its arguments are parsed; both inside main's
# handlers, with Ctrl-C held: a Ctrl-C or SIGTERM in the seconds torch takes to import is one
# line, not a traceback. Building the parser imports no torch, so that --help, --version, a
# mistyped option and 'batch status' answer at once (tests/test_startup.py).

__all__ = ["PROG", "build_parser", "main"]

PROG = "impasto"


class _Formatter(argparse.HelpFormatter):
    """argparse's help, but the ``examples:`` section is printed as written (one command a
    line), not wrapped as prose."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line, with a hint) instead of exiting.

    A subcommand's parser reports its own unknown options (with a suggestion from its own flags,
    or the name of the subcommand that has the option) before anything else is wrong, and its
    own ``--help`` in the hint; a mistyped command or choice gets a "did you mean"."""

    commands: dict[str, _Parser] | None = None  # every command's parser, set on each
    batch_status: _Parser | None = None  # 'batch status', set on the top parser
    _seen: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._seen = list(args) if args is not None else []
        ns, extras = super().parse_known_args(args, namespace)
        if extras and self._is_command():
            self.error("unrecognized arguments: " + " ".join(extras))
        return ns, extras

    def _is_command(self) -> bool:
        return self.prog != PROG

    def error(self, message: str) -> NoReturn:
        unknown = self._unknown_option()
        if unknown is not None:
            message = self._unknown_message(unknown)
        elif "unrecognized arguments:" in message:
            message = f"unexpected argument(s): {message.split(':', 1)[1].strip()}"
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _unknown_option(self) -> str | None:
        """The first option on the command line that this parser does not know."""
        for arg in self._seen:
            if arg == "--" or (not self._is_command() and not arg.startswith("-")):
                break  # the top parser's own options end at the command
            if not arg.startswith("-") or arg == "-" or self._negative_number_matcher.match(arg):
                continue
            if arg.split("=", 1)[0] not in self._option_string_actions:
                return arg
        return None

    def _unknown_message(self, arg: str) -> str:
        """Say what ``arg`` may have meant: an option of another command that has it as typed,
        else the closest of this command's options, else the closest of another command's."""
        name = arg.split("=", 1)[0]
        others = {
            command: _visible_flags(parser)
            for command, parser in (self.commands or {}).items()
            if parser is not self
        }
        having = [command for command, flags in others.items() if name in flags]
        if having and not self._is_command():
            return f"option '{name}' before the command: it goes after it ('{PROG} COMMAND {name}')"
        if having:
            where = " and ".join(f"'{PROG} {c}'" for c in having[:2])
            more = " (and others)" if len(having) > 2 else ""
            return f"unknown option '{name}': it is an option of {where}{more}, not of this command"
        close = difflib.get_close_matches(name, _visible_flags(self), n=1)
        if close:
            return f"unknown option '{name}'; did you mean {close[0]}?"
        for command, flags in others.items():
            close = difflib.get_close_matches(name, flags, n=1)
            if close:
                return f"unknown option '{name}'; did you mean {close[0]} (of '{PROG} {command}')?"
        return f"unknown option '{name}'"

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is None or value in action.choices:
            return
        allowed = [str(c) for c in action.choices]
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(None, f"unknown command '{value}'{hint}")
        if action.option_strings:
            what = f"{action.option_strings[-1]} '{value}' is not valid"
        else:
            what = f"'{value}' is not {' or '.join(allowed)}"
        raise argparse.ArgumentError(None, f"{what}{hint}")


def _visible_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings ``parser --help`` shows."""
    return [
        flag
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
    ]


def build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Neural style transfer by the method of Gatys, Ecker and Bethge (2016).",
        epilog=examples(
            "impasto transfer photo.jpg starry_night.jpg -o out.png",
            "impasto video clip.mp4 starry_night.jpg -o clip_starry.mp4 --size 384",
            "impasto batch photos/ --styles paintings/ -o out/",
            "impasto serve",
            "impasto COMMAND --help            # a command's options, with their defaults",
        ),
        allow_abbrev=False,
    )
    from . import batch, serve, spatial, transfer, video

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for family in (transfer, spatial, batch, video, serve):
        family.register(sub)
    commands = {name: p for name, p in sub.choices.items() if isinstance(p, _Parser)}
    parser.commands = commands
    status = batch.status_parser(_Parser)
    assert isinstance(status, _Parser)
    parser.batch_status = status
    for command in [*commands.values(), status]:
        command.commands = commands
    return parser


def _asks_status(args: Sequence[str]) -> bool:
    """``impasto batch status ...``: the word after ``batch`` is ``status`` and neither --styles
    nor --jobs is given (with them, ``status`` is a content image)."""
    given = {arg.split("=", 1)[0] for arg in args}
    return list(args[:2]) == ["batch", "status"] and not given & {"--styles", "--jobs"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; SIGTERM is handled as Ctrl-C is and ends in exit 143."""
    with signals.terminating_as_interrupt():
        status = _main(argv)
        if status == ExitStatus.INTERRUPTED and signals.terminated():
            return ExitStatus.TERMINATED
        return status


# The commands that load torch and the network before their first output.
_WORKING = {"transfer", "reconstruct", "grid", "mix-styles", "video", "batch"}


def _loading_line(args: Sequence[str]) -> None:
    """Say so while torch and the network load (seconds of nothing on the screen otherwise):
    on a terminal only, not with --quiet, --help or --version, and not for 'batch status'."""
    quiet = {"-q", "--quiet", "-h", "--help", "--version"} & set(args)
    if quiet or not args or args[0] not in _WORKING or args[1:2] == ["status"]:
        return
    if sys.stderr.isatty():
        print("loading the network…", file=sys.stderr, flush=True)


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    if args == ["--version"]:  # what argparse would print, without building every parser first
        print(f"{PROG} {__version__}")
        return ExitStatus.OK
    _loading_line(args)
    try:
        with signals.deferred():  # Ctrl-C while torch imports: delivered once it has
            parser = build_parser()
        if _asks_status(args) and parser.batch_status is not None:  # its own --help too
            parser, args = parser.batch_status, args[2:]
        ns = parser.parse_args(args)
        if ns.command is None:
            # One line, like every other usage error (the full help is one --help away).
            raise UsageError(f"no command given; see '{PROG} --help'")
        with signals.deferred():  # as above, for the seconds of importing torch
            for module in getattr(ns, "engine", ()):
                importlib.import_module(module)
        return int(ns.run(ns))
    except SystemExit as e:  # --help and --version exit through argparse
        return int(e.code or 0)
    except ImpastoError as e:
        _trace(show_traceback)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt as e:
        _trace(show_traceback)
        signals.forget_unhandled_interrupt()  # handled: the exit status is ours to give
        what = "terminated (SIGTERM)" if isinstance(e, signals.Terminated) else "interrupted"
        print(f"{PROG}: {what}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except OSError as e:  # the file system said no where no check foresaw it (a name too long)
        _trace(show_traceback)
        name = f" '{os.fsdecode(e.filename)}'" if e.filename is not None else ""
        print(f"{PROG}: error: cannot use{name}: {e.strerror or e}", file=sys.stderr)
        return ExitStatus.INPUT
    except MemoryError:
        _trace(show_traceback)
        print(f"{PROG}: error: out of memory; try a smaller --size", file=sys.stderr)
        return ExitStatus.RESOURCE
    except Exception as e:  # a bug: say so in one line, show it with --traceback
        _trace(show_traceback)
        print(
            f"{PROG}: unexpected error: {type(e).__name__}: {e} "
            "(run again with --traceback and report it)",
            file=sys.stderr,
        )
        return ExitStatus.ERROR


def _trace(show: bool) -> None:
    """With ``--traceback``, the trace of the error being handled, before its one line: the
    exit status stays the one the error has without it."""
    if show:
        traceback.print_exc(file=sys.stderr)
