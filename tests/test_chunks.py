"""Chunks: the plan (known answers), a chunked run in this process (the same frames as the
cache says, resumed without repainting), and the seam term."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import pan_frames, two_shots
from impasto import flow, video
from impasto.config import TransferConfig
from impasto.vgg import VGG
from impasto.video import VideoOptions, chunks
from impasto.video import chunked as video_chunked
from impasto.video.cache import FrameCache, run_identity
from impasto.video.chunks import Chunk, Stretch, plan_chunks, seam_share, stretches
from impasto.video.workers import LocalRunner


def test_shots_are_split_into_near_equal_chunks() -> None:
    assert plan_chunks(10, [], None) == [Chunk(0, 10, None, None)]
    assert plan_chunks(10, [], 4) == [
        Chunk(0, 3, None, 3), Chunk(3, 6, 0, 6), Chunk(6, 10, 3, None),
    ]  # fmt: skip
    # Cuts first: each shot on its own, its first chunk afresh, and no tie across a cut.
    assert plan_chunks(10, [4], 3) == [
        Chunk(0, 2, None, 2), Chunk(2, 4, 0, None), Chunk(4, 7, None, 7), Chunk(7, 10, 4, None),
    ]  # fmt: skip
    assert plan_chunks(3, [0, 3, 5], 8) == [Chunk(0, 3, None, None)]  # no cut at 0 or the end
    with pytest.raises(ValueError, match="at least one frame"):
        plan_chunks(3, [], 0)


def test_a_chunk_is_its_keyframe_then_the_rest_tied_to_the_next_one() -> None:
    key, rest = stretches(Chunk(3, 6, 0, 6))
    assert key == Stretch(0, range(3, 4), None, 3) and key.needs == (0,)
    assert rest == Stretch(3, range(4, 6), 6, 3) and rest.needs == (3, 6)
    first, none = stretches(Chunk(0, 1, None, None))
    assert first.needs == () and none is None


def test_the_seam_term_grows_through_the_chunk() -> None:
    shares = [seam_share(k, 10, 14) for k in range(10, 15)]
    assert shares[0] == 0.0 and shares[-1] == pytest.approx(chunks.SEAM_WEIGHT)
    assert shares == sorted(shares)


def test_a_long_chunk_still_needs_a_frame() -> None:
    from impasto.errors import UsageError

    with pytest.raises(UsageError, match="chunk-frames"):
        VideoOptions(chunk_frames=0)
    assert VideoOptions().chunked(workers=True).chunk_frames == 24
    assert VideoOptions().chunked(workers=False).chunk_frames is None
    assert VideoOptions(chunk_frames=5).chunked(workers=False).chunk_frames == 5


def _folder(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(d / f"{i:03d}.png")
    return d


@pytest.mark.slow
def test_a_chunked_run_resumes_without_repainting(
    tmp_path: Path, style_path: Path, vgg19: VGG, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two shots in chunks of two frames, in this process: the cut is found before painting,
    the run stopped after three frames keeps them, and the rerun paints only the rest and gives
    the same frames as a run never stopped."""
    source = _folder(tmp_path, two_shots(4, 3))
    cfg = TransferConfig(size=48, iterations=4, seed=2)
    opts = VideoOptions(frame_iterations=2, chunk_frames=2)

    def run(out: str, on_frame: Callable[[video.FrameResult], None] | None = None) -> list[str]:
        painted: list[str] = []

        def heard(r: video.FrameResult) -> None:
            painted.append(("reused " if r.reused else "") + str(r.index))
            if on_frame is not None:
                on_frame(r)

        summary = video.stylize_video(source, [style_path], tmp_path / out, cfg, opts, vgg=vgg19,
                                      keep_work=True, on_frame=heard)  # fmt: skip
        assert summary.cuts == [4] and summary.chunks == 4
        return painted

    whole = run("whole")
    assert sorted(whole, key=int) == [str(i) for i in range(7)]
    # Keyframes come first: 0 and 2 (the first shot's), 4 and 5 (the second's).
    assert whole[:4] == ["0", "2", "4", "5"]

    def stop_after_three(r: video.FrameResult) -> None:
        if not r.reused and len(list((tmp_path / "part.work").glob("frame_*.png"))) >= 3:
            raise KeyboardInterrupt

    with pytest.raises(video.Interrupted, match="3 finished frame"):
        run("part", stop_after_three)
    again = run("part")
    assert sum(p.startswith("reused") for p in again) == 3
    assert len([p for p in again if not p.startswith("reused")]) == 4
    for i in range(7):
        a = np.asarray(Image.open(tmp_path / "whole" / f"frame_{i + 1:06d}.png"))
        b = np.asarray(Image.open(tmp_path / "part" / f"frame_{i + 1:06d}.png"))
        assert np.array_equal(a, b), i


@pytest.mark.slow
def test_chunks_meet_at_their_keyframes(
    tmp_path: Path, style_path: Path, vgg19: VGG, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's last frame is held to the next keyframe: with the seam term the step from it
    to that keyframe is smaller than without."""
    contents = pan_frames(6, size=(64, 48), step=1)
    # fp32: at 3 iterations a frame, bf16 rounding (the CPU default where it is in hardware)
    # outweighs the seam term at this tiny size.
    cfg = TransferConfig(size=64, iterations=8, seed=4, precision="fp32")
    opts = VideoOptions(frame_iterations=3, chunk_frames=3)
    styles = [Image.open(style_path).convert("RGB")]
    backward = flow.optical_flow(contents[3], contents[2])

    def seam_error(weight: float) -> float:
        monkeypatch.setattr(chunks, "SEAM_WEIGHT", weight)
        cache = FrameCache(tmp_path / str(weight), run_identity(cfg, opts, (64, 48), styles, {}))
        runner = LocalRunner(vgg19, torch.device("cpu"))
        try:
            run = video_chunked.paint_chunked(contents, styles, cfg, opts, runner, cache)
        finally:
            runner.close()
        assert [c.start for c in run.chunks] == [0, 3]
        return flow.warping_error(run.outputs[2], run.outputs[3], backward)

    assert seam_error(1.0) < seam_error(0.0)
