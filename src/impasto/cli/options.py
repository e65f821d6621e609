"""Flags generated from the options dataclasses, and the namespace read back into them.

Every ``--flag`` of a config field (TransferConfig, VideoOptions, ServeOptions) comes from the
field: its name, its type (parsed by :func:`impasto.fieldtypes.parse_text`, the one parser of a
field's type), its default and help. Defaults stay None in argparse so the dataclass decides.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, fields
from dataclasses import field as dataclass_field
from typing import Any, TypeVar

from ..config import MAX_ITERATIONS, OPTION_GROUPS, TransferConfig, help_text
from ..errors import UsageError
from ..fieldtypes import parse_text
from ..paths import Named, check_folder_exists

T = TypeVar("T")


def _argparse_type(annotation: object, flag: str) -> Callable[[str], Any]:
    """The argparse ``type=`` for a field: a usage error becomes argparse's own message."""

    def parse(text: str) -> Any:
        try:
            return parse_text(annotation, text, flag)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


@dataclass(frozen=True)
class ConfigFlags:
    """Which fields of an options dataclass a command takes as flags, and how their defaults
    read there: ``leave_out`` fields the command sets itself or cannot use, ``preset`` a preset
    the command fixes (its values are then the defaults), ``given`` defaults the command sets
    itself (a batch's seed is 0). Kept on the command's parser (``config_flags``) so that the
    options reference and the tests read the same list the flags were made from."""

    options: type[Any] = TransferConfig
    leave_out: frozenset[str] = frozenset()
    preset: str | None = None
    given: Mapping[str, str] = dataclass_field(default_factory=dict)

    def fields(self) -> list[Field[Any]]:
        return [f for f in fields(self.options) if f.name not in self.leave_out]

    def help(self, f: Field[Any]) -> str:
        return help_text(f, self.preset, self.given)


def flag_of(f: Field[Any]) -> str:
    return str(f.metadata.get("flag") or "--" + f.name.replace("_", "-"))


def add_config_options(
    parser: argparse.ArgumentParser,
    spec: ConfigFlags | None = None,
    group: argparse._ActionsContainer | None = None,
) -> None:
    """One ``--flag`` per field of ``spec`` (by default every TransferConfig field), with its
    help and default from the field, into ``group`` (else, for TransferConfig, under the
    heading :data:`~impasto.config.OPTION_GROUPS` gives the field; else the parser itself)."""
    spec = spec or ConfigFlags()
    parser.set_defaults(config_flags=[*(parser.get_default("config_flags") or []), spec])
    headings = {name: title for title, names in OPTION_GROUPS.items() for name in names}
    if group is None and issubclass(spec.options, TransferConfig):
        given = {f.name for f in spec.fields()}
        for title, names in OPTION_GROUPS.items():  # the headings in their order
            if given.intersection(names):
                titled_group(parser, title)
    hints = typing.get_type_hints(spec.options)
    for f in spec.fields():
        into: argparse._ActionsContainer = parser
        if group is not None:
            into = group
        elif f.name in headings and issubclass(spec.options, TransferConfig):
            into = titled_group(parser, headings[f.name])
        flag = flag_of(f)
        if hints[f.name] is bool:
            # --flag / --no-flag; None (not given) leaves the config's default in charge.
            into.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=spec.help(f),
            )
            continue
        into.add_argument(
            flag,
            dest=f.name,
            type=_argparse_type(hints[f.name], flag),
            default=None,  # None: not given, so the dataclass decides
            metavar=f.metadata.get("metavar") or f.name.split("_")[-1].upper(),
            help=spec.help(f),
        )


def titled_group(
    parser: argparse.ArgumentParser, title: str, description: str | None = None
) -> argparse._ArgumentGroup:
    """The parser's argument group called ``title``, made (with ``description``) if it has none
    yet: the config's fields and a command's own flags under one heading share it."""
    for existing in parser._action_groups:
        if existing.title == title:
            if description and not existing.description:
                existing.description = description
            return existing
    return parser.add_argument_group(title, description)


def examples(*commands: str) -> str:
    """The ``examples:`` section at the end of a command's --help (kept as written)."""
    return "examples:\n" + "\n".join(f"  {c}" for c in commands)


def check_output_folders(ns: argparse.Namespace) -> None:
    """Refuse an output whose folder does not exist (the command's ``output_files``: dest and
    how the message names it), so that a mistyped folder leaves no stray tree: called after
    :func:`~impasto.paths.check_apart`, whose message says more where both apply."""
    for dest, what in getattr(ns, "output_files", ()):
        if getattr(ns, dest, None) is not None:
            check_folder_exists(getattr(ns, dest), what)


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


# The TransferConfig fields of spatial and scale control: transfer's (and mix-styles' split).
SPATIAL_FIELDS = frozenset({"mask_propagation", "keep_feather", "scale_split"})

PRINT_EVERY = 50  # as the Lua reference's -print_iter


def add_common(
    p: argparse.ArgumentParser,
    quiet_help: str = "no progress bar, log lines or summary",
    progress: bool = True,
) -> None:
    """-q, --traceback and (for commands that iterate) --print-every."""
    p.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    if progress:
        p.add_argument(
            "--print-every",
            type=bounded_int("--print-every", 0, MAX_ITERATIONS),
            default=PRINT_EVERY,
            metavar="N",
            help="when stderr is not a terminal (a log file, CI), print a line every N "
            "iterations with the losses and the time; 0: none "
            f"(default: {PRINT_EVERY})",
        )
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
