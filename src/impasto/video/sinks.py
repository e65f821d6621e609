"""Where stylised frames go: the one place that encodes GIF, MP4/MOV/MKV, WebM and PNG folders.

:func:`open_sink` gives a context manager taking one frame at a time (``impasto video``);
:func:`write_animation` writes a list of frames at once (``--animate``). Both encode video through
:class:`_Encoder`, which pads odd sides by repeating the last row or column (yuv420p halves the
chroma resolution, so H.264 needs even sides; cropping would lose the only row of a 1-pixel strip).
Files are written atomically (:func:`impasto.atomic.atomic_write`): on an exception, Ctrl-C
included, nothing is left where the output goes. A video output copies the source's audio
packets, unchanged, where the container can hold their codec.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
import PIL.Image

from .. import imageio
from ..atomic import atomic_write, replace_folder, temporary_folder
from ..errors import InputError, UsageError, first_line

if TYPE_CHECKING:
    from .clip import Clip

ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]

# Output extension -> (FFmpeg container, codecs to try in order).
VIDEO_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "mpeg4")),
    ".m4v": ("mp4", ("libx264", "mpeg4")),
    ".mov": ("mov", ("libx264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
}
_GIF = ".gif"


OutputKind = Literal["video", "gif", "folder"]


def output_kind(path: str | os.PathLike[str]) -> OutputKind:
    """A folder (no extension, a trailing slash or an existing directory), a GIF or a video."""
    name = os.fspath(path)
    p = Path(name)
    if name.endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return "folder"
    suffix = p.suffix.lower()
    if suffix == _GIF:
        return "gif"
    if suffix in VIDEO_FORMATS:
        return "video"
    raise UsageError(
        f"unsupported output type '{p.suffix}' for '{name}'; use .mp4, .mov, .mkv, .webm, .gif "
        "or a folder (for PNG frames)"
    )


def check_output(path: str | os.PathLike[str], kind: OutputKind) -> Path:
    if kind != "folder":
        return imageio.check_writable(path, (*VIDEO_FORMATS, _GIF), "video")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"cannot write frames into '{p}': it is a file")
    if p.is_dir():
        stranger = _stranger(p)
        if stranger is not None:
            raise UsageError(
                f"the output folder '{p}' holds files that are not frames of an earlier run "
                f"(such as '{stranger}'); it is left as it is: name a new or empty folder, or "
                "one impasto wrote frames into"
            )
    folder = p
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write '{p}': no permission to write in '{folder}'")
    return p


# --- writing a list of frames at once ----------------------------------------------------------


def write_animation(frames: Sequence[PIL.Image.Image], path: Path, rate: Fraction) -> None:
    """``frames`` (RGB, one size) as a looping GIF or a video file at ``rate``, atomically."""
    with _ffmpeg_errors(path), atomic_write(path) as f:
        if path.suffix.lower() == _GIF:
            _write_gif(frames, f, float(rate))
        else:
            _write_mp4(frames, f, float(rate))


def _write_gif(frames: Sequence[PIL.Image.Image], f: IO[bytes], fps: float) -> None:
    # Pillow merges a frame identical to the one before into it (adding its duration), so a still
    # stretch costs nothing; optimize=False skips a slow palette-shrinking pass per frame.
    frames[0].save(
        f,
        format="GIF",
        save_all=True,
        append_images=list(frames[1:]),
        duration=max(1, round(1000.0 / fps)),
        loop=0,
        optimize=False,
    )


def _write_mp4(frames: Sequence[PIL.Image.Image], f: IO[bytes], fps: float) -> None:
    import av

    fmt, codecs = VIDEO_FORMATS[".mp4"]
    with av.open(f, mode="w", format=fmt) as out:
        encoder = _Encoder(out, _available(codecs), Fraction(fps).limit_denominator(1001))
        for img in frames:
            encoder.write(img)
        encoder.flush()


# --- one frame at a time ------------------------------------------------------------------------


def open_sink(path: Path, kind: OutputKind, rate: Fraction, clip: Clip | None = None) -> Sink:
    """A sink for ``kind`` output (see :func:`output_kind`); a video copies ``clip``'s audio."""
    if kind == "video":
        return _VideoSink(path, clip, rate)
    if kind == "gif":
        return _GifSink(path, rate)
    return _FolderSink(path)


class Sink:
    """Where frames go: a context manager whose ``write`` takes one frame at a time. On an
    exception (Ctrl-C included) nothing is left where the output goes, for a file. ``audio``
    says what became of the source's sound: "none", "copied" or "left out: why"."""

    audio = "none"

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close((exc_type, exc, tb))

    def close(self, failure: ExcInfo) -> None:
        """Finish the output; ``failure`` is the exception leaving the block, if any."""

    def write(self, image: PIL.Image.Image) -> None:
        raise NotImplementedError


class _FolderSink(Sink):
    """PNG frames into a hidden folder beside the output, swapped in whole when all went well:
    an earlier run's frames never mix with this one's, and a failed run leaves them as they
    were. Each PNG carries its own name in a text chunk (:data:`_FRAME_FIELD`): impasto's proof
    that it wrote the folder, so that a later run replaces it, and nothing else, whole."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0
        self._tmp: Path | None = None

    def __enter__(self) -> _FolderSink:
        self._tmp = temporary_folder(self.folder)
        return self

    def write(self, image: PIL.Image.Image) -> None:
        assert self._tmp is not None, "a folder sink writes inside its with block"
        self.count += 1
        name = frame_name(self.count - 1)
        imageio.save_image(image, self._tmp / name, metadata={_FRAME_FIELD: name})

    def close(self, failure: ExcInfo) -> None:
        if self._tmp is None:
            return
        try:
            if failure[0] is None:
                stranger = _stranger(self.folder) if self.folder.is_dir() else None
                if stranger is not None:  # put there while the run went on
                    raise InputError(
                        f"cannot write frames into '{self.folder}': it now holds files that "
                        f"impasto did not write (such as '{stranger}'), left as they are"
                    )
                replace_folder(self._tmp, self.folder)
        finally:  # after a failure, or Ctrl-C, nothing of this run is left
            shutil.rmtree(self._tmp, ignore_errors=True)


_FRAME = re.compile(r"frame_\d{6}\.png")
_FRAME_FIELD = "impasto:frame"


def _stranger(folder: Path) -> str | None:
    """The first entry of ``folder`` that is not a frame impasto wrote into a folder output (a
    PNG named ``frame_NNNNNN.png`` carrying that name in :data:`_FRAME_FIELD`), or None."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"cannot read the folder '{folder}': {exc.strerror or exc}") from exc
    for e in entries:
        if not (_FRAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)):
            return e.name
        try:
            if imageio.read_metadata(e.path).get(_FRAME_FIELD) != e.name:
                return e.name
        except InputError:
            return e.name
    return None


def frame_name(index: int) -> str:
    """The file of frame ``index`` (0-based) in a folder output: ``frame_000001.png``..."""
    return f"frame_{index + 1:06d}.png"


class _GifSink(Sink):
    def __init__(self, path: Path, rate: Fraction) -> None:
        self.path, self.rate = path, rate
        self.frames: list[PIL.Image.Image] = []

    def write(self, image: PIL.Image.Image) -> None:
        self.frames.append(image)

    def close(self, failure: ExcInfo) -> None:
        if failure[0] is None:
            write_animation(self.frames, self.path, self.rate)


class _Encoder:
    """One video stream in an open container: codec settings from the first frame's size,
    odd sides padded, frames timed by count."""

    def __init__(self, out: Any, codec: str, rate: Fraction) -> None:
        import av

        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)  # narrows the type: codec is a plain str
        self.out, self.stream, self.rate = out, stream, rate
        self.count = 0

    def _open(self, size: tuple[int, int]) -> None:
        stream = self.stream
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if stream.codec_context.name == "libx264":
            stream.options = {"crf": "18"}  # visually lossless: the textures are the point
        elif stream.codec_context.name.startswith("libvpx"):
            stream.options = {"crf": "24", "b": "0"}
        else:
            w, h = size
            stream.bit_rate = max(1_000_000, int(w * h * float(self.rate) * 0.5))

    def write(self, image: PIL.Image.Image) -> None:
        import av

        rgb = _even(np.asarray(image.convert("RGB")))  # (H, W, 3)
        if self.count == 0:
            self._open((rgb.shape[1], rgb.shape[0]))
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count  # in 1/rate: the encoder's time base
        self.count += 1
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def flush(self) -> None:
        for packet in self.stream.encode():  # the encoder's delayed frames
            self.out.mux(packet)


def _even(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """(H, W, 3) with odd sides padded by repeating the last row/column."""
    h, w = arr.shape[:2]
    if w % 2 == 0 and h % 2 == 0:
        return arr
    return np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


@contextlib.contextmanager
def _ffmpeg_errors(name: object) -> Iterator[None]:
    """FFmpeg's own errors (a full disk, say) as one-line InputErrors."""
    import av

    try:
        yield
    except av.FFmpegError as exc:
        raise InputError(f"cannot write '{name}': {first_line(exc)}") from exc


class _VideoSink(Sink):
    """Encodes frames as they come into a hidden temp file, copying the source's audio packets
    alongside (interleaved by time); renamed over the output only when all went well."""

    def __init__(self, path: Path, clip: Clip | None, rate: Fraction) -> None:
        self.path, self.clip, self.rate = path, clip, rate
        self._stack = contextlib.ExitStack()
        self._audio: Iterator[tuple[float, Any]] | None = None
        self._pending: tuple[float, Any] | None = None

    def __enter__(self) -> _VideoSink:
        import av

        fmt, codecs = VIDEO_FORMATS[self.path.suffix.lower()]
        codec = _available(codecs)
        audio_in = self._audio_source(fmt)
        try:
            if audio_in is not None:
                self._stack.enter_context(audio_in[0])
            f = self._stack.enter_context(atomic_write(self.path))
            with _ffmpeg_errors(self.path):
                out = self._stack.enter_context(av.open(f, mode="w", format=fmt))
                self._out = out
                self._encoder = _Encoder(out, codec, self.rate)
                if audio_in is not None:
                    source, in_stream = audio_in
                    out_audio = out.add_stream_from_template(in_stream)
                    self._audio = self._audio_packets(source, in_stream, out_audio)
        except BaseException:
            self._stack.close()
            raise
        return self

    def _audio_source(self, fmt: str) -> tuple[Any, Any] | None:
        """The source container and its audio stream, when its codec fits ``fmt``."""
        import av

        clip = self.clip
        if clip is None or clip.kind != "video" or clip.audio is None:
            return None
        source = av.open(str(clip.path))
        in_stream = source.streams.audio[0]
        if not _fits(fmt, in_stream):
            source.close()
            self.audio = f"left out: {clip.audio} audio cannot go into {self.path.suffix} unchanged"
            return None
        self.audio = "copied"
        return source, in_stream

    def _audio_packets(
        self, source: Any, in_stream: Any, out_stream: Any
    ) -> Iterator[tuple[float, Any]]:
        """(output time, packet) of every source audio packet that overlaps the output."""
        assert self.clip is not None
        tb = in_stream.time_base
        origin, duration = self.clip.origin, self.clip.duration
        shift = round(Fraction(origin) / tb)
        for packet in source.demux(in_stream):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * tb) - origin
            if t + float((packet.duration or 0) * tb) < -1e-9:
                continue  # ends before the output starts
            if t >= duration:
                return
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = out_stream
            yield t, packet

    def _mux_audio(self, until: float) -> None:
        while self._audio is not None:
            if self._pending is None:
                self._pending = next(self._audio, None)
                if self._pending is None:
                    self._audio = None
                    return
            t, packet = self._pending
            if t >= until:
                return
            self._out.mux(packet)
            self._pending = None

    def write(self, image: PIL.Image.Image) -> None:
        with _ffmpeg_errors(self.path):
            self._encoder.write(image)
            self._mux_audio(self._encoder.count / float(self.rate))

    def close(self, failure: ExcInfo) -> None:
        if failure[0] is None:
            try:
                with _ffmpeg_errors(self.path):
                    self._encoder.flush()
                    self._mux_audio(math.inf)
            except BaseException:
                if not self._stack.__exit__(*sys.exc_info()):
                    raise
                return
        self._stack.__exit__(*failure)


def _available(codecs: Sequence[str]) -> str:
    import av

    for name in codecs:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # built without it (UnknownCodecError, ValueError)
            continue
        return name
    raise UsageError(f"this FFmpeg build has none of the encoders {', '.join(codecs)}")


def _fits(fmt: str, stream: Any) -> bool:
    """Whether packets of ``stream``'s codec can be muxed into container ``fmt`` unchanged."""
    import av

    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True
