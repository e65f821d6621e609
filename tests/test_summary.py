"""The summary line every command ends with: one format, every term, adding up."""

from __future__ import annotations

import dataclasses
import re

import PIL.Image
import pytest

from impasto.cli.summary import ends_note, loss_sum, result_line, stages_note, wrote_line
from impasto.config import TransferConfig
from impasto.convergence import StageEnd
from impasto.optimize import Result, Stage


def result(history: list[dict[str, float]]) -> Result:
    return Result(
        image=PIL.Image.new("RGB", (48, 36)),
        config=TransferConfig(size=48, seed=7),
        seed=7,
        iterations=len(history),
        elapsed=3.25,
        history=history,
        final_loss=history[-1]["total"] * 0.99,  # one step on from the last Step: lower
        device="cpu",
    )


def parse(line: str) -> tuple[float, dict[str, float]]:
    found = re.search(r"loss (\S+) = (.+?)(?:, seed|$)", line)
    assert found, line
    terms = {name: float(v) for name, v in (t.split(" ") for t in found.group(2).split(" + "))}
    return float(found.group(1)), terms


@pytest.mark.parametrize(
    "row",
    [
        {"total": 9.97e9, "content": 3.9e9, "style": 5.43e9, "tv": 6.4e8},
        {"total": 123.456, "content": 0.0, "style": 120.0, "tv": 3.456},
        {"total": 1.0, "style": 1.0},
    ],
)
def test_every_term_is_shown_and_they_add_up(row: dict[str, float]) -> None:
    total, terms = parse(loss_sum(row))
    assert terms.keys() == row.keys() - {"total"}
    assert sum(terms.values()) == pytest.approx(total, rel=5e-3)
    assert total == pytest.approx(row["total"], rel=5e-4)


def test_the_loss_shown_is_the_last_steps() -> None:
    """Not the best iterate's loss (one step on, lower): the figure the bar showed last, whose
    terms are known."""
    rows = [
        {"total": 30.0, "content": 10.0, "style": 20.0},
        {"total": 12.0, "content": 5.0, "style": 7.0},
    ]
    line = result_line("out.png", result(rows))
    assert line.startswith("wrote out.png (48x36) in 3.2 s on cpu: 2 iterations, loss 12 = ")
    assert parse(line) == (12.0, {"content": 5.0, "style": 7.0})
    assert line.endswith(", seed 7")


def test_stages_are_explained() -> None:
    assert stages_note([Stage(64, 10)]) == ""
    line = result_line(
        "o.png",
        result([{"total": 2.0, "content": 1.0, "style": 1.0}]),
        [Stage(256, 100), Stage(362, 50), Stage(512, 25)],
    )
    assert "; 3 stages (256, 362, 512 px): the loss is the last stage's" in line
    assert "jumps up at each larger stage" in line


def test_a_command_without_a_loss_has_the_same_head() -> None:
    assert wrote_line("s.png", (10, 20), 1.04) == "wrote s.png (10x20) in 1.0 s"
    assert wrote_line("v.mp4", (8, 6), 2.0, "cpu", "5 frames") == (
        "wrote v.mp4 (8x6) in 2.0 s on cpu: 5 frames"
    )


@pytest.mark.parametrize(
    "args, shown",
    [
        (["transfer", "a.png", "b.png", "-o", "c.png"], True),
        (["batch", "c", "--styles", "s", "-o", "out"], True),
        (["transfer", "a.png", "b.png", "-o", "c.png", "-q"], False),
        (["batch", "status", "out"], False),
        (["serve"], False),
        (["transfer", "--help"], False),
    ],
)
def test_a_loading_line_while_torch_and_the_network_load(
    args: list[str],
    shown: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    from impasto.cli import _loading_line

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _loading_line(args)
    assert (capsys.readouterr().err == "loading the network…\n") is shown


def test_stages_that_settled_early_are_named() -> None:
    ends = (
        StageEnd(128, 40, 100, "converged"),
        StageEnd(256, 50, 50, "planned"),
        StageEnd(512, 12, 30, "converged"),
    )
    r = dataclasses.replace(result([{"total": 2.0, "content": 1.0, "style": 1.0}]), stages=ends)
    line = result_line("o.png", r, [Stage(128, 100), Stage(256, 50), Stage(512, 30)])
    assert line.endswith("; settled early: 128 px after 40, 512 px after 12")
    assert str(ends[0]) == "128 px: 40 of 100 iterations (settled)"
    assert ends_note(ends[1:2]) == ""
