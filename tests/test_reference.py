"""The command line, the manual and the studio against the options dataclasses.

For every command, the options its parser takes are derived from the dataclasses it declares
(``config_flags``): each field a flag with its help and its real default, none left out and none
extra; ``--help``, the generated commands reference, the README and docs pages, and the studio's
option list must all agree with them.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from impasto.cli import build_parser
from impasto.cli.options import ConfigFlags, flag_of
from impasto.cli.reference import commands_reference, split_default
from impasto.config import TransferConfig, help_text
from impasto.jobs.executor import ExecutorOptions
from impasto.serve import intake
from impasto.serve.settings import SERVER_OPTIONS, Limits, ServeOptions
from impasto.video import VideoOptions

ROOT = Path(__file__).resolve().parent.parent
PARSER = build_parser()
COMMANDS: dict[str, argparse.ArgumentParser] = dict(PARSER.commands)  # type: ignore[attr-defined]
OPTION_CLASSES = (TransferConfig, VideoOptions, ExecutorOptions, ServeOptions)
FIELD_FLAGS = {flag_of(f) for cls in OPTION_CLASSES for f in fields(cls)}


def visible(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each option string ``--help`` shows, with its action."""
    return {
        flag: a for a in parser._actions if a.help != argparse.SUPPRESS for flag in a.option_strings
    }


def specs(parser: argparse.ArgumentParser) -> list[ConfigFlags]:
    found = parser.get_default("config_flags")
    assert isinstance(found, list)
    return found


def flat(text: str) -> str:
    """Text without its whitespace: argparse wraps lines at spaces and after hyphens."""
    return "".join(text.split())


def test_every_command_is_listed() -> None:
    assert set(COMMANDS) == {
        "transfer",
        "reconstruct",
        "grid",
        "mix-styles",
        "batch",
        "video",
        "serve",
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_takes_exactly_the_options_its_config_gives(command: str) -> None:
    parser = COMMANDS[command]
    shown = visible(parser)
    expected = {flag_of(f): (spec, f) for spec in specs(parser) for f in spec.fields()}
    # Every field flag it shows is one it declares (nothing left out shows up), and the reverse.
    assert {flag for flag in shown if flag in FIELD_FLAGS} == set(expected)
    help_text_of_command = flat(parser.format_help())
    for flag, (spec, f) in expected.items():
        assert shown[flag].help == spec.help(f)
        assert flat(spec.help(f)) in help_text_of_command, flag


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_shows_its_default(command: str) -> None:
    for flag, action in visible(COMMANDS[command]).items():
        if action.nargs == 0 or action.required or flag in ("-h", "--help"):
            continue
        _, default = split_default(action.help or "")
        if default is None:
            assert "(required" in (action.help or ""), f"{command} {flag}: {action.help}"


@pytest.mark.parametrize(
    "command, flag, default",
    [
        ("transfer", "--iterations", "by preset: default 350, paper 500"),
        ("transfer", "--scales", "by preset: default auto, paper one"),
        ("transfer", "--seed", "drawn at random and recorded"),
        ("transfer", "--style-weight", "by preset: default 1e4 at 512 px"),
        ("reconstruct", "--iterations", "500"),  # the experiments fix the paper preset
        ("reconstruct", "--tv-weight", "0"),
        ("grid", "--init", "content"),  # grid starts from --init, the content by default
        ("grid", "--scales", "one"),
        ("mix-styles", "--content-weight", "0 (texture synthesis: no content)"),
        ("mix-styles", "--init", "noise"),
        ("batch", "--seed", "0, so that a job is the same job on the next run"),
        ("video", "--seed", "0, so that a re-run finds the frames cached"),
        ("video", "--temporal-weight", "1e5·β, i.e. 1e8 at β = 1e3"),
        ("serve", "--port", "8000"),
        ("transfer", "--print-every", "50"),
    ],
)
def test_defaults_as_help_says_them(command: str, flag: str, default: str) -> None:
    _, shown = split_default(visible(COMMANDS[command])[flag].help or "")
    assert shown is not None and shown.startswith(default), shown


@pytest.mark.parametrize(
    "command, absent",
    [
        ("reconstruct", ["--mask-propagation", "--keep-feather", "--style-blend-weights"]),
        ("reconstruct", ["--preset", "--style-weight", "--init", "--style-layers"]),
        ("grid", ["--mask-propagation", "--scale-split", "--style-blend-weights"]),
        ("mix-styles", ["--mask-propagation", "--keep-feather", "--style-blend-weights"]),
        ("video", ["--mask-propagation", "--keep-feather", "--scale-split"]),
        ("batch", ["--mask-propagation", "--keep-feather", "--scale-split"]),
        ("serve", ["--size", "--print-every"]),
    ],
)
def test_a_command_lists_no_option_it_does_not_use(command: str, absent: list[str]) -> None:
    shown = visible(COMMANDS[command])
    assert not set(absent) & set(shown)
    assert not re.search(
        "|".join(re.escape(a) + r"\b" for a in absent), COMMANDS[command].format_help()
    )


def test_the_reference_page_lists_every_command_option_and_default() -> None:
    page = commands_reference()
    sections = re.split(r"^## impasto ", page, flags=re.M)[1:]
    by_command = {s.split("\n", 1)[0].strip(): s for s in sections}
    assert set(by_command) == set(COMMANDS)
    for command, parser in COMMANDS.items():
        rows = {
            line.split(" | ")[0].lstrip("| "): line
            for line in by_command[command].splitlines()
            if line.startswith("| `")
        }
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            row = next((r for key, r in rows.items() if _names(action, key)), None)
            assert row is not None, f"{command}: {action.option_strings or action.metavar}"
            _, default = split_default(action.help or "")
            if default is not None:
                cell = row.split(" | ")[1]
                plain = cell.replace("\\", "")
                assert plain == " ".join(default.split()), (command, action.option_strings)


def _names(action: argparse.Action, cell: str) -> bool:
    """Whether a table's first cell is this argument's: its long flag, or its metavar."""
    if action.option_strings:
        return f"`{action.option_strings[-1]}" in cell
    return cell == f"`{action.metavar}`"


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
# Flags of other tools that the pages show (pip, Ray, MkDocs, uvicorn's curl examples, ...).
OTHER_TOOLS = {"--index-url", "--head", "--address", "--strict", "--version", "--help", "--check"}
OTHER_TOOLS |= {"--saved"}  # benchmarks/bench_quality.py's


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_and_docs_name_only_options_that_exist(page: Path) -> None:
    every = {flag for parser in COMMANDS.values() for flag in visible(parser)}
    every |= {flag for flag in visible(PARSER)}
    hidden_refused = {"--masks", "--style-masks", "--segmentation", "--style-segmentation"}
    text = page.read_text(encoding="utf-8")
    named = set(_FLAG.findall(text))
    unknown = named - every - OTHER_TOOLS - hidden_refused
    assert not unknown, f"{page.name} names options no command has: {sorted(unknown)}"


def test_the_studio_describes_the_same_options_with_the_same_help() -> None:
    described = {o["name"]: o for o in intake.describe_options(Limits())}
    transfer = visible(COMMANDS["transfer"])
    expected = {f.name for f in fields(TransferConfig)} - set(SERVER_OPTIONS)
    assert set(described) == expected
    for f in fields(TransferConfig):
        if f.name in described:
            assert described[f.name]["help"] == help_text(f)
            assert transfer[flag_of(f)].help == described[f.name]["help"]


def test_the_api_page_documents_every_public_name() -> None:
    import impasto

    page = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ([\w.]+)$", page, flags=re.M))
    for name in impasto.__all__:
        if name == "__version__":
            continue
        home = getattr(impasto, name).__module__
        assert {f"impasto.{name}", f"{home}.{name}", home} & documented, name


def test_the_readme_links_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith("#")]
    assert len(local) >= 10
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
    assert len(readme.encode()) <= 12 * 1024
