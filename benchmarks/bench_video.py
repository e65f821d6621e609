"""Flicker and speed of ``impasto video``: naive per-frame transfer against temporal consistency.

A test clip is made from ``../shared/images/tubingen.jpg`` by a virtual camera that pans right,
drifts down and zooms in slowly, so the true motion between frames is known exactly: for pixel p
of frame k, the scene point it shows sits at X = c_k + s_k (p − o) in the source image (window
centre c_k, scale s_k, frame centre o), and frame k−1 shows X at o + (X − c_{k−1}) / s_{k−1}.
That gives the exact backward flow, with which the benchmark measures

    temporal error = mean over k ≥ 1 of  mean_p m(p) (out_k(p) − warp(out_{k−1}, flow_k)(p))²

in pixel levels² (m masks the pixels whose true flow leaves the frame: the only occlusions of a
pan and zoom). The clip itself scores a little above 0 (interpolation); a stylisation that swims
scores far above it. Also printed: seconds per frame (first frame apart), and the style and
content losses of the output frames under the paper's objective, so that a low error bought by
freezing the style shows up.

    python benchmarks/bench_video.py                         # CPU: 128x72, 10 frames
    python benchmarks/bench_video.py --device cuda --size 512 --iterations 500
    python benchmarks/bench_video.py --weights 0,1e3,1e4,1e5  # sweep the temporal weight
    python benchmarks/bench_video.py --gif docs/video/pan.gif # also write the comparison GIF

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: no OpenMP spin-waiting

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from impasto import TransferConfig, animate, imageio
from impasto.flow import warping_error
from impasto.optimize import Transfer
from impasto.prepare import build_network
from impasto.video import FrameResult, VideoOptions, stylize_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
CONTENT = SHARED / "tubingen.jpg" if SHARED.is_dir() else ROOT / "examples" / "tubingen.jpg"
STYLE = SHARED / "starry_night.jpg" if SHARED.is_dir() else ROOT / "examples" / "starry_night.jpg"

# Camera motion per frame, relative to the frame size: slow enough to be a "pan", fast enough that
# a naive transfer's textures visibly swim.
PAN_X, PAN_Y, ZOOM = 0.015, 0.004, 0.005


def make_clip(
    width: int, height: int, count: int
) -> tuple[list[PIL.Image.Image], list[np.ndarray]]:
    """``count`` frames of a pan and zoom over the content image, and the exact backward flow
    (frame k -> k-1) of each frame after the first, (H, W, 2) float32."""
    import cv2

    # Scale the photo once (Lanczos) so the camera samples it at about one source pixel per frame
    # pixel; cubic interpolation at that scale does not alias.
    photo = imageio.load_image(CONTENT)
    src_w = round(width * 1.5)
    src = np.asarray(imageio.resize_to(photo, (src_w, round(src_w * photo.height / photo.width))))
    o = np.array([(width - 1) / 2, (height - 1) / 2])
    c0 = np.array([src.shape[1] * 0.42, src.shape[0] * 0.45])
    step = np.array([PAN_X * width, PAN_Y * height])

    def centre(k: int) -> np.ndarray:
        return c0 + k * step

    def scale(k: int) -> float:
        return float((1.0 - ZOOM) ** k)

    frames, flows = [], []
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    p = np.stack([xs, ys], axis=-1)  # (H, W, 2)
    for k in range(count):
        s, c = scale(k), centre(k)
        m = np.array([[s, 0, c[0] - s * o[0]], [0, s, c[1] - s * o[1]]])  # frame -> source
        arr = cv2.warpAffine(
            src, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
        frames.append(PIL.Image.fromarray(arr))
        if k:
            x = c + s * (p - o)  # scene point of each pixel, in source coordinates
            before = o + (x - centre(k - 1)) / scale(k - 1)
            flows.append((before - p).astype(np.float32))
    return frames, flows


def inside(flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    xs = np.arange(w)[None, :] + flow[..., 0]
    ys = np.arange(h)[:, None] + flow[..., 1]
    return ((xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)).astype(np.float32)


def temporal_error(frames: list[PIL.Image.Image], flows: list[np.ndarray]) -> float:
    errors = [
        warping_error(np.asarray(a), np.asarray(b), f, inside(f))
        for a, b, f in zip(frames[:-1], frames[1:], flows, strict=True)
    ]
    return float(np.mean(errors))


def scores(
    outputs: list[PIL.Image.Image], clip: list[PIL.Image.Image], cfg: TransferConfig, net: object
) -> tuple[float, float]:
    """Mean (β·style, α·content) loss of the output frames under the paper's objective."""
    style, content = [], []
    for out, frame in zip(outputs, clip, strict=True):
        t = Transfer(frame, [str(STYLE)], cfg.replace(iterations=1), vgg=net)  # type: ignore[arg-type]
        x = imageio.to_tensor(out).to(t.device) * 255.0
        with torch.no_grad():
            _, c, s, _ = t.objective(x)
        style.append(float(s))
        content.append(float(c))
    return float(np.mean(style)), float(np.mean(content))


def run(
    clip: list[PIL.Image.Image], cfg: TransferConfig, opts: VideoOptions, net: object
) -> list[FrameResult]:
    results = []
    for r in stylize_frames(clip, [str(STYLE)], cfg, opts, vgg=net):  # type: ignore[arg-type]
        results.append(r)
        print(f"  frame {r.index + 1}/{len(clip)}: {r.seconds:.2f} s", end="\r", file=sys.stderr)
    print(" " * 40, end="\r", file=sys.stderr)
    return results


def comparison_gif(
    path: Path,
    clip: list[PIL.Image.Image],
    naive: list[PIL.Image.Image],
    steady: list[PIL.Image.Image],
    fps: float,
) -> None:
    """Input | naive | temporal, side by side and labelled, looping forth and back."""
    w, h = clip[0].size
    label_h = 14
    sheets = []
    for frames in zip(clip, naive, steady, strict=True):
        sheet = PIL.Image.new("RGB", (3 * w + 8, h + label_h), "white")
        draw = PIL.ImageDraw.Draw(sheet)
        for i, (img, text) in enumerate(zip(frames, ("input", "naive", "temporal"), strict=True)):
            sheet.paste(img, (i * (w + 4), label_h))
            draw.text((i * (w + 4) + 2, 1), text, fill="black")
        sheets.append(sheet)
    animate.save_animation(sheets + sheets[-2:0:-1], path, fps=fps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=128, help="frame width (16:9)")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=100, help="first frame, and naive frames")
    ap.add_argument("--frame-iterations", default=None, help="comma-separated values to try")
    ap.add_argument("--weights", default=None, help="comma-separated temporal weights to try")
    ap.add_argument("--flow", default="dis")
    ap.add_argument("--optimizer", default="lbfgs")
    ap.add_argument("--gif", type=Path, default=None, help="also write input|naive|temporal")
    ap.add_argument("--fps", type=float, default=8.0, help="of the GIF")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    width, height = a.size, round(a.size * 9 / 16)
    clip, flows = make_clip(width, height, a.frames)
    cfg = TransferConfig(
        size=width, iterations=a.iterations, device=a.device, seed=0, optimizer=a.optimizer
    )
    net = build_network(cfg)
    weights = (
        [float(w) for w in a.weights.split(",")] if a.weights else [VideoOptions().temporal_weight]
    )
    its = [int(n) for n in a.frame_iterations.split(",")] if a.frame_iterations else [None]

    print(
        f"clip: {a.frames} frames {width}x{height}, pan {PAN_X:.1%}/{PAN_Y:.1%} of the frame and "
        f"zoom {ZOOM:.1%} per frame; {a.iterations} iterations (first/naive frames), L-BFGS, "
        f"device {a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"the clip's own temporal error (interpolation only): {temporal_error(clip, flows):.2f}")
    rows = []
    naive_opts = VideoOptions(temporal=False)
    configs: list[tuple[str, VideoOptions]] = [("naive", naive_opts)]
    for w in weights:
        for n in its:
            opts = VideoOptions(temporal=True, temporal_weight=w, frame_iterations=n, flow=a.flow)  # type: ignore[arg-type]
            configs.append((f"λ={w:g}, {opts.iterations(1, cfg)} it", opts))
    outputs: dict[str, list[PIL.Image.Image]] = {}
    for name, opts in configs:
        start = time.perf_counter()
        results = run(clip, cfg, opts, net)
        wall = time.perf_counter() - start
        images = [r.image for r in results]
        outputs[name] = images
        later = [r.seconds for r in results[1:]]
        err = temporal_error(images, flows)
        style, content = scores(images, clip, cfg, net)
        redone = sum(r.note is not None for r in results)
        rows.append(
            (name, results[0].seconds, float(np.mean(later)), wall, err, style, content, redone)
        )

    base_err, base_style = rows[0][4], rows[0][5]
    print()
    print(
        f"{'method':<22}{'1st s':>8}{'s/frame':>9}{'total s':>9}{'temp.err':>10}{'vs naive':>9}"
        f"{'β·style':>11}{'α·content':>11}{'redone':>8}"
    )
    for name, first, per, wall, err, style, content, redone in rows:
        print(
            f"{name:<22}{first:>8.2f}{per:>9.2f}{wall:>9.1f}{err:>10.1f}{err / base_err:>8.2f}x"
            f"{style:>11.3g}{content:>11.3g}{redone:>8}"
        )
    print(
        "\ns/frame: mean wall time of frames 2..n (flow, optimisation, encoding to 8 bits); "
        "temp.err: mean squared warping error between consecutive output frames, levels²; "
        f"style and content: mean over frames (naive style {base_style:.3g}); redone: frames "
        "whose L-BFGS run diverged and was redone with Adam"
    )
    if a.gif is not None:
        steady = next(name for name, _ in configs[1:])
        comparison_gif(a.gif, clip, outputs["naive"], outputs[steady], a.fps)
        print(f"wrote {a.gif} ({os.path.getsize(a.gif) / 1e6:.2f} MB; temporal = {steady})")
    if not math.isfinite(base_err):
        sys.exit(1)


if __name__ == "__main__":
    main()
