"""Never lose work, round three: batch and its job store under hostile-but-fair use (issue 28).

A stranger's ``impasto.sqlite`` left byte-identical, output names that cannot collide, a
user's file at a planned output refused, jobs files capped, large plans fast and talking, and
the words and counts of two batches on one folder. Most cases run ``main`` in this process at
tiny sizes; signals need a real process.
"""

from __future__ import annotations

import hashlib
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from helpers import finish, impasto_process, next_line, run_impasto
from impasto.cli import main
from impasto.errors import UsageError
from impasto.jobs import BatchListener, Job, LocalExecutor, Store, run_jobs
from impasto.jobs import plan as plan_module
from impasto.jobs.plan import MAX_JOBS_FILE_BYTES, jobs_from_file, parse_sweep, plan
from impasto.jobs.store import worker_id
from impasto.jobs.storefile import APPLICATION_ID

FAST = ["--size", "32", "--iterations", "2", "-q"]  # the settings of the clash


@pytest.fixture
def inputs(tmp_path: Path, content_path: Path, style_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "sq.png").write_bytes(content_path.read_bytes())
    (d / "ssq.png").write_bytes(style_path.read_bytes())
    return d


# --- a stranger's impasto.sqlite ------------------------------------------------------------------

_STRANGERS = {
    "plain": "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); "
    "INSERT INTO notes (text) VALUES ('my own data');",
    "own meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); "
    "INSERT INTO meta VALUES ('owner', 'me');",
    "incompatible jobs": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); "
    "INSERT INTO meta VALUES ('schema', '2'); "
    "CREATE TABLE jobs (name TEXT, cron TEXT); INSERT INTO jobs VALUES ('backup', '@daily');",
    "another application": "PRAGMA application_id = 1234; CREATE TABLE t (x); "
    "INSERT INTO t VALUES (1);",
}


def _stranger(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "impasto.sqlite"
    db = sqlite3.connect(path)
    db.executescript(script)
    db.commit()
    db.close()
    return path


def _fingerprint(path: Path) -> tuple[str, str, list[str]]:
    """The file's SHA-256, its journal mode (read from the header's bytes, not by a PRAGMA that
    might change it) and the names beside it."""
    data = path.read_bytes()
    mode = "wal" if data[18:20] == b"\x02\x02" else "rollback"
    return hashlib.sha256(data).hexdigest(), mode, sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("kind", list(_STRANGERS))
def test_a_strangers_store_is_refused_untouched_by_batch_and_status(
    inputs: Path, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    path = _stranger(out, _STRANGERS[kind])
    before = _fingerprint(path)
    assert before[1] == "rollback"
    args = ["batch", str(inputs / "sq.png"), "--styles", str(inputs / "ssq.png"), "-o", str(out)]
    for command in (["batch", "status", str(out)], [*args, *FAST]):
        assert main(command) == 3
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert "cannot use the job store" in err and "leaves it as it is" in err
        assert _fingerprint(path) == before


def test_serve_refuses_a_strangers_store_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = _stranger(data, _STRANGERS["own meta"])
    before = _fingerprint(path)
    done = run_impasto("serve", "--data-dir", data, "--port", "0", timeout=120)
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "not an impasto job store" in done.stderr
    assert _fingerprint(path)[:2] == before[:2]


def test_new_stores_are_marked_and_old_ones_recognised_then_upgraded(tmp_path: Path) -> None:
    with Store.in_folder(tmp_path / "new"):
        pass
    db = sqlite3.connect(tmp_path / "new" / "impasto.sqlite")
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # A store as impasto made them before the application id: read as it is, then marked.
    db.execute("PRAGMA application_id = 0")
    db.execute("PRAGMA user_version = 0")
    db.close()
    path = tmp_path / "new" / "impasto.sqlite"
    before = path.read_bytes()
    with Store.in_folder(tmp_path / "new", readonly=True) as store:
        assert store.jobs() == []
    assert path.read_bytes() == before
    with Store.in_folder(tmp_path / "new"):
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


# --- output names that cannot collide ------------------------------------------------------------


def _batch(inputs: Path, out: Path, *more: str) -> list[str]:
    return ["batch", str(inputs / "sq.png"), "--styles", str(inputs / "ssq.png"), "-o", str(out),
            *FAST, *more]  # fmt: skip


def test_two_batches_whose_settings_differ_keep_both_results(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 8 hex digits of the settings gave both sq__ssq__58c9b570.png: the second batch wrote
    # over the first's result, and status listed one job.
    out = tmp_path / "out"
    assert main(_batch(inputs, out, "--tv-weight", "50.189")) == 0
    (first,) = out.glob("*.png")
    kept = first.read_bytes()
    assert main(_batch(inputs, out, "--tv-weight", "90.647")) == 0
    assert first.read_bytes() == kept
    names = sorted(p.name for p in out.glob("*.png"))
    assert len(names) == 2 and all(len(n.split("__")[2]) == 32 + 4 for n in names)
    capsys.readouterr()
    assert main(["batch", "status", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 jobs: 2 done"
    # A rerun of the first finds its result done and leaves it alone.
    assert main(_batch(inputs, out, "--tv-weight", "50.189")) == 0
    assert first.read_bytes() == kept


def test_a_clash_of_names_is_found_from_the_store_not_from_names(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A jobs file names the output: two batches give one name to jobs of other settings.
    out = tmp_path / "out"
    for n, tv in enumerate(("1", "2")):
        (inputs / f"jobs{n}.csv").write_text(
            f"content,style,output,tv_weight\nsq.png,ssq.png,mine.png,{tv}\n"
        )
    args = ["batch", "-o", str(out), *FAST, "--jobs"]
    assert main([*args, str(inputs / "jobs0.csv")]) == 0
    kept = (out / "mine.png").read_bytes()
    capsys.readouterr()
    assert main([*args, str(inputs / "jobs1.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "'mine.png' is the finished result of another job" in err
    assert "tv_weight 1.0, not 2.0" in err
    assert (out / "mine.png").read_bytes() == kept
    with Store.in_folder(out, readonly=True) as store:
        assert [j.options["tv_weight"] for j in store.jobs()] == [1.0]


@pytest.mark.parametrize("which", ["result", "interrupted file"])
def test_a_users_file_at_a_planned_output_is_refused_before_any_work(
    inputs: Path, tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (spec,) = plan(
        [str(inputs / "sq.png")], [str(inputs / "ssq.png")], {"size": 32, "iterations": 2}
    )
    name = spec.output if which == "result" else spec.output.replace(".png", ".interrupted.png")
    (out / name).write_bytes(b"the user's own picture")
    assert main(_batch(inputs, out)) == 3
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no job of this folder's batch wrote it" in err
    assert (out / name).read_bytes() == b"the user's own picture"
    assert sorted(p.name for p in out.iterdir()) == [name]  # no store made, nothing written


def test_two_batches_on_one_folder_say_what_the_other_did(inputs: Path, tmp_path: Path) -> None:
    # Each printed "2 jobs: 1 done", exit 0, as if the other job had vanished.
    specs = plan([str(inputs / "sq.png")], [str(inputs / "ssq.png")], {"size": 32, "iterations": 2},
                 sweeps=[parse_sweep("seed=1,2")])  # fmt: skip
    out = tmp_path / "out"
    other = worker_id()

    class Beside(BatchListener):
        """A batch beside this one takes the other job and finishes it meanwhile."""

        def started(self, job: Job) -> None:
            with Store.in_folder(out) as store:
                taken = store.claim(other, [s.id for s in specs])
                if taken is not None:
                    (out / taken.output).write_bytes(b"its result")
                    store.finish(taken.id, other, "done")

    executor = LocalExecutor(["cpu"])
    try:
        with Store.in_folder(out) as store:
            summary = run_jobs(specs, store, out, executor, listener=Beside())
    finally:
        executor.close()
    assert (summary.total, summary.done, summary.done_elsewhere) == (2, 1, 1)
    assert str(summary).startswith("2 jobs: 1 done, 1 done by another process;")


# --- bounded inputs and large plans --------------------------------------------------------------


def test_a_jobs_file_over_the_cap_is_refused_unread(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read whole, an endless or huge jobs file grew the process by gigabytes.
    big = inputs / "jobs.csv"
    with open(big, "wb") as f:
        f.truncate(MAX_JOBS_FILE_BYTES + 1)  # sparse: no disk spent
    assert main(["batch", "--jobs", str(big), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "it is over 32 MiB" in err
    assert not (tmp_path / "out").exists()


def test_csv_errors_name_the_rows_first_line(inputs: Path) -> None:
    # A form feed ends a line for str.splitlines but not for CSV: later rows were one off. A
    # quoted field over two lines put a row's error on its last line.
    jobs = inputs / "jobs.csv"
    jobs.write_text("content,style,size\nsq.png,ssq.png,32\x0c\nsq.png,ssq.png,0\n")
    with pytest.raises(UsageError, match=r"jobs.csv, line 3: --size must be at least"):
        jobs_from_file(str(jobs), {})
    jobs.write_text('content,style,size\nsq.png,ssq.png,"3\n2"\n')
    with pytest.raises(UsageError, match=r"jobs.csv, line 2: size takes an integer"):
        jobs_from_file(str(jobs), {})


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("content,style,size,size", "the column 'size' twice"),
        ("content,style,style_weight,style-weight", "'style_weight' twice (as 'style-weight')"),
        ("content,style,styles", "the column 'style' twice (as 'styles')"),
        ("content,content,style", "the column 'content' twice"),
    ],
)
def test_a_column_given_twice_is_refused(inputs: Path, header: str, words: str) -> None:
    jobs = inputs / "jobs.csv"
    n = header.count(",") + 1
    jobs.write_text(f"{header}\n" + ",".join(["sq.png", "ssq.png", "64", "64"][:n]) + "\n")
    with pytest.raises(UsageError, match=re.escape(words)):
        jobs_from_file(str(jobs), {})
    jobs.with_suffix(".jsonl").write_text('{"content": "sq.png", "style": "ssq.png", "size": 32, '
                                          '"size": 64}\n')  # fmt: skip
    with pytest.raises(UsageError, match="the key 'size' is given twice"):
        jobs_from_file(str(jobs.with_suffix(".jsonl")), {})


def test_a_sweep_past_the_bound_is_refused_unless_asked_for(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(inputs / "sq.png"), "--styles", str(inputs / "ssq.png"), "-o", str(out)]
    seeds = "--sweep=seed=" + ",".join(map(str, range(10_001)))
    assert main([*args, seeds]) == 2  # the default bound, 10,000
    sizes = "--sweep=size=" + ",".join(map(str, range(32, 54)))
    assert main([*args, "--sweep=seed=" + ",".join(map(str, range(22))), sizes,
                 "--max-jobs", "100"]) == 2  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "the plan has 10,001 jobs" in err[0] and "of 10,000" in err[0]
    assert "the plan has 484 jobs (1 content-style pairs x 22 seed x 22 size)" in err[1]
    assert "pass --max-jobs 484" in err[1] and not out.exists()
    sweep = parse_sweep("seed=" + ",".join(map(str, range(30))))
    specs = plan([str(inputs / "sq.png")], [str(inputs / "ssq.png")], {}, sweeps=[sweep], limit=30)
    assert len(specs) == 30


def test_planning_says_how_far_it_is(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[tuple[int, int]] = []
    monkeypatch.setattr(plan_module, "PROGRESS_EVERY", 10)
    sweep = parse_sweep("seed=" + ",".join(map(str, range(35))))
    plan([str(inputs / "sq.png")], [str(inputs / "ssq.png")], {}, sweeps=[sweep],
         progress=lambda made, total: heard.append((made, total)))  # fmt: skip
    assert heard == [(0, 35), (10, 35), (20, 35), (30, 35)]


@pytest.mark.slow
def test_sigterm_while_planning_a_large_sweep_is_one_line_and_143(inputs: Path) -> None:
    # 100,000 jobs planned for 406 s in silence, and SIGTERM took 64 s to end it.
    names = ("seed", "iterations", "style_weight", "content_weight", "tv_weight")
    sweeps = [f"--sweep={n}=" + ",".join(map(str, range(1, 11))) for n in names]
    args = ["batch", "sq.png", "--styles", "ssq.png", "-o", "out", "--max-jobs", "100000", *sweeps]
    with impasto_process(args, inputs) as proc:
        line = next_line(proc.stderr, "a planning line")
        assert line.startswith("batch: planning: ") and line.rstrip().endswith("of 100,000 jobs")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc, timeout=120)
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "impasto: terminated (SIGTERM)"
    assert "Traceback" not in err and not (inputs / "out" / "impasto.sqlite").exists()
