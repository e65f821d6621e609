"""``impasto batch`` end to end, with the real weights at 64 px and a few iterations.

What was run, skipped or redone is read from the job store (attempts, timestamps), not from
timings. Killing, Ctrl-C and two batches at once need real processes: those tests are slow.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import finish, impasto_process, wait_until
from impasto import imageio
from impasto.cli import main
from impasto.cli.batch import varying_options
from impasto.jobs import BatchListener, LocalExecutor, Report, Store, Task, run_jobs
from impasto.jobs.plan import expand_images, parse_sweep, plan
from impasto.jobs.sheet import batch_sheet
from impasto.jobs.store import Job
from impasto.jobs.worker import Worker

TIMEOUT = 300
FAST = ["--size", "64", "--iterations", "4", "-q", "--device", "cpu"]


@pytest.fixture
def inputs(tmp_path: Path, tiny_dir: Path) -> Path:
    """c/ with two photos, s/ with two paintings, a truncated painting bad.png."""
    d = tmp_path / "in"
    (d / "c").mkdir(parents=True)
    (d / "s").mkdir()
    for name in ("tubingen", "shipwreck"):
        (d / "c" / f"{name}.png").write_bytes((tiny_dir / f"{name}.png").read_bytes())
    for name in ("starry_night", "the_scream"):
        (d / "s" / f"{name}.png").write_bytes((tiny_dir / f"{name}.png").read_bytes())
    (d / "bad.png").write_bytes((tiny_dir / "the_scream.png").read_bytes()[:300])
    return d


def rows(out: Path) -> dict[str, Job]:
    with Store.in_folder(out, readonly=True) as store:
        return {j.output: j for j in store.jobs()}


def test_two_by_two_then_a_rerun_redoes_nothing(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    args = ["batch", str(inputs / "c"), "--styles", str(inputs / "s" / "*.png"), "-o", str(out)]
    assert main([*args, *FAST, "--contact-sheet", str(sheet)]) == 0
    first = rows(out)
    assert len(first) == 4 and {j.state for j in first.values()} == {"done"}
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(first)
    assert pngs[0].startswith("shipwreck__starry_night__") and len(pngs[0].split("__")[2]) == 36
    for name, job in first.items():
        assert job.attempts == 1 and job.device == "cpu" and job.seconds and job.seconds > 0
        assert job.terms is not None and {"total", "content", "style"} <= set(job.terms)
        meta = imageio.read_metadata(out / name)
        options = json.loads(meta["impasto:options"])
        assert options["size"] == 64 and options["iterations"] == 4 and options["seed"] == 0
        sources = json.loads(meta["impasto:inputs"])
        assert Path(sources["content"]).stem == job.labels["content"]
        assert Path(sources["styles"]).stem == job.labels["style"]
        assert max(imageio.load_image(out / name).size) == 64
    with Image.open(sheet) as im:  # 2 rows x 2 columns of 256-px panels, labelled
        assert 2 * 256 < im.width < 3 * 256 and 2 * 192 < im.height < 3 * 256
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    assert main([*args, *FAST]) == 0
    again = rows(out)
    for name, job in again.items():  # not claimed again, not rewritten
        assert (job.attempts, job.started, job.finished) == (
            first[name].attempts,
            first[name].started,
            first[name].finished,
        )
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps

    capsys.readouterr()
    assert main(["batch", "status", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + 4 + 1 and table[-1] == "4 jobs: 4 done"
    assert all(line.startswith("done ") for line in table[1:5])


def test_a_failing_job_is_recorded_and_the_others_finish(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(inputs / "c"), "--styles", str(inputs / "s" / "the_scream.png")]
    args += [str(inputs / "bad.png"), "-o", str(out), *FAST]
    assert main(args) == 6
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("impasto: error: 2 of 4 jobs failed")
    jobs = rows(out)
    failed = [j for j in jobs.values() if j.state == "failed"]
    assert len(failed) == 2 and all(j.labels["style"] == "bad" for j in failed)
    assert all("truncated or corrupt" in (j.error or "") for j in failed)
    assert sum(j.state == "done" for j in jobs.values()) == 2
    assert not [p for p in out.iterdir() if "bad" in p.name]  # no output for a failed job

    assert main(args) == 6  # failed jobs stay failed ...
    assert all(j.attempts == 1 for j in rows(out).values())
    assert main([*args, "--retry-failed"]) == 6  # ... unless asked to retry
    assert [j.attempts for j in rows(out).values() if j.state == "failed"] == [2, 2]


def test_sweeps_jobs_files_and_the_network_loaded_once(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    contents = [str(inputs / "c" / "tubingen.png")]
    styles = [str(inputs / "s" / "starry_night.png")]
    specs = plan(
        contents,
        styles,
        {"size": 64, "iterations": 3},
        sweeps=[parse_sweep("style_weight=1e2,1e4,1e6")],
    )
    executor = LocalExecutor(["cpu"])
    with Store.in_folder(out) as store:
        summary = run_jobs(specs, store, out, executor)
    executor.close()
    assert summary.done == 3 and summary.failed == 0
    assert executor.workers[0].networks_loaded == 1  # the weights once, not once per job
    metas = [json.loads(imageio.read_metadata(out / s.output)["impasto:options"]) for s in specs]
    assert [m["style_weight"] for m in metas] == [1e2, 1e4, 1e6]
    with Store.in_folder(out) as store:
        sheet = batch_sheet(store.jobs(), out)  # along the sweep: one row of three
    assert 3 * 256 < sheet.width < 5 * 256 and 192 < sheet.height < 2 * 192  # (and a label)

    jobs_file = inputs / "jobs.csv"
    jobs_file.write_text(
        "content,style,output,iterations\nc/tubingen.png,s/the_scream.png,j.jpg,2\n"
    )
    assert main(["batch", "--jobs", str(jobs_file), "-o", str(out), "--size", "64", "-q"]) == 0
    meta = imageio.read_metadata(out / "j.jpg")  # a JPEG, with its options in its comment
    assert json.loads(meta["impasto:options"])["iterations"] == 2


# --- real processes -------------------------------------------------------------------------------


def _states(out: Path) -> list[str]:
    if not (out / "impasto.sqlite").exists():
        return []
    return [j.state for j in rows(out).values()]


SLOW = ["--size", "64", "--iterations", "60", "-q"]

# ``impasto ARGS`` whose transfers touch the file FILE at each iteration: a sign, with no
# timing, that a job is optimising (a Ctrl-C from then on keeps its best image so far).
PROBED = [
    sys.executable,
    "-c",
    "import pathlib, sys\n"
    "from impasto import optimize\n"
    "from impasto.cli import main\n"
    "run = optimize.Transfer.run\n"
    "def probed(self, on_step=None):\n"
    "    def step(s):\n"
    "        pathlib.Path(sys.argv[1]).touch()\n"
    "        if on_step is not None:\n"
    "            on_step(s)\n"
    "    return run(self, step)\n"
    "optimize.Transfer.run = probed\n"
    "sys.exit(main(sys.argv[2:]))\n",
]  # fmt: skip  FILE ARGS


@pytest.mark.slow
def test_a_killed_batch_resumes_without_redoing_finished_jobs(inputs: Path) -> None:
    args = ["batch", "c", "--styles", "s", "-o", "out", *SLOW]
    out = inputs / "out"
    with impasto_process(args, inputs) as proc:
        wait_until(
            lambda: {"done", "running"} <= set(_states(out)),
            "a job done and the next running",
            proc=proc,
        )
        proc.kill()  # SIGKILL: no clean-up at all
        finish(proc)
    before = rows(out)
    done = {k: j for k, j in before.items() if j.state == "done"}
    (held,) = [k for k, j in before.items() if j.state == "running"]

    again = ["batch", str(inputs / "c"), "--styles", str(inputs / "s"), "-o", str(out)]
    assert main([*again, *SLOW]) == 0
    after = rows(out)
    assert {j.state for j in after.values()} == {"done"} and len(after) == 4
    for k, j in done.items():  # finished work is kept, not redone
        assert (after[k].attempts, after[k].finished) == (1, j.finished)
    assert after[held].attempts == 2  # the job the dead process held ran again
    assert sorted(p.name for p in out.glob("*.png")) == sorted(after)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left"


@pytest.mark.slow
def test_a_batch_beside_one_killed_holding_a_job_runs_that_job_too(inputs: Path) -> None:
    """Two batches on one folder; the first killed (SIGKILL) while it holds a job and the
    second is running one of its own: the second takes the dead one's job over (its pid is
    gone) and exits 0 only once every job is done, rather than "1 running in another process"."""
    args = ["batch", "c", "--styles", "s", "-o", "out", *SLOW]
    out = inputs / "out"

    def workers() -> set[str]:
        if not (out / "impasto.sqlite").exists():
            return set()
        return {j.worker or "" for j in rows(out).values() if j.state == "running"}

    with impasto_process(args, inputs) as first:
        wait_until(lambda: len(workers()) == 1, "the first batch's job", proc=first)
        with impasto_process(args, inputs) as second:
            wait_until(lambda: len(workers()) == 2, "a job of each batch", proc=second)
            first.kill()  # SIGKILL while it holds a job
            finish(first)
            mine = f":{first.pid}:"
            (held,) = [
                k for k, j in rows(out).items() if j.state == "running" and mine in (j.worker or "")
            ]
            _, err = finish(second)
    assert second.returncode == 0, err
    after = rows(out)
    assert {j.state for j in after.values()} == {"done"} and len(after) == 4
    assert after[held].attempts == 2 and f":{second.pid}:" in (after[held].worker or "")
    assert sorted(p.name for p in out.glob("*.png")) == sorted(after)


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_image_and_the_next_run_finishes(
    inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = ["c/tubingen.png", "--styles", "s/starry_night.png", "-o", "out"]
    options = ["--size", "64", "--iterations", "200", "-q"]
    out, first = inputs / "out", inputs / "first-iteration"
    with impasto_process([first, "batch", *one, *options], inputs, command=PROBED) as proc:
        wait_until(first.exists, "the first iteration", proc=proc)
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
    assert proc.returncode == 130, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "interrupted" in err and ".interrupted.png" in err and "run the same command" in err
    (stopped,) = rows(out).values()
    assert stopped.state == "cancelled" and "best image" in (stopped.error or "")
    partial = out / stopped.output.replace(".png", ".interrupted.png")
    assert max(imageio.load_image(partial).size) == 64
    assert not (out / stopped.output).exists()

    monkeypatch.chdir(inputs)
    assert main(["batch", *one, *options]) == 0
    (after,) = rows(out).values()
    assert after.state == "done" and after.attempts == 2
    assert not partial.exists()  # the result supersedes the best image so far


@pytest.mark.slow
def test_two_batches_on_one_folder_run_every_job_exactly_once(inputs: Path) -> None:
    args = ["batch", "c", "--styles", "s", "-o", "out", "--size", "64", "--iterations", "30"]
    with (
        impasto_process([*args, "-q"], inputs) as one,
        impasto_process([*args, "-q"], inputs) as two,
    ):
        errs = [finish(one)[1], finish(two)[1]]
    assert [one.returncode, two.returncode] == [0, 0], errs
    jobs = rows(inputs / "out")
    assert len(jobs) == 4
    assert all(j.state == "done" and j.attempts == 1 for j in jobs.values())
    assert sorted(p.name for p in (inputs / "out").glob("*.png")) == sorted(jobs)


def test_two_workers_share_the_jobs_and_each_loads_the_network_once(
    inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    contents = expand_images([str(inputs / "c")], "content")
    styles = expand_images([str(inputs / "s")], "style")
    specs = plan(contents, styles, {"size": 64, "iterations": 6})
    executor = LocalExecutor(["cpu", "cpu"])  # as on a machine with two GPUs
    heard: list[tuple[str, int]] = []

    class Listen(BatchListener):
        def progress(self, job_id: str, iteration: int, iterations: int) -> None:
            heard.append((job_id, iteration))

    with Store.in_folder(out) as store:
        summary = run_jobs(specs, store, out, executor, listener=Listen())
        jobs = store.jobs()
    executor.close()
    assert summary.done == 4 and all(j.state == "done" and j.attempts == 1 for j in jobs)
    assert [w.networks_loaded for w in executor.workers] == [1, 1]  # both worked, loaded once
    assert {job_id for job_id, _ in heard} == {j.id for j in jobs}
    assert max(it for _, it in heard) == 6


def test_a_worker_reports_losses_and_previews_and_paints_only_outside_the_kept_part(
    content_path: Path, style_path: Path
) -> None:
    photo = imageio.load_image(content_path)  # 64 px wide
    keep = Image.new("L", photo.size, 0)
    keep.paste(255, (0, 0, photo.width // 2, photo.height))  # the left half stays the photo
    buf = io.BytesIO()
    keep.save(buf, format="PNG")
    names = {"content": "c.png", "styles": "s.png", "keep": "k.png"}
    options = {"size": 64, "iterations": 12, "seed": 0}
    task = Task(
        "masked",
        content_path.read_bytes(),
        (style_path.read_bytes(),),
        options,
        names,
        keep=buf.getvalue(),
        preview_s=0.0,  # a preview with every report
        preview_pixels=32,
    )
    reports: list[Report] = []
    executor = LocalExecutor(["cpu"])
    outcome = executor.submit(task, report=reports.append).result(TIMEOUT)
    executor.close()
    assert outcome.error is None and outcome.iterations == 12
    assert reports[0].iteration == 1 and reports[-1].iteration == 12  # the first, the last
    last = reports[-1]
    assert last.terms["style"] > 0 and last.loss == pytest.approx(sum(last.terms.values()))
    assert last.preview is not None
    with Image.open(io.BytesIO(last.preview)) as img:
        assert img.format == "JPEG" and max(img.size) == 32
    # Without previews asked for, the reports come without them.
    plain: list[Report] = []
    Worker("cpu").run(Task("plain", task.content, task.styles, options, names), report=plain.append)
    assert plain and all(r.preview is None for r in plain)

    out = np.asarray(imageio.decode_image(outcome.image or b"", "out"), dtype=np.float64)
    photo_px = np.asarray(photo, dtype=np.float64)
    quarter = photo.width // 4
    kept = np.abs(out[:, :quarter] - photo_px[:, :quarter]).mean()
    painted = np.abs(out[:, -quarter:] - photo_px[:, -quarter:]).mean()
    assert kept < 3 and painted > 3 * kept, (kept, painted)
    with Image.open(io.BytesIO(outcome.image or b"")) as img:
        assert json.loads(img.info["impasto:inputs"])["keep"] == "k.png"


def test_previews_come_at_the_first_and_last_iterations_and_every_nth_between(
    content_path: Path, style_path: Path
) -> None:
    options = {"size": 32, "iterations": 7, "seed": 0}
    task = Task("every", content_path.read_bytes(), (style_path.read_bytes(),), options, {},
                preview_s=0.0, preview_every=3)  # fmt: skip
    reports: list[Report] = []
    outcome = Worker("cpu").run(task, report=reports.append)
    assert outcome.error is None and outcome.iterations == 7
    assert [r.iteration for r in reports if r.preview is not None] == [1, 3, 6, 7]


def test_cancel_stops_one_job_and_lets_the_other_finish(
    content_path: Path, style_path: Path
) -> None:
    executor = LocalExecutor(["cpu", "cpu"])
    data = content_path.read_bytes(), (style_path.read_bytes(),)
    options = {"size": 48, "seed": 0}

    def cancel_at_two(job_id: str, iteration: int, iterations: int) -> None:
        if iteration >= 2:
            executor.cancel("long")

    long = executor.submit(Task("long", *data, {**options, "iterations": 300}, {}), cancel_at_two)
    short = executor.submit(Task("short", *data, {**options, "iterations": 5}, {}))
    executor.cancel("nothing running")  # a job not running here: nothing happens
    stopped, done = long.result(timeout=TIMEOUT), short.result(timeout=TIMEOUT)
    executor.close()
    assert stopped.interrupted and stopped.image is not None and 2 <= stopped.iterations < 300
    assert not done.interrupted and done.iterations == 5 and done.image is not None


def test_status_shows_the_options_that_vary(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3x2 sweep's six jobs are told apart by a column per swept option."""
    out = tmp_path / "out"
    specs = plan(
        [str(inputs / "c" / "tubingen.png")],
        [str(inputs / "s" / "starry_night.png")],
        {"size": 64, "iterations": 3},
        sweeps=[parse_sweep("tv_weight=0,10,100"), parse_sweep("style_weight=1e3,1e5")],
    )
    with Store.in_folder(out) as store:
        store.add(specs)
        assert varying_options(store.jobs()) == ["style_weight", "tv_weight"]
    capsys.readouterr()
    assert main(["batch", "status", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:7] == [
        "state",
        "tries",
        "seconds",
        "device",
        "style_weight",
        "tv_weight",
        "output",
    ]
    shown = {tuple(line.split()[4:6]) for line in table[1:7]}
    assert shown == {(b, t) for b in ("1000", "100000") for t in ("0", "10", "100")}


def test_a_relative_contact_sheet_goes_in_outdir(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["batch", str(inputs / "c" / "tubingen.png"), "--styles"]
    args += [str(inputs / "s" / "starry_night.png"), "-o", str(out), *FAST]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main([*args, "--contact-sheet", "sheet.png"]) == 0
    finally:
        os.chdir(cwd)
    assert (out / "sheet.png").is_file() and not (tmp_path / "sheet.png").exists()


def test_a_jobs_log_lines_keep_one_clock(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 33: "iteration 20/20, 11.5 s" then "done ... 10.4 s" (the run's time alone): the
    line of a finished job counts from its start, as its iteration lines do, and so does the
    time the store records for it."""
    out = tmp_path / "out"
    args = [
        "batch",
        str(inputs / "c" / "tubingen.png"),
        "--styles",
        str(inputs / "s" / "starry_night.png"),
    ]
    quiet_less = ["--size", "64", "--iterations", "4", "--device", "cpu", "--print-every", "2"]
    assert main([*args, "-o", str(out), *quiet_less]) == 0
    err = capsys.readouterr().err
    last = re.findall(r"iteration 4/4, ([\d.]+) s$", err, re.M)
    done = re.search(r"^job 1/1 done: .*, ([\d.]+) s$", err, re.M)
    assert last and done, err
    assert float(done.group(1)) >= float(last[-1])
    (job,) = rows(out).values()
    assert job.seconds is not None and job.seconds >= float(last[-1]) - 0.1  # rounded to 0.1 s
