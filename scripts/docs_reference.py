"""Write docs/reference/commands.md, the command reference, from the parser ``--help`` prints.

The page is committed so that its links work where the Markdown is read (a code host, an
editor) as well as in the built manual; tests/test_docs_links.py fails when it is stale.

    python scripts/docs_reference.py
"""

from __future__ import annotations

from pathlib import Path

from impasto.cli.reference import commands_reference

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "commands.md"


def main() -> None:
    PAGE.write_text(commands_reference() + "\n", encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
