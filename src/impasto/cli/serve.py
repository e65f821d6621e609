"""``impasto serve``: the web studio's flags, generated from its settings, and the server started.

The flags come from :class:`~impasto.serve.settings.ServeOptions` (limits, the data folder,
address); FastAPI and uvicorn (the ``serve`` extra) are imported only when the command runs, by
:func:`impasto.serve.serve`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import serve as server  # light: FastAPI, uvicorn and torch load when it serves
from ..errors import ExitStatus
from ..serve.settings import ServeOptions
from .options import ConfigFlags, add_common, add_config_options, examples, options_from_args

# Torch (the device check), imported by main() with Ctrl-C held before the server starts;
# FastAPI and uvicorn come when it serves.
ENGINE = ("impasto.prepare",)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve`` to the top parser's subcommands."""
    p = sub.add_parser(
        "serve",
        help="a local web page: drop in pictures, set the balance, watch the image form",
        description="Start the web studio (and its JSON API, documented at /docs) and print "
        "its address. Jobs run one at a time on this machine's device, or with --executor ray one "
        "per Ray worker at once.",
        epilog=examples(
            "impasto serve",
            "impasto serve --port 8080 --data-dir ~/impasto-studio",
        ),
        allow_abbrev=False,
    )
    add_config_options(p, ConfigFlags(ServeOptions))
    add_common(p, "print nothing but errors (not the address, nor the line at the stop)", False)
    p.set_defaults(run=_run, engine=ENGINE)


def _run(ns: argparse.Namespace) -> int:
    """Serve until Ctrl-C: a clean stop (unfinished jobs are recorded as interrupted)."""
    server.require_extra()
    options = options_from_args(ns, ServeOptions)

    def ready(url: str) -> None:
        if not ns.quiet:
            print(f"impasto studio: {url}  (Ctrl-C to stop)", flush=True)

    def warn(line: str) -> None:
        print(f"impasto: {line}", file=sys.stderr)

    server.serve(options, on_ready=ready, warn=warn)
    if not ns.quiet:
        print("impasto: stopped", file=sys.stderr)
    return ExitStatus.OK
