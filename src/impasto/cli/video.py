"""``impasto video``: a video file (or folder of frames) stylised, with bars over frames.

Parses into a :class:`~impasto.config.TransferConfig` and :class:`~impasto.video.VideoOptions`,
then calls :func:`impasto.video.stylize_video` with :class:`~impasto.cli.progress.VideoProgress`
as its listener.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TransferConfig
from ..errors import ExitStatus, Interrupted
from ..jobs.executor import ExecutorOptions, require_ray
from ..paths import Named, check_apart
from ..videoconfig import FOLDER_RATE, MAX_FPS, MAX_FRAMES, MIN_FPS, VideoOptions
from . import PROG
from .options import (
    SPATIAL_FIELDS,
    ConfigFlags,
    add_common,
    add_config_options,
    add_styles_and_output,
    check_output_folders,
    config_from_args,
    config_inputs,
    examples,
    options_from_args,
)
from .spatial import check_no_spatial, refuse_spatial_options

if TYPE_CHECKING:
    from ..video import VideoSummary

# The video package (torch, the network, FFmpeg) and the progress bars are imported where the
# command runs: the parser is built (--help, a mistyped option) without them. main() imports a
# command's ENGINE first, with Ctrl-C held (cli.signals).
ENGINE = ("impasto.video", "impasto.cli.progress", "impasto.cli.summary")

_MAX_SECONDS = 1e7  # --start and --end: about four months


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``video`` to the top parser's subcommands."""
    v = sub.add_parser(
        "video",
        help="stylise a video (or a folder of frames), kept steady by optical flow",
        description="Stylise every frame of INPUT in the style of STYLE. Each frame starts from "
        "the previous output warped by optical flow, and a temporal loss keeps it there except "
        "where things appear (Ruder et al. 2016); --no-temporal stylises each frame on its own. "
        "Finished frames are cached, so re-running the same command after a crash or Ctrl-C "
        "resumes (--seed defaults to 0 here, so that a re-run finds them).",
        epilog=examples(
            "impasto video clip.mp4 starry_night.jpg -o clip_starry.mp4 --size 384",
            "impasto video clip.mp4 starry_night.jpg -o frames/ --start 2 --end 4 --size 256",
            "impasto video frames_in/ starry_night.jpg -o out.mp4 --fps 24 --no-temporal",
        ),
        allow_abbrev=False,
    )
    v.add_argument("input", metavar="INPUT", help="video file (anything FFmpeg reads) or a folder")
    add_styles_and_output(
        v, ".mp4, .mov or .mkv (H.264), .webm (VP9), .gif, or a folder for PNG frames"
    )
    g = v.add_argument_group("which frames")
    g.add_argument("--start", type=_seconds, default=None, metavar="TIME", help="begin at TIME "
                   "(seconds, or M:SS) from the first frame (default: the beginning)")  # fmt: skip
    g.add_argument("--end", type=_seconds, default=None, metavar="TIME",
                   help="stop before TIME (default: the end)")  # fmt: skip
    g.add_argument("--frames", type=_frame_range, default=None, metavar="[A]:B",
                   help="only frames A (0-based, default 0) to B-1 of those left by --start/--end; "
                   "N alone means the first N (default: all)")  # fmt: skip
    g.add_argument("--fps", type=_fps, default=None, metavar="RATE",
                   help="resample to RATE frames per second (default: the input's average rate; "
                   f"a folder of images: {FOLDER_RATE})")  # fmt: skip
    add_config_options(v, ConfigFlags(VideoOptions), v.add_argument_group("temporal consistency"))
    add_config_options(v, ConfigFlags(ExecutorOptions), v.add_argument_group("where it runs"))
    r = v.add_argument_group("resuming")
    r.add_argument("--work-dir", default=None, metavar="DIR",
                   help="cache of finished frames (default: OUT.work beside OUT)")  # fmt: skip
    r.add_argument("--restart", action="store_true",
                   help="discard frames cached by a run with other settings")  # fmt: skip
    r.add_argument("--keep-work", action="store_true",
                   help="keep the work directory after a successful run")  # fmt: skip
    seed = {"seed": "0, so that a re-run finds the frames cached"}
    add_config_options(v, ConfigFlags(leave_out=SPATIAL_FIELDS, given=seed))
    refuse_spatial_options(v, "video")
    add_common(v)
    v.set_defaults(run=_run_video, engine=ENGINE, output_files=(("output", ""),))


def _seconds(text: str) -> float:
    """``12.5``, ``1:02.5`` or ``1:00:02`` as seconds."""
    try:
        value = 0.0
        for part in text.strip().split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a time (seconds or M:SS)") from None
    if not (math.isfinite(value) and 0 <= value <= _MAX_SECONDS):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time from 0 to {_MAX_SECONDS:.0f} seconds"
        )
    return value


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a frame rate") from None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a frame rate from {MIN_FPS:g} to {MAX_FPS:g} per second"
        )
    return value


def _frame_range(text: str) -> tuple[int | None, int | None]:
    try:
        if ":" not in text:
            bounds: tuple[int | None, int | None] = (None, int(text))
        else:
            a, b = text.split(":", 1)
            bounds = (int(a) if a.strip() else None, int(b) if b.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a frame range (A:B or N)") from None
    if any(n is not None and not 0 <= n <= MAX_FRAMES for n in bounds):
        raise argparse.ArgumentTypeError(
            f"'{text}': frame numbers must be between 0 and {MAX_FRAMES}"
        )
    return bounds


def _run_video(ns: argparse.Namespace) -> int:
    from ..video import (
        check_output,
        default_work_dir,
        open_clip,
        output_kind,
        require_flow,
        stylize_video,
    )
    from ..video.cache import check_work_dir
    from .progress import VideoProgress, notice

    check_no_spatial(ns)
    cfg = config_from_args(ns)
    opts = options_from_args(ns, VideoOptions)
    where = options_from_args(ns, ExecutorOptions)
    if where.executor == "ray":
        require_ray()
    kind = output_kind(ns.output)
    work = ns.work_dir if ns.work_dir is not None else default_work_dir(ns.output)
    inputs: list[Named] = [("the input", ns.input)]
    inputs += [("the style image", s) for s in ns.styles]
    outputs: list[Named] = [("the output", ns.output), ("the work directory", work)]
    check_apart(inputs + config_inputs(cfg), outputs)
    check_output_folders(ns)
    check_output(ns.output, kind)
    check_work_dir(Path(work))
    if opts.temporal:
        require_flow()
    clip = open_clip(ns.input, start=ns.start, end=ns.end, frames=ns.frames, fps=ns.fps)
    progress = VideoProgress(len(clip), ns.quiet, ns.print_every, where.workers or 1)
    try:
        summary = stylize_video(
            clip,
            ns.styles,
            ns.output,
            cfg,
            opts,
            work_dir=ns.work_dir,
            restart=ns.restart,
            keep_work=ns.keep_work,
            executor=where,
            on_frame_start=progress.frame_start,
            on_frame=progress.frame_done,
            on_step=progress.step,
            notice=lambda line: notice(f"{PROG}: {line}"),
        )
    except Interrupted as exc:
        progress.close()  # before the message, so the bar does not overwrite it
        print(f"{PROG}: {exc}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    finally:
        progress.close()
    if not ns.quiet:
        print(_summary(summary, opts, cfg), file=sys.stderr)
    return ExitStatus.OK


def _summary(s: VideoSummary, opts: VideoOptions, cfg: TransferConfig) -> str:
    from .summary import wrote_line

    weight = opts.temporal_weight_for(cfg.replace(size=max(s.size)))  # the frames' β
    mode = f"temporal weight {weight:g}" if opts.temporal else "no temporal loss"
    if opts.long_term:
        mode += f", held to frames {','.join(map(str, opts.temporal_frames))} back"
    reused = f", {s.reused} reused from the work directory" if s.reused else ""
    where = f" by {s.workers}" if s.workers != "this process" else ""
    chunks = f" in {s.chunks} chunks" if s.chunks else ""
    cuts = ""
    if opts.temporal and opts.cuts:
        found = ", ".join(str(i + 1) for i in s.cuts)
        cuts = f"; scene cuts before frame(s) {found}" if s.cuts else "; no scene cut"
    per = ""
    if s.first_seconds is not None:
        per = f", the first frame {s.first_seconds:.2f} s"
    if s.seconds_per_frame:
        per += f", {'then ' if per else ''}{s.seconds_per_frame:.2f} s per frame"
    details = (
        f"{s.frames} frames at {float(s.rate):.4g} fps, audio {s.audio}{where}{chunks}{per}"
        f"{reused}; {mode}, seed {cfg.seed if cfg.seed is not None else 0}{cuts}"
    )
    return wrote_line(s.output, s.size, s.seconds, s.device, details)
