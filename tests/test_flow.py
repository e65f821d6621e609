"""Optical flow, warping, occlusion masks and the temporal loss, with known answers."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from helpers import EXAMPLES
from impasto import flow, imageio
from impasto.errors import UsageError


def texture(width: int, height: int) -> np.ndarray:
    """A photo (uint8, (H, W, 3)): flow needs texture to lock on to."""
    return np.asarray(
        imageio.resize_to(imageio.load_image(EXAMPLES / "tubingen.jpg"), (width, height))
    )


def constant(h: int, w: int, dx: float, dy: float) -> np.ndarray:
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0], f[..., 1] = dx, dy
    return f


def test_warp_moves_pixels_where_the_flow_says() -> None:
    img = np.zeros((12, 16), np.float32)
    img[4, 5] = 255.0  # (x=5, y=4)
    # out[y, x] = img[y + dy, x + dx]: a lookup 3 left and 2 up puts the dot 3 right, 2 down.
    out = flow.warp(img, constant(12, 16, -3.0, -2.0))
    assert out[6, 8] == 255.0
    assert out.sum() == 255.0
    # Half a pixel: bilinear interpolation splits the dot between two neighbours.
    half = flow.warp(img, constant(12, 16, -0.5, 0.0))
    assert half[4, 5] == pytest.approx(127.5)
    assert half[4, 6] == pytest.approx(127.5)
    rgb = flow.warp(np.dstack([img] * 3), constant(12, 16, -3.0, -2.0))
    assert rgb.shape == (12, 16, 3)
    assert (rgb[6, 8] == 255.0).all()


@pytest.mark.parametrize("method", flow.FLOW_METHODS)
def test_flow_finds_a_known_shift(method: flow.FlowMethod) -> None:
    big = texture(96, 72)
    first = big[8:56, 8:72]  # (48, 64)
    second = big[
        10:58, 5:69
    ]  # content moved 3 px right and 2 px up: first(p) = second(p + (3, -2))
    f = flow.optical_flow(first, second, method)
    assert f.shape == (48, 64, 2)
    inner = f[12:36, 16:48].reshape(-1, 2)
    assert np.median(inner, axis=0) == pytest.approx([3.0, -2.0], abs=0.25)
    still = flow.optical_flow(first, first, method)
    assert np.abs(still).max() < 0.05
    # Deterministic: resuming a video relies on recomputing the same flow.
    assert np.array_equal(f, flow.optical_flow(first, second, method))


def test_a_pan_flags_the_strip_that_comes_into_view() -> None:
    # The camera pans left: content moves 3 px right, so frame k's 3 left-most columns were
    # outside frame k-1 (backward flow -3 leaves the frame there).
    backward = constant(10, 20, -3.0, 0.0)
    forward = constant(10, 20, 3.0, 0.0)
    c = flow.consistency(backward, forward)
    assert (c[:, :3] == 0).all()
    assert (c[:, 3:] == 1).all()


def test_a_moving_square_flags_the_background_it_uncovers() -> None:
    h, w = 24, 40
    backward = np.zeros((h, w, 2), np.float32)  # frame k -> k-1
    forward = np.zeros((h, w, 2), np.float32)  # frame k-1 -> k
    backward[6:18, 14:26, 0] = -4.0  # the square, now at x 14..25, came from 4 px left
    forward[6:18, 10:22, 0] = 4.0  # in frame k-1 it was at x 10..21 and moves 4 right
    c = flow.consistency(backward, forward)
    assert (c[6:18, 10:14] == 0).all()  # background uncovered by the square: not in frame k-1
    assert (c[8:16, 16:24] == 1).all()  # inside the square: tracked
    assert (c[:, :6] == 1).all() and (c[:, 32:] == 1).all()  # still background
    assert (c[6:18, 25:27] == 0).all()  # the square's right edge: a motion boundary


def test_temporal_loss_is_zero_for_a_static_clip_and_positive_when_perturbed() -> None:
    frame = texture(48, 32)
    backward = flow.optical_flow(frame, frame)
    forward = flow.optical_flow(frame, frame)
    c = flow.consistency(backward, forward)
    assert c.mean() == 1.0
    target = flow.to_tensor(flow.warp(frame, backward), torch.device("cpu"))
    weight = flow.to_tensor(c, torch.device("cpu"))
    x = flow.to_tensor(frame, torch.device("cpu"))
    assert float(flow.temporal_loss(x, target, weight)) < 1e-3
    # Two levels everywhere: (1/D) Σ c (x - ω)² = 4 exactly where c = 1 everywhere.
    assert float(flow.temporal_loss(target + 2.0, target, weight)) == pytest.approx(4.0)
    perturbed = x.clone()
    perturbed[..., 10:14, 10:20] += 30.0
    assert float(flow.temporal_loss(perturbed, target, weight)) > 10.0
    # Where c = 0 (occluded), a difference costs nothing.
    masked = weight.clone()
    masked[..., 10:14, 10:20] = 0.0
    assert float(flow.temporal_loss(perturbed, target, masked)) < 1e-3


def test_warping_error_is_zero_along_the_true_motion() -> None:
    big = texture(80, 40)
    prev, cur = big[:, 0:64], big[:, 2:66]  # cur(x) = prev(x + 2)
    backward = constant(40, 64, 2.0, 0.0)
    assert flow.warping_error(prev, cur, backward) == pytest.approx(0.0, abs=1e-6)
    assert flow.warping_error(prev, cur, constant(40, 64, 0.0, 0.0)) > 10.0


def test_without_opencv_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'impasto\[video\]'"):
        flow.require_cv2()
