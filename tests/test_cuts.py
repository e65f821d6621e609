"""Scene cuts: known answers for the colour histogram and the rule, the detector on synthetic
flows and on a clip of two shots joined, and the frame loop starting the new shot afresh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import SHOT_SIZE as SIZE
from helpers import pan_frames, two_shots
from impasto import flow, video
from impasto.config import TransferConfig
from impasto.optimize import Transfer
from impasto.vgg import VGG
from impasto.video import VideoOptions, cuts, frame_seed


def test_colour_histograms_and_their_distance() -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    h = cuts.colour_histogram(red)
    assert h.shape == (512,) and h.sum() == pytest.approx(1.0)
    assert h[7 * 64] == 1.0  # R in the top bin, G and B in the bottom one
    blue = np.zeros_like(red)
    blue[..., 2] = 255
    half = red.copy()
    half[:, 2:] = blue[:, 2:]
    assert cuts.colour_distance(red, red) == 0.0
    assert cuts.colour_distance(red, blue) == 1.0
    assert cuts.colour_distance(red, half) == pytest.approx(0.5)
    # Shades inside one bin (32 levels wide) are the same colour.
    assert cuts.colour_distance(red, red - np.uint8(10) * (red > 0)) == 0.0


@pytest.mark.parametrize(
    ("trusted", "colours", "cut"),
    [
        (0.97, 0.01, False),  # consecutive frames of a shot
        (0.69, 0.14, False),  # a jump inside one place
        (0.30, 0.90, False),  # fast motion and a flash: a third of the frame still follows
        (0.20, 0.10, False),  # little trusted, same colours: fast motion over one scene
        (0.20, 0.20, True),  # little trusted and the colours jump
        (0.05, 0.00, True),  # almost nothing trusted, whatever the colours
    ],
)
def test_the_rule(trusted: float, colours: float, cut: bool) -> None:
    assert cuts.is_cut(trusted, colours) is cut
    assert cuts.CutCheck(trusted, colours).cut is cut


def test_synthetic_flows_trusted_or_not() -> None:
    """A flow and its exact inverse pass the forward-backward check; unrelated flows fail it
    nearly everywhere: the share of trusted pixels the rule reads."""
    h, w = 48, 64
    shift = np.zeros((h, w, 2), np.float32)
    shift[..., 0] = 2.0  # every pixel of frame k comes from 2 px to the right in k-1
    trust = flow.consistency(shift, -shift)
    assert trust[:, : w - 2].min() == 1.0 and trust[:, w - 2 :].max() == 0.0
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 6, (2, h, w, 2)).astype(np.float32)
    assert flow.consistency(noise[0], noise[1]).mean() < cuts.TRUST_CUT


def test_the_cut_between_two_shots_is_found_and_nothing_else() -> None:
    clip = two_shots()
    assert list(cuts.find_cuts(clip)) == [4]
    assert list(cuts.find_cuts(pan_frames(6, size=SIZE))) == []
    assert list(cuts.find_cuts(pan_frames(6))) == []  # 48x32 too
    still = pan_frames(1, size=SIZE) * 3  # a frame shown three times: no cut
    assert list(cuts.find_cuts(still)) == []
    check = cuts.check_pair(clip[3], clip[4])
    assert check.cut and check.trusted < cuts.TRUST_LOW and check.colours > cuts.COLOUR_JUMP


@pytest.mark.slow
def test_the_frame_after_a_cut_is_a_fresh_transfer(style_path: Path, vgg19: VGG) -> None:
    """The loop reports the cut and paints the frame after it as the first frame of a shot: the
    same pixels as a transfer of that frame on its own (nothing of the last shot), with all the
    iterations; the frame before it is warm as usual."""
    clip = two_shots(3, 2)
    cfg = TransferConfig(size=64, iterations=6, seed=5)
    opts = VideoOptions(frame_iterations=2)
    out = list(video.stylize_frames(clip, [style_path], cfg, opts, vgg=vgg19))
    assert [r.cut for r in out] == [False, False, False, True, False]
    assert [r.iterations for r in out] == [6, 2, 2, 6, 2]
    fresh = Transfer(Image.fromarray(clip[3]), [style_path],
                     cfg.replace(seed=frame_seed(5, 3)), vgg=vgg19).run()  # fmt: skip
    assert np.array_equal(np.asarray(out[3].image), np.asarray(fresh.image))
    # Without cut detection the new shot starts from the last one's strokes.
    blind = VideoOptions(frame_iterations=2, cuts=False)
    held = list(video.stylize_frames(clip, [style_path], cfg, blind, vgg=vgg19))
    assert not any(r.cut for r in held) and held[3].iterations == 2
