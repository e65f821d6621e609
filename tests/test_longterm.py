"""Long-term temporal consistency (Ruder et al. 2016/2018): known answers for the certainty
weights and the ties, on synthetic flows and frames; the ``longterm`` term of a real video run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import DEVICES, HostAllocations, HostReads, pan_frames
from impasto import video
from impasto.config import TransferConfig
from impasto.optimize import Step
from impasto.vgg import VGG
from impasto.video import VideoOptions, painter
from impasto.video.longterm import Tie, certainty_weights, stack_ties, sum_of_ties, tie


def test_each_pixel_goes_to_the_nearest_frame_that_trusts_it() -> None:
    # Three ties, nearest first, over four pixels.
    c1 = np.array([1, 1, 0, 0], np.float32)
    c5 = np.array([1, 0, 1, 0], np.float32)
    c10 = np.array([1, 1, 1, 1], np.float32)
    w1, w5, w10 = certainty_weights([c1, c5, c10])
    assert w1.tolist() == [1, 1, 0, 0]  # the nearest keeps its own c
    assert w5.tolist() == [0, 0, 1, 0]  # only what frame i-1 does not cover
    assert w10.tolist() == [0, 0, 0, 1]
    assert (w1 + w5 + w10).tolist() == [1, 1, 1, 1]  # binary c: disjoint, covering the union


def test_soft_certainties_lose_what_nearer_frames_cover() -> None:
    a = np.array([0.5, 0.2, 0.0], np.float32)
    b = np.array([0.8, 0.1, 0.6], np.float32)
    c = np.array([1.0, 1.0, 1.0], np.float32)
    _, wb, wc = certainty_weights([a, b, c])
    np.testing.assert_allclose(wb, [0.3, 0.0, 0.6], atol=1e-7)  # max(c_j - sum nearer, 0)
    np.testing.assert_allclose(wc, [0.0, 0.7, 0.4], atol=1e-7)
    assert certainty_weights([]) == []


def test_a_tie_warps_the_other_output_and_distrusts_what_entered_the_frame() -> None:
    """A pan of 2 px a frame: frame 2 seen from frame 0 is 4 px further; the tie's warped output
    is frame 0's picture moved by 4 px where both frames see it, and the 4 columns that have
    come into view are not trusted."""
    frames = pan_frames(3, size=(64, 48), step=2)
    t = tie(frames[2], frames[0], frames[0], distance=2)
    assert t.distance == 2
    inside = np.s_[8:-8, 8:-12]  # away from borders, where DIS is reliable
    moved = t.warped[inside] - frames[2][inside].astype(np.float32)  # frame 0 warped = frame 2
    assert np.abs(moved).mean() < 6  # levels, against about 40 unwarped
    assert np.abs(frames[0][inside].astype(np.float32) - frames[2][inside]).mean() > 15
    assert t.certainty[:, -4:].mean() < 0.1  # the last 4 columns are new in frame 2
    assert t.certainty[inside].mean() > 0.9
    assert 0.8 < t.trusted < 0.97


def test_the_sum_of_ties_is_the_weighted_mean_squared_difference() -> None:
    h, w = 2, 3
    x = torch.zeros(1, 3, h, w)
    near = Tie(1, np.full((h, w, 3), 2.0, np.float32), np.ones((h, w), np.float32))
    far = Tie(5, np.full((h, w, 3), 4.0, np.float32), np.zeros((h, w), np.float32))
    far.certainty[0, 0] = 1.0  # one pixel of the far tie
    targets, certainty = stack_ties([near, far], torch.device("cpu"))
    assert targets.shape == (2, 3, h, w) and certainty.shape == (2, 1, h, w)
    # (1/(3HW)) * (3 channels * 6 pixels * 2² + 3 channels * 1 pixel * 4²) = (72 + 48) / 18
    assert float(sum_of_ties(x, targets, certainty)) == pytest.approx(120 / 18)


@pytest.mark.slow
def test_long_term_ties_show_as_their_own_term(style_path: Path, vgg19: VGG) -> None:
    """With J = {1, 2}, frame 1 has no frame two back (its longterm term is 0), frame 2 has:
    a named term beside the short-term one, and the terms still add up to the total."""
    cfg = TransferConfig(size=48, iterations=3, seed=3)
    seen: dict[int, list[tuple[float, dict[str, float]]]] = {}

    def on_frame_start(index: int, iterations: int) -> Callable[[Step], None]:
        rows = seen.setdefault(index, [])
        return lambda step: rows.append((step.loss, step.terms))

    opts = VideoOptions(frame_iterations=2, temporal_frames=(1, 2))
    frames = pan_frames(3, step=1)
    list(video.stylize_frames(frames, [style_path], cfg, opts, vgg=vgg19,
                              on_frame_start=on_frame_start))  # fmt: skip
    for index in (1, 2):
        for total, terms in seen[index]:
            assert list(terms) == ["content", "style", "tv", "temporal", "longterm"]
            assert sum(terms.values()) == pytest.approx(total, rel=1e-5)
    assert all(terms["longterm"] == 0 for _, terms in seen[1])
    assert all(terms["longterm"] > 0 for _, terms in seen[2][1:])


def test_temporal_frames_must_hold_the_previous_frame() -> None:
    from impasto.errors import UsageError

    assert VideoOptions(temporal_frames=(10, 1, 5)).temporal_frames == (1, 5, 10)
    assert VideoOptions(temporal_frames=(1, 5)).long_term
    assert not VideoOptions(temporal_frames=(1,)).long_term
    assert not VideoOptions(temporal=False, temporal_frames=(1, 5)).long_term
    for bad in [(5, 10), (1, 1), (), (0, 1)]:
        with pytest.raises(UsageError, match="temporal-frames"):
            VideoOptions(temporal_frames=bad)


@pytest.mark.parametrize("device", DEVICES)
def test_the_temporal_terms_read_nothing_back_and_make_nothing_on_the_host(device: str) -> None:
    """Each iteration evaluates the temporal, long-term and seam terms: like the rest of the
    loop they may be captured in a CUDA graph, so they read no value back and build no tensor
    from host data (their targets are made once, before the loop)."""
    dev = torch.device(device)
    cfg = TransferConfig(size=32, seed=0, device=device)
    rng = np.random.default_rng(0)
    ties = [
        Tie(j, rng.uniform(0, 255, (8, 12, 3)).astype(np.float32),
            (rng.uniform(size=(8, 12)) > 0.3).astype(np.float32))
        for j in (1, 5, 10)
    ]  # fmt: skip
    weights = certainty_weights([t.certainty for t in ties])
    terms = [
        painter._term("temporal", 1.0, ties[:1], weights[:1], cfg, dev),
        painter._term("longterm", 1.0, ties[1:], weights[1:], cfg, dev),
        painter._term("seam", 0.5, ties[:1], None, cfg, dev),
        painter._term("longterm", 1.0, [], None, cfg, dev),  # no tie yet: always 0
    ]
    x = torch.rand(1, 3, 8, 12, device=dev, requires_grad=True) * 255
    with HostReads() as reads, HostAllocations() as made:
        total = sum(t.fn(x, {}) for t in terms)
        (grad,) = torch.autograd.grad(total, x)
    assert reads.reads == 0 and made.calls == []
    assert grad.shape == x.shape
