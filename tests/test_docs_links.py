"""The manual where people read it: links that resolve in the Markdown sources (a code host, an
editor) as in the built site, the committed commands page up to date, one extras table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from impasto.cli.reference import commands_reference

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HTML_LINK = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def relative_links(page: Path) -> list[str]:
    """The page's links to files (not to the web, not to an anchor of the page itself), code
    blocks and code spans left out."""
    text = _CODE.sub("", page.read_text(encoding="utf-8"))
    targets = _MD_LINK.findall(text) + _HTML_LINK.findall(text)
    return [
        t.split("#")[0]
        for t in targets
        if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith(("#", "/"))
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_is_a_file_in_the_repository(page: Path) -> None:
    missing = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_link_check_finds_links() -> None:
    readme = relative_links(ROOT / "README.md")
    assert "docs/reference/commands.md" in readme and "BENCHMARKS.md" in readme
    assert sum(len(relative_links(p)) for p in PAGES) > 50


def test_the_committed_commands_page_is_up_to_date() -> None:
    page = (ROOT / "docs" / "reference" / "commands.md").read_text(encoding="utf-8")
    assert page == commands_reference() + "\n", (
        "docs/reference/commands.md is stale: run python scripts/docs_reference.py"
    )


def _table(page: Path, heading: str = "| extra | brings | for |") -> dict[str, str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 2
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, brings, _ = (c.strip() for c in line.strip("|").split("|"))
        rows[name.strip("`")] = brings
    return rows


# How the table names a distribution where it is not the distribution's own name.
SHOWN_AS = {
    "av": "PyAV",
    "opencv-python-headless": "OpenCV",
    "mkdocstrings[python]": "mkdocstrings",
}


def _named(requirement: str) -> str:
    name = re.split(r"[<>=!~ ;]", requirement, maxsplit=1)[0]
    inner = re.fullmatch(r"impasto\[(.*)\]", name)
    if inner:
        return inner.group(1)
    return SHOWN_AS.get(name, name)


def test_one_extras_table_that_agrees_with_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    readme, install = _table(ROOT / "README.md"), _table(ROOT / "docs" / "install.md")
    assert readme == install, "README.md and docs/install.md have different extras tables"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {"(none)": project["dependencies"], **project["optional-dependencies"]}
    assert set(readme) == set(wanted)
    for extra, requirements in wanted.items():
        row = readme[extra].lower()
        for requirement in requirements:
            for name in _named(requirement).split(","):
                assert re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", row), (
                    f"the {extra!r} row does not name {name}"
                )
