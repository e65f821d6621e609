"""MkDocs hooks (``mkdocs.yml``: ``hooks``): the page made from the repository.

- ``benchmarks.md``: BENCHMARKS.md at the repository's root, which stays where the benchmark
  scripts write about it; its links into ``docs/`` are made relative to the site.

Links in the pages that leave ``docs/`` (to BENCHMARKS.md, the README, a script) are rewritten:
BENCHMARKS.md to its page, anything else to the file's name as code, since the site holds only
``docs/``. The Markdown sources keep links that work where they are read on their own.

``reference/commands.md`` is generated from the parser too, but committed
(``scripts/docs_reference.py`` writes it; tests/test_docs_links.py fails when it is stale), so
that its links work in the Markdown sources as well.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_files(files: Files, config: Any) -> Files:
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
