"""The installed ``impasto`` command, end to end, in subprocesses.

Successful runs read the real weights and do a couple of iterations at 32 px. Each process uses
one torch thread, so that the batches below can run several at once on a two-core machine (most
of a short run is the single-threaded torch import), and turns warnings into errors, as pytest
does here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import impasto
from helpers import PYTHON_M, installed_script, run_impasto, signal_at_first_step
from impasto import imageio

QUICK = ["--size", "32", "--iterations", "2"]


Job = tuple[Sequence[str], list[str], Path]  # command, arguments, working directory


def run_all(jobs: dict[str, Job]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several ``impasto`` commands at once; most of each is the one-core torch import."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {
            name: pool.submit(run_impasto, *args, cwd=cwd, command=command)
            for name, (command, args, cwd) in jobs.items()
        }
        return {name: f.result() for name, f in futures.items()}


def files_in(folder: Path) -> set[str]:
    """Every file under ``folder``, as paths relative to it (hidden temp files included)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed run must print on stderr."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("impasto: "), run.stderr
    return lines[0]


# --- success ----------------------------------------------------------------------------------

Runs = dict[str, tuple[Path, subprocess.CompletedProcess[str]]]


def summed_terms(summary: str) -> dict[str, float]:
    """The terms of a summary's 'loss T = a A + b B', checked to add up to T (each is shown
    to 3 significant figures)."""
    found = re.search(r"loss (\S+) = ((?:\w+ \S+?)(?: \+ \w+ \S+?)*)(?:,|;|$)", summary, re.M)
    assert found, summary
    terms = {name: float(v) for name, v in (t.split(" ") for t in found.group(2).split(" + "))}
    assert sum(terms.values()) == pytest.approx(float(found.group(1)), rel=5e-3)
    return terms


@pytest.fixture(scope="module")
def good_runs(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("good")
    inputs = [str(tiny_dir / "tubingen.png"), str(tiny_dir / "starry_night.png")]
    quiet_seeded = [*QUICK, "--seed", "5", "--quiet"]
    jobs: dict[str, Job] = {
        # No --seed and no --quiet: the seed is drawn, recorded and shown in the summary.
        "png": (
            installed_script(),
            ["transfer", *inputs, "-o", "out.png", *QUICK, "--save-every", "1"],
            root / "png",
        ),
        "jpg": (PYTHON_M, ["transfer", *inputs, "-o", "out.jpg", *quiet_seeded], root / "jpg"),
        "webp": (PYTHON_M, ["transfer", *inputs, "-o", "out.webp", *quiet_seeded], root / "webp"),
    }
    for _, _, cwd in jobs.values():
        cwd.mkdir()
    runs = run_all(jobs)
    return {name: (jobs[name][2], runs[name]) for name in jobs}


@pytest.mark.slow
def test_console_script_writes_png_with_metadata_and_steps(good_runs: Runs) -> None:
    out_dir, run = good_runs["png"]
    assert run.returncode == 0, run.stderr
    assert files_in(out_dir) == {"out.png", "out_steps/00001.png", "out_steps/00002.png"}
    with Image.open(out_dir / "out.png") as out:
        assert out.format == "PNG"
        assert out.mode == "RGB"
        assert max(out.size) == 32
        size = out.size
    for frame in ("00001", "00002"):
        with Image.open(out_dir / "out_steps" / f"{frame}.png") as img:
            assert img.size == size

    meta = imageio.read_metadata(out_dir / "out.png")
    options = json.loads(meta["impasto:options"])
    seed = int(meta["impasto:seed"])  # drawn at random, since --seed was not given
    assert options["seed"] == seed
    assert options["size"] == 32
    assert options["iterations"] == 2
    assert meta["impasto:iterations"] == "2"
    assert meta["Software"] == f"impasto {impasto.__version__}"
    # The summary names the file and the seed, so that a good result can be made again.
    assert "out.png" in run.stderr
    assert f"seed {seed}" in run.stderr
    # ... and every term of the loss, adding up to it (TV too).
    terms = summed_terms(run.stderr)
    assert set(terms) == {"content", "style", "tv"}


@pytest.mark.slow
@pytest.mark.parametrize("ext, fmt", [("jpg", "JPEG"), ("webp", "WEBP")])
def test_quiet_run_writes_jpeg_and_webp(good_runs: Runs, ext: str, fmt: str) -> None:
    out_dir, run = good_runs[ext]
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout == ""
    out = out_dir / f"out.{ext}"
    assert files_in(out_dir) == {out.name}
    with Image.open(out) as img:
        assert img.format == fmt
        assert max(img.size) == 32
    meta = imageio.read_metadata(out)
    assert meta["impasto:seed"] == "5"
    assert json.loads(meta["impasto:options"])["seed"] == 5


def test_version(tmp_path: Path) -> None:
    run = run_impasto("--version", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"impasto {impasto.__version__}"


# --- content images of every kind -------------------------------------------------------------


MODES = {"grey": "L", "cmyk": "CMYK", "rgba": "RGBA", "palette": "P", "grey16": "I;16"}


def write_content_variants(folder: Path, source: Path) -> dict[str, Path]:
    """The content photo as greyscale, CMYK (JPEG), RGBA, palette and 16-bit greyscale files."""
    folder.mkdir()
    rgb = imageio.load_image(source)
    grey = rgb.convert("L")
    paths = {name: folder / f"{name}.{'jpg' if name == 'cmyk' else 'png'}" for name in MODES}
    grey.save(paths["grey"])
    rgb.convert("CMYK").save(paths["cmyk"], quality=95)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(paths["rgba"])
    rgb.quantize(colors=32).save(paths["palette"])
    Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257).save(paths["grey16"])
    return paths


@pytest.fixture(scope="module")
def mode_runs(
    tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Path, subprocess.CompletedProcess[str]]]:
    root = tmp_path_factory.mktemp("modes")
    inputs = write_content_variants(root / "inputs", tiny_dir / "tubingen.png")
    jobs: dict[str, Job] = {}
    for name, path in inputs.items():
        (root / name).mkdir()
        args = ["transfer", str(path), str(tiny_dir / "starry_night.png"), "-o", "out.png"]
        jobs[name] = (PYTHON_M, [*args, "--size", "32", "--iterations", "1", "-q"], root / name)
    runs = run_all(jobs)
    return {name: (inputs[name], root / name, runs[name]) for name in inputs}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODES))
def test_content_in_any_colour_mode(
    name: str, mode_runs: dict[str, tuple[Path, Path, subprocess.CompletedProcess[str]]]
) -> None:
    content, out_dir, run = mode_runs[name]
    with Image.open(content) as img:  # the test really feeds the kind of file it claims to
        assert img.mode == MODES[name] or (name == "grey16" and img.mode == "I")
    if name == "grey16":
        assert content.read_bytes()[24] == 16  # IHDR bit depth
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    with Image.open(out_dir / "out.png") as out:
        assert out.mode == "RGB"
        assert max(out.size) == 32


# --- bad input: one line on stderr, a distinct exit code, nothing written or overwritten ------


def write_sparse_png(path: Path, width: int, height: int) -> None:
    """An all-black 1-bit PNG, written row by row: a few dozen KB on disk, billions of pixels
    once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + (width + 7) // 8)  # filter type 0, then the packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(
        signature + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def write_bad_files(folder: Path, content: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "empty": folder / "empty.png",
        "text": folder / "notes.jpg",
        "truncated": folder / "truncated.jpg",
        "bomb": folder / "bomb.png",
        "weights": folder / "vgg19.pth",
    }
    files["empty"].touch()
    files["text"].write_text("not a picture, just words\n")
    imageio.load_image(content).save(files["truncated"], quality=95)
    whole = files["truncated"].read_bytes()
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    write_sparse_png(files["bomb"], 20_000, 20_000)
    files["weights"].write_bytes(b"PK\x03\x04 this is no zip archive, nor a pickle")
    return files


# case: (arguments, exit status, pattern the error line must match)
BAD_CASES: dict[str, tuple[str, int, str]] = {
    "missing-content": ("transfer nope.jpg {style} -o out.png", 3, r"nope\.jpg.*not found"),
    "missing-style": ("transfer {content} nope.jpg -o out.png", 3, r"nope\.jpg.*not found"),
    "empty-file": ("transfer {empty} {style} -o out.png", 3, r"empty\.png.*empty"),
    "text-named-jpg": ("transfer {text} {style} -o out.png", 3, r"notes\.jpg.*not an image"),
    "truncated-jpeg": ("transfer {truncated} {style} -o out.png", 3, r"truncated\.jpg.*truncated"),
    "decompression-bomb": ("transfer {bomb} {style} -o out.png", 3, r"bomb\.png.*(large|limit)"),
    "corrupt-weights": (
        "transfer {content} {style} -o out.png --weights {weights}",
        3,
        r"vgg19\.pth.*corrupt",
    ),
    "unknown-option": (
        "transfer {content} {style} -o out.png --stlye-weight 3",
        2,
        r"did you mean --style-weight",
    ),
    "unknown-layer": (
        "transfer {content} {style} -o out.png --style-layers conv1_1,conv9_1",
        2,
        r"conv9_1.*(did you mean|valid layers)",
    ),
    "bad-choice": (
        "transfer {content} {style} -o out.png --optimizer lbgfs",
        2,
        r"did you mean lbfgs",
    ),
    "vgg16-without-weights": (
        "transfer {content} {style} -o out.png --model vgg16",
        2,
        r"vgg16.*--weights",
    ),
    "gif-output": ("transfer {content} {style} -o out.gif", 2, r"\.gif"),
    "size-zero": ("transfer {content} {style} -o out.png --size 0", 2, r"--size"),
    "negative-iterations": (
        "transfer {content} {style} -o out.png --iterations -1",
        2,
        r"--iterations",
    ),
    "style-weight-not-a-number": (
        "transfer {content} {style} -o out.png --style-weight abc",
        2,
        r"--style-weight.*abc",
    ),
    "no-subcommand": ("", 2, r"command"),
    # Fails after the optimisation has started: the loss overflows to inf at the first step.
    # (--quiet: without it, the progress bar's leftovers precede the line when stderr is no TTY.)
    "diverged": (
        "transfer {content} {style} -o out.png --style-weight 1e38 --quiet",
        5,
        r"loss became inf",
    ),
}

SENTINEL = b"an earlier result, worth keeping"


@pytest.fixture(scope="module")
def bad_runs(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("bad")
    content, style = tiny_dir / "tubingen.png", tiny_dir / "starry_night.png"
    files = {k: str(v) for k, v in write_bad_files(root / "inputs", content).items()}
    jobs: dict[str, Job] = {}
    for case, (template, _, _) in BAD_CASES.items():
        args = [a.format(content=content, style=style, **files) for a in template.split()]
        (root / case).mkdir()
        (root / case / "out.png").write_bytes(SENTINEL)  # what a failed run must leave alone
        if args:  # the case's own options come last, so that they win
            args = [args[0], "--size", "32", "--iterations", "1", *args[1:]]
        jobs[case] = (PYTHON_M, args, root / case)
    runs = run_all(jobs)
    return {case: (root / case, runs[case]) for case in BAD_CASES}


def test_sparse_png_is_as_large_as_claimed(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    write_sparse_png(path, 20_000, 20_000)
    data = path.read_bytes()
    assert struct.unpack(">II", data[16:24]) == (20_000, 20_000)
    assert len(data) < 1_000_000
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_fails_in_one_line(case: str, bad_runs: Runs) -> None:
    out_dir, run = bad_runs[case]
    _, status, pattern = BAD_CASES[case]
    line = one_error_line(run)
    assert run.returncode == status, run.stderr
    assert re.search(pattern, line), line
    assert run.stdout == ""
    # No output, no temp files, no steps folder; an existing file of the same name untouched.
    assert files_in(out_dir) == {"out.png"}
    assert (out_dir / "out.png").read_bytes() == SENTINEL


def test_traceback_flag_shows_the_real_error(tmp_path: Path, style_path: Path) -> None:
    run = run_impasto(
        "transfer", "missing.jpg", style_path, "-o", "out.png", "--traceback", cwd=tmp_path
    )
    assert run.returncode == 3  # the exit status of the error, as without --traceback
    assert "Traceback (most recent call last)" in run.stderr
    assert "InputError" in run.stderr
    last = run.stderr.splitlines()[-1]
    assert last.startswith("impasto: error: cannot read") and "missing.jpg" in last
    assert files_in(tmp_path) == set()


# --- Ctrl-C -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_saves_the_best_image_so_far(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    args = ["transfer", content_path, style_path, "-o", "out.png", "--size", "64"]
    args += ["--iterations", "2000", "--save-every", "1", "--quiet"]
    status, stdout, stderr = signal_at_first_step(args, tmp_path, signal.SIGINT)
    assert status == 130, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("impasto: ")
    assert "interrupted" in lines[0]
    saved = re.search(r"saved to (\S+)$", lines[0])
    assert saved, lines[0]
    partial = tmp_path / saved.group(1)
    assert partial.is_file()
    assert max(imageio.load_image(partial).size) == 64
    assert "impasto:seed" in imageio.read_metadata(partial)
    assert not (tmp_path / "out.png").exists()  # only a finished run takes the requested name
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "out_steps"))
    assert stdout == ""


@pytest.mark.slow
def test_coarse_to_fine_and_bf16_from_the_command_line(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    out = tmp_path / "c2f.png"
    # The style (64x40) would be 15 px high at 24: that stage is left out.
    args = ["--size", "48", "--scales", "24,32,48", "--iterations", "5", "--precision", "bf16"]
    proc = run_impasto("transfer", content_path, style_path, "-o", out, *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as img:
        assert max(img.size) == 48
    options = json.loads(imageio.read_metadata(out)["impasto:options"])
    assert options["scales"] == [24, 32, 48] and options["precision"] == "bf16"
    assert "5 iterations" in proc.stderr  # shared 1/pixels: 4 at 32 px, then 1 at the top

    small = run_impasto(
        "transfer", content_path, style_path, "-o", out, "--size", "20", cwd=tmp_path
    )
    assert small.returncode == 2
    assert "use --size 26 or more" in small.stderr  # 16 px on the style's short side

    bad = run_impasto(
        "transfer", content_path, style_path, "-o", out, "--scales", "9x", cwd=tmp_path
    )
    assert bad.returncode == 2 and "--scales" in bad.stderr
    assert bad.stderr.count("\n") == 1  # one line, no traceback


# --- what a mistyped command line is told (in process: parsing needs no weights) -------------

TYPOS = {
    # an option of another command: named as such, with this command's --help
    "batch-animate": (
        "batch a.jpg --styles b.jpg -o out --animate x.gif",
        r"^unknown option '--animate': it is an option of 'impasto transfer'.*"
        r"\(see 'impasto batch --help'\)$",
    ),
    "serve-size": ("serve --size 128", r"'--size': it is an option of .*'impasto serve --help'"),
    "video-keep-feather": (
        "video a.mp4 b.jpg -o c.mp4 --keep-feather 0.1",
        r"'--keep-feather': it is an option of 'impasto transfer'.*'impasto video --help'",
    ),
    # a near miss of the command's own option
    "own-near-miss": (
        "transfer a.jpg b.jpg -o c.png --iteration 5",
        r"unknown option '--iteration'; did you mean --iterations\? "
        r"\(see 'impasto transfer --help'\)",
    ),
    # video never suggests a flag it refuses: --masks is transfer's
    "video-maks": (
        "video a.mp4 b.jpg -o c.mp4 --maks x",
        r"'--maks'; did you mean --masks \(of 'impasto transfer'\)\?.*'impasto video --help'",
    ),
    # an unknown option is reported before a missing -o
    "unknown-before-missing": (
        "transfer a.jpg b.jpg --maks x",
        r"unknown option '--maks'; did you mean --masks\?",
    ),
    "unknown-before-missing-eq": (
        "grid a.jpg b.jpg --ratio=1e-3",
        r"unknown option '--ratio'; did you mean --ratios\?",
    ),
    # commands and choices
    "command": ("transfr a b", r"unknown command 'transfr'; did you mean transfer\?"),
    "representation": (
        "reconstruct contnet x.jpg -o y.png",
        r"'contnet' is not content or style; did you mean content\?",
    ),
    "batch-status": (
        "batch stauts out/",
        r"unknown batch command 'stauts'; did you mean 'impasto batch status OUTDIR'\?",
    ),
    "option-before-command": ("--size 3 transfer", r"option '--size' before the command"),
}


@pytest.mark.parametrize("case", list(TYPOS))
def test_a_typo_gets_a_suggestion_from_the_right_command(
    case: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from impasto.cli import main

    monkeypatch.chdir(tmp_path)  # 'out/' and the like must not exist
    command, expected = TYPOS[case]
    assert main(command.split()) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    message = err.removeprefix("impasto: error: ")
    assert re.search(expected, message), message
    assert "kind" not in message and "argument " not in message
    assert list(tmp_path.iterdir()) == []


def test_one_final_loss_in_the_log_the_summary_and_the_metadata(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    """The last log line (the last Step, what the bar shows last), the summary and the PNG's
    metadata give one final loss: the returned image's, to the precision each shows."""
    args = ["transfer", content_path, style_path, "-o", "out.png", "--size", "48"]
    run = run_impasto(*args, "--iterations", "8", "--seed", "3", "--print-every", "4", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    logged = re.findall(r"^iteration (\d+)/8: loss (\S+) \(", run.stderr, re.M)
    assert [i for i, _ in logged] == ["4", "8"], run.stderr
    summary = re.search(r"^wrote out\.png .*: 8 iterations, loss (\S+) = ", run.stderr, re.M)
    assert summary, run.stderr
    meta = float(imageio.read_metadata(tmp_path / "out.png")["impasto:final_loss"])
    assert float(logged[-1][1]) == float(summary.group(1)) == float(f"{meta:.4g}")
