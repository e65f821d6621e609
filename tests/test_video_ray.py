"""Video on a local Ray (two CPUs, two workers): through the command line, and resuming after a
worker or the driver is killed mid-run, to the same frames as a run never interrupted, with no
finished frame painted again. Real weights, 48 px, 6 frames."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import finish, impasto_process, pan_frames, run_impasto, two_shots, wait_until
from impasto import video
from impasto.config import TransferConfig
from impasto.jobs import ExecutorOptions
from impasto.video import VideoOptions

try:
    import ray
except ImportError:  # the tests that need it skip, saying why
    ray = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ray is None, reason="Ray is not installed: pip install 'impasto[ray]'"),
]

CFG = TransferConfig(size=48, iterations=4, seed=0)
OPTS = VideoOptions(frame_iterations=6, chunk_frames=3)
FLAGS = ["--size", "48", "--iterations", "4", "--seed", "0", "--frame-iterations", "6"]
FLAGS += ["--chunk-frames", "3", "--executor", "ray", "--workers", "2"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the in-process tests (about 10 s to start); nothing leaves 127.0.0.1."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six frames of a pan, as a folder of PNGs."""
    d = tmp_path_factory.mktemp("clip")
    for i, f in enumerate(pan_frames(6)):
        Image.fromarray(f).save(d / f"{i:03d}.png")
    return d


@pytest.fixture(scope="module")
def uninterrupted(
    local_ray: None, clip_dir: Path, tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path
) -> list[np.ndarray]:
    """The frames of a run on two Ray workers that nothing interrupts."""
    out = tmp_path_factory.mktemp("whole") / "out"
    style = tiny_dir / "starry_night.png"
    summary = video.stylize_video(clip_dir, [style], out, CFG, OPTS,
                                  executor=ExecutorOptions("ray", workers=2))  # fmt: skip
    assert summary.frames == 6 and summary.chunks == 2 and summary.reused == 0
    assert summary.workers == "2 Ray workers (cpu)"
    return frames_of(out)


def frames_of(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def test_a_killed_worker_loses_no_finished_frame(
    uninterrupted: list[np.ndarray],
    clip_dir: Path,
    tmp_path: Path,
    style_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed after the first frames came back: its stretch is submitted again with
    them, every frame is painted once, and the video is the uninterrupted run's, bit for bit."""
    from impasto.video import cluster

    runners: list[cluster.RayRunner] = []
    real = cluster.RayRunner

    def keep(*args: object, **kwargs: object) -> cluster.RayRunner:
        runners.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return runners[-1]

    painted: list[int] = []
    killed: list[int] = []

    def on_frame(r: video.FrameResult) -> None:
        painted.append(r.index)
        if len(painted) == 2 and not killed:  # both keyframes back; the chunks are running
            pid = runners[0].pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    monkeypatch.setattr(cluster, "RayRunner", keep)
    summary = video.stylize_video(clip_dir, [style_path], tmp_path / "out", CFG, OPTS,
                                  executor=ExecutorOptions("ray", workers=2),
                                  on_frame=on_frame)  # fmt: skip
    assert killed
    assert sorted(painted) == list(range(6))  # each frame painted once
    assert summary.reused == 0
    assert any("worker died" in n and "submitted again" in n for n in summary.notices)
    for a, b in zip(frames_of(tmp_path / "out"), uninterrupted, strict=True):
        assert np.array_equal(a, b)


def test_video_on_ray_through_the_command_line_and_a_killed_driver(
    uninterrupted: list[np.ndarray], clip_dir: Path, tmp_path: Path, style_path: Path
) -> None:
    """``impasto video ... --executor ray --workers 2``: the driver killed (SIGKILL) once frames
    are cached; the same command again reuses them, paints the rest and writes the frames of
    the uninterrupted run."""
    (tmp_path / "s.png").write_bytes(style_path.read_bytes())
    args = ["video", str(clip_dir), "s.png", "-o", "out", *FLAGS]
    work = tmp_path / "out.work"
    with impasto_process(args, tmp_path) as proc:
        wait_until(lambda: len(list(work.glob("frame_*.png"))), "two cached frames",
                   ok=lambda n: n >= 2, proc=proc)  # fmt: skip
        proc.kill()
        finish(proc, timeout=60)
    kept = len(list(work.glob("frame_*.png")))
    assert 2 <= kept < 6
    run = run_impasto(*args, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "2 Ray workers" in run.stderr and "in 2 chunks" in run.stderr
    assert f"{kept} reused from the work directory" in run.stderr
    assert not work.exists()
    for a, b in zip(frames_of(tmp_path / "out"), uninterrupted, strict=True):
        assert np.array_equal(a, b)


def test_scene_cuts_split_the_chunks_on_ray(
    local_ray: None, tmp_path: Path, style_path: Path
) -> None:
    """Two shots: the cut is found before painting and each shot is chunked on its own."""
    d = tmp_path / "in"
    d.mkdir()
    for i, f in enumerate(two_shots(3, 3)):
        Image.fromarray(f).save(d / f"{i:03d}.png")
    said: list[str] = []
    summary = video.stylize_video(d, [style_path], tmp_path / "out", CFG, OPTS,
                                  executor=ExecutorOptions("ray", workers=2),
                                  notice=said.append)  # fmt: skip
    assert summary.cuts == [3] and summary.chunks == 2
    assert any("scene cut" in line and "frame(s) 4" in line for line in said)
