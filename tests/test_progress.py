"""The command line's progress listeners where stderr is not a terminal: plain log lines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import PIL.Image
import pytest
import torch

from helpers import PYTHON_M
from impasto.cli.progress import BatchProgress, ProgressBar, VideoProgress
from impasto.jobs.spec import Outcome
from impasto.jobs.store import Job
from impasto.optimize import Step
from impasto.video import FrameResult


def step(i: int, n: int, stage: int = 1, stages: int = 1) -> Step:
    values = {"total": 10.0 * i, "content": 4.0 * i, "style": 6.0 * i}
    return Step(
        iteration=i,
        iterations=n,
        elapsed=0.5 * i,
        learning_rate=None,
        _values=lambda: values,
        _render=lambda: torch.zeros(1, 3, 4, 4),
        stage=stage,
        stages=stages,
    )


def test_a_line_every_n_iterations_and_at_the_last(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar(7, False, None, 0, print_every=3)  # capsys' stderr is not a terminal
    for i in range(1, 8):
        bar(step(i, 7, stage=1 + (i > 4), stages=2))
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "iteration 3/7, stage 1/2: loss 30 (content 12, style 18), 1.5 s",
        "iteration 6/7, stage 2/2: loss 60 (content 24, style 36), 3.0 s",
        "iteration 7/7, stage 2/2: loss 70 (content 28, style 42), 3.5 s",
    ]


@pytest.mark.parametrize("quiet, every", [(True, 3), (False, 0)])
def test_quiet_or_zero_prints_nothing(
    quiet: bool, every: int, capsys: pytest.CaptureFixture[str]
) -> None:
    bar = ProgressBar(4, quiet, None, 0, print_every=every)
    for i in range(1, 5):
        bar(step(i, 4))
    bar.close()
    assert capsys.readouterr().err == ""


def test_video_lines_name_the_frame(capsys: pytest.CaptureFixture[str]) -> None:
    progress = VideoProgress(2, False, print_every=2)
    for index in range(2):
        listen = progress.frame_start(index, 2)
        assert listen is not None
        listen(step(1, 2))
        listen(step(2, 2))
        image = PIL.Image.new("RGB", (4, 4))
        progress.frame_done(FrameResult(index, image, False, 2, 1.25))
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("frame 1/2: iteration 2/2: loss 20 (content 8, style 12)")
    assert lines[1] == "frame 1/2 done (1.2 s)"
    assert lines[2].startswith("frame 2/2: iteration 2/2")
    assert lines[3] == "frame 2/2 done (1.2 s), ETA 0:00"


def job(output: str, state: str = "running", error: str | None = None) -> Job:
    return Job(
        id=output, seq=1, inputs={}, options={}, output=output, labels={}, state=state,  # type: ignore[arg-type]
        attempts=1, worker=None, device="cpu", lease=None, created=0.0, started=None,
        finished=None, seconds=None, terms=None, error=error,
    )  # fmt: skip


def test_batch_lines_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    progress = BatchProgress(False, 1, print_every=5)
    progress.planned(3, 2)
    progress.started(job("a.png"))
    for i in range(1, 11):
        progress.progress("a.png", i, 10)
    terms = {"content": 1.5, "style": 2.5, "total": 4.0}
    progress.ended(job("a.png", "done"), Outcome("a.png", b"", terms, 3.25, "cpu"))
    progress.started(job("b.png"))
    progress.ended(job("b.png", "failed", "cannot read b.jpg"), None)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "batch: 2 of 3 jobs to run"
    assert re.fullmatch(r"a\.png: iteration 5/10, \d+\.\d s", lines[1])
    assert re.fullmatch(r"a\.png: iteration 10/10, \d+\.\d s", lines[2])
    # The done line is on the clock of the job's iteration lines (issue 33), not the outcome's.
    done = re.fullmatch(
        r"job 1/2 done: a\.png: loss 4 \(content 1\.5, style 2\.5\), (\d+\.\d) s", lines[3]
    )
    assert done and float(done.group(1)) >= float(lines[2].split(", ")[1].removesuffix(" s"))
    assert lines[4] == "job 2/2 failed: b.png: cannot read b.jpg"
    assert len(lines) == 5


@pytest.mark.slow
def test_a_transfer_logs_lines_when_stderr_is_a_file(tiny_dir: Path, tmp_path: Path) -> None:
    """The real command, its stderr a pipe: a line every --print-every iterations, then the
    summary; no progress bar's carriage returns."""
    inputs = [str(tiny_dir / "tubingen.png"), str(tiny_dir / "starry_night.png")]
    args = ["transfer", *inputs, "-o", str(tmp_path / "o.png"), "--size", "32"]
    args += ["--iterations", "4", "--print-every", "2", "--seed", "1"]
    done = subprocess.run([*PYTHON_M, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["iteration 2/4", "iteration 4/4"]
    assert re.search(r"loss \S+ \(content \S+, style \S+, tv \S+\), \d+\.\d s$", lines[0])
    assert lines[2].startswith("wrote ") and len(lines) == 3
    assert "\r" not in done.stderr
