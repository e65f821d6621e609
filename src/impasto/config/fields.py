"""The options field: ``option()``, which makes a dataclass field that carries its help, range
and web-page label, and the flag name an option goes by on the command line."""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

Place = Literal["main", "more", "slider"]  # where the web page shows an option


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    shown: str | None = None,
    by_preset: bool = False,
    metavar: str | None = None,
    bounds: tuple[float, float] | None = None,
    below: str | None = None,
    label: str | None = None,
    tip: str | None = None,
    place: Place = "more",
    **kw: Any,
) -> Any:
    """A field of an options dataclass that also carries its help (and optional flag name and
    metavar). The help says what the option does; its default is added to it by
    :func:`help_text`: ``shown`` says the default in words where the value alone does not (a
    None that means "drawn at random", a value that depends on other options), ``by_preset``
    takes it from :data:`PRESETS`. ``bounds`` (lowest, highest), both allowed, is the range
    :func:`check_bounds` holds a number (or each number of a list) to, and ``below`` why a number
    under it is refused (else the message names the range). Its choices, if any, are those of
    its Literal type.

    For the web page: ``label`` (a name a person reads, also in the page's error messages),
    ``tip`` (a line of help written for the page: no flags, no FILEs) and its ``place`` (main,
    more, or slider: set by the balance slider)."""
    meta: dict[str, Any] = {"help": help, "flag": flag, "metavar": metavar, "bounds": bounds}
    meta["below"] = below
    meta["shown"] = shown
    meta["by_preset"] = by_preset
    meta |= {"label": label, "tip": tip, "place": place}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for defaults")
    return field(default=default, metadata=meta, **kw)


def flag_name(name: str) -> str:
    return name.replace("_", "-")
