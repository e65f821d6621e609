"""Video sources: probing a file (or a folder of images), planning the output's frames, decoding.

Input is anything FFmpeg (PyAV) decodes, or a folder of images. The output frame rate is the input
stream's average rate; a variable-rate input is resampled to that average (each output frame shows
the input frame on screen at its time) with a one-line notice, as ``--fps`` does on request.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import PIL.Image

from .. import imageio
from ..errors import InputError, UsageError, first_line
from ..paths import check_regular_file
from ..videoconfig import FOLDER_RATE as FOLDER_RATE
from ..videoconfig import MAX_FPS as MAX_FPS
from ..videoconfig import MAX_FRAMES as MAX_FRAMES
from ..videoconfig import MIN_FPS as MIN_FPS
from .keys import digest

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Clip:
    """A source (video file or folder of images) and which of its frames the output shows.

    Open one with :func:`open_clip`; :meth:`frames` decodes the planned frames lazily."""

    path: Path
    kind: Literal["video", "folder"]
    size: tuple[int, int]  # (W, H) as displayed (rotation applied)
    rate: Fraction  # of the output
    plan: tuple[int, ...]  # source frame (presentation order) of each output frame
    origin: float  # seconds on the source's clock at which the output starts (for the audio)
    files: tuple[Path, ...] = ()  # a folder's images, in order
    audio: str | None = None  # the audio codec, when there is an audio stream
    rotation: int = 0  # degrees counter-clockwise that display the decoded frames upright
    notices: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.plan)

    @property
    def duration(self) -> float:
        return len(self.plan) / float(self.rate)

    def identity(self) -> dict[str, str]:
        """What fixes the frames besides their pixels: part of every cache key."""
        return {"plan": digest(",".join(map(str, self.plan))), "rate": str(self.rate)}

    def frames(self) -> Iterator[PIL.Image.Image]:
        """The output's content frames in order (a source frame repeats or is skipped where the
        plan resamples)."""
        counts: dict[int, int] = {}
        for j in self.plan:
            counts[j] = counts.get(j, 0) + 1
        last = self.plan[-1]
        if self.kind == "folder":
            for j in sorted(counts):
                img = imageio.load_image(self.files[j])
                yield from [img] * counts[j]
            return
        for j, img in enumerate(_decode(self.path, self.rotation)):
            yield from [img] * counts.get(j, 0)
            if j >= last:
                return


def _decode(path: Path, rotation: int) -> Iterator[PIL.Image.Image]:
    """Every frame of the first video stream, in presentation order, upright."""
    import av

    name = str(path)
    try:
        with av.open(name) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                arr = np.asarray(frame.to_ndarray(format="rgb24"))  # (H, W, 3) uint8
                if rotation:
                    arr = np.ascontiguousarray(np.rot90(arr, k=rotation // 90))
                yield PIL.Image.fromarray(arr)
    except av.FFmpegError as exc:
        raise InputError(f"cannot decode '{name}': {first_line(exc)}") from exc


@dataclass
class _Probe:
    """What a source holds, before any range or rate is applied."""

    kind: Literal["video", "folder"]
    size: tuple[int, int]
    times: list[float]  # seconds from the first frame, presentation order
    rate: Fraction  # average
    start: float = 0.0  # the first frame's time on the source's clock
    files: tuple[Path, ...] = ()
    audio: str | None = None
    rotation: int = 0


def open_clip(
    path: str | os.PathLike[str],
    *,
    start: float | None = None,
    end: float | None = None,
    frames: tuple[int | None, int | None] | None = None,
    fps: float | Fraction | None = None,
) -> Clip:
    """Probe a video file (or a folder of images) and plan the output's frames.

    ``start``/``end`` are seconds from the first frame; ``frames`` a (first, stop) slice of the
    frames left after that (0-based, stop excluded); ``fps`` resamples to that rate. A variable
    frame rate is resampled to the stream's average rate, with a notice. A folder of images has
    ``fps`` frames per second (default 24) and is never resampled. Problems with the file are
    :class:`InputError`; impossible options are :class:`UsageError`."""
    p = Path(path)
    if start is not None and (not math.isfinite(start) or start < 0):
        raise UsageError(f"--start must be a number of seconds >= 0, not {start}")
    if end is not None and (not math.isfinite(end) or end <= (start or 0.0)):
        raise UsageError(f"--end must be a time after --start, not {end}")
    rate_out: Fraction | None = None
    if fps is not None:
        if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
            raise UsageError(f"--fps must be between {MIN_FPS:g} and {MAX_FPS:g}, not {fps:g}")
        rate_out = Fraction(fps).limit_denominator(1001)
    probe = _probe_folder(p, rate_out) if p.is_dir() else _probe_video(p)
    notices: list[str] = []
    if probe.kind == "folder":
        rate_out = None  # the folder's rate is --fps itself
    elif rate_out is None and _variable(probe.times, probe.rate):
        rate_out = probe.rate
        notices.append(
            f"'{p}' has a variable frame rate; resampled to its average {float(rate_out):.4g} "
            "fps (each output frame shows the input frame on screen at its time)"
        )
    t0 = start or 0.0
    plan = _plan(probe.times, probe.rate, t0, end, rate_out)
    if frames is not None:
        kept = range(len(plan))[slice(*frames)]
        plan = [plan[i] for i in kept]
        if rate_out is not None and kept:
            t0 += kept[0] / float(rate_out)
    if not plan:
        raise UsageError(f"the frames asked for are not in '{p}' ({len(probe.times)} frames)")
    origin = t0 if rate_out is not None else probe.times[plan[0]]
    return Clip(
        path=p,
        kind=probe.kind,
        size=probe.size,
        rate=rate_out or probe.rate,
        plan=tuple(plan),
        origin=probe.start + origin,
        files=probe.files,
        audio=probe.audio,
        rotation=probe.rotation,
        notices=tuple(notices),
    )


def _plan(
    times: Sequence[float],
    rate: Fraction,
    start: float,
    end: float | None,
    rate_out: Fraction | None,
) -> list[int]:
    """Source frame of each output frame. Without ``rate_out`` every frame whose time lies in
    [start, end) is kept once; with it, output frame i at time start + i/rate_out shows the last
    source frame that began at or before then."""
    eps = 1e-6
    if rate_out is None:
        return [
            j for j, t in enumerate(times) if t >= start - eps and (end is None or t < end - eps)
        ]
    stop = times[-1] + 1.0 / float(rate)  # the last frame stays up one average frame time
    if end is not None:
        stop = min(stop, end)
    count = (stop - start) * float(rate_out)
    if count > MAX_FRAMES:
        raise UsageError(
            f"--fps {float(rate_out):g} would make {count:.0f} frames; at most {MAX_FRAMES} "
            "are allowed (choose a lower rate or a shorter range)"
        )
    plan: list[int] = []
    i = 0
    while (t := start + i / float(rate_out)) < stop - eps:
        plan.append(max(0, bisect.bisect_right(times, t + eps) - 1))
        i += 1
    return plan


def _variable(times: Sequence[float], rate: Fraction) -> bool:
    """True when some frame interval departs from 1/rate by more than a quarter of it
    (timestamp rounding is far smaller; a dropped frame or a 30/15 fps switch is not)."""
    nominal = 1.0 / float(rate)
    return any(abs(b - a - nominal) > 0.25 * nominal for a, b in itertools.pairwise(times))


def _natural(p: Path) -> list[str | int]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _probe_folder(folder: Path, rate: Fraction | None) -> _Probe:
    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file()),
        key=_natural,
    )
    if not files:
        raise InputError(f"'{folder}' holds no image files ({', '.join(_IMAGE_SUFFIXES)})")
    first = imageio.load_image(files[0])  # fails early on a broken first frame
    r = rate or FOLDER_RATE
    times = [j / float(r) for j in range(len(files))]
    return _Probe("folder", first.size, times, r, files=tuple(files))


def _probe_video(path: Path) -> _Probe:
    """Demux without decoding to learn every frame's time; decode one frame to learn that the
    codec works and how the frames are rotated."""
    import av

    name = str(path)
    check_regular_file(path, "the video")
    if not path.exists():
        raise InputError(f"cannot read video '{name}': file not found")
    if path.stat().st_size == 0:
        raise InputError(f"cannot read video '{name}': the file is empty")
    try:
        container = av.open(name)
    except av.FFmpegError as exc:
        raise InputError(f"'{name}' is not a video file FFmpeg can read") from exc
    except OSError as exc:
        raise InputError(f"cannot read video '{name}': {exc.strerror or exc}") from exc
    with container:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise InputError(f"'{name}' is a still image, not a video; use 'impasto transfer'")
        if not container.streams.video:
            raise InputError(f"'{name}' has no video (no video stream, or an empty one)")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        tb = stream.time_base or Fraction(1)
        stamps: list[int] = []
        missing = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                if packet.pts is None:
                    missing += 1
                else:
                    stamps.append(packet.pts)
        except av.FFmpegError as exc:
            raise InputError(f"'{name}' is truncated or corrupt ({first_line(exc)})") from exc
        if not stamps and not missing:
            raise InputError(f"'{name}' has no video frames")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate
    rotation, size = _first_frame(path, codec)
    count = len(stamps) + missing
    if missing or count < 2 or max(stamps) == min(stamps):
        # No timestamps to go by: take the frames as evenly spaced.
        r = Fraction(rate).limit_denominator(1001) if rate else FOLDER_RATE
        return _Probe(
            "video", size, [j / float(r) for j in range(count)], r, 0.0, (), audio, rotation
        )
    stamps.sort()
    times = [float((s - stamps[0]) * tb) for s in stamps]
    if not rate or rate <= 0:
        rate = Fraction(count - 1) / Fraction(times[-1]).limit_denominator(1_000_000)
    r = Fraction(rate).limit_denominator(1001)
    return _Probe("video", size, times, r, float(stamps[0] * tb), (), audio, rotation)


def _first_frame(path: Path, codec: str) -> tuple[int, tuple[int, int]]:
    """(rotation, displayed size) from the first decoded frame."""
    import av

    name = str(path)
    try:
        with av.open(name) as container:
            for frame in container.decode(container.streams.video[0]):
                rotation = (round(frame.rotation / 90) * 90) % 360
                w, h = frame.width, frame.height
                return rotation, ((h, w) if rotation % 180 else (w, h))
    except av.FFmpegError as exc:
        raise InputError(
            f"cannot decode the video of '{name}' (codec {codec}): {first_line(exc)}"
        ) from exc
    raise InputError(f"'{name}' has no decodable video frames (codec {codec})")
