"""Help a person can scan (issue 33, point 5): options under headings taken from the config,
an examples section on every command's help whose commands parse, 'batch status --help' its
own, a clip given to transfer pointed to 'impasto video', the --sweep syntax stated once."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import fields
from pathlib import Path

import pytest

from impasto.cli import build_parser, main
from impasto.cli.batch import SWEEP_HELP
from impasto.cli.options import flag_of
from impasto.cli.reference import commands_reference
from impasto.config import OPTION_GROUPS, TransferConfig

ROOT = Path(__file__).resolve().parent.parent
PARSER = build_parser()
COMMANDS: dict[str, argparse.ArgumentParser] = dict(PARSER.commands or {})
STATUS = PARSER.batch_status
assert STATUS is not None


def test_every_option_has_one_heading() -> None:
    grouped = [name for names in OPTION_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(f.name for f in fields(TransferConfig))  # each exactly once


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"serve"}))  # serve: no transfer option
def test_a_commands_config_options_sit_under_their_headings(command: str) -> None:
    parser = COMMANDS[command]
    heading_of = {
        flag: group.title for group in parser._action_groups for a in group._group_actions
        for flag in a.option_strings
    }  # fmt: skip
    shown = 0
    for title, names in OPTION_GROUPS.items():
        for f in fields(TransferConfig):
            flag = flag_of(f)
            if f.name in names and flag in heading_of:
                assert heading_of[flag] == title, (flag, heading_of[flag])
                shown += 1
    assert shown > 10
    help_text = parser.format_help()
    titles = [t for t in OPTION_GROUPS if f"\n{t}:\n" in help_text]
    assert titles == sorted(titles, key=list(OPTION_GROUPS).index)  # in the config's order


def test_the_reference_page_has_the_headings_and_the_examples() -> None:
    page = commands_reference()
    for title in OPTION_GROUPS:
        assert f"**{title}**" in page
    assert page.count("**examples**") == len(COMMANDS)


@pytest.mark.parametrize("command", [*sorted(COMMANDS), "batch status"])
def test_every_help_ends_with_examples_that_parse(command: str) -> None:
    parser = STATUS if command == "batch status" else COMMANDS[command]
    help_text = parser.format_help()
    assert "\nexamples:\n" in help_text
    examples = help_text.split("\nexamples:\n", 1)[1].strip().splitlines()
    assert f"{examples[0]} ".startswith(f"impasto {command} ")  # the command's own first
    for line in examples:
        args = shlex.split(line, comments=True)
        assert args[0] == "impasto", line
        if args[1:3] == ["batch", "status"]:
            STATUS.parse_args(args[3:])  # raises on a mistake
        else:
            PARSER.parse_args(args[1:])


def test_the_top_help_has_examples_too() -> None:
    assert "\nexamples:\n  impasto transfer photo.jpg" in PARSER.format_help()


def test_batch_status_help_is_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "status", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: impasto batch status [-h]")
    assert "--styles" not in out and "--sweep" not in out
    assert len(out.splitlines()) < 25


def test_batch_help_is_still_the_whole_batch_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "--help"]) == 0
    assert "--sweep" in capsys.readouterr().out


@pytest.mark.parametrize("position", ["content", "style"])
def test_a_clip_given_to_transfer_is_pointed_to_video(
    position: str, tmp_path: Path, style_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    inputs = [clip, style_path] if position == "content" else [style_path, clip]
    assert main(["transfer", *map(str, inputs), "-o", str(tmp_path / "o.png")]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"impasto: error: the {position} image '{clip}' is a video, not a still")
    assert "use 'impasto video'" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_the_sweep_syntax_is_stated_once_with_an_example() -> None:
    batch_help = " ".join(COMMANDS["batch"].format_help().split())
    assert " ".join(SWEEP_HELP.split()) in batch_help
    assert "--sweep 'style_layers=conv1_1,conv2_1;conv3_1' is two runs" in SWEEP_HELP
    manual = " ".join((ROOT / "docs" / "guide" / "batch.md").read_text(encoding="utf-8").split())
    assert "so `--sweep 'style_layers=conv1_1,conv2_1;conv3_1'` is two runs" in manual
