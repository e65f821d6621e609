"""Video on real footage: steadiness, quality against stills, cuts, seams and speed.

Runs ``impasto.video.stylize_video`` on frames of a real clip (default: the first 16 frames of
``../shared/videos/bigbuckbunny.mp4`` at 256 px, Starry Night, the default options) in several
ways, and measures each:

- **temporal error** between output frames k and k−1, and k and k−5 (where long-term consistency
  shows): the mean squared difference (levels²) between frame k and the earlier output warped to
  it, over the pixels a forward–backward check trusts. The flow is Farnebäck's between the
  *content* frames, not the DIS flow the method uses, so that the yardstick is not the method's
  own. The clip's own frames score a little above 0.
- **quality against stills**: per-layer E_l (Gatys et al. eq. 4) and the content loss of each
  output frame, over those of a still transfer of the same frame with the same options (the
  naive run's frame: ``impasto transfer`` of that frame). Reported: the largest ratio over the
  frames, per layer.
- **time**: seconds of the first frame, of each later one, frames per minute.
- with ``--ray``: the same clip chunked (``--chunk-frames``) in this process and on Ray workers:
  frames per minute of each against one process unchunked, and the temporal error at the seams
  (a chunk's keyframe against the frame before it) over the median inside chunks.
- with ``--cut``: a clip of two shots (the real clip's frames, then a pan over tubingen.jpg): the
  cut found, and the first frame after it against a fresh transfer of that frame.

    python benchmarks/bench_video.py                                  # naive, short, long
    python benchmarks/bench_video.py --methods short,long --frames 24
    python benchmarks/bench_video.py --methods short --ray 2 --chunk-frames 8
    python benchmarks/bench_video.py --methods none --cut
    python benchmarks/bench_video.py --methods naive,default --figure docs/video/bigbuckbunny

Prints a table per part; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: no OpenMP spin-waiting

import numpy as np
import PIL.Image
import torch

from impasto import TransferConfig, flow, imageio, quality
from impasto.jobs import ExecutorOptions
from impasto.layout import Panel, lay_out
from impasto.losses import content_loss
from impasto.optimize import Transfer
from impasto.prepare import build_network
from impasto.video import FrameResult, VideoOptions, frame_seed, open_clip, stylize_video
from impasto.video.sinks import write_animation

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "videos" / "bigbuckbunny.mp4"
STYLE = ROOT / "examples" / "starry_night.jpg"
PHOTO = ROOT / "examples" / "tubingen.jpg"

Frames = list[np.ndarray]


def load_frames(path: Path, start: int, count: int, size: int) -> Frames:
    clip = open_clip(path, frames=(start, start + count))
    out = []
    for img in clip.frames():
        w, h = imageio.fit_longest(img.size, size)
        out.append(np.asarray(imageio.resize_to(img, (w, h))))
    return out


def write_folder(frames: Frames, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        PIL.Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


class Yardstick:
    """Farnebäck flows between content frames (and their trust), cached by pair."""

    def __init__(self, contents: Frames) -> None:
        self.contents = contents
        self._flows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def error(self, outputs: Frames, k: int, j: int) -> float:
        """Temporal error of output k against output j warped to it."""
        if (k, j) not in self._flows:
            a, b = self.contents[k], self.contents[j]
            back = flow.optical_flow(a, b, "farneback")
            fwd = flow.optical_flow(b, a, "farneback")
            self._flows[k, j] = (back, flow.consistency(back, fwd))
        back, trust = self._flows[k, j]
        return flow.warping_error(outputs[j], outputs[k], back, trust)

    def errors(self, outputs: Frames, gap: int) -> list[float]:
        return [self.error(outputs, k, k - gap) for k in range(gap, len(outputs))]


class Stills:
    """E_l per layer and the content loss of a frame, against a still of the same frame."""

    def __init__(self, contents: Frames, cfg: TransferConfig, net: Any) -> None:
        self.contents, self.cfg, self.net = contents, cfg, net
        self._t: dict[int, Transfer] = {}

    def score(self, k: int, image: np.ndarray) -> dict[str, float]:
        if k not in self._t:
            frame = PIL.Image.fromarray(self.contents[k])
            self._t[k] = Transfer(frame, [str(STYLE)], self.cfg.replace(iterations=1), vgg=self.net)
        t = self._t[k]
        x = imageio.to_tensor(PIL.Image.fromarray(image)).to(t.device) * 255.0
        layers = set(self.cfg.style_layers) | set(self.cfg.content_layers)
        with torch.no_grad():
            feats = self.net(t.problem.view(x), layers)
        scores = quality.style_errors(feats, t.problem.targets.style)
        scores["content"] = sum(
            float(content_loss(feats[n], t.problem.targets.content[n]))
            for n in self.cfg.content_layers
        )
        return scores


def run(
    name: str,
    folder: Path,
    cfg: TransferConfig,
    opts: VideoOptions,
    net: Any,
    executor: ExecutorOptions | None = None,
) -> dict[str, Any]:
    """One run through ``stylize_video`` into a folder of PNG frames."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-video-{name}-"))
    results: list[FrameResult] = []
    marks: dict[str, float] = {}

    def on_frame(r: FrameResult) -> None:
        results.append(r)
        marks["last"] = time.perf_counter()
        if sys.stderr.isatty():
            print(f"  {name}: frame {r.index + 1} {r.seconds:.1f} s", end="\r", file=sys.stderr)

    started = time.perf_counter()
    summary = stylize_video(
        folder,
        [str(STYLE)],
        out / "frames",
        cfg,
        opts,
        vgg=net if executor is None else None,
        executor=executor,
        on_frame=on_frame,
        on_cuts=lambda cuts: marks.setdefault("painting", time.perf_counter()),
    )
    wall = time.perf_counter() - started
    if sys.stderr.isatty():
        print(" " * 60, end="\r", file=sys.stderr)
    painting = marks["last"] - marks.get("painting", started)
    outputs = [
        np.asarray(PIL.Image.open(p).convert("RGB"))
        for p in sorted((out / "frames").glob("frame_*.png"))
    ]
    by_index = {r.index: r for r in results}
    return {
        "name": name,
        "outputs": outputs,
        "wall": wall,
        "painting": painting,
        "first": by_index[0].seconds,
        "later": [by_index[k].seconds for k in sorted(by_index) if k > 0],
        "cuts": summary.cuts,
        "chunks": summary.chunks,
        "workers": summary.workers,
        "dir": str(out),
    }


def methods(names: list[str], a: argparse.Namespace) -> list[tuple[str, VideoOptions]]:
    base: dict[str, Any] = {}
    if a.frame_iterations:
        base["frame_iterations"] = a.frame_iterations
    far = tuple(int(j) for j in a.temporal_frames.split(","))
    table = {
        "naive": VideoOptions(temporal=False),
        "default": VideoOptions(**base),
        "short": VideoOptions(temporal_frames=(1,), **base),
        "long": VideoOptions(temporal_frames=far, **base),
    }
    return [(n, table[n]) for n in names if n != "none"]


def quality_table(rows: list[dict[str, Any]], stills: Stills, naive: dict[str, Any]) -> None:
    sample = list(range(0, len(naive["outputs"]), max(1, len(naive["outputs"]) // 4)))[1:]
    sample = sorted({*sample, len(naive["outputs"]) - 1})
    print(
        f"\nquality against stills (the naive frames {', '.join(str(k) for k in sample)}): the "
        "largest ratio over those frames, per layer, and the content loss"
    )
    ref = {k: stills.score(k, naive["outputs"][k]) for k in sample}
    keys = list(ref[sample[0]])
    print(f"{'method':<10}" + "".join(f"{k:>10}" for k in keys))
    for row in rows:
        if row is naive:
            continue
        ratios = {key: 0.0 for key in keys}
        for k in sample:
            s = stills.score(k, row["outputs"][k])
            for key in keys:
                ratios[key] = max(ratios[key], s[key] / ref[k][key])
        row["quality"] = ratios
        print(f"{row['name']:<10}" + "".join(f"{ratios[k]:>9.2f}x" for k in keys))


def steadiness_table(rows: list[dict[str, Any]], stick: Yardstick, contents: Frames) -> None:
    clip1 = float(np.mean(stick.errors(contents, 1)))
    clip5 = float(np.mean(stick.errors(contents, 5))) if len(contents) > 5 else float("nan")
    print(
        f"\nsteadiness: temporal error (levels²; the clip itself: k-1 {clip1:.1f}, k-5 "
        f"{clip5:.1f}) and time"
    )
    head = f"{'method':<10}{'k-1':>9}{'k-5':>9}{'1st s':>8}{'s/frame':>9}{'frames/min':>11}"
    print(head)
    for row in rows:
        e1 = float(np.mean(stick.errors(row["outputs"], 1)))
        e5 = float(np.mean(stick.errors(row["outputs"], 5))) if len(contents) > 5 else float("nan")
        per = float(np.mean(row["later"]))
        fpm = 60 * len(row["outputs"]) / row["painting"]
        row.update(k1=e1, k5=e5, per=per, fpm=fpm)
        print(f"{row['name']:<10}{e1:>9.1f}{e5:>9.1f}{row['first']:>8.1f}{per:>9.1f}{fpm:>11.2f}")


def seams(row: dict[str, Any], stick: Yardstick, chunk: int) -> None:
    """Error at each chunk's keyframe (against the frame before) over the median inside."""
    from impasto.video.chunks import plan_chunks

    starts = {c.start for c in plan_chunks(len(row["outputs"]), row["cuts"], chunk)} - {0}
    errors = {k: stick.error(row["outputs"], k, k - 1) for k in range(1, len(row["outputs"]))}
    inside = statistics.median(v for k, v in errors.items() if k not in starts)
    at = [errors[k] for k in sorted(starts)]
    row.update(seam_errors=at, inside_median=inside)
    shown = ", ".join(f"{k}: {errors[k]:.1f}" for k in sorted(starts))
    print(
        f"  {row['name']}: seams {shown}; median inside chunks {inside:.1f}; worst seam "
        f"{max(at) / inside:.2f}x the median"
    )


def cut_test(a: argparse.Namespace, cfg: TransferConfig, net: Any, size: int) -> dict[str, Any]:
    """Two shots joined: the real clip's first frames, then a pan over tubingen.jpg."""
    first = load_frames(Path(a.clip), a.start, a.cut_at, size)
    h, w = first[0].shape[:2]
    photo = imageio.load_image(PHOTO)
    wide = np.asarray(imageio.resize_to(photo, (w + 4 * a.cut_after, h)))
    second = [np.ascontiguousarray(wide[:, 4 * k : 4 * k + w]) for k in range(a.cut_after)]
    folder = write_folder(first + second, Path(tempfile.mkdtemp(prefix="bench-video-cut-")))
    row = run("cut", folder, cfg, VideoOptions(), net)
    blind = run("no-cuts", folder, cfg, VideoOptions(cuts=False), net)
    k = a.cut_at
    seed = frame_seed(cfg.seed or 0, k)
    fresh = Transfer(
        PIL.Image.fromarray(second[0]), [str(STYLE)], cfg.replace(seed=seed), vgg=net
    ).run()
    fresh_px = np.asarray(fresh.image).astype(int)
    after = np.abs(row["outputs"][k].astype(int) - fresh_px)
    held = np.abs(blind["outputs"][k].astype(int) - fresh_px)
    print(
        f"\ncut: {len(first)} frames of {Path(a.clip).name}, then {a.cut_after} of a pan over "
        f"{PHOTO.name}; cuts found before frames {[c + 1 for c in row['cuts']]} (expected "
        f"{k + 1})"
    )
    print(
        f"  the frame after the cut against a fresh transfer of it: max |diff| {after.max()} "
        f"levels (mean {after.mean():.2f}); without cut detection {held.max()} (mean "
        f"{held.mean():.2f})"
    )
    return {
        "cuts": row["cuts"],
        "expected": k,
        "max_diff": int(after.max()),
        "max_diff_without": int(held.max()),
        "mean_diff_without": float(held.mean()),
    }


def figure(prefix: Path, contents: Frames, rows: dict[str, dict[str, Any]], fps: float) -> None:
    """input | naive | temporal, labelled: an MP4 of every frame, a GIF of every second one and
    four frames in a JPEG (PREFIX_frames.jpg)."""
    heads = ["input", "naive", "temporal (default)"]
    sheets = []
    for k in range(len(contents)):
        frames = (contents[k], rows["naive"]["outputs"][k], rows["default"]["outputs"][k])
        cells = [Panel("", PIL.Image.fromarray(img), 0.0) for img in frames]
        sheets.append(lay_out([cells], col_labels=heads, gap=4).image)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    from fractions import Fraction

    write_animation(sheets, prefix.with_suffix(".mp4"), Fraction(fps).limit_denominator(1000))
    write_animation(sheets[::2], prefix.with_suffix(".gif"), Fraction(fps / 2).limit_denominator())
    strip_at = [0, len(sheets) // 3, 2 * len(sheets) // 3, len(sheets) - 1]
    strip = PIL.Image.new("RGB", (sheets[0].width, len(strip_at) * sheets[0].height), "white")
    for i, k in enumerate(strip_at):
        strip.paste(sheets[k], (0, i * sheets[0].height))
    stills = prefix.with_name(prefix.name + "_frames.jpg")
    strip.save(stills, quality=88)
    for p in (prefix.with_suffix(".mp4"), prefix.with_suffix(".gif"), stills):
        print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default=str(CLIP))
    ap.add_argument("--start", type=int, default=0, help="first frame of the clip")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument(
        "--methods",
        default="naive,short,long",
        help="naive, default, short (J=1), long (J=--temporal-frames), or none",
    )
    ap.add_argument("--temporal-frames", default="1,5,10", help="J of the 'long' method")
    ap.add_argument("--iterations", type=int, default=None, help="default: the preset's")
    ap.add_argument("--frame-iterations", type=int, default=None)
    ap.add_argument("--ray", type=int, default=0, help="also: chunked here and on N Ray workers")
    ap.add_argument("--chunk-frames", type=int, default=8)
    ap.add_argument("--cut", action="store_true", help="also: the two-shot clip")
    ap.add_argument("--cut-at", type=int, default=6, help="frames of the first shot")
    ap.add_argument("--cut-after", type=int, default=3, help="frames of the second shot")
    ap.add_argument(
        "--figure", type=Path, default=None, help="write PREFIX.mp4, PREFIX.gif, PREFIX_frames.jpg"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    if not Path(a.clip).is_file():
        sys.exit(f"no clip at {a.clip} (see ../shared/videos/SOURCES.md)")
    contents = load_frames(Path(a.clip), a.start, a.frames, a.size)
    h, w = contents[0].shape[:2]
    folder = write_folder(contents, Path(tempfile.mkdtemp(prefix="bench-video-in-")))
    cfg = TransferConfig(size=a.size, seed=0)
    if a.iterations is not None:
        cfg = cfg.replace(iterations=a.iterations)
    net = build_network(cfg)
    load = os.getloadavg()[0]
    print(
        f"clip: {Path(a.clip).name} frames {a.start}-{a.start + a.frames - 1} at {w}x{h}, "
        f"{STYLE.name}, defaults ({cfg.iterations} iterations a first frame); torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, load {load:.1f} at start"
    )
    names = [n for n in a.methods.split(",") if n]
    rows = [run(name, folder, cfg, opts, net) for name, opts in methods(names, a)]
    if a.ray:
        chunked = VideoOptions(chunk_frames=a.chunk_frames)
        rows.append(run("chunked", folder, cfg, chunked, net))
        rows.append(
            run(f"ray{a.ray}", folder, cfg, chunked, net, ExecutorOptions("ray", workers=a.ray))
        )
    report: dict[str, Any] = {"load_start": load, "frames": a.frames, "size": [w, h]}
    if rows:
        stick = Yardstick(contents)
        steadiness_table(rows, stick, contents)
        naive = next((r for r in rows if r["name"] == "naive"), None)
        if naive is not None:
            quality_table(rows, Stills(contents, cfg, net), naive)
        if a.ray:
            print("\nseams (temporal error k-1 at each chunk's keyframe):")
            for row in rows[-2:]:
                seams(row, stick, a.chunk_frames)
            one = next((r for r in rows if r["name"] in ("default", "short")), None)
            if one is not None:
                for row in rows[-2:]:
                    print(
                        f"  {row['name']}: {row['fpm']:.2f} frames/min, "
                        f"{row['fpm'] / one['fpm']:.2f}x one process ({one['name']})"
                    )
        if a.figure is not None:
            by_name = {r["name"]: r for r in rows}
            figure(a.figure, contents, by_name, fps=12.5)
        report["runs"] = {r["name"]: {k: v for k, v in r.items() if k != "outputs"} for r in rows}
    if a.cut:
        report["cut"] = cut_test(a, cfg, net, a.size)
    report["load_end"] = os.getloadavg()[0]
    print(f"\nload {report['load_end']:.1f} at the end")
    if a.json is not None:
        a.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
