"""MkDocs hooks (``mkdocs.yml``: ``hooks``): the pages made from the code and the repository.

- ``reference/commands.md``: every command and option, from the parser ``--help`` prints
  (:func:`impasto.cli.reference.commands_reference`), so it cannot drift from the code.
- ``benchmarks.md``: BENCHMARKS.md at the repository's root, which stays where the benchmark
  scripts write about it; its links into ``docs/`` are made relative to the site.

Links in the pages that leave ``docs/`` (to BENCHMARKS.md, the README, a script) are rewritten:
BENCHMARKS.md to its page, anything else to the file's name as code, since the site holds only
``docs/``. The Markdown sources keep links that work where they are read on their own.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from impasto.cli.reference import commands_reference

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "reference/commands.md", content=commands_reference()))
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    benchmarks = benchmarks.replace("](docs/", "](")
    files.append(File.generated(config, "benchmarks.md", content=benchmarks))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links that leave docs/ (``../BENCHMARKS.md``, ``../../examples/SOURCES.md``) rewritten."""
    here = posixpath.dirname(page.file.src_uri)

    def fix(m: re.Match[str]) -> str:
        bang, text, target = m.groups()
        if "://" in target or target.startswith(("#", "mailto:")):
            return m.group(0)
        path, _, anchor = target.partition("#")
        inside = posixpath.normpath(posixpath.join(here, path)) if path else page.file.src_uri
        if not inside.startswith("../"):
            return m.group(0)
        repo_path = inside.removeprefix("../")
        if repo_path == "BENCHMARKS.md":
            link = posixpath.relpath("benchmarks.md", here or ".")
            return f"{bang}[{text}]({link}{'#' + anchor if anchor else ''})"
        shown = text if text.startswith("`") else f"{text} (`{repo_path}` in the repository)"
        return shown

    return _LINK.sub(fix, markdown)
