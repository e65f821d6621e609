"""A batch's plan: contents x styles x swept options, or the rows of a jobs file, as JobSpecs.

Every path is checked and hashed here, and every job's options are validated by
:class:`~impasto.config.TransferConfig`, before anything runs: a missing image is exit 3 and a
bad option or sweep value exit 2 with the usual one line. A corrupt image is not found out until
its job runs (it fails alone; the others go on).

Outputs are named ``CONTENT__STYLE__HASH.png`` (``STYLE`` is ``a+b`` for a blend; ``HASH`` is
32 hex digits of SHA-256 over the resolved options, the seed included), so the same job always
lands on the same file and different settings never share one (the store still checks what it
recorded: :mod:`~impasto.jobs.outputs`). Planning is about 10,000 jobs a second: each job's
options are resolved once, a sweep's typed once; ``limit`` bounds a plan before it is made.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..config import TransferConfig, type_hints
from ..errors import InputError, UsageError
from ..fieldtypes import parse_text, parse_value
from ..paths import check_regular_file
from .spec import JobSpec, Source, file_sha256, options_hash

__all__ = [
    "IMAGE_SUFFIXES",
    "Sweep",
    "expand_images",
    "jobs_from_file",
    "option_name",
    "output_name",
    "parse_sweep",
    "plan",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
BATCH_DEFAULT_SEED = 0  # a job's identity includes its seed: a random one would never resume


def option_name(name: str) -> str:
    """``--style-weight``, ``style-weight`` or ``style_weight`` as the config's field name; an
    unknown one is a usage error with a "did you mean"."""
    field_name = name.strip().lstrip("-").replace("-", "_")
    known = {f.name for f in fields(TransferConfig)}
    if field_name not in known:
        TransferConfig.from_options({field_name: None})  # raises, with the hint
    return field_name


_HINTS = type_hints(TransferConfig)
Progress = Callable[[int, int], None]  # (jobs planned so far, jobs in the plan)
PROGRESS_EVERY = 1000
SWEPT = "sweep:"  # labels["sweep:NAME"]: the value of swept option NAME, as given


@dataclass(frozen=True)
class Sweep:
    """``--sweep NAME=V1,V2,...``: one option and its values, parsed by the field's type."""

    name: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]  # as given, for labels


def parse_sweep(text: str) -> Sweep:
    """``NAME=V1,V2`` (values of a list option separated by ``;``: ``style_layers=conv1_1;
    conv1_1,conv2_1``)."""
    name, eq, rest = text.partition("=")
    if not eq or not name.strip():
        raise UsageError(f"--sweep takes NAME=VALUE,VALUE,..., not '{text}'")
    field_name = option_name(name)
    if field_name == "device":
        raise UsageError("--sweep device is not supported; the executor chooses devices")
    sep = ";" if ";" in rest else ","
    texts = tuple(p for p in (s.strip() for s in rest.split(sep)) if p)
    if not texts:
        raise UsageError(f"--sweep {field_name} has no values")
    flag = f"--sweep {field_name}"
    values = tuple(parse_text(_HINTS[field_name], t, flag) for t in texts)
    return Sweep(field_name, values, texts)


def expand_images(args: Sequence[str], what: str) -> list[str]:
    """Files, folders (their images, sorted, not recursive) and globs, in order, without
    repeats. Nothing found for an argument is an input error (exit 3)."""
    found: list[str] = []
    for arg in args:
        if os.path.isdir(arg):
            items = sorted(
                os.path.join(arg, n)
                for n in os.listdir(arg)
                if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")
            )
            if not items:
                raise InputError(f"no {what} images in folder '{arg}'")
        elif glob.has_magic(arg) and not os.path.exists(arg):
            items = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not items:
                raise InputError(f"no {what} image matches '{arg}'")
        elif os.path.isfile(arg):
            items = [arg]
        else:
            check_regular_file(arg, f"the {what} image")
            raise InputError(f"cannot read image '{arg}': file not found")
        found += items
    return list(dict.fromkeys(found))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "image"


def output_name(content: Source, styles: Sequence[Source], options: Mapping[str, Any] | str) -> str:
    """``CONTENT__STYLE__HASH.png`` (``options`` as given, or resolved: JSON)."""
    return f"{_stem(content, styles)}{options_hash(options)}.png"


def _stem(content: Source, styles: Sequence[Source]) -> str:
    """``CONTENT__STYLE__``: what an output's name holds before its hash."""
    return f"{_safe(content.name)}__{'+'.join(_safe(s.name) for s in styles)}__"


class _Hasher:
    """Sources by path, each file hashed once."""

    def __init__(self) -> None:
        self._seen: dict[str, Source] = {}

    def __call__(self, path: str) -> Source:
        if "\0" in path:
            raise UsageError(f"the path {path!r} holds a NUL character")
        if path not in self._seen:
            try:  # absolute: another process (another cwd) may run the job
                self._seen[path] = Source(os.path.abspath(path), file_sha256(path))
            except OSError as e:
                raise InputError(f"cannot read image '{path}': {e.strerror or e}") from None
        return self._seen[path]


def _sweep_label(combo: Sequence[tuple[Sweep, int]]) -> str:
    return ", ".join(f"{s.name}={s.texts[i]}" for s, i in combo)


def plan(
    contents: Sequence[str],
    styles: Sequence[str],
    options: Mapping[str, Any],
    *,
    pairs: bool = False,
    blend: bool = False,
    sweeps: Sequence[Sweep] = (),
    limit: int | None = None,
    progress: Progress | None = None,
) -> list[JobSpec]:
    """Every content with every style (``pairs``: the i-th with the i-th; ``blend``: with all
    styles at once), times every combination of the sweeps' values. A plan of more than
    ``limit`` jobs is refused before any is made (sweeps multiply fast); ``progress(made,
    total)`` hears how far planning is, every :data:`PROGRESS_EVERY` jobs."""
    source = _Hasher()
    cs = [source(p) for p in contents]
    ss = [source(p) for p in styles]
    if pairs and len(cs) != len(ss):
        raise UsageError(f"--pairs needs as many styles as contents, not {len(ss)} for {len(cs)}")
    if blend:
        groups: list[tuple[Source, tuple[Source, ...]]] = [(c, tuple(ss)) for c in cs]
    elif pairs:
        groups = [(c, (s,)) for c, s in zip(cs, ss, strict=True)]
    else:
        groups = [(c, (s,)) for c in cs for s in ss]
    base = dict(options)
    base.setdefault("seed", BATCH_DEFAULT_SEED)
    total = len(groups) * math.prod(len(s.values) for s in sweeps)
    if limit is not None and total > limit:
        shape = " x ".join(
            [f"{len(groups)} content-style pairs"] + [f"{len(s.values)} {s.name}" for s in sweeps]
        )
        raise UsageError(
            f"the plan has {total:,} jobs ({shape}), over the bound of {limit:,}; pass "
            f"--max-jobs {total} to run them all"
        )
    if any(k not in _HINTS for k in base):
        TransferConfig.from_options(base)  # raises, with a "did you mean"
    typed = TransferConfig.typed_options(base)  # once; the sweeps' values are typed already
    combos = list(itertools.product(*[[(s, i) for i in range(len(s.values))] for s in sweeps]))
    # What every job of a pair shares (its name's start, its labels), and what every pair
    # shares (each combination's labels), made once.
    swept_labels = [_swept_labels(combo) for combo in combos]
    specs: list[JobSpec] = []
    for content, group in groups:
        stem = _stem(content, group)
        pair = {"content": content.name, "style": "+".join(s.name for s in group)}
        for combo, labels in zip(combos, swept_labels, strict=True):
            if progress is not None and len(specs) % PROGRESS_EVERY == 0:
                progress(len(specs), total)
            swept = {s.name: s.values[i] for s, i in combo}
            opts = {**base, **swept}
            # Every job's options valid before any runs; resolved once, for its name and id.
            resolved = TransferConfig(**{**typed, **swept}).to_json()
            name = f"{stem}{options_hash(resolved)}.png"
            specs.append(JobSpec(content, group, opts, name, pair | labels, resolved))
    return _check_outputs(specs)


def _swept_labels(combo: Sequence[tuple[Sweep, int]]) -> dict[str, str]:
    """``sweep`` (all the swept values, as given) and each swept option's value apart, for the
    sheet's rows and columns; none without a sweep."""
    if not combo:
        return {}
    return {"sweep": _sweep_label(combo)} | {f"{SWEPT}{s.name}": s.texts[i] for s, i in combo}


def _spec(
    content: Source,
    styles: tuple[Source, ...],
    options: dict[str, Any],
    output: str | None,
    labels: dict[str, str],
) -> JobSpec:
    """A jobs file's job; its options valid before any job runs, resolved once (its name, its
    id)."""
    resolved = TransferConfig.from_options(options).to_json()
    name = output if output is not None else output_name(content, styles, resolved)
    return JobSpec(content, styles, options, name, labels, resolved)


def _check_outputs(specs: list[JobSpec]) -> list[JobSpec]:
    """Drop exact repeats; refuse two different jobs writing one file."""
    seen: dict[str, JobSpec] = {}
    kept: list[JobSpec] = []
    for spec in specs:
        other = seen.get(spec.output)
        if other is not None:
            if other.id == spec.id:
                continue
            raise UsageError(
                f"two jobs would write '{spec.output}' ({other.content.path} and "
                f"{spec.content.path}); rename one of the inputs"
            )
        seen[spec.output] = spec
        kept.append(spec)
    return kept


# --- jobs files -----------------------------------------------------------------------------------

_STYLE_COLUMNS = ("style", "styles")
_INIT_WORDS = ("noise", "content", "style")  # --init's choices that are not files


def jobs_from_file(
    path: str, options: Mapping[str, Any], progress: Progress | None = None
) -> list[JobSpec]:
    """A CSV file (a header row, then one job a row) or JSON Lines (``.jsonl``/``.ndjson``: one
    object a line). Columns: ``content``, ``style`` or ``styles`` (several separated by ``;`` in
    CSV, a list in JSON: blended), optional ``output`` (a file name inside OUTDIR), and any
    transfer option, over the command line's. Relative image paths are read from the file's
    folder."""
    text = _read_jobs_file(path)
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise UsageError(f"{path}, line {line}: holds a NUL character")
    jsonl = path.lower().endswith((".jsonl", ".ndjson")) or text.lstrip().startswith("{")
    rows = _json_rows(path, text) if jsonl else _csv_rows(path, text)
    if not rows:
        raise UsageError(f"jobs file '{path}' has no jobs")
    folder = Path(path).parent
    source = _Hasher()
    base = dict(options)
    base.setdefault("seed", BATCH_DEFAULT_SEED)
    specs: list[JobSpec] = []
    for line, row, from_json in rows:
        if progress is not None and len(specs) % PROGRESS_EVERY == 0:
            progress(len(specs), len(rows))
        where = f"{path}, line {line}"
        try:
            specs.append(_row_spec(row, from_json, folder, source, base))
        except (UsageError, InputError) as e:
            raise type(e)(f"{where}: {e}") from None
    return _check_outputs(specs)


MAX_JOBS_FILE_BYTES = 32 << 20  # 32 MiB: some 300,000 rows; what is over is refused unread


def _read_jobs_file(path: str) -> str:
    """The text of a jobs file, read up to :data:`MAX_JOBS_FILE_BYTES` and no further (a file
    that grows as it is read, or has no end, never fills the memory)."""
    check_regular_file(path, "the jobs file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JOBS_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"cannot read jobs file '{path}': file not found") from None
    except OSError as e:
        raise InputError(f"cannot read jobs file '{path}': {e.strerror or e}") from None
    if len(data) > MAX_JOBS_FILE_BYTES:
        raise InputError(
            f"cannot read jobs file '{path}': it is over {MAX_JOBS_FILE_BYTES >> 20} MiB; "
            "split it into several batches"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"cannot read jobs file '{path}': {e}") from None


def _json_rows(path: str, text: str) -> list[tuple[int, dict[str, Any], bool]]:
    rows: list[tuple[int, dict[str, Any], bool]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_no_repeats)
        except ValueError as e:
            raise UsageError(f"{path}, line {n}: not JSON ({e})") from None
        except RecursionError:
            raise UsageError(f"{path}, line {n}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path}, line {n}: a job must be a JSON object")
        rows.append((n, row, True))
    return rows


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names no key twice (json keeps the last one silently)."""
    row = dict(pairs)
    if len(row) != len(pairs):
        twice = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ValueError(f"the key {twice!r} is given twice")
    return row


def _csv_rows(path: str, text: str) -> list[tuple[int, dict[str, Any], bool]]:
    # Lines as the csv module means them (newline=""): a form feed or U+2028 inside a field
    # is not a line break, so the line numbers of errors are the file's.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _read_csv(path, reader)
    except csv.Error as e:  # a field past the csv module's limit (128 KiB), say
        raise UsageError(f"{path}, line {reader.line_num}: {e}") from None


def _read_csv(path: str, reader: Any) -> list[tuple[int, dict[str, Any], bool]]:
    header = [name.strip() for name in next(reader, [])]
    if "content" not in header:
        raise UsageError(f"jobs file '{path}' needs a header row with a 'content' column")
    _refuse_repeated_columns(path, header)
    rows: list[tuple[int, dict[str, Any], bool]] = []
    start = reader.line_num + 1  # a row's first line (a quoted field may run over several)
    for values in reader:
        if len(values) > len(header):
            raise UsageError(f"{path}, line {start}: more values than columns")
        kept = {k: v.strip() for k, v in zip(header, values, strict=False) if v.strip()}
        if kept:
            rows.append((start, kept, False))
        start = reader.line_num + 1
    return rows


def _refuse_repeated_columns(path: str, header: Sequence[str]) -> None:
    """A column given twice (``size`` and ``size``, ``style_weight`` and ``style-weight``, or
    ``style`` and ``styles``) would let one of them win silently."""
    seen: dict[str, str] = {}
    for name in header:
        if not name:
            continue
        key = "style" if name in _STYLE_COLUMNS else name
        if name not in ("content", "output", *_STYLE_COLUMNS):
            with contextlib.suppress(UsageError):  # unknown: each row says so, with its line
                key = option_name(name)
        if key in seen:
            raise UsageError(
                f"jobs file '{path}' has the column '{seen[key]}' twice"
                + (f" (as '{name}')" if name != seen[key] else "")
            )
        seen[key] = name


def _row_spec(
    row: Mapping[str, Any],
    from_json: bool,
    folder: Path,
    source: _Hasher,
    base: Mapping[str, Any],
) -> JobSpec:
    content = row.get("content")
    if not isinstance(content, str) or not content:
        raise UsageError("no 'content'")
    raw = next((row[k] for k in _STYLE_COLUMNS if k in row), None)
    if isinstance(raw, str):
        names = [p for p in (s.strip() for s in raw.split(";")) if p]
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        names = list(raw)
    else:
        names = []
    if not names:
        raise UsageError("no 'style'")
    output = row.get("output")
    if output is not None:
        output = _check_output(output)
    options = dict(base)
    for key, value in row.items():
        if key in ("content", "output", *_STYLE_COLUMNS):
            continue
        name = option_name(key)
        if name == "device":
            raise UsageError("'device' is the executor's choice, not a job's")
        options[name] = (
            parse_value(name, _HINTS[name], value)
            if from_json
            else parse_text(_HINTS[name], value, name)
        )

    def at(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(folder / p)

    # The files an option names are read from the jobs file's folder too, as the images are.
    if isinstance(options.get("weights"), str):
        options["weights"] = at(options["weights"])
    if isinstance(options.get("init"), str) and options["init"] not in _INIT_WORDS:
        options["init"] = at(options["init"])

    c = source(at(content))
    ss = tuple(source(at(s)) for s in names)
    labels = {"content": c.name, "style": "+".join(s.name for s in ss)}
    return _spec(c, ss, options, output, labels)


def _check_output(output: Any) -> str:
    """A file name inside OUTDIR: relative, no ``..``, a picture's extension."""
    if not isinstance(output, str) or not output.strip():
        raise UsageError("'output' must be a file name")
    if "\0" in output:
        raise UsageError(f"'output' {output!r} holds a NUL character")
    p = Path(output)
    if p.is_absolute() or ".." in p.parts:
        raise UsageError(f"'output' must be a name inside OUTDIR, not '{output}'")
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise UsageError(f"'output' '{output}' must end in .png, .jpg or .webp")
    if p.name == "impasto.sqlite" or any(part.startswith(".") for part in p.parts):
        raise UsageError(f"'output' '{output}' is not a name impasto may write")
    return str(p)
