"""The Ray executor on a local Ray (two CPUs, started once for this module): the same images as
the local executor, a killed worker's job run again, stop and cancel, and the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from impasto import imageio
from impasto.cli import main
from impasto.jobs import BatchListener, LocalExecutor, Store, Task, run_jobs
from impasto.jobs.plan import plan

try:
    import ray

    from impasto.jobs.rayexec import RayExecutor
except ImportError:  # the tests that need it skip, saying why
    ray = None

needs_ray = pytest.mark.skipif(
    ray is None, reason="Ray is not installed: pip install 'impasto[ray]'"
)

# On the CPU wherever the tests run: the local Ray here is started with no GPUs.
OPTIONS = {"size": 48, "iterations": 8, "device": "cpu", "precision": "fp32"}
# Of 255. Ray's workers run one torch thread each, the local one two: sums in another order differ
# in the last bit, which L-BFGS may carry into a pixel (measured: at most 1, mean 2e-4). In fp32:
# with bf16 (the default on CPUs that have it) the same reordering moved pixels by up to 16.
TOLERANCE = 2


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module's tests (about 10 s to start); nothing leaves 127.0.0.1."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _task(content_path: Path, style_path: Path, **options: object) -> Task:
    names = {"content": "c.png", "styles": "s.png"}
    opts = {**OPTIONS, "seed": 0, **options}
    return Task("job", content_path.read_bytes(), (style_path.read_bytes(),), opts, names)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(imageio.load_image(path), dtype=np.int16)


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ray_paints_what_the_local_executor_paints(
    tmp_path: Path, content_path: Path, style_path: Path, tiny_dir: Path
) -> None:
    specs = plan(
        [str(content_path), str(tiny_dir / "shipwreck.png")],
        [str(style_path)],
        {**OPTIONS, "seed": 3},
    )
    outs = {}
    for name, make in (("local", LocalExecutor), ("ray", lambda: RayExecutor(workers=2))):
        executor = make()
        with Store.in_folder(tmp_path / name) as store:
            try:
                summary = run_jobs(specs, store, tmp_path / name, executor)
            finally:
                executor.close()
            assert (summary.done, summary.failed) == (2, 0), summary.errors
            outs[name] = store.jobs()
    for local, remote in zip(outs["local"], outs["ray"], strict=True):
        a, b = _pixels(tmp_path / "local" / local.output), _pixels(tmp_path / "ray" / remote.output)
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= TOLERANCE
        assert np.abs(a - b).mean() < 0.05
        assert remote.device == "cpu" and remote.attempts == 1
        assert remote.terms and local.terms
        assert remote.terms["total"] == pytest.approx(local.terms["total"], rel=0.05)


class _Killer(BatchListener):
    """Kills the worker process at a job's third iteration, once."""

    def __init__(self, executor: RayExecutor) -> None:
        self.executor, self.killed, self.iterations = executor, 0, [0]

    def progress(self, job_id: str, iteration: int, iterations: int) -> None:
        self.iterations.append(iteration)
        if not self.killed and iteration >= 3:
            (pid,) = self.executor.pids()
            os.kill(pid, signal.SIGKILL)
            self.killed = pid


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_a_worker_killed_mid_job_is_run_again_and_counted(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    specs = plan([str(content_path)], [str(style_path)], {**OPTIONS, "iterations": 40})
    executor = RayExecutor(workers=1)
    killer = _Killer(executor)
    with Store.in_folder(tmp_path) as store:
        try:
            summary = run_jobs(specs, store, tmp_path, executor, listener=killer)
            (pid,) = executor.pids()
        finally:
            executor.close()
        (job,) = store.jobs()
    assert killer.killed and pid != killer.killed  # a new process took over
    assert summary.done == 1 and job.state == "done" and job.error is None
    assert job.attempts == 2  # one claim, one rerun by Ray
    assert (tmp_path / job.output).is_file()


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_a_job_fails_once_its_retries_are_spent(content_path: Path, style_path: Path) -> None:
    executor = RayExecutor(workers=1, retries=0)
    try:
        (pid,) = executor.pids()
        heard: list[int] = []

        def progress(job_id: str, iteration: int, iterations: int) -> None:
            heard.append(iteration)
            if len(heard) == 1:
                os.kill(pid, signal.SIGKILL)

        outcome = executor.submit(_task(content_path, style_path, iterations=200), progress)
        outcome = outcome.result(timeout=60)
    finally:
        executor.close()
    assert outcome.image is None and outcome.exit_status == 1
    assert outcome.error is not None and outcome.error.startswith("worker died (1 tries)")


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_cancel_ends_one_job_with_its_best_image(content_path: Path, style_path: Path) -> None:
    executor = RayExecutor(workers=2)
    try:
        heard: list[tuple[str, int]] = []

        def progress(job_id: str, iteration: int, iterations: int) -> None:
            heard.append((job_id, iteration))
            if job_id == "job" and iteration >= 2:
                executor.cancel("job")

        stopped = executor.submit(_task(content_path, style_path, iterations=300), progress)
        other = _task(content_path, style_path, iterations=5)
        kept = executor.submit(Task("other", other.content, other.styles, other.options, {}))
        first, second = stopped.result(timeout=60), kept.result(timeout=60)
    finally:
        executor.close()
    assert first.interrupted and first.image is not None and 2 <= first.iterations < 300
    assert not second.interrupted and second.iterations == 5 and second.error is None
    assert any(job_id == "job" for job_id, _ in heard)


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_ctrl_c_keeps_the_remote_best_images(
    tmp_path: Path, content_path: Path, style_path: Path, tiny_dir: Path
) -> None:
    styles = [str(style_path), str(tiny_dir / "the_scream.png")]
    specs = plan([str(content_path)], styles, {**OPTIONS, "iterations": 300})

    class CtrlC(BatchListener):
        """Ctrl-C once both jobs have an image to keep."""

        def __init__(self) -> None:
            self.going: set[str] = set()
            self.pressed = False

        def progress(self, job_id: str, iteration: int, iterations: int) -> None:
            if iteration >= 2:
                self.going.add(job_id)
            if len(self.going) == 2 and not self.pressed:
                self.pressed = True  # once: a second Ctrl-C would leave without recording
                raise KeyboardInterrupt  # in the driver's thread, as a real Ctrl-C

    executor = RayExecutor(workers=2)
    with Store.in_folder(tmp_path) as store:
        try:
            with pytest.raises(KeyboardInterrupt):
                run_jobs(specs, store, tmp_path, executor, listener=CtrlC())
        finally:
            executor.close()
        jobs = store.jobs()
    assert [j.state for j in jobs] == ["cancelled", "cancelled"]
    for job in jobs:
        assert "best image in" in (job.error or "")
        assert (tmp_path / job.output.replace(".png", ".interrupted.png")).is_file()
        assert not (tmp_path / job.output).exists()


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_batch_runs_on_ray_from_the_command_line(
    tmp_path: Path, content_path: Path, style_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["batch", str(content_path), "--styles", str(style_path), "-o", str(out)]
    argv += ["--size", "48", "--iterations", "4", "--executor", "ray", "--workers", "2"]
    assert main(argv) == 0
    (result,) = out.glob("*.png")
    assert imageio.load_image(result).size[0] == 48
    assert "1 done" in capsys.readouterr().err
    assert main(["batch", "status", str(out)]) == 0
    assert "1 job: 1 done" in capsys.readouterr().out


@pytest.mark.slow
@needs_ray
@pytest.mark.usefixtures("local_ray")
def test_every_short_job_shows_every_progress_line_on_ray(
    tmp_path: Path, tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four jobs of a few iterations each, shorter than the driver's poll: each still logs every
    --print-every line and its last iteration, before its "done" line (only one of the four
    showed before: the poller dropped what a finished job had left in the hub)."""
    out = tmp_path / "out"
    argv = ["batch", str(tiny_dir / "tubingen.png"), str(tiny_dir / "shipwreck.png")]
    argv += ["--styles", str(tiny_dir / "starry_night.png"), str(tiny_dir / "the_scream.png")]
    argv += ["-o", str(out), "--size", "32", "--iterations", "4", "--print-every", "2"]
    assert main([*argv, "--executor", "ray", "--workers", "2"]) == 0
    lines = capsys.readouterr().err.splitlines()
    outputs = sorted(p.name for p in out.glob("*.png"))
    assert len(outputs) == 4
    for name in outputs:
        mine = [line for line in lines if line.startswith(f"{name}: iteration")]
        shown = [line.split(",")[0] for line in mine]  # "NAME: iteration 2/4, 1.3 s"
        assert shown == [f"{name}: iteration 2/4", f"{name}: iteration 4/4"], (name, lines)
        done = next(i for i, line in enumerate(lines) if name in line and "iteration" not in line)
        assert max(i for i, line in enumerate(lines) if line in mine) < done


def test_without_ray_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # import ray now raises ImportError
        "from impasto.cli import main\n"
        "sys.exit(main(['batch', 'a.png', '--styles', 'b.png', '-o', 'out', '--executor', 'ray']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert run.stderr.strip().endswith("Ray is not installed: pip install 'impasto[ray]'")
    assert not (tmp_path / "out").exists()


def test_impasto_and_its_commands_do_not_import_ray() -> None:
    code = (
        "import sys, impasto, impasto.jobs, impasto.cli, impasto.cli.batch\n"
        "from impasto.cli import main\n"
        "main(['batch', 'status', '.'])\n"  # a batch command that needs no Ray
        "print('ray' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr


@pytest.mark.slow
@needs_ray
def test_a_ray_started_here_runs_its_workers_at_our_priority() -> None:
    """Ray runs its workers at niceness 15 unless told otherwise; a local Ray that impasto starts
    gives them the command's own (measured: on a shared machine, 4x slower per frame at 15). In
    a child process, since this module's tests share a Ray started by the fixture."""
    code = (
        "import os, ray\n"
        "from impasto.jobs.rayexec import connect\n"
        "assert connect(None, 1)\n"
        "print(ray.get(ray.remote(lambda: os.nice(0)).remote()))\n"
        "ray.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_worker_niceness"}
    run = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == str(os.nice(0))
