"""``impasto serve --executor ray``: the studio's jobs on a local Ray of two one-CPU workers
(started once for this module), seen through the JSON API: two jobs at once and the third
queued, progress and previews from the workers, results written by the server, cancel and stop.
"""

from __future__ import annotations

import io
import os
import signal
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from PIL import Image

from helpers import WAIT, finish, impasto_process, job_status, next_line, wait_for_job, wait_until
from impasto import cli
from impasto.jobs import Outcome, Task
from impasto.jobs.worker import Progress, Reporter
from impasto.serve import jobs
from impasto.serve.app import create_app
from impasto.serve.settings import Limits, Settings

try:
    import ray

    from impasto.jobs.rayexec import RayExecutor
except ImportError:  # the tests that need it skip, saying why
    ray = None

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

needs_ray = pytest.mark.skipif(
    ray is None, reason="Ray is not installed: pip install 'impasto[ray]'"
)
FORM = {"content_example": "tubingen", "style_examples": ["the_scream"]}


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    """A local Ray with two one-CPU workers, their network loaded (about 15 s to start)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ex = RayExecutor(workers=2)
    try:
        yield ex
    finally:
        ex.close()
        ray.shutdown()


class _Borrowed:
    """The module's executor lent to one app: its JobManager closes this, not the workers."""

    def __init__(self, inner: RayExecutor) -> None:
        self.inner = inner

    @property
    def slots(self) -> int:
        return self.inner.slots

    def submit(
        self, task: Task, progress: Progress | None = None, report: Reporter | None = None
    ) -> Future[Outcome]:
        return self.inner.submit(task, progress, report)

    def cancel(self, job_id: str) -> None:
        self.inner.cancel(job_id)

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        # The manager waits for its jobs; so should this.
        wait_until(lambda: not self.inner._running, "the lent workers to be free", timeout=WAIT)


def _client(executor: RayExecutor, data_dir: Path) -> tuple[TestClient, jobs.JobManager]:
    settings = Settings(limits=Limits(max_size=64, max_iterations=5000), data_dir=data_dir)
    manager = jobs.JobManager(data_dir=data_dir, executor=_Borrowed(executor))
    client = TestClient(create_app(settings, manager), base_url="http://127.0.0.1:8000")
    client.__enter__()
    return client, manager


def _submit(client: TestClient, iterations: int) -> str:
    options = f'{{"size": 48, "iterations": {iterations}, "seed": 1}}'
    r = client.post("/api/jobs", data={**FORM, "options": options})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


@pytest.mark.slow
@needs_ray
def test_two_jobs_run_at_once_the_third_waits_and_all_end_with_results(
    executor: RayExecutor, tmp_path: Path
) -> None:
    client, _ = _client(executor, tmp_path / "data")
    try:
        long, short, third = _submit(client, 5000), _submit(client, 60), _submit(client, 4)
        # Both workers busy: the first two are running together, the third waits first in line.
        status = wait_until(
            lambda: {j: job_status(client, j) for j in (long, short, third)},
            "the second job to leave the queue",
            ok=lambda st: st[short]["state"] != "queued",
            timeout=WAIT,
        )
        assert status[long]["state"] == status[short]["state"] == "running", status
        assert status[third]["state"] == "queued" and status[third]["position"] == 1

        # The long job's progress (with its losses) and previews come back from its worker.
        running = wait_for_job(
            client,
            long,
            {"running"},
            ok=lambda s: s["iteration"] >= 2 and s["preview_url"] is not None,
            what="progress and a preview",
        )
        assert running["state"] == "running" and running["terms"]["style"] > 0
        preview = client.get(running["preview_url"])
        assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"  # a JPEG

        # The short job frees its worker: the third takes it while the long one still runs.
        assert wait_for_job(client, short)["state"] == "done"
        done = wait_for_job(client, third)
        assert done["state"] == "done" and done["iteration"] == 4
        assert job_status(client, long)["state"] == "running"

        # Cancel reaches the long job on its worker: it ends with its image so far.
        client.post(f"/api/jobs/{long}/cancel")
        cancelled = wait_for_job(client, long)
        assert cancelled["state"] == "cancelled" and cancelled["error"] is None
        assert 2 <= cancelled["iteration"] < 5000

        for job_id, iterations in ((short, 60), (third, 4), (long, None)):
            status = job_status(client, job_id)
            result = client.get(status["result_url"])
            assert result.status_code == 200
            with Image.open(io.BytesIO(result.content)) as img:
                assert img.format == "PNG" and max(img.size) == 48
                assert img.info["impasto:inputs"].startswith('{"content": "tubingen.jpg"')
                if iterations is not None:
                    assert int(img.info["impasto:iterations"]) == iterations
        # The events of a job tell its story: queued, running with progress, done.
        text = client.get(f"/api/jobs/{short}/events").text
        states = [line for line in text.splitlines() if line.startswith("data: ")]
        assert '"state":"queued"' in states[0] and '"state":"done"' in states[-1]
        assert any('"state":"running"' in s and '"iteration":0,' not in s for s in states)
    finally:
        client.__exit__(None, None, None)


@pytest.mark.slow
@needs_ray
def test_a_server_stop_ends_remote_jobs_with_their_best_image(
    executor: RayExecutor, tmp_path: Path
) -> None:
    client, manager = _client(executor, tmp_path / "data")
    try:
        job = _submit(client, 5000)
        waiting = [_submit(client, 5000), _submit(client, 5000)]  # one runs, one waits
        wait_for_job(client, job, {"running"}, ok=lambda s: s["iteration"] >= 2)
    finally:
        client.__exit__(None, None, None)  # the app's shutdown: the manager closes
    assert not executor._running  # the workers are free again
    ended = manager.status(job)
    assert ended is not None and ended.state == "cancelled" and ended.interrupted
    assert 2 <= ended.iteration < 5000 and ended.result_url is not None
    assert (tmp_path / "data" / "jobs" / job / "result.png").is_file()
    states = [manager.status(j) for j in waiting]
    assert all(s is not None and s.interrupted for s in states)
    assert any(s is not None and s.started is None for s in states)  # never handed over


@pytest.mark.slow
@needs_ray
def test_sigterm_stops_a_ray_server_cleanly(tmp_path: Path) -> None:
    """Ray's init makes SIGTERM exit at once; the server keeps its own clean stop (exit 0)."""
    args = ["serve", "--executor", "ray", "--workers", "1"]
    args += ["--port", "0", "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    with impasto_process(args, tmp_path, env) as proc:
        assert "impasto studio: http://" in next_line(proc.stdout, "the server's address")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc, timeout=WAIT)
    assert proc.returncode == 0, err
    assert err.rstrip().endswith("impasto: stopped")


def test_serve_without_ray_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    assert cli.main(["serve", "--executor", "ray", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["impasto: error: Ray is not installed: pip install 'impasto[ray]'"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "--ray-address and --workers go with --executor ray"),
        (["--executor", "ray", "--workers", "0"], "--workers must be at least 1"),
        (["--executor", "dask"], "--executor 'dask' is not valid; choose from local, ray"),
    ],
)
def test_serve_executor_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", *args, "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
