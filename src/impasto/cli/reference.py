"""The command reference as Markdown, read from the parser that ``--help`` prints.

The documentation site's options page (``make docs``, through ``scripts/docs_hooks.py``) is this
text: every command, its usage, and a table of its arguments and options with their defaults, all
taken from :func:`impasto.cli.build_parser`, whose flags come from the options dataclasses. It
cannot drift from ``--help``, and the tests check both against the dataclasses.
"""

from __future__ import annotations

import argparse
import html
import re

from . import PROG, build_parser

__all__ = ["commands_reference", "split_default"]

_DEFAULT = re.compile(r"\s*\((default|by preset): (.*)\)\s*$", re.DOTALL)


def split_default(help_text: str) -> tuple[str, str | None]:
    """A help text split into what the option does and its default ("by preset: ..." kept as
    such): ``"longest side (default: 512)"`` -> ``("longest side", "512")``. The default is the
    last parenthesis that starts with "default:" or "by preset:"."""
    for marker in (" (default: ", " (by preset: "):
        at = help_text.rfind(marker)
        if at >= 0 and help_text.rstrip().endswith(")"):
            inner = help_text[at + 2 : help_text.rstrip().rfind(")")]
            shown = inner.removeprefix("default: ")
            return help_text[:at], shown
    return help_text, None


def _text(s: str) -> str:
    """Plain text safe in a Markdown table cell."""
    s = html.escape(" ".join(s.split()), quote=False)
    for c in "\\`*_|[]":
        s = s.replace(c, "\\" + c)
    return s


def _code(s: str) -> str:
    return "`" + s.replace("`", "'").replace("|", "\\|") + "`"


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return _code(action.metavar if isinstance(action.metavar, str) else action.dest)
    takes = action.nargs != 0
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return ", ".join(_code(f"{f} {metavar}" if takes else f) for f in action.option_strings)


def _row(action: argparse.Action) -> str:
    meaning, default = split_default(action.help or "")
    if default is None:
        if action.required:
            default = "required"
        elif isinstance(action, argparse._StoreTrueAction):
            default = "off"
    shown = _text(default) if default is not None else ""
    return f"| {_flags(action)} | {shown} | {_text(meaning)} |"


USAGE_WIDTH = 100  # the usage lines wrapped at this width, whatever the terminal's


def _usage(parser: argparse.ArgumentParser) -> str:
    """``parser.format_usage()`` at :data:`USAGE_WIDTH` columns (argparse reads the terminal's
    width otherwise): the committed page is the same on every machine."""
    try:
        formatter = parser.formatter_class(prog=parser.prog, width=USAGE_WIDTH)  # type: ignore[call-arg]
    except TypeError:
        formatter = parser._get_formatter()
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help()


def commands_reference() -> str:
    """Every command with its usage, description and a table per argument group."""
    parser = build_parser()
    commands = getattr(parser, "commands", None) or {}
    helps = {
        a.dest: a.help
        for a in parser._subparsers._group_actions  # type: ignore[union-attr]
        for a in getattr(a, "_choices_actions", [])
    }
    out = [
        "# Commands and options",
        "",
        f"Every `{PROG}` command and each of its options, with its default, as "
        f"`{PROG} COMMAND --help` prints them: both are generated from the options "
        "dataclasses (`TransferConfig`, `VideoOptions`, `ExecutorOptions`, `ServeOptions`), the "
        "one place where an option's name, default, range and help live. Options marked "
        "*by preset* take their default from `--preset` (`default` or `paper`).",
        "",
    ]
    for name, sub in commands.items():
        out += [f"## {PROG} {name}", ""]
        if helps.get(name):
            line = _text(str(helps[name]))
            out += [line[:1].upper() + line[1:] + ".", ""]
        usage_lines = _usage(sub).removeprefix("usage: ").strip().splitlines()
        usage = "\n".join([usage_lines[0], *("    " + u.strip() for u in usage_lines[1:])])
        out += ["```text", usage, "```", ""]
        if sub.description:
            out += [_text(sub.description), ""]
        for group in sub._action_groups:
            actions = [
                a
                for a in group._group_actions
                if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
            ]
            if not actions:
                continue
            title = group.title or ""
            if title in ("options", "optional arguments"):
                title = "options"
            elif title == "positional arguments":
                title = "arguments"
            out += [f"**{_text(title)}**", ""]
            if group.description:
                out += [_text(group.description), ""]
            out += ["| argument | default | meaning |", "| --- | --- | --- |"]
            out += [_row(a) for a in actions]
            out.append("")
        if sub.epilog:  # the examples, as --help ends with them
            out += ["**examples**", "", "```sh", *_example_lines(sub.epilog), "```", ""]
    return "\n".join(out)


def _example_lines(epilog: str) -> list[str]:
    return [line.strip() for line in epilog.splitlines()[1:] if line.strip()]
