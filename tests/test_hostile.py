"""Hostile-but-fair use of the command line, as a table: each row a command that must be refused.

Every row runs ``impasto`` (its ``main``, in this process: a refusal happens before any weights are
read) in a folder of tiny inputs and checks the same promises: the expected exit code, one line on
stderr naming the problem, no traceback, every input byte for byte unchanged, and no file
created, changed or left behind. The next hole found is a new row. A full disk, which needs a
real process, is at the end; signals are in test_signals.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import installed_script, run_impasto, snapshot
from impasto.cli import main


@pytest.fixture
def hostile_dir(tmp_path: Path, content_path: Path, style_path: Path) -> Path:
    """p.png (photo), s.png (painting), g.gif, frames/ (three frames), styles/s2.png, links to
    p.png (symbolic and hard), a photo inside x_steps/, a photo named like the interrupted
    file of p.png, masks (m.png: the left half, black.png, white.png, empty.png, notes.png) and
    label maps (seg.png: two colours, seg3.png: three); a batch's output folder outs/ (a link
    to the inputs' folder, a file f.png), a photo with a 240-character name and jobs files."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "p.png").write_bytes(content_path.read_bytes())
    (d / "s.png").write_bytes(style_path.read_bytes())
    Image.open(style_path).save(d / "g.gif")
    (d / "frames").mkdir()
    for i in range(3):
        Image.open(content_path).save(d / "frames" / f"{i:03d}.png")
    (d / "styles").mkdir()
    (d / "styles" / "s2.png").write_bytes(style_path.read_bytes())
    (d / "link.png").symlink_to(d / "p.png")
    os.link(d / "p.png", d / "hard.png")
    (d / "framelink").symlink_to(d / "frames", target_is_directory=True)
    (d / "x_steps").mkdir()
    (d / "x_steps" / "c.png").write_bytes(content_path.read_bytes())
    (d / "q.interrupted.png").write_bytes(content_path.read_bytes())
    Image.new("RGB", (4000, 2), "gray").save(d / "sliver.png")
    # Masks and label maps (spatial control).
    half = Image.new("L", (32, 24), 0)
    half.paste(255, (0, 0, 16, 24))
    half.save(d / "m.png")
    Image.new("L", (32, 24), 0).save(d / "black.png")
    Image.new("L", (32, 24), 255).save(d / "white.png")
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_bytes(b"not an image at all")
    seg = Image.new("RGB", (32, 24), (255, 255, 255))
    seg.paste((0, 0, 0), (16, 0, 32, 24))
    seg.save(d / "seg.png")
    seg.paste((255, 0, 0), (0, 0, 4, 4))
    seg.save(d / "seg3.png")
    # Batch: an output folder with a way back to the inputs, and jobs files.
    (d / "outs").mkdir()
    (d / "outs" / "link").symlink_to(d, target_is_directory=True)
    (d / "outs" / "f.png").write_bytes(b"a finished result")
    (d / f"{'c' * 240}.png").write_bytes(content_path.read_bytes())
    for name, text in JOBS_FILES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def _csv(*outputs: str) -> str:
    return "content,style,output\n" + "".join(f"p.png,s.png,{o}\n" for o in outputs)


JOBS_FILES = {
    "j_link.csv": _csv("link/p.png"),
    "j_interrupted.csv": _csv("a.interrupted.png", "a.png"),
    "j_x.csv": _csv("x.png"),
    "j_long.csv": _csv("a" * 245 + ".png"),
    "j_under.csv": _csv("f.png/x.png"),
    "j_nul.jsonl": '{"content": "p\\u0000.png", "style": "s.png"}\n',
    "j_deep.jsonl": '{"content": "p.png", "style": "s.png", "x": '
    + "[" * 100_000
    + "]" * 100_000
    + "}\n",
    "j_field.csv": "content,style\np.png," + "s" * 200_000 + ".png\n",
}
B = ["batch", "--jobs"]


T = ["transfer", "p.png", "s.png"]
BLEND = ["--style-blend-weights", "1,2"]
SEGMENTED = ["--segmentation", "seg.png", "--style-segmentation", "seg.png"]
V = ["video", "frames", "s.png"]
Q = ["--size", "32", "--iterations", "2"]

# name: (arguments, exit code, words the one line must hold)
CASES: dict[str, tuple[list[str], int, str]] = {
    # --- paths: no output may be, contain or sit inside an input; outputs apart -------------------
    "output is the photo": ([*T, "-o", "p.png", *Q], 2, "is the content image 'p.png'"),
    "output is the painting": ([*T, "-o", "s.png", *Q], 2, "is the style image 's.png'"),
    "output is the photo via ..": ([*T, "-o", "frames/../p.png", *Q], 2, "overwrite the input"),
    "output is a symlink to it": ([*T, "-o", "link.png", *Q], 2, "overwrite the input"),
    "output is a hard link to it": ([*T, "-o", "hard.png", *Q], 2, "overwrite the input"),
    "photo via a symlink": (["transfer", "link.png", "s.png", "-o", "p.png"], 2, "overwrite"),
    "interrupted file is the photo": (
        ["transfer", "q.interrupted.png", "s.png", "-o", "q.png"],
        2,
        "the interrupted file",
    ),
    "steps folder holds the photo": (
        ["transfer", "x_steps/c.png", "s.png", "-o", "x.png", "--save-every", "1"],
        2,
        "the --save-every folder 'x_steps' contains",
    ),
    "plot is the photo": ([*T, "-o", "o.png", "--plot", "p.png", *Q], 2, "--plot 'p.png' is"),
    "animation is the painting": (
        ["transfer", "p.png", "g.gif", "-o", "o.png", "--animate", "g.gif"],
        2,
        "--animate 'g.gif' is the style image",
    ),
    "plot is the output": ([*T, "-o", "o.png", "--plot", "o.png"], 2, "pick separate paths"),
    "animation inside the steps folder": (
        [*T, "-o", "o.png", "--save-every", "1", "--animate", "o_steps/a.gif"],
        2,
        "separate paths",
    ),
    "init image is the output": ([*T, "-o", "p.png", "--init", "p.png"], 2, "overwrite"),
    "init image is overwritten": (
        [*T, "-o", "i.png", "--init", "i.png"],
        2,
        "is the --init image 'i.png'",
    ),
    "weights file is the output": ([*T, "-o", "w.png", "--weights", "w.png"], 2, "--weights"),
    "reconstruct over its image": (
        ["reconstruct", "content", "p.png", "-o", "p.png"],
        2,
        "is the image 'p.png'",
    ),
    "reconstruct plot over its image": (
        ["reconstruct", "style", "p.png", "-o", "o.png", "--plot", "link.png"],
        2,
        "overwrite the input",
    ),
    "grid over its painting": (["grid", "p.png", "s.png", "-o", "s.png"], 2, "style image"),
    "video output is the input folder": ([*V, "-o", "frames"], 2, "is the input 'frames'"),
    "video output inside the input": ([*V, "-o", "frames/o.mp4"], 2, "is inside the input"),
    "video output via a symlink": ([*V, "-o", "framelink/o.mp4"], 2, "is inside the input"),
    "work dir is the input": ([*V, "-o", "o.mp4", "--work-dir", "frames"], 2, "work directory"),
    "work dir inside the input": (
        [*V, "-o", "o.mp4", "--work-dir", "frames/cache"],
        2,
        "is inside the input",
    ),
    "work dir holds the input": ([*V, "-o", "o.mp4", "--work-dir", "."], 2, "contains the input"),
    "work dir holds a painting": (
        ["video", "frames", "styles/s2.png", "-o", "o.mp4", "--work-dir", "styles"],
        2,
        "contains the style image",
    ),
    "work dir is the output folder": ([*V, "-o", "out", "--work-dir", "out"], 2, "separate"),
    "work dir inside the output": ([*V, "-o", "out", "--work-dir", "out/w"], 2, "separate"),
    "output folder of other files": ([*V, "-o", "styles"], 2, "not frames of an earlier run"),
    "output name too long": ([*T, "-o", "a" * 300 + ".png"], 3, "File name too long"),
    "video name too long": (["video", "f" * 300, "s.png", "-o", "o.mp4"], 3, "too long"),
    "output under a file": ([*T, "-o", "p.png/o.png"], 3, "is not a directory"),
    "interrupted name too long": (
        [*T, "-o", "i" * 245 + ".png"],
        3,
        f"cannot write '{'i' * 245}.interrupted.png': File name too long (261 bytes",
    ),
    # --- numbers: every one has a range, checked before any work ----------------------------------
    "size 0": ([*T, "-o", "o.png", "--size", "0"], 2, "--size must be at least 16, not 0"),
    "size huge": ([*T, "-o", "o.png", "--size", "100000"], 2, "--size must be between 16 and"),
    "iterations 0": ([*T, "-o", "o.png", "--iterations", "0"], 2, "--iterations must be"),
    "iterations 5e7": ([*T, "-o", "o.png", "--iterations", "50000000"], 2, "between 1 and"),
    "iterations past 64 bits": ([*T, "-o", "o.png", "--iterations", str(2**70)], 2, "between"),
    "iterations 4300 digits": ([*T, "-o", "o.png", "--iterations", "9" * 5000], 2, "integer"),
    "style weight 1e39": ([*T, "-o", "o.png", "--style-weight", "1e39"], 2, "--style-weight"),
    "style weight nan": ([*T, "-o", "o.png", "--style-weight", "nan"], 2, "--style-weight"),
    "content weight -1": ([*T, "-o", "o.png", "--content-weight", "-1"], 2, "--content-weight"),
    "tv weight inf": ([*T, "-o", "o.png", "--tv-weight", "inf"], 2, "--tv-weight"),
    "learning rate 0": ([*T, "-o", "o.png", "--learning-rate", "0"], 2, "--learning-rate"),
    "learning rate 1e9": ([*T, "-o", "o.png", "--learning-rate", "1e9"], 2, "--learning-rate"),
    "lr decay 2": ([*T, "-o", "o.png", "--lr-decay", "2"], 2, "--lr-decay"),
    "lr decay every 1e9": ([*T, "-o", "o.png", "--lr-decay-every", "1000000000"], 2, "between"),
    "seed -1": ([*T, "-o", "o.png", "--seed", "-1"], 2, "--seed must be between 0"),
    "seed 2^64": ([*T, "-o", "o.png", "--seed", str(2**64)], 2, "--seed must be between 0"),
    "style scale 0": ([*T, "-o", "o.png", "--style-scale", "0"], 2, "--style-scale"),
    "style scale 100": ([*T, "-o", "o.png", "--style-scale", "100"], 2, "--style-scale"),
    "max memory 0": ([*T, "-o", "o.png", "--max-memory", "0"], 2, "--max-memory"),
    "max memory 1e300": ([*T, "-o", "o.png", "--max-memory", "1e300"], 2, "--max-memory"),
    "save every -1": ([*T, "-o", "o.png", "--save-every", "-1"], 2, "--save-every must be"),
    "save every 1e9": ([*T, "-o", "o.png", "--save-every", "1000000000"], 2, "--save-every"),
    "animate every 0": (
        [*T, "-o", "o.png", "--animate", "a.gif", "--animate-every", "0"],
        2,
        "--animate-every must be between 1",
    ),
    "twenty stages": (
        [*T, "-o", "o.png", "--scales", ",".join(str(16 + i) for i in range(20)), "--size", "64"],
        2,
        "stages",
    ),
    "layer weight 1e39": (
        [*T, "-o", "o.png", "--style-layer-weights", "1,1,1,1,1e39"],
        2,
        "--style-layer-weights",
    ),
    "blend weight 1e39": ([*T, "-o", "o.png", "--style-blend-weights", "1e39"], 2, "blend"),
    "ratio 0": (["grid", "p.png", "s.png", "-o", "o.png", "--ratios", "0"], 2, "--ratios"),
    "ratio inf": (["grid", "p.png", "s.png", "-o", "o.png", "--ratios", "1,inf"], 2, "--ratios"),
    "ratio nan": (["grid", "p.png", "s.png", "-o", "o.png", "--ratios", "nan"], 2, "--ratios"),
    "ratios empty": (["grid", "p.png", "s.png", "-o", "o.png", "--ratios", ""], 2, "at least one"),
    "ratios only a comma": (["grid", "p.png", "s.png", "-o", "o.png", "--ratios", ","], 2, "one"),
    "grid layers only a comma": (
        ["grid", "p.png", "s.png", "-o", "o.png", "--layers", ","],
        2,
        "--layers needs at least one value",
    ),
    "reconstruct layers empty": (
        ["reconstruct", "style", "p.png", "-o", "o.png", "--layers", ""],
        2,
        "--layers needs at least one value",
    ),
    "fps 1e300": ([*V, "-o", "o.mp4", "--fps", "1e300", "--frames", "2"], 2, "frame rate"),
    "fps 0": ([*V, "-o", "o.mp4", "--fps", "0"], 2, "frame rate"),
    "fps nan": ([*V, "-o", "o.mp4", "--fps", "nan"], 2, "frame rate"),
    "start -1": ([*V, "-o", "o.mp4", "--start", "-1"], 2, "not a time"),
    "start 1e300": ([*V, "-o", "o.mp4", "--start", "1e300"], 2, "not a time"),
    "end inf": ([*V, "-o", "o.mp4", "--end", "inf"], 2, "not a time"),
    "frames past a billion": ([*V, "-o", "o.mp4", "--frames", "0:99999999999"], 2, "frame"),
    "temporal weight 1e39": ([*V, "-o", "o.mp4", "--temporal-weight", "1e39"], 2, "temporal"),
    "frame iterations 0": ([*V, "-o", "o.mp4", "--frame-iterations", "0"], 2, "--frame-iter"),
    "frame iterations 1e6": ([*V, "-o", "o.mp4", "--frame-iterations", "1000000"], 2, "between"),
    "serve port 70000": (["serve", "--port", "70000"], 2, "--port must be between 0 and 65535"),
    "serve max size huge": (["serve", "--max-size", "100000"], 2, "--max-size must be between"),
    "serve max iterations 1e9": (["serve", "--max-iterations", "1000000000"], 2, "between"),
    "serve upload 1e9 MB": (["serve", "--max-upload-mb", "1e9"], 2, "--max-upload-mb"),
    "serve keep hours inf": (["serve", "--keep-hours", "inf"], 2, "--keep-hours"),
    "serve queue 0": (["serve", "--queue-limit", "0"], 2, "--queue-limit"),
    # --- batch: its output folder, its sweeps, its lists of inputs -------------------------------
    "batch folder is the photo": (
        ["batch", "p.png", "--styles", "s.png", "-o", "p.png"],
        2,
        "the output folder 'p.png' is the content image",
    ),
    "batch folder holds the photo": (
        ["batch", "p.png", "--styles", "s.png", "-o", "."],
        2,
        "the output folder '.' contains the content image",
    ),
    "batch folder inside a photo": (
        ["batch", "p.png", "--styles", "s.png", "-o", "link.png/out"],
        2,
        "is inside the content image",
    ),
    "batch sheet is the painting": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--contact-sheet", "../s.png"],
        2,
        "the contact sheet 'out/../s.png' is the style image",
    ),
    "batch sheet type": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--contact-sheet", "x.gif"],
        2,
        "unsupported output type '.gif'",
    ),
    "batch sweep unknown option": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--sweep", "style_wieght=1,2"],
        2,
        "did you mean style_weight?",
    ),
    "batch sweep not a number": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--sweep", "size=big"],
        2,
        "--sweep size takes an integer",
    ),
    "batch sweep size huge": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--sweep", "size=64,100000"],
        2,
        "--size must be between 16 and",
    ),
    "batch sweep without values": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--sweep", "size"],
        2,
        "--sweep takes NAME=VALUE",
    ),
    "batch missing painting": (
        ["batch", "p.png", "--styles", "nope.png", "-o", "out"],
        3,
        "cannot read image 'nope.png': file not found",
    ),
    "batch glob finds nothing": (
        ["batch", "p.png", "--styles", "*.tiff", "-o", "out"],
        3,
        "no style image matches '*.tiff'",
    ),
    "batch folder is a file": (
        ["batch", "p.png", "--styles", "s.png", "-o", "g.gif"],
        3,
        "cannot use 'g.gif' as the output folder: it is not a folder",
    ),
    "batch no styles": (["batch", "p.png", "-o", "out"], 2, "--styles STYLE"),
    "batch no output folder": (["batch", "p.png", "--styles", "s.png"], 2, "-o OUTDIR"),
    "batch pairs uneven": (
        ["batch", "p.png", "--styles", "s.png", "g.gif", "-o", "out", "--pairs"],
        2,
        "--pairs needs as many styles as contents",
    ),
    "batch pairs and blend": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--pairs", "--blend"],
        2,
        "not allowed with argument",
    ),
    "batch jobs file missing": (
        ["batch", "--jobs", "jobs.csv", "-o", "out"],
        3,
        "cannot read jobs file 'jobs.csv'",
    ),
    "batch jobs file and contents": (
        ["batch", "p.png", "--jobs", "jobs.csv", "-o", "out"],
        2,
        "--jobs FILE takes the place of",
    ),
    "batch ray options without ray": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--workers", "2"],
        2,
        "--ray-address and --workers go with --executor ray",
    ),
    "batch no workers": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--executor", "ray", "--workers", "0"],
        2,
        "--workers must be at least 1",
    ),
    "batch size 0": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--size", "0"],
        2,
        "size",
    ),
    "batch output through a link": (
        [*B, "j_link.csv", "-o", "outs"],
        2,
        "the batch output 'outs/link/p.png' is the content image",
    ),
    "batch outputs clash with interrupted": (
        [*B, "j_interrupted.csv", "-o", "outs"],
        2,
        "the batch output 'outs/a.interrupted.png' is the interrupted file",
    ),
    "batch sheet is a result": (
        [*B, "j_x.csv", "-o", "outs", "--contact-sheet", "x.png"],  # a relative sheet is in OUTDIR
        2,
        "the batch output 'outs/x.png' is the contact sheet 'outs/x.png'",
    ),
    "batch output name too long": ([*B, "j_long.csv", "-o", "outs"], 3, "File name too long"),
    "batch planned name too long": (
        ["batch", f"{'c' * 240}.png", "--styles", "s.png", "-o", "outs"],
        3,
        "File name too long",
    ),
    "batch output under a file": ([*B, "j_under.csv", "-o", "outs"], 3, "is not a directory"),
    "batch folder inside the photos' folder": (
        ["batch", "styles", "--styles", "s.png", "-o", "styles/out"],
        2,
        "is inside the content folder 'styles'",
    ),
    "batch jobs file with a NUL": ([*B, "j_nul.jsonl", "-o", "outs"], 2, "NUL character"),
    "batch jobs file nested deep": ([*B, "j_deep.jsonl", "-o", "outs"], 2, "nested too deeply"),
    "batch jobs file huge field": ([*B, "j_field.csv", "-o", "outs"], 2, "field larger than"),
    "batch sweep init missing": (
        ["batch", "p.png", "--styles", "s.png", "-o", "outs", "--sweep", "init=content,no.png"],
        3,
        "cannot read the --init image 'no.png': file not found",
    ),
    "batch status of nothing": (["batch", "status", "frames"], 3, "no batch in 'frames'"),
    "batch status of two": (["batch", "status", "frames", "styles"], 2, "one OUTDIR"),
    # --- spatial and scale control: masks, label maps, a fine style -----------------------------
    "more masks than styles": (
        [*T, "-o", "o.png", "--masks", "m.png,m.png"],
        2,
        "--masks has 2 style mask(s) for 1 style image(s)",
    ),
    "fewer masks than styles": (
        [*T, "styles/s2.png", "-o", "o.png", "--masks", "m.png"],
        2,
        "--masks has 1 style mask(s) for 2 style image(s)",
    ),
    "masks with no file": ([*T, "-o", "o.png", "--masks", ","], 2, "--masks needs at least one"),
    "mask missing": ([*T, "-o", "o.png", "--masks", "nosuch.png"], 3, "file not found"),
    "mask empty file": ([*T, "-o", "o.png", "--masks", "empty.png"], 3, "the file is empty"),
    "mask not an image": ([*T, "-o", "o.png", "--masks", "notes.png"], 3, "notes.png"),
    "mask covers nothing": (
        [*T, "-o", "o.png", "--masks", "black.png"],
        2,
        "'black.png' covers nothing",
    ),
    "kept part covers everything": (
        [*T, "-o", "o.png", "--masks", "white.png:none"],
        2,
        "covers the whole photo",
    ),
    "kept part covers the styled one": (
        [*T, "-o", "o.png", "--masks", "m.png,m.png:none"],
        2,
        "covers all of mask 1",
    ),
    "kept mask missing": ([*T, "-o", "o.png", "--masks", "gone.png:none"], 3, "gone.png"),
    "style masks count": (
        [*T, "-o", "o.png", "--style-masks", "m.png,m.png"],
        2,
        "--style-masks has 2 mask(s) for 1",
    ),
    "style mask covers nothing": (
        [*T, "-o", "o.png", "--style-masks", "black.png"],
        2,
        "covers nothing",
    ),
    "mask is the output": ([*T, "-o", "m.png", "--masks", "m.png"], 2, "is the mask 'm.png'"),
    "label map alone": ([*T, "-o", "o.png", "--segmentation", "seg.png"], 2, "go together"),
    "label maps differ": (
        [*T, "-o", "o.png", "--segmentation", "seg3.png", "--style-segmentation", "seg.png"],
        2,
        "#ff0000 of --segmentation are not in --style-segmentation",
    ),
    "painting's label map has more": (
        [*T, "-o", "o.png", "--segmentation", "seg.png", "--style-segmentation", "seg3.png"],
        2,
        "of --style-segmentation are not in --segmentation",
    ),
    "a photo as a label map": (
        [*T, "-o", "o.png", "--segmentation", "p.png", "--style-segmentation", "s.png"],
        2,
        "save it as PNG",
    ),
    "label maps and masks": (
        [*T, "-o", "o.png", "--masks", "m.png", "--segmentation", "seg.png"],
        2,
        "not both",
    ),
    "label maps for two paintings": (
        [*T, "styles/s2.png", "-o", "o.png", *SEGMENTED],
        2,
        "one painting; 2 style images",
    ),
    "label map is the output": (
        [*T, "-o", "seg.png", "--segmentation", "seg.png", "--style-segmentation", "seg.png"],
        2,
        "is the --segmentation file",
    ),
    "masks with blend weights": (
        [*T, "styles/s2.png", "-o", "o.png", "--masks", "m.png,m.png", *BLEND],
        2,
        "does not apply with masks",
    ),
    "mask propagation unknown": (
        [*T, "-o", "o.png", "--mask-propagation", "insid"],
        2,
        "did you mean inside?",
    ),
    "keep feather 5": ([*T, "-o", "o.png", "--keep-feather", "5"], 2, "--keep-feather must be"),
    "fine style missing": ([*T, "-o", "o.png", "--fine-style", "nosuch.png"], 3, "not found"),
    "fine style split leaves none": (
        [*T, "-o", "o.png", "--fine-style", "styles/s2.png", "--scale-split", "conv1_1"],
        2,
        "leaves no style layer for the fine style",
    ),
    "fine style split unknown": (
        [*T, "-o", "o.png", "--fine-style", "styles/s2.png", "--scale-split", "conv9_1"],
        2,
        "unknown layer 'conv9_1'",
    ),
    "fine style with masks": (
        [*T, "-o", "o.png", "--fine-style", "styles/s2.png", "--masks", "m.png"],
        2,
        "cannot be combined with masks",
    ),
    "fine style is the output": ([*T, "-o", "o.png", "--fine-style", "o.png"], 2, "--fine-style"),
    "video with masks": ([*V, "-o", "o.mp4", "--masks", "m.png"], 2, "video does not take --masks"),
    "batch with a fine style": (
        ["batch", "p.png", "--styles", "s.png", "-o", "out", "--fine-style", "s.png"],
        2,
        "batch does not take --fine-style",
    ),
    "mix-styles over its painting": (["mix-styles", "s.png", "p.png", "-o", "p.png"], 2, "fine"),
    "mix-styles missing painting": (
        ["mix-styles", "nosuch.png", "p.png", "-o", "o.png"],
        3,
        "not found",
    ),
    # --- images no size can serve -----------------------------------------------------------------
    "a sliver no size fits": (
        ["transfer", "sliver.png", "s.png", "-o", "o.png", "--size", "64"],
        2,
        "crop the image",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_command_is_refused_and_harms_nothing(
    case: str,
    hostile_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, status, words = CASES[case]
    monkeypatch.chdir(hostile_dir)
    before = snapshot(hostile_dir)
    assert main(args) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("impasto: error: "), err
    assert words in lines[0], lines[0]
    assert snapshot(hostile_dir) == before  # inputs unchanged, nothing written or left behind


SPATIAL_FLAGS = {
    "--masks",
    "--style-masks",
    "--segmentation",
    "--style-segmentation",
    "--fine-style",
    "--mask-propagation",
    "--keep-feather",
    "--scale-split",
}
SPATIAL = sorted(
    name
    for name, (args, _, _) in CASES.items()
    if args[0] == "mix-styles" or SPATIAL_FLAGS & set(args)
)


@pytest.mark.slow
def test_spatial_rows_through_the_installed_command(hostile_dir: Path) -> None:
    """The spatial control rows again, through the ``impasto`` script pip installed (a process
    each, run two at a time): the same code, the same one line, nothing written."""
    script = installed_script()
    assert len(SPATIAL) >= 25
    before = snapshot(hostile_dir)

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return run_impasto(*CASES[name][0], cwd=hostile_dir, command=script)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(SPATIAL, pool.map(run, SPATIAL), strict=True))
    for name, done in runs.items():
        _, status, words = CASES[name]
        lines = done.stderr.splitlines()
        assert done.returncode == status, (name, done.stderr)
        assert "Traceback" not in done.stderr and len(lines) == 1, (name, done.stderr)
        assert lines[0].startswith("impasto: error: ") and words in lines[0], (name, lines[0])
    assert snapshot(hostile_dir) == before


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.slow
def test_a_full_disk_is_exit_3_and_leaves_nothing_behind(hostile_dir: Path) -> None:
    """RLIMIT_FSIZE makes every write past 4 KB fail as a full disk would (Python ignores the
    SIGXFSZ that would otherwise kill it, so the write raises EFBIG)."""
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    before = snapshot(hostile_dir)
    args = ["transfer", "p.png", "s.png", "-o", "big.png", "--size", "64", "--iterations", "1"]
    run = run_impasto(*args, "-q", cwd=hostile_dir, preexec_fn=small_files)
    assert run.returncode == 3, run.stderr
    assert len(run.stderr.splitlines()) == 1 and "cannot write 'big.png'" in run.stderr
    assert "Traceback" not in run.stderr
    assert snapshot(hostile_dir) == before  # no partial big.png, no temporary left


# --- the studio's guards: any header value is 400 or 403, never a 500 -----------------------------

# name: (method, headers as sent, status)
SERVER_CASES: dict[str, tuple[str, dict[bytes, bytes], int]] = {
    "host an open bracket": ("GET", {b"host": b"[::1"}, 400),
    "host a lone bracket": ("GET", {b"host": b"["}, 400),
    "host brackets around a name": ("GET", {b"host": b"[localhost]:8000"}, 400),
    "host with a closing bracket": ("POST", {b"host": b"local]host"}, 400),
    "host of bytes": ("GET", {b"host": b"\xff\xfe[\x00"}, 400),
    "host empty": ("GET", {b"host": b""}, 403),
    "host with a user": ("GET", {b"host": b"evil@localhost"}, 400),
    "host with a path": ("GET", {b"host": b"localhost/x"}, 400),
    "origin an open bracket": ("POST", {b"host": b"localhost", b"origin": b"http://[::1"}, 403),
    "origin a lone bracket": ("POST", {b"host": b"localhost", b"origin": b"http://["}, 403),
    "origin not a url": ("POST", {b"host": b"localhost", b"origin": b"null"}, 403),
    "origin of bytes": ("POST", {b"host": b"localhost", b"origin": b"http://\xe7[\xff"}, 403),
}


def _ask(app: Any, method: str, headers: dict[bytes, bytes]) -> tuple[int, dict[str, Any]]:
    """One request straight to an ASGI app (no HTTP client normalises the headers): its status
    and JSON body."""
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": list(headers.items()),
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


@pytest.mark.parametrize("case", sorted(SERVER_CASES))
def test_malformed_headers_are_refused_by_the_studios_guard(case: str) -> None:
    from impasto.serve.guards import SameSite

    method, headers, status = SERVER_CASES[case]
    reached: list[str] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        reached.append(case)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = SameSite(route, loopback_only=True)
    got, body = _ask(guard, method, headers)
    assert got == status, body
    assert isinstance(body["detail"], str) and "\n" not in body["detail"]
    assert not reached  # refused before any route ran
    assert _ask(guard, "POST", {b"host": b"localhost:8000"})[0] == 200


MISSING_FOLDER = {
    "transfer": ["transfer", "p.png", "s.png", "-o", "nowhere/deep/x.png"],
    "transfer, absolute": ["transfer", "p.png", "s.png", "-o", "/nonexistent/dir/x.png"],
    "--animate": ["transfer", "p.png", "s.png", "-o", "x.png", "--animate", "nowhere/a.gif"],
    "--plot": ["transfer", "p.png", "s.png", "-o", "x.png", "--plot", "nowhere/p.png"],
    "reconstruct": ["reconstruct", "style", "s.png", "-o", "nowhere/sheet.png"],
    "grid": ["grid", "p.png", "s.png", "-o", "nowhere/grid.png"],
    "mix-styles": ["mix-styles", "s.png", "s.png", "-o", "nowhere/mix.png"],
    "video": ["video", "p.png", "s.png", "-o", "nowhere/clip.mp4"],
    "video frames": ["video", "p.png", "s.png", "-o", "nowhere/frames/"],
    "batch OUTDIR": ["batch", "p.png", "--styles", "s.png", "-o", "nowhere/out"],
    "batch sheet": [
        *("batch", "p.png", "--styles", "s.png", "-o", "out"),
        *("--contact-sheet", "nowhere/sheet.png"),
    ],
}


@pytest.mark.parametrize("case", sorted(MISSING_FOLDER))
def test_an_output_into_a_missing_folder_is_refused_and_makes_no_folder(
    case: str,
    tmp_path: Path,
    content_path: Path,
    style_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 33: '-o /nonexistent/dir/x.png' made /nonexistent/dir. A batch's OUTDIR may be
    made, one level: the folder it goes in must exist."""
    (tmp_path / "p.png").write_bytes(content_path.read_bytes())
    (tmp_path / "s.png").write_bytes(style_path.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(MISSING_FOLDER[case]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert re.fullmatch(
        r"impasto: error: cannot write .*: the folder '(/nonexistent|nowhere|out/nowhere)\S*' "
        r"does not exist; create it first or name another\n",
        err,
    ), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "s.png"]
    assert not Path("/nonexistent").exists()
