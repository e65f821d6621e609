"""SIGINT and SIGTERM (impasto.cli.signals), in real processes: one line and 130 or 143 whenever
they come, the best image so far kept, the server stopped cleanly."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from helpers import (
    ENV,
    finish,
    impasto_process,
    next_line,
    run_impasto,
    signal_at_first_step,
    snapshot,
    wait_until,
)
from impasto import imageio
from impasto.cli import signals
from impasto.cli.signals import Terminated


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has installed a SIGTERM handler (from /proc: no guessing)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_signal_held_while_importing_arrives_once_the_imports_are_done(
    signum: int, raised: type[KeyboardInterrupt]
) -> None:
    """The command families import torch inside signals.deferred(): a signal then is held (a
    KeyboardInterrupt inside an import can come out as an ImportError, or be lost) and raised,
    as itself, right after."""
    done = []
    with signals.terminating_as_interrupt(), pytest.raises(raised):
        with signals.deferred():
            signal.raise_signal(signum)  # handled now would raise here
            done.append("the imports ran to their end")
        done.append("not reached: the held signal is raised on leaving the block")
    assert done == ["the imports ran to their end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back


def test_an_interrupt_out_of_a_string_exec_still_exits_130(tmp_path: Path) -> None:
    """CPython notes a KeyboardInterrupt leaving a string exec as unhandled even when it is
    caught, and ``python -m`` then ends by SIGINT (-2) after the clean stop: dataclasses build
    their methods by string exec, so a Ctrl-C while one is made did that."""
    (tmp_path / "stop_in_exec.py").write_text(
        "import argparse, sys\n"
        "from impasto import cli\n"
        "def build_parser():\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.set_defaults(command='x', run=lambda ns: exec('raise KeyboardInterrupt', {}))\n"
        "    return parser\n"
        "cli.build_parser = build_parser\n"
        "sys.exit(cli.main([]))\n"
    )
    run = run_impasto(cwd=tmp_path, command=[sys.executable, "-m", "stop_in_exec"])
    assert (run.returncode, run.stderr) == (130, "impasto: interrupted\n")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_torch_imports_is_one_line(
    tmp_path: Path, content_path: Path, style_path: Path, signum: int, status: int
) -> None:
    before = snapshot(tmp_path)
    # Python's default warnings, as a user has them: a signal that stops an import halfway
    # leaves the module file to the garbage collector, which PYTHONWARNINGS=error would report.
    env = {k: v for k, v in ENV.items() if k != "PYTHONWARNINGS"}
    args = ["transfer", content_path, style_path, "-o", "o.png", "--size", "32"]
    with impasto_process(args, tmp_path, env) as proc:
        wait_until(lambda: _catches_sigterm(proc.pid), "main() to start", proc=proc)
        proc.send_signal(signum)
        _, stderr = finish(proc)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("impasto: "), stderr
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_sigterm_saves_the_best_image_as_ctrl_c_does(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    hostile_dir = tmp_path / "in"
    hostile_dir.mkdir()
    (hostile_dir / "p.png").write_bytes(content_path.read_bytes())
    (hostile_dir / "s.png").write_bytes(style_path.read_bytes())
    args = ["transfer", "p.png", "s.png", "-o", "out.jpg", "--size", "32"]
    args += ["--iterations", "5000", "--save-every", "1", "-q"]
    status, _, stderr = signal_at_first_step(args, hostile_dir, signal.SIGTERM)
    assert status == 143, stderr
    assert len(stderr.splitlines()) == 1 and "interrupted at iteration" in stderr, stderr
    partial = hostile_dir / "out.interrupted.jpg"  # the README's name, in the output's format
    assert str(partial.name) in stderr
    assert max(imageio.load_image(partial).size) == 32
    assert not (hostile_dir / "out.jpg").exists()
    assert not [p for p in hostile_dir.rglob(".*")], "temporary files left behind"


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    args = ["serve", "--port", "0", "--data-dir", tmp_path / "data"]
    with impasto_process(args, tmp_path) as proc:
        line = next_line(proc.stdout, "the server's address")  # printed once listening
        assert line.startswith("impasto studio: http://"), line
        proc.send_signal(signal.SIGTERM)
        _, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    assert stderr.strip().splitlines()[-1] == "impasto: stopped", stderr
    assert "Traceback" not in stderr
