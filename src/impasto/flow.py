"""Optical flow between frames, warping by it, where it can be trusted, and the temporal loss.

Pure functions on NumPy arrays (and one on tensors), after Ruder, Dosovitskiy and Brox, *Artistic
style transfer for videos* (GCPR 2016). Conventions:

- An image is (H, W, C) or (H, W); a flow field is (H, W, 2) float32 holding (dx, dy) in pixels.
- ``flow[y, x]`` says where pixel (x, y) of the *first* image lies in the *second*:
  first(x, y) ≈ second(x + dx, y + dy). So the flow from frame k to frame k−1 (the *backward*
  flow) tells each pixel of frame k where to fetch its value in frame k−1, and
  ``warp(out_prev, backward)`` is the previous stylised frame moved to where things are now.

OpenCV (the ``video`` extra) computes the flow and does the bilinear lookups; it is imported only
when a function needs it, so ``import impasto`` works without it.
"""

from __future__ import annotations

from types import ModuleType
from typing import get_args

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from .errors import UsageError
from .videoconfig import FlowMethod as FlowMethod

__all__ = [
    "FLOW_METHODS",
    "FlowMethod",
    "consistency",
    "optical_flow",
    "require_cv2",
    "temporal_loss",
    "warp",
    "warping_error",
]

FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)

Array = npt.NDArray[np.float32]

# Ruder et al.'s thresholds (section 3.2): a pixel is occluded when going back along the backward
# flow and forward again along the forward flow misses it by more than
#   |w + w̃|² > OCCLUSION_REL · (|w|² + |w̃|²) + OCCLUSION_ABS   (pixels²)
# and on a motion boundary when the backward flow's gradient is large:
#   |∇u|² + |∇v|² > BOUNDARY_REL · |w|² + BOUNDARY_ABS
OCCLUSION_REL, OCCLUSION_ABS = 0.01, 0.5
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002


def require_cv2() -> ModuleType:
    """OpenCV, or a one-line :class:`UsageError` saying how to install it (exit 2)."""
    try:
        import cv2
    except ImportError:
        raise UsageError(
            "impasto video needs OpenCV for optical flow: pip install 'impasto[video]'"
        ) from None
    return cv2


def _gray(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    cv2 = require_cv2()
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    out: npt.NDArray[np.uint8] = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return out


def optical_flow(
    first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8], method: FlowMethod = "dis"
) -> Array:
    """Dense flow (H, W, 2) from ``first`` to ``second``: 8-bit RGB (H, W, 3) or grey (H, W).

    ``dis`` is Kroeger et al.'s Dense Inverse Search (OpenCV's "medium" preset: a few ms at
    512x288, sub-pixel on textured areas); ``farneback`` is Farnebäck's polynomial expansion
    (smoother, several times slower). Both are deterministic, which resuming relies on."""
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(f"frames differ in size: {first.shape[:2]} and {second.shape[:2]}")
    cv2 = require_cv2()
    a, b = _gray(first), _gray(second)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(a, b, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(
            a, b, None, pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5,
            poly_sigma=1.2, flags=0,
        )  # fmt: skip
    else:
        raise UsageError(f"--flow {method!r} is not valid; choose from {', '.join(FLOW_METHODS)}")
    return np.asarray(flow, dtype=np.float32)


def _maps(flow: Array) -> tuple[Array, Array]:
    """Absolute lookup coordinates (x + dx, y + dy) for cv2.remap."""
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return np.ascontiguousarray(xs), np.ascontiguousarray(ys)


def warp(image: npt.NDArray[np.generic], flow: Array, *, sharp: bool = False) -> Array:
    """``out[y, x] = image[y + dy, x + dx]`` by bilinear interpolation (``sharp``: bicubic), as
    float32.

    Bilinear lookups between pixels average neighbours: warped again and again, as a video's
    outputs are from frame to frame, the fine strokes fade (measured on bigbuckbunny's flows:
    15 warps keep 31% of a painting's high-frequency energy; bicubic keeps 95%). Video warps its
    outputs ``sharp``; flows and measurements stay bilinear. Lookups outside the image take the
    nearest edge pixel; :func:`consistency` marks those pixels as untrusted, so what they hold
    only matters as a starting point."""
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    cv2 = require_cv2()
    xs, ys = _maps(flow)
    src = np.ascontiguousarray(image, dtype=np.float32)
    how = cv2.INTER_CUBIC if sharp else cv2.INTER_LINEAR
    out = cv2.remap(src, xs, ys, how, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32).reshape(image.shape)


def consistency(backward: Array, forward: Array) -> Array:
    """Per-pixel weight c (H, W) of frame k in {0, 1}: 1 where the warped previous frame can be
    trusted, 0 where it cannot.

    ``backward`` is the flow from frame k to k−1, ``forward`` from k−1 to k. A pixel gets 0 when

    - its backward flow leaves the frame (content that has just come into view),
    - the forward–backward check fails: following w = backward(p) into frame k−1 and then
      w̃ = forward(p + w) back does not return to p (it was hidden in frame k−1: a
      disocclusion), or
    - it lies on a motion boundary, where flow is least reliable.

    The thresholds are Ruder et al.'s (see OCCLUSION_* and BOUNDARY_* above)."""
    h, w = backward.shape[:2]
    xs, ys = _maps(backward)
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    fwd_there = warp(forward, backward)  # w̃ = forward(p + w), (H, W, 2)
    miss = np.square(backward + fwd_there).sum(axis=2)
    scale = np.square(backward).sum(axis=2) + np.square(fwd_there).sum(axis=2)
    occluded = miss > OCCLUSION_REL * scale + OCCLUSION_ABS
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    grad = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    boundary = grad > BOUNDARY_REL * np.square(backward).sum(axis=2) + BOUNDARY_ABS
    trusted: Array = (inside & ~occluded & ~boundary).astype(np.float32)
    return trusted


def temporal_loss(x: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Ruder et al.'s short-term temporal loss without its λ: (1/D) Σ c ⊙ (x − ω)².

    ``x`` and ``target`` (the warped previous output ω) are (1, 3, H, W) in [0, 255], ``weight``
    (the consistency c) is (1, 1, H, W); D = 3HW counts every pixel and channel, trusted or not,
    as in the paper. The value is a mean squared difference in pixel levels²."""
    diff = (x - target).square()  # (1, 3, H, W)
    return (weight * diff).sum() / x[0].numel()


def warping_error(
    previous: npt.NDArray[np.generic],
    current: npt.NDArray[np.generic],
    backward: Array,
    mask: Array | None = None,
) -> float:
    """Mean squared difference (pixel levels²) between ``current`` and ``previous`` warped by
    ``backward`` (the flow from current to previous), over the pixels where ``mask`` is 1
    (default: where :func:`consistency` would trust a flow that leaves the frame nowhere). The
    measure of flicker in the benchmark and the tests."""
    warped = warp(previous, backward)
    diff = np.square(np.asarray(current, dtype=np.float32) - warped)
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    if mask is None:
        h, w = backward.shape[:2]
        xs, ys = _maps(backward)
        mask = ((xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)).astype(np.float32)
    total = float(mask.sum())
    if total == 0:
        return 0.0
    return float((diff * mask).sum() / total)


def to_tensor(array: npt.NDArray[np.generic], device: torch.device) -> Tensor:
    """(H, W, C) or (H, W) array to a (1, C, H, W) float32 tensor on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    t = t.unsqueeze(-1) if t.dim() == 2 else t
    return t.permute(2, 0, 1).unsqueeze(0).contiguous().to(device)
