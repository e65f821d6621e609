"""``impasto batch``: many transfers, resumable, kept in ``OUTDIR/impasto.sqlite``.

``impasto batch CONTENT... --styles STYLE... -o OUTDIR [options]`` plans contents x styles (or
``--pairs``, ``--blend``) x ``--sweep`` values, or reads ``--jobs FILE``, and runs what is not
done yet (:mod:`impasto.jobs`). ``impasto batch status OUTDIR`` prints the table of a batch's
jobs: a first positional ``status`` with neither ``--styles`` nor ``--jobs`` asks for it (a
content image called ``status`` still works with ``--styles``).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TransferConfig
from ..errors import ExitStatus, InputError, UsageError
from ..jobs import (
    Executor,
    ExecutorOptions,
    LocalExecutor,
    Store,
    local_devices,
    require_ray,
    run_jobs,
)
from ..jobs.driver import interrupted_name
from ..jobs.outputs import unrecorded_files
from ..jobs.plan import BATCH_DEFAULT_SEED, expand_images, jobs_from_file, parse_sweep, plan
from ..jobs.spec import JobSpec
from ..jobs.store import STORE_NAME, Job, abandoned
from ..paths import Named, check_apart, check_folder_exists, check_name_length
from . import PROG
from .options import (
    SPATIAL_FIELDS,
    ConfigFlags,
    add_common,
    add_config_options,
    check_output_folders,
    config_inputs,
    examples,
    options_from_args,
)
from .spatial import check_no_spatial, refuse_spatial_options

if TYPE_CHECKING:
    from .progress import BatchProgress

# The job store and the plan are light; the workers (torch), the images, the contact sheet and
# the progress bars are imported where a batch runs: 'batch status' and --help wait for none.
# main() imports a command's ENGINE first, with Ctrl-C held (cli.signals).
ENGINE = ("impasto.jobs.worker", "impasto.jobs.sheet", "impasto.cli.progress")


# The one statement of --sweep's syntax (the manual's batch page quotes it).
SWEEP_HELP = (
    "run every value of a transfer option, NAME=V1,V2,... (several --sweep multiply); when "
    "the option takes a list (--style-layers, --style-layer-weights...), separate the values "
    "by ';' and each value's items by ',': --sweep 'style_layers=conv1_1,conv2_1;conv3_1' is "
    "two runs (quote it: ';' ends a shell command) (default: none)"
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    b = sub.add_parser(
        "batch",
        help="many transfers (contents x styles x option sweeps), resumable; "
        "'batch status OUTDIR' lists a batch's jobs",
        description="Run every CONTENT with every STYLE (or --pairs, --blend) for every "
        "combination of --sweep values, or the jobs of --jobs FILE, into OUTDIR. Re-running the "
        "same command skips finished jobs and runs the rest. 'impasto batch status OUTDIR' "
        "prints the table of jobs.",
        epilog=examples(
            "impasto batch photos/ --styles paintings/ -o out/ --size 384",
            "impasto batch photo.jpg --styles starry_night.jpg -o study/ --size 256 "
            "--sweep style_weight=1e3,1e4 --contact-sheet sheet.png",
            "impasto batch photo.jpg --styles starry_night.jpg -o layers/ "
            "--sweep 'style_layers=conv1_1,conv2_1;conv3_1,conv4_1'",
            "impasto batch --jobs jobs.csv -o out/",
            "impasto batch status out/",
        ),
        allow_abbrev=False,
    )
    b.add_argument(
        "contents", metavar="CONTENT", nargs="*", help="content images, folders or globs"
    )
    b.add_argument(
        "--styles",
        nargs="+",
        metavar="STYLE",
        default=None,
        help="style images, folders, globs (required, unless --jobs)",
    )
    b.add_argument(
        "-o",
        "--output",
        metavar="OUTDIR",
        default=None,
        help="output folder (required, but for 'batch status')",
    )
    how = b.add_mutually_exclusive_group()
    how.add_argument(
        "--pairs", action="store_true", help="the i-th content with the i-th style only"
    )
    how.add_argument(
        "--blend", action="store_true", help="every content with all the styles blended"
    )
    b.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help=SWEEP_HELP,
    )
    b.add_argument(
        "--jobs",
        metavar="FILE",
        default=None,
        help="CSV or JSON Lines: one job a row (content, style(s), output, any options) "
        "(default: none)",
    )
    b.add_argument("--retry-failed", action="store_true", help="run jobs that failed before again")
    b.add_argument(
        "--max-jobs",
        type=int,
        metavar="N",
        default=MAX_JOBS,
        help="refuse a plan of contents x styles x sweeps of more jobs than this (sweeps "
        f"multiply fast) (default: {MAX_JOBS:,})",
    )
    b.add_argument(
        "--contact-sheet",
        metavar="SHEET",
        default=None,
        help="also lay the results out, labelled, on one picture; a relative SHEET goes in "
        "OUTDIR (default: none)",
    )
    add_config_options(b, ConfigFlags(ExecutorOptions))
    seed = {"seed": f"{BATCH_DEFAULT_SEED}, so that a job is the same job on the next run"}
    add_config_options(b, ConfigFlags(leave_out=SPATIAL_FIELDS, given=seed))
    refuse_spatial_options(b, "batch")
    add_common(b)
    # OUTDIR itself may be made (its last level): the folder it goes in must exist.
    b.set_defaults(run=_run_batch, engine=ENGINE, output_files=(("output", "the output folder "),))


def status_parser(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``impasto batch status OUTDIR``'s own parser (and its own --help): main() hands it the
    command line when the word after ``batch`` is ``status`` and neither --styles nor --jobs is
    given (a content image called ``status`` still works with them)."""
    s = parser_class(
        prog=f"{PROG} batch status",
        description="Print the table of a batch's jobs (state, tries, time, device, the options "
        "that differ, output, error) and a count by state. Reads OUTDIR/impasto.sqlite without "
        "changing it; a batch still running elsewhere is fine.",
        epilog=examples("impasto batch status out/"),
        allow_abbrev=False,
    )
    s.add_argument("outdir", metavar="OUTDIR", nargs="*", help="the batch's output folder")
    s.add_argument("-o", "--output", default=None, help=argparse.SUPPRESS)  # as batch takes it
    s.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback on errors (for bug reports)",
    )
    s.set_defaults(command="batch status", run=_run_status_command)
    return s


MAX_JOBS = 10_000  # the bound of a plan unless --max-jobs says otherwise


class _Planning:
    """A line on stderr now and then while a plan takes more than a second to make, check and
    record (a sweep of 100,000 jobs takes several): that it is going, and how far."""

    FIRST_S, EVERY_S = 1.0, 2.0

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.monotonic()
        self.last = self.started - self.EVERY_S + self.FIRST_S
        self.spoke = False

    def __call__(self, made: int, total: int, what: str = "planning") -> None:
        now = time.monotonic()
        if self.quiet or now - self.last < self.EVERY_S:
            return
        self.last, self.spoke = now, True
        print(f"batch: {what}: {made:,} of {total:,} jobs", file=sys.stderr, flush=True)

    def step(self, what: str, total: int) -> None:
        """A stage that reports no count of its own (checking paths, recording the jobs)."""
        self(0, total, what)

    def done(self, total: int) -> None:
        if self.spoke:
            seconds = time.monotonic() - self.started
            print(f"batch: planned {total:,} jobs in {seconds:.1f} s", file=sys.stderr)


def _progress(quiet: bool, slots: int, print_every: int, planning: _Planning) -> BatchProgress:
    """The batch's bars, after the planning's last line (once the jobs are recorded). Made here,
    not at import: the bars' module loads tqdm and the image code, which --help never needs."""
    from .progress import BatchProgress

    class Progress(BatchProgress):
        def planned(self, total: int, to_run: int) -> None:
            planning.done(total)
            super().planned(total, to_run)

    return Progress(quiet, slots, print_every)


def _given_options(ns: argparse.Namespace) -> dict[str, Any]:
    given = {f.name: getattr(ns, f.name, None) for f in fields(TransferConfig)}
    options = {k: v for k, v in given.items() if v is not None}
    TransferConfig.from_options(options)  # one line for a bad option, before any work
    return options


def _run_batch(ns: argparse.Namespace) -> int:
    check_no_spatial(ns)
    if ns.contents[:1] == ["status"] and ns.styles is None and ns.jobs is None:
        return _run_status(ns.contents[1:] + ([ns.output] if ns.output else []))
    _refuse_mistyped_status(ns)
    where = options_from_args(ns, ExecutorOptions)
    if where.executor == "ray":
        require_ray()
    if ns.output is None:
        raise UsageError("batch needs -o OUTDIR, the folder for the results")
    from .. import imageio
    from ..jobs.sheet import batch_sheet

    options = _given_options(ns)
    sweeps = [parse_sweep(text) for text in ns.sweep]
    if ns.max_jobs < 1:
        raise UsageError(f"--max-jobs must be at least 1, not {ns.max_jobs}")
    planning = _Planning(ns.quiet)
    if ns.jobs is not None:
        if ns.contents or ns.styles or sweeps or ns.pairs or ns.blend:
            raise UsageError("--jobs FILE takes the place of CONTENT, --styles and --sweep")
        specs = jobs_from_file(ns.jobs, options, progress=planning)
    else:
        if not ns.contents or not ns.styles:
            raise UsageError("batch needs CONTENT... and --styles STYLE... (or --jobs FILE)")
        contents = expand_images(ns.contents, "content")
        styles = expand_images(ns.styles, "style")
        specs = plan(
            contents,
            styles,
            options,
            pairs=ns.pairs,
            blend=ns.blend,
            sweeps=sweeps,
            limit=ns.max_jobs,
            progress=planning,
        )
    planning.step("checking the paths", len(specs))
    outdir = Path(ns.output)
    inputs: list[Named] = []
    for arg in [] if ns.jobs is not None else ns.contents:
        if os.path.isdir(arg):
            inputs.append(("the content folder", arg))
    for arg in [] if ns.jobs is not None else ns.styles:
        if os.path.isdir(arg):
            inputs.append(("the style folder", arg))
    files: dict[tuple[Any, ...], list[Named]] = {}  # the files a job's options name, by those
    for spec in specs:
        inputs.append(("the content image", spec.content.path))
        inputs += [("the style image", s.path) for s in spec.styles]
        named = tuple(spec.options.get(k) for k in ("init", "weights", "preset"))
        if named not in files:  # a config made once for each, not for every job of a sweep
            files[named] = config_inputs(spec.config())
        inputs += files[named]
    inputs = list(dict.fromkeys(inputs))
    for what, path in inputs:  # an --init or --weights file (swept, say) missing: before any work
        if what != "the content image" and what != "the style image" and not os.path.exists(path):
            raise InputError(f"cannot read {what} '{os.fspath(path)}': file not found")
    if ns.jobs is not None:
        inputs.append(("the jobs file", ns.jobs))
    check_apart(inputs, [("the output folder", outdir)])
    sheet = None
    if ns.contact_sheet is not None:
        # A relative name is in OUTDIR, with the results it shows (checked with them below).
        sheet = imageio.check_output_path(outdir / ns.contact_sheet)
        if sheet.resolve() == (outdir / STORE_NAME).resolve():
            raise UsageError("the contact sheet cannot be the job store")
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"cannot use '{ns.output}' as the output folder: it is not a folder")
    check_apart(inputs, _batch_outputs(specs, outdir, sheet))
    _refuse_unrecorded(specs, outdir)
    check_output_folders(ns)
    if sheet is not None and sheet.parent != outdir:  # OUTDIR itself is made below
        check_folder_exists(sheet, "the contact sheet ")
    try:
        outdir.mkdir(exist_ok=True)  # its folder exists (checked above): one level at most
    except OSError as e:
        raise InputError(f"cannot make the output folder '{ns.output}': {e.strerror}") from e

    planning.step("recording", len(specs))
    executor = _executor(where, ns.quiet, options)
    progress = _progress(ns.quiet, executor.slots, ns.print_every, planning)
    with Store.in_folder(outdir) as store:
        try:
            summary = run_jobs(
                specs,
                store,
                outdir,
                executor,
                retry_failed=ns.retry_failed,
                listener=progress,
            )
        except KeyboardInterrupt:
            progress.close()
            stopped = [j for j in store.jobs([s.id for s in specs], state="cancelled") if j.error]
            kept = [j for j in stopped if "best image" in (j.error or "")]
            names = ", ".join(interrupted_name(j.output) for j in kept)
            saved = f"; best images so far saved as {names}" if kept else ""
            print(
                f"{PROG}: interrupted{saved}; run the same command again to continue",
                file=sys.stderr,
            )
            return ExitStatus.INTERRUPTED
        finally:
            progress.close()
            executor.close()
        jobs = store.jobs([s.id for s in specs])
    if sheet is not None:
        img = batch_sheet(jobs, outdir)
        imageio.save_image(img, sheet, metadata={"impasto:command": "batch"})
    if not ns.quiet:
        print(f"batch: {summary}; outputs in {outdir}", file=sys.stderr)
        if sheet is not None:
            print(f"wrote {sheet} ({img.width}x{img.height})", file=sys.stderr)
    failed = [j for j in jobs if j.state == "failed"]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        print(
            f"{PROG}: error: {len(failed)} of {len(jobs)} jobs failed; {first.output}: "
            f"{first.error}{more}; see '{PROG} batch status {outdir}'",
            file=sys.stderr,
        )
        return ExitStatus.FAILED_JOBS
    undone = [j for j in jobs if j.state != "done"]
    if undone:  # cancelled elsewhere, or held by a process still running: never a success
        states = ", ".join(sorted({j.state for j in undone}))
        print(
            f"{PROG}: error: {len(undone)} of {len(jobs)} jobs not done ({states}); run the "
            f"same command again, or see '{PROG} batch status {outdir}'",
            file=sys.stderr,
        )
        return ExitStatus.FAILED_JOBS
    return ExitStatus.OK


def _batch_outputs(specs: list[JobSpec], outdir: Path, sheet: Path | None) -> list[Named]:
    """Every file the batch may write, each a name the file system takes: the results, the
    best images of stopped jobs, the contact sheet; what :func:`check_apart` must still hold
    apart from the inputs and from one another.

    A plan of thousands of jobs names its results right in OUTDIR, nearly all new: a new name
    there cannot be, hold or sit inside an input (OUTDIR itself is checked apart from them), nor
    be another output when the names differ, so such names are checked here (their length, and
    their type and folder once) and left out; every other output is checked whole."""
    from .. import imageio

    named = [
        (what, name)
        for spec in specs
        for what, name in (
            ("the batch output", spec.output),
            ("the interrupted file", interrupted_name(spec.output)),
        )
    ]
    plain = all(os.sep not in n and "/" not in n for _, n in named)
    present = set(os.listdir(outdir)) if plain and outdir.is_dir() else set()
    if not plain or len({n for _, n in named}) != len(named):
        present = {n for _, n in named}  # check every one whole
    if sheet is not None:  # a result the sheet would be (by its name, or where a link leads)
        present |= {sheet.name, os.path.basename(os.path.realpath(sheet))}
    outputs: list[Named] = []
    suffixes: set[str] = set()
    for what, name in named:
        if name in present:
            outputs.append((what, imageio.check_output_path(outdir / name)))
            continue
        suffix = os.path.splitext(name)[1].lower()
        if suffix not in suffixes:  # its type, and the folder writable: once
            imageio.check_output_path(outdir / name)
            suffixes.add(suffix)
        check_name_length(name)
    if sheet is not None:
        outputs.append(("the contact sheet", sheet))
    return outputs


def _refuse_unrecorded(specs: list[JobSpec], outdir: Path) -> None:
    """Refuse, before any work, a file at a planned output (or its interrupted file) that no
    job of OUTDIR's store recorded: a file of the user's, never to be written over."""

    def recorded(outputs: Sequence[str]) -> set[str]:
        if not (outdir / STORE_NAME).is_file():
            return set()
        with Store.in_folder(outdir, readonly=True) as store:
            return store.recorded_outputs(outputs)

    planned = [(n, s.output) for s in specs for n in (s.output, interrupted_name(s.output))]
    found = unrecorded_files(outdir, planned, recorded)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise InputError(
            f"'{outdir / found[0]}'{more} is already there and no job of this folder's batch "
            "wrote it; impasto does not overwrite it: move it away, or use another OUTDIR"
        )


def _executor(where: ExecutorOptions, quiet: bool, options: dict[str, Any]) -> Executor:
    if where.executor == "ray":
        from ..jobs.rayexec import RayExecutor  # Ray is imported only here

        if not quiet:
            print("batch: starting the Ray workers...", file=sys.stderr)
        return RayExecutor(where.ray_address, where.workers, options=options)
    return LocalExecutor(local_devices(options.get("device", "auto")))


def varying_options(jobs: Sequence[Job]) -> list[str]:
    """The options whose values differ across ``jobs`` (what a sweep varies), in name order:
    the columns that tell the jobs of one batch apart."""
    names = sorted({name for j in jobs for name in j.options})
    return [n for n in names if len({_shown(j.options.get(n)) for j in jobs}) > 1]


def _shown(value: Any) -> str:
    """An option's value in a column: lists joined by commas, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _refuse_mistyped_status(ns: argparse.Namespace) -> None:
    """``batch stauts OUTDIR``: a first word close to 'status' that names no file, with neither
    --styles nor --jobs, is a mistyped command, not a content image."""
    first = ns.contents[0] if ns.contents else None
    if first is None or ns.styles is not None or ns.jobs is not None or os.path.exists(first):
        return
    if difflib.get_close_matches(first, ["status"], n=1, cutoff=0.6):
        raise UsageError(
            f"unknown batch command '{first}'; did you mean '{PROG} batch status OUTDIR'? "
            f"(see '{PROG} batch --help')"
        )


def _run_status_command(ns: argparse.Namespace) -> int:
    return _run_status(ns.outdir + ([ns.output] if ns.output else []))


def _run_status(rest: list[str]) -> int:
    if len(rest) != 1:
        raise UsageError("batch status takes one OUTDIR: impasto batch status OUTDIR")
    folder = rest[0]
    if not os.path.isfile(os.path.join(folder, STORE_NAME)):
        raise InputError(f"no batch in '{folder}' (it has no {STORE_NAME})")
    with Store.in_folder(folder, readonly=True) as store:
        jobs = store.jobs()
    now = time.time()
    varying = varying_options(jobs)
    rows = [("state", "tries", "seconds", "device", *varying, "output", "error")]
    for j in jobs:
        state: str = j.state
        if state == "running" and abandoned(j.worker, j.lease, now):
            state = "running?"  # no heartbeat lately: abandoned; the next run takes it
        seconds = f"{j.seconds:.1f}" if j.seconds is not None else "-"
        values = [_shown(j.options.get(name)) for name in varying]
        row = (state, str(j.attempts), seconds, j.device or "-", *values, j.output, j.error or "")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        print(line.rstrip())
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.state] = counts.get(j.state, 0) + 1
    print(
        f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    return ExitStatus.OK
