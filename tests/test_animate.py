"""Recording a run (frames, losses), writing GIF/MP4 atomically, loss plots, and the CLI options."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import av
import pytest
import torch
from PIL import Image

from helpers import run_impasto
from impasto import animate
from impasto.errors import InputError, UsageError
from impasto.optimize import Step
from impasto.video import sinks


def fake_step(i: int, n: int, size: tuple[int, int] = (20, 10)) -> Step:
    w, h = size
    shade = float(i * 30 % 256)  # a different picture every iteration
    losses = {"total": 10.0 / i, "content": 1.0, "style": 9.0 / i, "tv": 0.0}
    return Step(i, n, 0.01 * i, None, lambda: losses, lambda: torch.full((1, 3, h, w), shade))


def frames(count: int, size: tuple[int, int]) -> list[Image.Image]:
    return [Image.new("RGB", size, (i * 40 % 256, 255 - i * 40 % 256, 90)) for i in range(count)]


def test_recorder_keeps_every_kth_frame_and_the_last() -> None:
    rec = animate.Recorder(every=3)
    for i in range(1, 8):
        rec(fake_step(i, 7))
    assert rec.frame_iterations == [3, 6, 7]
    assert len(rec.frames) == 3
    assert [i for i, _ in rec.history] == list(range(1, 8))  # every step, whatever `every` is
    assert rec.history[1] == (2, {"total": 5.0, "content": 1.0, "style": 4.5, "tv": 0.0})
    assert rec.frames[0].getpixel((0, 0)) == (90, 90, 90)


def test_recorder_downscales_to_max_side() -> None:
    rec = animate.Recorder(every=1, max_side=8)
    rec(fake_step(1, 1, size=(20, 10)))
    assert rec.frames[0].size == (8, 4)
    with pytest.raises(UsageError):
        animate.Recorder(every=0)


def test_chain_calls_every_listener_and_skips_none() -> None:
    seen: list[tuple[str, int]] = []
    first: Callable[[Step], None] = lambda s: seen.append(("a", s.iteration))  # noqa: E731
    second: Callable[[Step], None] = lambda s: seen.append(("b", s.iteration))  # noqa: E731
    listener = animate.chain(first, None, second)
    listener(fake_step(1, 2))
    listener(fake_step(2, 2))
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_gif_has_every_frame_at_the_frames_size(tmp_path: Path) -> None:
    path = animate.save_animation(frames(3, (21, 13)), tmp_path / "run.gif", fps=20)
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 3
        assert im.size == (21, 13)
        assert im.info["duration"] == 50
        assert im.info["loop"] == 0
    assert os.listdir(tmp_path) == ["run.gif"]


def test_mp4_has_every_frame_and_even_sides(tmp_path: Path) -> None:
    path = animate.save_animation(frames(4, (33, 21)), tmp_path / "run.mp4")
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == 4
    assert (decoded[0].width, decoded[0].height) == (34, 22)
    assert os.listdir(tmp_path) == ["run.mp4"]


@pytest.mark.parametrize(
    ("ext", "writer"), [(".gif", "_write_gif"), (".mp4", "_write_mp4")], ids=["gif", "mp4"]
)
@pytest.mark.parametrize(
    ("error", "expected"),
    [(KeyboardInterrupt, KeyboardInterrupt), (OSError, InputError)],
    ids=["ctrl-c", "oserror"],
)
def test_failed_write_leaves_no_temp_and_the_old_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ext: str,
    writer: str,
    error: type[BaseException],
    expected: type[BaseException],
) -> None:
    target = tmp_path / f"run{ext}"
    target.write_bytes(b"the previous animation")

    def half_written(frames: object, f: IO[bytes], fps: float) -> None:
        f.write(b"half a file")
        raise error(28, "No space left on device") if error is OSError else error()

    monkeypatch.setattr(sinks, writer, half_written)
    with pytest.raises(expected) as info:
        animate.save_animation(frames(2, (8, 8)), target)
    assert os.listdir(tmp_path) == [target.name]
    assert target.read_bytes() == b"the previous animation"
    if expected is InputError:
        assert "No space left on device" in str(info.value)
        assert "\n" not in str(info.value)


def test_unsupported_extension_and_no_frames_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unsupported animation type '\.avi'.*\.gif or \.mp4"):
        animate.check_animation_path(tmp_path / "x.avi")
    with pytest.raises(UsageError, match="unsupported animation type"):
        animate.save_animation(frames(2, (8, 8)), tmp_path / "x.avi")
    with pytest.raises(UsageError, match="no frames"):
        animate.save_animation([], tmp_path / "x.gif")
    with pytest.raises(UsageError, match="unsupported plot type"):
        animate.check_plot_path(tmp_path / "losses.gif")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "rows",
    [
        [(1, 10.0, 2.0, 8.0), (2, 6.0, 2.5, 3.5), (3, 4.0, 2.6, 1.4)],
        [(1, 10.0, 0.0, 10.0), (2, 5.0, -1.0, 6.0), (3, 0.0, 0.0, 0.0)],  # zeros, negatives
        [(1, 0.0, 0.0, 0.0)],  # nothing a log axis can show
        [],
    ],
    ids=["falling", "zeros-and-negatives", "all-zero", "empty"],
)
def test_plot_is_a_valid_png(tmp_path: Path, rows: list[tuple[int, float, float, float]]) -> None:
    history = [(i, {"total": t, "content": c, "style": s}) for i, t, c, s in rows]
    path = animate.plot_terms(history, tmp_path / "losses.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width > 100 and im.height > 100
    assert os.listdir(tmp_path) == ["losses.png"]


def test_plot_as_svg(tmp_path: Path) -> None:
    path = animate.plot_curves({"a": [(1, 3.0), (2, 1.0)]}, tmp_path / "losses.svg", title="t")
    assert path.read_text().lstrip().startswith("<?xml")


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.slow
def test_transfer_writes_animation_and_plot(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    proc = run_impasto(
        "transfer", content_path, style_path, "-o", "out.png", "--size", "32",
        "--iterations", "6", "--animate", "a.gif", "--animate-every", "2", "--plot", "l.png",
        "-q", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 3  # iterations 2, 4 and 6
        assert max(im.size) == 32
    with Image.open(tmp_path / "l.png") as im:
        assert im.format == "PNG"
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "l.png", "out.png"]


@pytest.mark.slow
def test_bad_animation_extension_fails_before_any_work(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    proc = run_impasto(
        "transfer", content_path, style_path, "-o", "out.png", "--size", "32",
        "--iterations", "6", "--animate", "x.avi", "--plot", "l.png", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unsupported animation type '.avi'" in proc.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_reconstruct_animates_panels_side_by_side(tmp_path: Path, content_path: Path) -> None:
    proc = run_impasto(
        "reconstruct", "content", content_path, "-o", "sheet.png", "--size", "32",
        "--iterations", "4", "--layers", "conv1_1,conv2_1", "--animate", "r.gif",
        "--plot", "r.png", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "sheet.png") as sheet:
        sheet_size = sheet.size
    with Image.open(tmp_path / "r.gif") as im:
        assert im.width >= 2 * 32  # two panels side by side
        assert im.size == sheet_size  # laid out like the contact sheet
        assert im.n_frames >= 2  # default --animate-every: one frame per iteration here
    assert (tmp_path / "r.png").is_file()
