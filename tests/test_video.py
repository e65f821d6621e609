"""``impasto video``: frames, sizes, rates and sound kept; resuming; flicker; bad input.

Clips are made here with PyAV (H.264 + AAC, or FFV1 for odd sizes) at 48x32 and a few frames,
and stylised with the real VGG-19 for 1-3 iterations a frame, so the whole file runs in seconds.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from helpers import SIZE, STEP, pan_frames
from impasto import cli, flow, imageio, video
from impasto.config import STYLE_WEIGHT, TransferConfig
from impasto.errors import InputError, Interrupted, UsageError
from impasto.optimize import Step
from impasto.vgg import VGG
from impasto.video import FrameResult, VideoOptions
from impasto.video import clip as video_clip
from impasto.video import frames as video_frames
from impasto.video import sinks as video_sinks
from impasto.video.options import TEMPORAL_WEIGHT


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    rate: int = 12,
    *,
    audio: bool = True,
    codec: str = "libx264",
    times_ms: Sequence[int] | None = None,
) -> Path:
    """A clip of ``frames`` (uint8 (H, W, 3)) at ``rate`` fps, with a 440 Hz AAC track as long
    as the video; ``times_ms`` gives each frame its own time (a variable frame rate)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=rate)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "12"}
        if times_ms is not None:
            vs.codec_context.time_base = vs.time_base = Fraction(1, 1000)
        astream = c.add_stream("aac", rate=48000) if audio else None
        if astream is not None:
            astream.layout = "mono"
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if astream is not None:
            samples = round(48000 * len(frames) / rate)
            tone = 0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)
            af = av.AudioFrame.from_ndarray(
                tone.astype(np.float32)[None], format="fltp", layout="mono"
            )
            af.sample_rate, af.pts = 48000, 0
            for p in astream.encode(af):
                c.mux(p)
            for p in astream.encode():
                c.mux(p)
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], Fraction | None, int]:
    """Decoded frames, the video stream's average rate, and the number of audio samples."""
    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    samples = 0
    with av.open(str(path)) as c:
        if c.streams.audio:
            samples = sum(f.samples for f in c.decode(audio=0))
    return frames, rate, samples


@pytest.fixture
def shared_vgg(monkeypatch: pytest.MonkeyPatch, vgg19: VGG) -> VGG:
    """Every transfer in these tests uses the session's network (no reload per command)."""
    monkeypatch.setattr(video_frames, "build_network", lambda config: vgg19)
    return vgg19


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", pan_frames(5))


def run_cli(*args: str | Path) -> int:
    return cli.main(["video", *map(str, args)])


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("impasto: "), err
    return lines[0]


CFG = TransferConfig(size=64, iterations=3, seed=7)


# --- pure helpers -------------------------------------------------------------------------------


def test_frame_size_bounds_never_enlarges_and_evens() -> None:
    assert video.frame_size((1920, 1080), 512) == (512, 288)
    assert video.frame_size((47, 33), 512) == (47, 33)  # never scaled up
    assert video.frame_size((47, 33), 512, even=True) == (46, 32)
    assert video.frame_size((47, 33), 40, even=True) == (40, 28)


def test_frame_seeds_are_fixed_and_distinct() -> None:
    seeds = [video.frame_seed(5, k) for k in range(50)]
    assert seeds == [video.frame_seed(5, k) for k in range(50)]
    assert len(set(seeds)) == 50
    assert seeds != [video.frame_seed(6, k) for k in range(50)]


def test_resampling_shows_the_frame_on_screen() -> None:
    times = [0.0, 0.04, 0.12, 0.16]  # 25 fps with one frame dropped
    assert video_clip._plan(times, Fraction(25), 0.0, None, None) == [0, 1, 2, 3]
    assert video_clip._plan(times, Fraction(25), 0.0, None, Fraction(25)) == [0, 1, 1, 2, 3]
    assert video_clip._plan(times, Fraction(25), 0.05, 0.15, None) == [2]
    assert video_clip._variable(times, Fraction(25))
    assert not video_clip._variable([0.0, 0.033, 0.067, 0.1], Fraction(30))


# --- the command --------------------------------------------------------------------------------


@pytest.mark.slow
def test_output_keeps_frames_size_rate_and_sound(
    clip: Path,
    style_path: Path,
    tmp_path: Path,
    shared_vgg: VGG,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.mp4"
    assert run_cli(clip, style_path, "-o", out, "--iterations", "2", "--seed", "3") == 0
    frames, rate, samples = read_video(out)
    src_frames, src_rate, src_samples = read_video(clip)
    assert len(frames) == len(src_frames) == 5
    assert frames[0].shape == (32, 48, 3)
    assert rate == src_rate == 12
    assert samples == src_samples > 0  # the AAC packets were copied, not re-encoded
    err = capsys.readouterr().err
    assert "wrote" in err and "5 frames at 12 fps, audio copied" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # work dir gone
    # A stylised video, not the input again.
    assert np.abs(frames[2].astype(float) - src_frames[2]).mean() > 2.0


@pytest.mark.slow
def test_odd_sizes_are_evened_and_size_bounds_them(
    tmp_path: Path, style_path: Path, shared_vgg: VGG
) -> None:
    clip = write_clip(tmp_path / "odd.mkv", pan_frames(3, (47, 33)), codec="ffv1", audio=False)
    args = ("--iterations", "1", "--no-temporal", "-q")
    assert run_cli(clip, style_path, "-o", tmp_path / "a.mp4", *args) == 0
    assert read_video(tmp_path / "a.mp4")[0][0].shape == (32, 46, 3)
    assert run_cli(clip, style_path, "-o", tmp_path / "b.mp4", "--size", "40", *args) == 0
    assert read_video(tmp_path / "b.mp4")[0][0].shape == (28, 40, 3)
    # A folder of PNGs has no yuv420p to please: the exact size.
    assert run_cli(clip, style_path, "-o", tmp_path / "frames", *args) == 0
    pngs = sorted((tmp_path / "frames").iterdir())
    assert [p.name for p in pngs] == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert imageio.load_image(pngs[0]).size == (47, 33)


@pytest.mark.slow
def test_range_and_resampling_trim_the_sound_too(
    tmp_path: Path, style_path: Path, shared_vgg: VGG
) -> None:
    clip = write_clip(tmp_path / "c.mp4", pan_frames(6))
    args = ("--iterations", "1", "--no-temporal", "-q")
    assert run_cli(clip, style_path, "-o", tmp_path / "part.mov", "--frames", "1:3", *args) == 0
    frames, rate, samples = read_video(tmp_path / "part.mov")
    assert (len(frames), rate) == (2, 12)
    assert abs(samples - 48000 * 2 / 12) <= 2 * 1024  # whole AAC packets overlapping 2 frames
    assert run_cli(clip, style_path, "-o", tmp_path / "half.mp4", "--fps", "6", *args) == 0
    frames, rate, _ = read_video(tmp_path / "half.mp4")
    assert (len(frames), rate) == (3, 6)


@pytest.mark.slow
def test_variable_frame_rate_is_resampled_with_a_notice(
    tmp_path: Path, style_path: Path, shared_vgg: VGG, capsys: pytest.CaptureFixture[str]
) -> None:
    times = [0, 50, 150, 200, 300, 350]  # 20 fps and 10 fps in turn: average 5/0.35 s
    clip = write_clip(tmp_path / "vfr.mp4", pan_frames(6), 20, audio=False, times_ms=times)
    out = tmp_path / "out.mkv"
    assert run_cli(clip, style_path, "-o", out, "--iterations", "1", "--no-temporal", "-q") == 0
    assert "variable frame rate; resampled" in capsys.readouterr().err
    frames, rate, _ = read_video(out)
    assert rate == read_video(clip)[1] == 15  # FFmpeg's average: 6 frames in 0.4 s
    # 0.35 s + the last frame's 1/15 s at 15 fps; each frame shows the one then on screen.
    assert len(frames) == 7
    assert video.open_clip(clip).plan == (0, 1, 1, 3, 3, 4, 5)  # at 0, 1/15, 2/15 ... s


@pytest.mark.slow
def test_folder_of_frames_in_gif_out(tmp_path: Path, style_path: Path, shared_vgg: VGG) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k, arr in enumerate(pan_frames(3)):
        Image.fromarray(arr).save(folder / f"f{k + 1}.png")  # f1, f2, f3: natural order
    (folder / "notes.txt").write_text("not a frame")
    out = tmp_path / "out.gif"
    assert run_cli(folder, style_path, "-o", out, "--iterations", "1", "--fps", "5", "-q") == 0
    with Image.open(out) as gif:
        assert (gif.n_frames, gif.size, gif.info["duration"]) == (3, SIZE, 200)


# --- resuming -----------------------------------------------------------------------------------


def stop_after(k: int) -> Callable[[FrameResult], None]:
    def on_frame(r: FrameResult) -> None:
        if r.index + 1 == k:
            raise KeyboardInterrupt

    return on_frame


@pytest.mark.slow
def test_resuming_reuses_cached_frames_and_gives_the_same_video(
    clip: Path, style_path: Path, tmp_path: Path, vgg19: VGG
) -> None:
    whole = tmp_path / "whole.mp4"
    video.stylize_video(clip, [style_path], whole, CFG, vgg=vgg19, work_dir=tmp_path / "w1",
                        keep_work=True)  # fmt: skip

    out, work = tmp_path / "resumed.mp4", tmp_path / "w2"
    with pytest.raises(Interrupted, match="resume"):
        video.stylize_video(clip, [style_path], out, CFG, vgg=vgg19, work_dir=work,
                            on_frame=stop_after(2))  # fmt: skip
    assert not out.exists()  # the video is written whole or not at all
    assert sorted(p.name for p in work.iterdir()) == [
        "frame_000001.png",
        "frame_000002.png",
        "manifest.json",
    ]
    started: list[int] = []

    def on_start(index: int, iterations: int) -> None:
        started.append(index)

    summary = video.stylize_video(clip, [style_path], out, CFG, vgg=vgg19, work_dir=work,
                                  keep_work=True, on_frame_start=on_start)  # fmt: skip
    assert (summary.frames, summary.reused) == (5, 2)
    assert started == [2, 3, 4]  # the cached frames were not optimised again
    for k in range(1, 6):  # every frame bit for bit, cached or not
        a = np.asarray(imageio.load_image(tmp_path / "w1" / f"frame_{k:06d}.png"))
        b = np.asarray(imageio.load_image(work / f"frame_{k:06d}.png"))
        assert np.array_equal(a, b), k
    decoded = zip(read_video(whole)[0], read_video(out)[0], strict=True)
    assert all(np.array_equal(a, b) for a, b in decoded)
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["run"]["options"]["iterations"] == 3


@pytest.mark.slow
def test_a_cache_of_other_settings_is_refused_then_restarted(
    clip: Path, style_path: Path, tmp_path: Path, vgg19: VGG
) -> None:
    out, work = tmp_path / "o.mp4", tmp_path / "w"
    opts = VideoOptions(temporal=False)
    with pytest.raises(Interrupted):
        video.stylize_video(clip, [style_path], out, CFG, opts, vgg=vgg19, work_dir=work,
                            on_frame=stop_after(1))  # fmt: skip
    other = CFG.replace(style_weight=10.0)
    with pytest.raises(UsageError, match=r"style_weight.*--restart"):
        video.stylize_video(clip, [style_path], out, other, opts, vgg=vgg19, work_dir=work)
    summary = video.stylize_video(
        clip, [style_path], out, other, opts, vgg=vgg19, work_dir=work, restart=True
    )
    assert (summary.frames, summary.reused) == (5, 0)
    assert not work.exists()


@pytest.mark.slow
def test_a_failed_write_keeps_the_frames_for_resuming(
    clip: Path, style_path: Path, tmp_path: Path, vgg19: VGG, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = video.FrameCache.put
    calls = []

    def full_disk(self: video.FrameCache, index: int, key: str, image: Image.Image) -> None:
        calls.append(index)
        if len(calls) == 3:
            raise InputError(f"cannot write '{self.path(index)}': No space left on device")
        put(self, index, key, image)

    monkeypatch.setattr(video.FrameCache, "put", full_disk)
    out, work = tmp_path / "o.mp4", tmp_path / "w"
    with pytest.raises(InputError, match=r"No space left.*2 finished frame.*resume"):
        video.stylize_video(clip, [style_path], out, CFG, vgg=vgg19, work_dir=work)
    assert not out.exists()
    monkeypatch.setattr(video.FrameCache, "put", put)
    summary = video.stylize_video(clip, [style_path], out, CFG, vgg=vgg19, work_dir=work)
    assert (summary.frames, summary.reused) == (5, 2)


# --- flicker ------------------------------------------------------------------------------------


def warping_error(frames: Sequence[Image.Image]) -> float:
    """Mean squared difference between consecutive frames along the true motion (+STEP, 0)."""
    h, w = frames[0].height, frames[0].width
    backward = np.zeros((h, w, 2), np.float32)
    backward[..., 0] = STEP
    errors = [
        flow.warping_error(np.asarray(a), np.asarray(b), backward)
        for a, b in itertools.pairwise(frames)
    ]
    return float(np.mean(errors))


@pytest.mark.slow
def test_temporal_consistency_flickers_less_than_naive(style_path: Path, vgg19: VGG) -> None:
    clip = pan_frames(4)
    cfg = TransferConfig(size=64, iterations=12, seed=1)

    def stylised(opts: VideoOptions) -> list[Image.Image]:
        return [r.image for r in video.stylize_frames(clip, [style_path], cfg, opts, vgg=vgg19)]

    naive = stylised(VideoOptions(temporal=False))
    steady = stylised(VideoOptions(frame_iterations=3))
    assert np.array_equal(np.asarray(naive[0]), np.asarray(steady[0]))  # same first frame
    e_naive, e_steady = warping_error(naive), warping_error(steady)
    assert e_steady < 0.5 * e_naive, (e_steady, e_naive)


@pytest.mark.slow
def test_steps_of_a_warm_frame_report_the_temporal_term_and_add_up(
    style_path: Path, vgg19: VGG
) -> None:
    """The temporal loss is a named term: a warm-started frame's Steps show it beside content,
    style and TV, and the weighted terms sum to the reported total; the first frame has none."""
    cfg = TransferConfig(size=48, iterations=4, seed=3, tv_weight=1e-3)
    seen: dict[int, list[tuple[float, dict[str, float]]]] = {}

    def on_frame_start(index: int, iterations: int) -> Callable[[Step], None]:
        rows = seen.setdefault(index, [])
        return lambda step: rows.append((step.loss, step.terms))

    opts = VideoOptions(frame_iterations=3)
    list(video.stylize_frames(pan_frames(2), [style_path], cfg, opts, vgg=vgg19,
                              on_frame_start=on_frame_start))  # fmt: skip
    assert list(seen) == [0, 1]
    assert all("temporal" not in terms for _, terms in seen[0])
    assert len(seen[1]) == 3
    for total, terms in seen[1]:
        assert list(terms) == ["content", "style", "tv", "temporal"]
        assert terms["temporal"] > 0 and terms["tv"] > 0
        assert sum(terms.values()) == pytest.approx(total, rel=1e-5)
    for total, terms in seen[0]:
        assert sum(terms.values()) == pytest.approx(total, rel=1e-5)


@pytest.mark.slow
def test_frames_from_arrays_keep_the_first_frames_size(style_path: Path, vgg19: VGG) -> None:
    frames = [np.zeros((32, 48, 3), np.uint8), np.full((64, 96, 3), 200, np.uint8)]
    cfg = TransferConfig(size=40, iterations=1, seed=0)
    out = list(video.stylize_frames(frames, [style_path], cfg, VideoOptions(temporal=False),
                                    vgg=vgg19))  # fmt: skip
    assert [r.image.size for r in out] == [(40, 27), (40, 27)]
    with pytest.raises(UsageError, match="uint8"):
        next(video.stylize_frames([np.zeros((4, 4, 3))], [style_path], cfg, vgg=vgg19))


# --- bad input ----------------------------------------------------------------------------------


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "mono"
        af = av.AudioFrame.from_ndarray(
            np.zeros((1, 4800), np.float32), format="fltp", layout="mono"
        )
        af.sample_rate, af.pts = 48000, 0
        for p in [*s.encode(af), *s.encode()]:
            c.mux(p)
    return path


def empty_track(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        c.start_encoding()
    return path


def truncated(path: Path, clip: Path) -> Path:
    data = clip.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


BAD: dict[str, tuple[Callable[[Path, Path], list[str | Path]], int, str]] = {
    "text": (lambda d, c: [d / "a.txt", "-o", d / "o.mp4"], 3, "not a video file"),
    "empty": (lambda d, c: [d / "empty.mp4", "-o", d / "o.mp4"], 3, "is empty"),
    "missing": (lambda d, c: [d / "nope.mp4", "-o", d / "o.mp4"], 3, "file not found"),
    "still": (lambda d, c: [d / "still.png", "-o", d / "o.mp4"], 3, "still image"),
    "no video": (lambda d, c: [audio_only(d / "a.m4a"), "-o", d / "o.mp4"], 3, "no video"),
    "no frames": (lambda d, c: [empty_track(d / "e.mp4"), "-o", d / "o.mp4"], 3, "no video"),
    "truncated": (lambda d, c: [truncated(d / "t.mp4", c), "-o", d / "o.mp4"], 3, "video"),
    "empty folder": (lambda d, c: [d / "dir", "-o", d / "o.mp4"], 3, "no image files"),
    "bad output": (lambda d, c: [c, "-o", d / "o.avi"], 2, "unsupported output type"),
    "overwrite input": (lambda d, c: [c, "-o", c], 2, "overwrite the input"),
    "start past end": (lambda d, c: [c, "-o", d / "o.mp4", "--start", "9"], 2, "not in"),
    "bad range": (lambda d, c: [c, "-o", d / "o.mp4", "--frames", "a:b"], 2, "frame range"),
    "bad weight": (lambda d, c: [c, "-o", d / "o.mp4", "--temporal-weight", "-1"], 2, ">= 0"),
    "bad flow": (
        lambda d, c: [c, "-o", d / "o.mp4", "--flow", "lk"],
        2,
        "choose from dis, farneback",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_an_exit_code(
    case: str, clip: Path, tmp_path: Path, style_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "dir").mkdir()
    Image.new("RGB", SIZE).save(tmp_path / "still.png")
    make, status, message = BAD[case]
    inp, *rest = make(tmp_path, clip)
    assert run_cli(inp, style_path, *rest) == status
    assert message in one_line(capsys.readouterr().err)


def test_a_missing_style_is_an_input_error(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(clip, tmp_path / "nope.jpg", "-o", tmp_path / "o.mp4") == 3
    assert "nope.jpg" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_without_opencv_video_says_what_to_install(
    clip: Path,
    style_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shared_vgg: VGG,
) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    assert run_cli(clip, style_path, "-o", tmp_path / "o.mp4") == 2
    assert "pip install 'impasto[video]'" in one_line(capsys.readouterr().err)
    # The naive method needs no optical flow, so it works without OpenCV.
    args = ("--no-temporal", "--iterations", "1", "--frames", "2", "-q")
    assert run_cli(clip, style_path, "-o", tmp_path / "o.mp4", *args) == 0


def test_the_default_temporal_weight_follows_the_style_weight() -> None:
    """λ was measured as 1e8 at β = 1e3: by default it keeps that ratio at every β."""
    paper = TransferConfig(preset="paper")
    assert VideoOptions().temporal_weight_for(paper) == TEMPORAL_WEIGHT
    assert paper.style_weight == STYLE_WEIGHT
    for size in (128, 512):
        cfg = TransferConfig(size=size)
        expected = TEMPORAL_WEIGHT * cfg.style_weight / STYLE_WEIGHT
        assert VideoOptions().temporal_weight_for(cfg) == pytest.approx(expected)
    assert VideoOptions(temporal_weight=3.0).temporal_weight_for(TransferConfig()) == 3.0
    with pytest.raises(UsageError, match="--temporal-weight"):
        VideoOptions(temporal_weight=-1.0)


# --- folders written whole; clean-up is not the result -------------------------------------------


def test_a_folder_output_replaces_an_earlier_runs_frames_whole(tmp_path: Path) -> None:
    out = tmp_path / "styled"
    with video_sinks.open_sink(out, "folder", Fraction(24)) as earlier:
        for _ in range(8):
            earlier.write(Image.new("RGB", SIZE, "red"))
    video.check_output(out, "folder")  # an earlier run's frames: ours to replace
    with video_sinks.open_sink(out, "folder", Fraction(24)) as sink:
        for _ in range(2):
            sink.write(Image.new("RGB", SIZE, "blue"))
        assert len(list(out.iterdir())) == 8  # untouched until the run is done
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "frame_000002.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["styled"]


def test_a_failed_folder_output_leaves_the_old_one_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "styled"
    out.mkdir()
    Image.new("RGB", SIZE, "red").save(out / "frame_000001.png")
    before = (out / "frame_000001.png").read_bytes()
    with pytest.raises(KeyboardInterrupt), video_sinks.open_sink(out, "folder", Fraction(24)) as s:
        s.write(Image.new("RGB", SIZE, "blue"))
        raise KeyboardInterrupt
    assert [p.name for p in out.iterdir()] == ["frame_000001.png"]
    assert (out / "frame_000001.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["styled"]


def test_a_folder_of_other_files_is_not_an_output(tmp_path: Path) -> None:
    (tmp_path / "holiday").mkdir()
    (tmp_path / "holiday" / "beach.jpg").write_bytes(b"precious")
    with pytest.raises(UsageError, match="not frames of an earlier run"):
        video.check_output(tmp_path / "holiday", "folder")


@pytest.mark.slow
def test_a_work_dir_that_cannot_be_removed_is_a_warning(
    tmp_path: Path, style_path: Path, shared_vgg: VGG, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k, arr in enumerate(pan_frames(2)):
        Image.fromarray(arr).save(folder / f"f{k + 1}.png")

    def read_only(work: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(video, "remove_work_dir", read_only)
    notes: list[str] = []
    summary = video.stylize_video(
        folder,
        [style_path],
        tmp_path / "out",
        TransferConfig(size=32, iterations=1, seed=0),
        VideoOptions(temporal=False),
        notice=notes.append,
    )
    assert summary.frames == 2 and len(list((tmp_path / "out").iterdir())) == 2
    assert any("warning: could not remove the work directory" in n for n in notes), notes
