"""The jobs package without running a transfer: plans, job identity, the store's claims."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from helpers import dead_pid
from impasto.cli import main
from impasto.errors import InputError, UsageError
from impasto.jobs import (
    BatchListener,
    Job,
    JobSpec,
    Outcome,
    Source,
    Store,
    Summary,
    Task,
    run_jobs,
)
from impasto.jobs.plan import expand_images, jobs_from_file, parse_sweep, plan
from impasto.jobs.spec import config_from
from impasto.jobs.store import STALE_AFTER_S, worker_id


@pytest.fixture
def images(tmp_path: Path, content_path: Path, style_path: Path) -> Path:
    d = tmp_path / "img"
    (d / "c").mkdir(parents=True)
    (d / "s").mkdir()
    (d / "c" / "a.png").write_bytes(content_path.read_bytes())
    (d / "c" / "b.png").write_bytes(style_path.read_bytes())
    (d / "c" / "notes.txt").write_text("not an image")
    (d / "s" / "x.png").write_bytes(style_path.read_bytes())
    (d / "s" / "y.png").write_bytes(content_path.read_bytes())
    return d


def test_folders_and_globs_expand_in_order_without_repeats(images: Path) -> None:
    c = str(images / "c")
    found = expand_images([c, str(images / "c" / "a.png"), str(images / "s" / "*.png")], "x")
    names = [Path(p).name for p in found]
    assert names == ["a.png", "b.png", "x.png", "y.png"]


@pytest.mark.parametrize(
    ("arg", "words"),
    [("nope.png", "file not found"), ("*.tiff", "no style image matches"), ("empty", "no style")],
)
def test_nothing_found_is_an_input_error(images: Path, arg: str, words: str) -> None:
    (images / "empty").mkdir()
    with pytest.raises(InputError, match=words):
        expand_images([str(images / arg)], "style")


def _two_by_two(images: Path, **kw: object) -> list[JobSpec]:
    contents = expand_images([str(images / "c")], "content")
    styles = expand_images([str(images / "s")], "style")
    return plan(contents, styles, {"size": 64, "iterations": 3}, **kw)  # type: ignore[arg-type]


def test_every_content_with_every_style_and_every_sweep_value(images: Path) -> None:
    sweeps = [parse_sweep("style_weight=1e2,1e3,1e4"), parse_sweep("--tv-weight=0,5")]
    specs = _two_by_two(images, sweeps=sweeps)
    assert len(specs) == 2 * 2 * 3 * 2
    assert len({s.id for s in specs}) == len(specs) == len({s.output for s in specs})
    combos = {(s.content.name, s.styles[0].name, s.options["style_weight"], s.options["tv_weight"])
              for s in specs}  # fmt: skip
    assert ("b", "y", 1e4, 5.0) in combos and len(combos) == 24
    assert specs[0].labels["sweep"] == "style_weight=1e2, tv_weight=0"
    assert all(s.options["seed"] == 0 for s in specs)  # fixed, so that a re-run is the same job


def test_pairs_zip_and_blend_takes_all_styles(images: Path) -> None:
    pairs = _two_by_two(images, pairs=True)
    assert [(s.content.name, s.styles[0].name) for s in pairs] == [("a", "x"), ("b", "y")]
    blends = _two_by_two(images, blend=True)
    assert [len(s.styles) for s in blends] == [2, 2]
    assert "__x+y__" in blends[0].output


def test_the_id_follows_contents_and_options_not_paths(images: Path, tmp_path: Path) -> None:
    (a,) = plan([str(images / "c" / "a.png")], [str(images / "s" / "x.png")], {"size": 64})
    moved = tmp_path / "elsewhere" / "a.png"
    moved.parent.mkdir()
    moved.write_bytes((images / "c" / "a.png").read_bytes())
    (b,) = plan([str(moved)], [str(images / "s" / "x.png")], {"size": 64})
    assert a.id == b.id and a.output == b.output
    (c,) = plan([str(moved)], [str(images / "s" / "x.png")], {"size": 64, "seed": 1})
    assert c.id != a.id and c.output != a.output
    moved.write_bytes((images / "s" / "x.png").read_bytes())  # same name, other picture
    (d,) = plan([str(moved)], [str(images / "s" / "x.png")], {"size": 64})
    assert d.id != a.id and d.output == a.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("style_wieght=1,2", "did you mean style_weight"),
        ("size=abc", "--sweep size takes an integer"),
        ("nothing", "NAME=VALUE"),
        ("size=", "has no values"),
    ],
)
def test_bad_sweeps_are_usage_errors(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_sweep(text)


def test_a_sweep_value_out_of_range_is_refused_before_any_work(images: Path) -> None:
    with pytest.raises(UsageError, match="--size must be between"):
        _two_by_two(images, sweeps=[parse_sweep("size=64,100000")])


def test_list_options_sweep_with_semicolons() -> None:
    s = parse_sweep("style_layers=conv1_1;conv1_1,conv2_1")
    assert s.values == (("conv1_1",), ("conv1_1", "conv2_1"))


def test_two_inputs_of_one_name_are_refused(images: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "a.png"
    other.parent.mkdir()
    other.write_bytes((images / "s" / "x.png").read_bytes())  # another picture
    with pytest.raises(UsageError, match="two jobs would write"):
        plan([str(images / "c" / "a.png"), str(other)], [str(images / "s" / "x.png")], {})


def test_jobs_files_csv_and_json_lines(images: Path) -> None:
    csv_file = images / "jobs.csv"
    csv_file.write_text(
        "content,style,output,style_weight,style_layers\n"
        "c/a.png,s/x.png,first.png,1e3,\n"
        'c/b.png,s/x.png;s/y.png,,,"conv1_1,conv2_1"\n'
    )
    first, second = jobs_from_file(str(csv_file), {"size": 64})
    assert first.output == "first.png" and first.options["style_weight"] == 1e3
    assert first.options["size"] == 64 and first.content.path == str(images / "c" / "a.png")
    assert len(second.styles) == 2 and second.options["style_layers"] == ("conv1_1", "conv2_1")
    jsonl = images / "jobs.jsonl"
    rows = [{"content": "c/a.png", "styles": ["s/x.png"], "output": "first.png", "size": 32}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (job,) = jobs_from_file(str(jsonl), {"size": 64})
    assert job.options["size"] == 32 and job.output == "first.png"


def test_files_a_jobs_file_names_are_read_from_its_folder(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = images / "jobs.csv"
    jobs.write_text("content,style,weights,init\nc/a.png,s/x.png,w/vgg.pth,c/b.png\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not the jobs file's folder
    (job,) = jobs_from_file(str(jobs), {})
    assert job.options["weights"] == str(images / "w" / "vgg.pth")
    assert job.options["init"] == str(images / "c" / "b.png")
    jobs.write_text("content,style,init\nc/a.png,s/x.png,noise\n")
    (noise,) = jobs_from_file(str(jobs), {})
    assert noise.options["init"] == "noise"  # a word, not a file


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("content,style\nc/a.png,s/nope.png\n", "line 2: cannot read image"),
        ("content,style,sise\nc/a.png,s/x.png,3\n", "line 2: unknown option 'sise'"),
        ("content,style,size\nc/a.png,s/x.png,0\n", "line 2: --size must be at least 16"),
        ("content,style,output\nc/a.png,s/x.png,../up.png\n", "a name inside OUTDIR"),
        ("content,style,output\nc/a.png,s/x.png,a.gif\n", "must end in .png"),
        ("content,style\nc/a.png,\n", "no 'style'"),
        ("photo,style\nc/a.png,s/x.png\n", "header row with a 'content' column"),
        ("content,style\n", "has no jobs"),
        ('{"content": "c/a.png", "style": "s/x.png", "size": "big"}\n', "must be an integer"),
        ('{"content": "c/a.png"\n', "not JSON"),
    ],
)
def test_bad_jobs_files_name_the_line(images: Path, text: str, words: str) -> None:
    f = images / "jobs.txt"
    f.write_text(text)
    with pytest.raises((UsageError, InputError), match=words):
        jobs_from_file(str(f), {})


# --- the store ------------------------------------------------------------------------------------


def _specs(n: int) -> list[JobSpec]:
    return [
        JobSpec(Source(f"c{i}.png", f"{i:064x}"), (Source("s.png", "f" * 64),), {"size": 64},
                f"out{i}.png", {"content": f"c{i}", "style": "s"})
        for i in range(n)
    ]  # fmt: skip


def test_store_is_wal_with_a_schema_version(tmp_path: Path) -> None:
    with Store.in_folder(tmp_path) as store:
        store.add(_specs(1))
    db = sqlite3.connect(tmp_path / "impasto.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "2"


def test_claim_finish_and_resubmit(tmp_path: Path) -> None:
    store = Store.in_folder(tmp_path)
    ids = store.add(_specs(3))
    me = worker_id()
    job = store.claim(me, ids)
    assert job is not None and job.id == ids[0] and job.state == "running" and job.attempts == 1
    assert store.finish(job.id, me, "done", device="cpu", seconds=1.5, terms={"total": 2.0})
    assert not store.finish(job.id, me, "failed")  # no longer running: nothing recorded
    second = store.claim(me, ids)
    assert second is not None and second.id == ids[1]
    store.finish(second.id, me, "failed", error="broken")
    third = store.claim(me, ids[:2])  # only the jobs asked for
    assert third is None
    store.add(_specs(3))  # the same plan again: done stays done, failed stays failed
    assert [j.state for j in store.jobs(ids)] == ["done", "failed", "queued"]
    store.add(_specs(3), retry_failed=True)
    assert [j.state for j in store.jobs(ids)] == ["done", "queued", "queued"]
    done = store.get(ids[0])
    assert done is not None and done.terms == {"total": 2.0} and done.device == "cpu"


def test_claims_keep_to_the_ids_asked_for_when_they_change(tmp_path: Path) -> None:
    # The ids of a plan go to SQLite once (a temporary table), so a claim for other ids, or
    # for the first ones again, must not take a job from the ids of the claim before.
    store = Store.in_folder(tmp_path)
    ids = store.add(_specs(4))
    me = worker_id()
    first = store.claim(me, ids[2:])
    assert first is not None and first.id == ids[2]
    again = store.claim(me, ids[2:])
    assert again is not None and again.id == ids[3]
    assert store.claim(me, ids[2:]) is None
    other = store.claim(me, [ids[1]])
    assert other is not None and other.id == ids[1]
    whole = store.claim(me, ids)
    assert whole is not None and whole.id == ids[0]
    assert store.claim(me, ids) is None and store.claim(me, []) is None


def test_a_job_id_hashes_the_canonical_json_of_its_inputs_options_and_output() -> None:
    # The id is written out by hand for speed: it must stay the hash of this JSON, or every
    # store's jobs would be planned again under new ids.
    spec = JobSpec(
        Source("c.png", "a" * 64), (Source("s.png", "b" * 64), Source("t.png", "c" * 64)),
        {"size": 64}, 'caf\u00e9 "x"\\.png', {},
        resolved=json.dumps({"init": "bild\u00e9", "size": 64, "w": [1.5, None]}),
    )  # fmt: skip
    key = {
        "content": "a" * 64,
        "styles": ["b" * 64, "c" * 64],
        "options": spec.settings,
        "output": spec.output,
    }
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    assert spec.id == hashlib.sha256(text.encode()).hexdigest()[:32]


def test_a_dead_claim_is_recovered_and_a_live_one_is_not(tmp_path: Path) -> None:
    store = Store.in_folder(tmp_path)
    ids = store.add(_specs(3))
    dead = dead_pid()
    host = worker_id().split(":")[0]
    store.claim(f"{host}:{dead}:0", ids)  # a process that died holding its job
    store.claim(worker_id(), ids)  # this process, alive, with a fresh lease
    old = store.claim(f"elsewhere:{os.getpid()}:0", ids)  # another host: only the lease tells
    assert old is not None
    assert store.recover() == 1
    assert [j.state for j in store.jobs(ids)] == ["queued", "running", "running"]
    assert store.recover(now=time.time() + STALE_AFTER_S + 1) == 2  # leases gone stale
    assert [j.state for j in store.jobs(ids)] == ["queued"] * 3


def _claim_all(folder: str, ids: list[str], out: multiprocessing.Queue[list[str]]) -> None:
    store = Store.in_folder(folder)
    me = worker_id()
    got: list[str] = []
    while (job := store.claim(me, ids)) is not None:
        got.append(job.id)
        store.finish(job.id, me, "done")
    out.put(got)


def test_processes_claiming_together_never_share_a_job(tmp_path: Path) -> None:
    ids = Store.in_folder(tmp_path).add(_specs(60))
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(tmp_path), ids, results)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=120)
    every = [i for got in claimed for i in got]
    assert sorted(every) == sorted(ids)  # each exactly once
    assert all(j.attempts == 1 and j.state == "done" for j in Store.in_folder(tmp_path).jobs())


def _open_together(
    folders: list[str], barrier: Any, out: multiprocessing.Queue[tuple[int, str | None]]
) -> None:
    """Open each of ``folders``' stores, new files, when every process is at the barrier; add
    jobs and read them. Reports (round, the error or None) for each."""
    for k, folder in enumerate(folders):
        barrier.wait(timeout=120)
        try:
            with Store.in_folder(folder) as store:
                store.add(_specs(2))
                assert len(store.jobs()) == 2
            out.put((k, None))
        except Exception as e:
            out.put((k, f"{type(e).__name__}: {e}"))


def open_together(root: Path, processes: int, rounds: int) -> list[tuple[int, str | None]]:
    """``processes`` processes open a new store at the same moment, ``rounds`` times over."""
    folders = [str(root / f"round{k}") for k in range(rounds)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results: multiprocessing.Queue[tuple[int, str | None]] = ctx.Queue()
    procs = [
        ctx.Process(target=_open_together, args=(folders, barrier, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=300) for _ in range(processes * rounds)]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()


@pytest.mark.slow
def test_processes_opening_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    # Switching a new file to WAL fails at once (no busy wait) while another process does the
    # same: before the store retried it, 2 processes released together failed most rounds.
    results = open_together(tmp_path, processes=8, rounds=25)
    errors = [(k, e) for k, e in results if e is not None]
    assert not errors, errors
    assert len(results) == 200


def test_a_store_opened_read_only_reads_while_another_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    with Store.in_folder(tmp_path) as store:
        ids = store.add(_specs(2))
    writer = sqlite3.connect(tmp_path / "impasto.sqlite", isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # a batch in the middle of a claim, say
    try:
        with Store.in_folder(tmp_path, readonly=True) as reader:
            assert [j.id for j in reader.jobs()] == ids
            with pytest.raises(InputError, match="cannot write"):
                reader.cancel(ids[0])  # and it cannot write
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with pytest.raises(InputError, match="no job store"):
        Store.in_folder(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()
    # A file with no store in it yet (another process is making one): it is made, not refused.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "impasto.sqlite").touch()
    with Store.in_folder(tmp_path / "new", readonly=True) as reader:
        assert reader.jobs() == []


def test_a_store_where_sqlite_cannot_use_wal_is_refused(tmp_path: Path) -> None:
    # An in-memory database stays in "memory" mode, as a file system without shared memory
    # keeps its file in another mode: without WAL, readers would block the writer.
    with pytest.raises(InputError, match="cannot use WAL mode"):
        Store(":memory:")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.in_folder(tmp_path).close()
    db = sqlite3.connect(tmp_path / "impasto.sqlite")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="newer impasto"):
        Store.in_folder(tmp_path)


# The first schema, as impasto's first stores were written: a store of it must still open.
_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL DEFAULT 'transfer',
    inputs TEXT NOT NULL, options TEXT NOT NULL, output TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0, worker TEXT, device TEXT, lease REAL,
    created REAL NOT NULL, started REAL, finished REAL, seconds REAL, losses TEXT, error TEXT
);
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_output ON jobs (output);
INSERT INTO meta VALUES ('schema', '1');
"""


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    spec = _specs(1)[0]
    db = sqlite3.connect(tmp_path / "impasto.sqlite")
    db.executescript(_SCHEMA_V1)
    db.execute(
        "INSERT INTO jobs (id, seq, inputs, options, output, state, created, finished) "
        "VALUES (?, 1, ?, '{}', 'out0.png', 'done', 1.0, 2.0)",
        (spec.id, spec.inputs_json()),
    )
    db.commit()
    db.close()
    with Store.in_folder(tmp_path) as store:
        (job,) = store.jobs()
        assert (job.id, job.state, job.kind, job.extra) == (spec.id, "done", "transfer", {})
        store.add(_specs(2))  # and it works as a new one does
        assert [j.state for j in store.jobs()] == ["done", "queued"]
    db = sqlite3.connect(tmp_path / "impasto.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "2"
    columns = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    assert columns[-1] == "extra"
    indexes = {r[1] for r in db.execute("PRAGMA index_list(jobs)")}
    assert "jobs_kind" in indexes
    db.close()
    Store.in_folder(tmp_path).close()  # opening it again migrates nothing twice


def _studio_job(store: Store, job_id: str, **extra: object) -> None:
    store.insert(
        job_id,
        kind="studio",
        inputs={"content": {"path": f"jobs/{job_id}/content.png", "sha256": "0" * 64}},
        options={"size": 32},
        output=f"jobs/{job_id}/result.png",
        labels={"content": "photo.jpg"},
        extra=extra,
    )


def test_kinds_keep_apart_and_expire_by_count_and_age(tmp_path: Path) -> None:
    store = Store.in_folder(tmp_path)
    batch = store.add(_specs(2))
    for i in range(5):
        _studio_job(store, f"s{i}", token=f"t{i}")
    # Batch claims, lists and recovery never see the studio's rows, nor it theirs.
    assert [j.id for j in store.jobs()] == batch
    assert [j.id for j in store.recent("studio")] == ["s4", "s3", "s2", "s1", "s0"]
    assert [j.id for j in store.recent("studio", limit=2)] == ["s4", "s3"]
    me = worker_id()
    for i in range(4):
        job = store.claim(me, [f"s{i}"])
        assert job is not None and job.kind == "studio" and job.extra == {"token": f"t{i}"}
        store.finish(job.id, me, "done", extra={"iteration": 3})
    claimed = store.claim(me)
    assert claimed is not None and claimed.id == batch[0]  # not s4, queued earlier as studio
    assert store.get("s0") is not None and store.get("s0").extra == {  # type: ignore[union-attr]
        "token": "t0",
        "iteration": 3,
    }
    now = time.time()
    # Count: the three most recently finished stay; the queued one is never expired.
    assert sorted(j.id for j in store.expire("studio", 3, 3600.0, now)) == ["s0"]
    # Age: finished over an hour ago.
    gone = store.expire("studio", 3, 3600.0, now + 3601)
    assert sorted(j.id for j in gone) == ["s1", "s2", "s3"]
    assert [j.id for j in store.recent("studio")] == ["s4"]
    assert len(store.jobs()) == 2  # the batch's rows are another kind's


def test_jobs_left_queued_or_running_are_recorded_interrupted(tmp_path: Path) -> None:
    store = Store.in_folder(tmp_path)
    batch = store.add(_specs(1))
    for i in range(3):
        _studio_job(store, f"s{i}")
    me = worker_id()
    store.claim(me, ["s0"])
    done = store.claim(me, ["s1"])
    assert done is not None
    store.finish(done.id, me, "done")
    assert sorted(store.interrupt("studio", "interrupted by a server stop")) == ["s0", "s2"]
    jobs = {j.id: j for j in store.recent("studio")}
    assert [jobs[i].state for i in ("s0", "s1", "s2")] == ["cancelled", "done", "cancelled"]
    assert jobs["s0"].error == "interrupted by a server stop" and jobs["s0"].worker is None
    assert jobs["s2"].finished is not None and jobs["s1"].error is None
    assert [j.state for j in store.jobs(batch)] == ["queued"]  # another kind: left alone
    with pytest.raises(InputError, match="cannot write the job store"):
        _studio_job(store, "s0")  # ids are unique


def test_a_file_that_is_not_a_store_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "impasto.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="cannot use the job store"):
        Store.in_folder(tmp_path)


def test_options_read_back_from_the_store_are_typed_again(tmp_path: Path) -> None:
    options = {"style_layers": ("conv1_1", "conv2_1"), "style_layer_weights": (1.0, 2.0)}
    spec = JobSpec(Source("c.png", "0" * 64), (Source("s.png", "1" * 64),), options, "o.png")
    store = Store.in_folder(tmp_path)
    store.add([spec])
    job = store.claim(worker_id())
    assert job is not None and job.options["style_layers"] == ["conv1_1", "conv2_1"]  # JSON
    cfg = config_from(job.options)
    assert cfg.style_layers == ("conv1_1", "conv2_1") and cfg.style_layer_weights == (1.0, 2.0)
    assert config_from(job.options).to_json() == spec.config().to_json()
    with pytest.raises(UsageError, match="--style-layer-weights must be between"):
        config_from({"style_layers": ["conv1_1", "conv2_1"], "style_layer_weights": [1, 1e39]})


# --- the driver, with an executor that runs nothing -----------------------------------------------


class FakeExecutor:
    """Answers at once (an error for iterations == 1, else an image), or, with ``hold``, only
    when stopped (then with the best image so far), as a worker does."""

    def __init__(self, slots: int = 1, hold: bool = False) -> None:
        self.slots, self.hold = slots, hold
        self.pending: list[tuple[Task, Future[Outcome]]] = []
        self.tasks: list[Task] = []

    def submit(self, task: Task, progress: object = None) -> Future[Outcome]:
        self.tasks.append(task)
        future: Future[Outcome] = Future()
        if self.hold:
            self.pending.append((task, future))
        elif task.options.get("iterations") == 1:
            future.set_result(Outcome(task.id, None, {}, 0.1, "cpu", error="bad", exit_status=3))
        else:
            image = b"image of " + task.content
            future.set_result(Outcome(task.id, image, {"total": 1.0}, 0.5, "cpu", iterations=2))
        return future

    def stop(self) -> None:
        for task, future in self.pending:
            future.set_result(Outcome(task.id, b"best", {}, 0.2, "cpu", 7, interrupted=True))

    def close(self) -> None:
        pass


def _real_specs(folder: Path, n: int, **options: object) -> list[JobSpec]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n + 1):
        (folder / f"{i}.png").write_bytes(f"picture {i}".encode())
        paths.append(str(folder / f"{i}.png"))
    return plan(paths[:n], paths[n:], {"size": 64, **options})


def test_the_driver_writes_results_and_records_failures(tmp_path: Path) -> None:
    good = _real_specs(tmp_path / "in", 2)
    bad = plan([good[0].content.path], [good[0].styles[0].path], {"size": 64, "iterations": 1})
    out = tmp_path / "out"
    fake = FakeExecutor()
    with Store.in_folder(out) as store:
        summary = run_jobs([*good, *bad], store, out, fake)
        jobs = {j.id: j for j in store.jobs()}
    assert (summary.done, summary.failed, summary.exit_status) == (2, 1, 3)
    assert fake.tasks[0].content == b"picture 0" and fake.tasks[0].styles == (b"picture 2",)
    assert (out / good[0].output).read_bytes() == b"image of picture 0"
    assert jobs[bad[0].id].state == "failed" and jobs[bad[0].id].error == "bad"
    assert jobs[good[1].id].terms == {"total": 1.0} and jobs[good[1].id].seconds == 0.5
    assert not (out / bad[0].output).exists()


def test_an_input_changed_since_planning_fails_its_job_alone(tmp_path: Path) -> None:
    specs = _real_specs(tmp_path / "in", 2)
    Path(specs[1].content.path).write_bytes(b"another picture")
    with Store.in_folder(tmp_path / "out") as store:
        summary = run_jobs(specs, store, tmp_path / "out", FakeExecutor())
        (failed,) = [j for j in store.jobs() if j.state == "failed"]
    assert summary.done == 1 and "changed since the batch started" in (failed.error or "")


def test_ctrl_c_keeps_best_images_and_leaves_the_store_consistent(tmp_path: Path) -> None:
    specs = _real_specs(tmp_path / "in", 3)
    out = tmp_path / "out"

    class CtrlC(BatchListener):
        def started(self, job: Job) -> None:
            if job.id == specs[1].id:  # as the second job is claimed, before it is submitted
                raise KeyboardInterrupt

    with Store.in_folder(out) as store:
        with pytest.raises(KeyboardInterrupt):
            run_jobs(specs, store, out, FakeExecutor(slots=2, hold=True), listener=CtrlC())
        first, second, third = store.jobs()
    assert first.state == "cancelled" and "iteration 7" in (first.error or "")
    assert (out / first.output.replace(".png", ".interrupted.png")).read_bytes() == b"best"
    assert not (out / first.output).exists()
    assert (second.state, second.attempts, second.worker) == ("queued", 1, None)  # let go
    assert (third.state, third.attempts) == ("queued", 0)


def test_a_result_deleted_or_changed_since_is_run_again(tmp_path: Path) -> None:
    specs = _real_specs(tmp_path / "in", 3)
    out = tmp_path / "out"
    with Store.in_folder(out) as store:
        run_jobs(specs, store, out, FakeExecutor())
        (out / specs[0].output).unlink()  # the user deleted one result ...
        (out / specs[1].output).write_bytes(b"image of picture X")  # ... and replaced another
        summary = run_jobs(specs, store, out, FakeExecutor())
        jobs = store.jobs([s.id for s in specs])
    assert (summary.missing, summary.done, summary.skipped) == (2, 2, 1)
    assert "2 redone (the result was gone or changed)" in str(summary)
    assert [j.attempts for j in jobs] == [2, 2, 1] and {j.state for j in jobs} == {"done"}
    assert (out / specs[0].output).read_bytes() == b"image of picture 0"
    assert (out / specs[1].output).read_bytes() == b"image of picture 1"
    assert jobs[0].extra["bytes"] == len(b"image of picture 0")


def test_a_finished_result_named_like_an_interrupted_file_is_kept(tmp_path: Path) -> None:
    first, second = _real_specs(tmp_path / "in", 2)
    out = tmp_path / "out"
    kept = dataclasses.replace(first, output="a.interrupted.png")
    later = dataclasses.replace(second, output="a.png")
    with Store.in_folder(out) as store:
        run_jobs([kept], store, out, FakeExecutor())
        run_jobs([later], store, out, FakeExecutor())  # another run, the other job
    assert (out / "a.interrupted.png").read_bytes() == b"image of picture 0"
    assert (out / "a.png").read_bytes() == b"image of picture 1"


def test_a_job_held_by_a_process_that_dies_is_taken_over(tmp_path: Path) -> None:
    specs = _real_specs(tmp_path / "in", 3)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = worker_id().split(":")[0]
    with Store.in_folder(out) as store:
        ids = store.add(specs)
        held = store.claim(f"{host}:{holder.pid}:0", ids)  # alive, with a fresh lease
        assert held is not None

        def kill() -> None:
            holder.kill()  # SIGKILL while it holds the job
            holder.wait()

        timer = threading.Timer(1.0, kill)
        timer.start()
        try:
            summary = run_jobs(specs, store, out, FakeExecutor())
        finally:
            timer.cancel()
            kill()
        job = store.get(held.id)
    assert summary.done == 3 and summary.elsewhere == 0
    assert job is not None and job.state == "done" and job.attempts == 2
    assert (out / job.output).read_bytes().startswith(b"image of picture")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("UPDATE jobs SET options = '{not json'", "has a damaged row"),
        ("UPDATE jobs SET seconds = 'slow', state = 'done'", "seconds is 'slow'"),
        ("UPDATE jobs SET labels = '[1, 2]'", "labels is list"),
        ("UPDATE meta SET value = '-1' WHERE key = 'schema'", "unreadable schema version '-1'"),
    ],
)
def test_a_store_damaged_outside_impasto_is_one_line_exit_3(
    tmp_path: Path, damage: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.in_folder(tmp_path) as store:
        store.add(_specs(2))
    db = sqlite3.connect(tmp_path / "impasto.sqlite")
    db.execute(damage)
    db.commit()
    db.close()
    assert main(["batch", "status", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("impasto: error: ") and words in err


def test_batch_status_reads_a_store_on_read_only_media(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch's folder on a read-only file system (a bind mount, as root; else skipped): SQLite
    cannot make the WAL index file there, and status still reads the table."""
    src, ro = tmp_path / "batch", tmp_path / "ro"
    ro.mkdir()
    with Store.in_folder(src) as store:
        store.add(_specs(2))
    bind = ["mount", "--bind", "-o", "ro", str(src), str(ro)]
    mounted = (
        subprocess.run(bind, check=False, capture_output=True) if shutil.which("mount") else None
    )
    if mounted is None or mounted.returncode != 0:
        pytest.skip("needs a read-only bind mount (root)")
    try:
        assert not os.access(ro, os.W_OK) or os.statvfs(ro).f_flag & os.ST_RDONLY
        assert main(["batch", "status", str(ro)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == "2 jobs: 2 queued" and len(out) == 4
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def _parts_add_up(line: str) -> tuple[int, list[str]]:
    """'N jobs: a x, b y (...), c z; T s' -> (N, the parts), checked to add up to N."""
    found = re.match(r"(\d+) jobs?: (.*); [\d.]+ s$", line)
    assert found, line
    parts = re.sub(r" \([^)]*\)", "", found.group(2)).split(", ")
    assert sum(int(p.split(" ")[0]) for p in parts) == int(found.group(1)), line
    return int(found.group(1)), parts


def test_a_rerun_summary_adds_up(tmp_path: Path) -> None:
    """Issue 33: '2 jobs: 1 done, 1 redone, 1 done before' counted the redone job twice."""
    specs = _real_specs(tmp_path / "in", 3)
    out = tmp_path / "out"
    with Store.in_folder(out) as store:
        first = run_jobs(specs, store, out, FakeExecutor())
        (out / specs[0].output).unlink()
        again = run_jobs(specs, store, out, FakeExecutor())
        third = run_jobs(specs, store, out, FakeExecutor())
    assert _parts_add_up(str(first)) == (3, ["3 done"])
    assert _parts_add_up(str(again)) == (3, ["1 redone", "2 done before"])
    assert _parts_add_up(str(third)) == (3, ["3 done before"])


@pytest.mark.parametrize(
    ("total", "counts"),
    [
        (5, {"done": 2, "redone": 1, "missing": 1, "skipped": 1, "failed": 1, "failed_before": 1}),
        (3, {"done": 0, "cancelled": 2, "elsewhere": 1}),
        (3, {"done": 1, "skipped": 1}),  # and one job another process finished meanwhile
        (0, {}),
    ],
)
def test_every_summary_adds_up(total: int, counts: dict[str, int]) -> None:
    _parts_add_up(str(Summary(total=total, seconds=1.0, **counts)))
