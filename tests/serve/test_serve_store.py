"""``impasto serve`` and its job store: jobs that survive a restart (interrupted ones run again),
the retention policy, storage deleted under a running server, a bad data folder."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from helpers import TINY, MakeClient, submit, wait_for_job
from impasto import cli
from impasto.serve import intake, jobs

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and says so once, at import.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient


# --- hostile but fair: storage deleted under the server, jobs that can only fail -----------------


@pytest.mark.slow
def test_a_deleted_storage_folder_is_made_again_and_lost_results_are_gone(
    client: TestClient,
) -> None:
    import shutil

    root = client.app.state.jobs.root  # type: ignore[attr-defined]
    first = submit(client, options=TINY, content_example="tubingen", style_examples=["shipwreck"])
    assert first.status_code == 202, first.text
    assert wait_for_job(client, first.json()["id"])["state"] == "done"
    shutil.rmtree(root)  # a /tmp cleaner on a long-running server
    r = client.get(f"/api/jobs/{first.json()['id']}/result")
    assert r.status_code == 410, r.text
    assert "gone" in r.json()["detail"]
    again = submit(client, options=TINY, content_example="tubingen", style_examples=["shipwreck"])
    assert again.status_code == 202, again.text
    assert wait_for_job(client, again.json()["id"])["state"] == "done"
    assert client.get(f"/api/jobs/{again.json()['id']}/result").status_code == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 16, "style_scale": 0.05}, "less than 16 px on its short side"),
        ({"size": 64, "iterations": 10**12}, "--iterations must be between 1 and"),
        ({"size": 64, "style_weight": 1e300}, "--style-weight must be between 0 and"),
        ({"size": 64, "scales": list(range(16, 64))}, "stages"),
    ],
)
def test_a_job_that_could_only_fail_is_refused(
    client: TestClient, options: dict[str, Any], message: str
) -> None:
    r = submit(client, options=options, content_example="tubingen", style_examples=["shipwreck"])
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    ("size", "shown"),
    [(20 * 2**20, "20 MB"), (20 * 2**20 + 1, "20.1 MB"), (21_000_000, "20.1 MB"), (1, "0.1 MB")],
)
def test_sizes_over_a_limit_never_read_as_the_limit(size: int, shown: str) -> None:
    assert intake.megabytes(size) == shown


# --- a restart: the store keeps the jobs -----------------------------------------------------


@pytest.mark.slow
def test_recent_jobs_survive_a_restart_and_interrupted_ones_run_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    import sqlite3

    data = tmp_path / "studio"
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    first = make_client(data_dir=data)
    done = wait_for_job(first, submit(first, options=TINY, client_token="t1", **form).json()["id"])
    assert done["state"] == "done" and not done["interrupted"]
    result = first.get(done["result_url"]).content
    preview = first.get(done["preview_url"]).content
    running = submit(first, options={**TINY, "iterations": 500}, **form).json()
    waiting = submit(first, options={**TINY, "iterations": 2}, **form).json()
    wait_for_job(first, running["id"], {"running"}, ok=lambda s: s["iteration"] >= 1)
    first.__exit__(None, None, None)  # a clean stop, as Ctrl-C makes

    second = make_client(data_dir=data)
    listed = second.get("/api/jobs").json()
    assert [j["id"] for j in listed] == [waiting["id"], running["id"], done["id"]]
    by_id = {j["id"]: j for j in listed}
    # The finished job, as it was: options, labels, losses, its result and preview.
    again = by_id[done["id"]]
    for key in ("state", "options", "content", "styles", "iteration", "iterations", "loss"):
        assert again[key] == done[key], key
    assert second.get(again["result_url"]).content == result
    assert second.get(again["preview_url"]).content == preview
    # The running job and the waiting one were interrupted; the first keeps its image so far.
    cut = by_id[running["id"]]
    assert (cut["state"], cut["interrupted"], cut["error"]) == (
        "cancelled",
        True,
        "interrupted by a server stop",
    )
    assert 1 <= cut["iteration"] < 500 and second.get(cut["result_url"]).status_code == 200
    never = by_id[waiting["id"]]
    assert never["interrupted"] and never["started"] is None and never["result_url"] is None
    # A retry of the first request (same client token) still finds its job.
    retry = submit(second, options=TINY, client_token="t1", **form)
    assert retry.status_code == 200 and retry.json()["id"] == done["id"]

    # Run again: a new job from the stored inputs and options.
    r = second.post(never["rerun_url"])
    assert r.status_code == 202, r.text
    rerun = wait_for_job(second, r.json()["id"])
    assert rerun["state"] == "done" and rerun["id"] != waiting["id"]
    assert (rerun["content"], rerun["styles"]) == ("tubingen.jpg", ["starry_night.jpg"])
    assert rerun["options"] == never["options"] and rerun["iteration"] == 2
    assert second.post("/api/jobs/0123456789abcdef/rerun").status_code == 404
    second.__exit__(None, None, None)

    # A server killed outright records nothing: its jobs are still queued or running in the
    # store, and the next start finds them so.
    db = sqlite3.connect(data / "impasto.sqlite")
    db.execute("UPDATE jobs SET state = 'running', error = NULL WHERE id = ?", (rerun["id"],))
    db.commit()
    db.close()
    third = make_client(data_dir=data)
    killed = third.get(f"/api/jobs/{rerun['id']}").json()
    assert killed["state"] == "cancelled" and killed["interrupted"]
    assert len(third.get("/api/jobs").json()) == 4


@pytest.mark.slow
def test_the_retention_policy_holds_across_restarts(
    make_client: MakeClient, tmp_path: Path
) -> None:
    data = tmp_path / "studio"
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    client = make_client(data_dir=data)
    ids = [wait_for_job(client, submit(client, options=TINY, **form).json()["id"])["id"]]
    ids.append(wait_for_job(client, submit(client, options=TINY, **form).json()["id"])["id"])
    client.__exit__(None, None, None)
    (data / "jobs" / "0123456789abcdef").mkdir()  # a folder whose row is gone: removed
    client = make_client(data_dir=data, keep=1)  # a lower --keep applies at once
    assert [j["id"] for j in client.get("/api/jobs").json()] == ids[1:]
    assert sorted(p.name for p in (data / "jobs").iterdir()) == ids[1:]


@pytest.mark.slow
def test_a_rerun_must_wait_for_its_job_and_obey_this_servers_limits(
    make_client: MakeClient, tmp_path: Path
) -> None:
    data = tmp_path / "studio"
    client = make_client(data_dir=data)
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    job = submit(client, options={**TINY, "iterations": 500}, **form).json()
    assert job["rerun_url"] is None
    wait_for_job(client, job["id"], {"running"})
    r = client.post(f"/api/jobs/{job['id']}/rerun")
    assert r.status_code == 409 and "running" in r.json()["detail"]
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert wait_for_job(client, job["id"])["rerun_url"] == f"/api/jobs/{job['id']}/rerun"
    client.__exit__(None, None, None)
    smaller = make_client(data_dir=data, max_size=16)
    r = smaller.post(f"/api/jobs/{job['id']}/rerun")
    assert r.status_code == 422 and "over this server's limit of 16" in r.json()["detail"]
    # Inputs deleted behind the server's back: 410.
    for p in (data / "jobs" / job["id"]).glob("style-*.png"):
        p.unlink()
    assert smaller.post(f"/api/jobs/{job['id']}/rerun").status_code == 410


@pytest.mark.parametrize("problem", ["file", "newer", "corrupt", "busy", "unwritable"])
def test_a_bad_data_dir_is_one_line_at_start(
    problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import sqlite3

    data = tmp_path / "data"
    held = None
    if problem == "file":
        data.write_text("not a folder")
    elif problem == "newer":
        jobs.JobManager(data_dir=data).close()
        db = sqlite3.connect(data / "impasto.sqlite")
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
        db.close()
    elif problem == "corrupt":
        data.mkdir()
        (data / "impasto.sqlite").write_bytes(b"garbage" * 1000)
    elif problem == "busy":
        held = jobs.JobManager(data_dir=data)
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes any folder")
        data.mkdir(mode=0o500)
    try:
        status = cli.main(["serve", "--port", "0", "--data-dir", str(data)])
    finally:
        if held is not None:
            held.close()
    expected = {"file": 3, "newer": 3, "corrupt": 3, "busy": 2, "unwritable": 3}[problem]
    err = capsys.readouterr().err.strip().splitlines()
    assert status == expected, err
    assert len(err) == 1 and err[0].startswith("impasto: error: "), err
    message = {
        "file": "is not a folder",
        "newer": "made by a newer impasto",
        "corrupt": "cannot use the job store",
        "busy": "another impasto serve uses",
        "unwritable": "cannot write --data-dir",
    }[problem]
    assert message in err[0]
