"""Flags generated from the options dataclasses, and the namespace read back into them.

Every ``--flag`` of a config field (TransferConfig, VideoOptions, ServeOptions) comes from the
field: its name, its type (parsed by :func:`impasto.fieldtypes.parse_text`, the one parser of a
field's type), its default and help. Defaults stay None in argparse so the dataclass decides.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from ..config import TransferConfig
from ..errors import UsageError
from ..fieldtypes import parse_text
from ..paths import Named

T = TypeVar("T")


def _argparse_type(annotation: object, flag: str) -> Callable[[str], Any]:
    """The argparse ``type=`` for a field: a usage error becomes argparse's own message."""

    def parse(text: str) -> Any:
        try:
            return parse_text(annotation, text, flag)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def add_config_options(
    parser: argparse._ActionsContainer, options: type[Any] = TransferConfig
) -> None:
    """One ``--flag`` per field of an options dataclass, with its help from the field."""
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
            help_text = f"{help_text} (default: {_shown(default)})"
        parser.add_argument(
            flag,
            dest=f.name,
            type=_argparse_type(hints[f.name], flag),
            default=None,
            metavar=f.metadata.get("metavar") or f.name.split("_")[-1].upper(),
            help=help_text,
        )


def options_from_args(ns: argparse.Namespace, options: type[T]) -> T:
    """The options the user gave, on top of the dataclass's defaults."""
    given = {f.name: getattr(ns, f.name, None) for f in fields(options)}  # type: ignore[arg-type]
    kept = {k: v for k, v in given.items() if v is not None}
    if issubclass(options, TransferConfig):  # with its "did you mean" for unknown names
        return options.from_options(kept)  # type: ignore[return-value]
    return options(**kept)


def config_from_args(ns: argparse.Namespace) -> TransferConfig:
    return options_from_args(ns, TransferConfig)


def config_inputs(cfg: TransferConfig) -> list[Named]:
    """The files a config reads: an --init image and a --weights file, when given."""
    named: list[Named] = []
    if cfg.init not in ("noise", "content", "style"):
        named.append(("the --init image", cfg.init))
    if cfg.weights is not None:
        named.append(("the --weights file", cfg.weights))
    return named


def add_common(p: argparse.ArgumentParser) -> None:
    """-q and --traceback, on every command."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback on errors (for bug reports)",
    )


def add_styles_and_output(p: argparse.ArgumentParser, output_help: str) -> None:
    """STYLE... and -o/--output OUT, after the command's first input."""
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s) (painting)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=output_help)


def bounded_int(flag: str, lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a command's own integer option (not a config field)."""

    def parse(text: str) -> int:
        value = _argparse_type(int, flag)(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{flag} must be between {lo} and {hi}, not {value}")
        return int(value)

    return parse


def comma_floats(flag: str) -> Callable[[str], tuple[float, ...]]:
    return _nonempty(_argparse_type(tuple[float, ...], flag), flag)


def comma_strings(flag: str) -> Callable[[str], tuple[str, ...]]:
    return _nonempty(_argparse_type(tuple[str, ...], flag), flag)


def _nonempty(parse: Callable[[str], Any], flag: str) -> Callable[[str], Any]:
    """A command's own list option: ``''`` or ``','`` is a mistake, never "the defaults" (which
    leaving the flag out gives)."""

    def parse_some(text: str) -> Any:
        values = parse(text)
        if not values:
            raise argparse.ArgumentTypeError(
                f"{flag} needs at least one value, not '{text}' (leave it out for the defaults)"
            )
        return values

    return parse_some
