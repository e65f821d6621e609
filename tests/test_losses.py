"""Known-answer tests for impasto.losses: expected values worked out by hand or by a loop."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from impasto.losses import (
    blend_grams,
    content_loss,
    gram,
    guided_gram,
    guided_style_layer_loss,
    guided_style_loss,
    region_mass,
    style_layer_loss,
    style_loss,
    tv_loss,
)

# One image, N = 2 filters, M = 4 positions (2x2):
#   filter 0 = [[1, 2], [3, 4]]  -> f0 = (1, 2, 3, 4)
#   filter 1 = [[0, 1], [0, -1]] -> f1 = (0, 1, 0, -1)
FEATURES = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])
# G00 = 1 + 4 + 9 + 16 = 30, G01 = G10 = 0 + 2 + 0 - 4 = -2, G11 = 0 + 1 + 0 + 1 = 2
GRAM = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]])


def naive_gram(f: torch.Tensor) -> list[list[list[float]]]:
    """G[b][i][j] = Σ_m F[b, i, m] F[b, j, m], by loops over plain Python floats."""
    b, n, h, w = f.shape
    flat = f.reshape(b, n, h * w).tolist()
    return [
        [
            [sum(flat[k][i][m] * flat[k][j][m] for m in range(h * w)) for j in range(n)]
            for i in range(n)
        ]
        for k in range(b)
    ]


# --- gram --------------------------------------------------------------------------------------


def test_gram_of_hand_built_features() -> None:
    g = gram(FEATURES)
    assert g.shape == (1, 2, 2)
    assert torch.equal(g, GRAM)


def test_gram_matches_a_triple_loop_on_random_features() -> None:
    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    expected = torch.tensor(naive_gram(f))
    g = gram(f)
    assert g.shape == (2, 3, 3)
    assert_close(g, expected, rtol=1e-5, atol=1e-5)
    # Symmetric, and the two images of the batch are kept apart.
    assert_close(g, g.transpose(1, 2))
    assert not torch.allclose(g[0], g[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gram_is_fp32_for_half_precision_input(dtype: torch.dtype) -> None:
    f = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)).to(dtype)
    g = gram(f)
    assert g.dtype == torch.float32
    assert_close(g, torch.tensor(naive_gram(f.float())), rtol=1e-5, atol=1e-4)


def test_gram_does_not_overflow_in_half_precision() -> None:
    # 64 positions of value 100: each entry is 64 * 100² = 640000, beyond fp16's 65504.
    f = torch.full((1, 2, 8, 8), 100.0, dtype=torch.float16)
    g = gram(f)
    assert torch.isfinite(g).all()
    assert torch.equal(g, torch.full((1, 2, 2), 640000.0))


# --- content loss ------------------------------------------------------------------------------


def test_content_loss_by_hand() -> None:
    f = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    p = torch.tensor([0.0, 4.0, 3.0]).view(1, 1, 1, 3)
    # ½ (1² + (−2)² + 0²) = 2.5
    assert content_loss(f, p).item() == pytest.approx(2.5)
    assert content_loss(p, p).item() == 0.0


def test_content_loss_sums_over_the_batch() -> None:
    f = torch.tensor([[[[1.0]]], [[[3.0]]]])
    p = torch.zeros(2, 1, 1, 1)
    # ½ (1 + 9) = 5
    assert content_loss(f, p).item() == pytest.approx(5.0)


def test_content_loss_gradient_is_f_minus_p() -> None:
    gen = torch.Generator().manual_seed(2)
    f = torch.randn(1, 3, 4, 4, generator=gen, requires_grad=True)
    p = torch.randn(1, 3, 4, 4, generator=gen)
    (grad,) = torch.autograd.grad(content_loss(f, p), f)
    assert_close(grad, (f - p).detach())


# --- style loss --------------------------------------------------------------------------------


def test_style_layer_loss_by_hand() -> None:
    target = torch.tensor([[[28.0, 0.0], [0.0, 4.0]]])
    # G − A = [[2, −2], [−2, −2]]: Σ (G − A)² = 16; 4 N² M² = 4 · 2² · 4² = 256.
    assert style_layer_loss(FEATURES, target).item() == pytest.approx(16 / 256)


def test_style_layer_loss_is_zero_for_the_own_gram() -> None:
    f = torch.rand(1, 5, 6, 7, generator=torch.Generator().manual_seed(3))
    assert style_layer_loss(f, gram(f)).item() == 0.0
    assert style_layer_loss(f, torch.zeros(1, 5, 5)).item() > 0.0


def test_style_loss_is_the_weighted_sum_of_layer_losses() -> None:
    features = {
        "a": FEATURES,  # E_a = 16/256 against the target below
        "b": torch.tensor([[[[3.0, 4.0]]]]),  # N = 1, M = 2: G = 25
        "c": torch.ones(1, 1, 2, 2),  # not weighted: must not count
    }
    targets = {
        "a": torch.tensor([[[28.0, 0.0], [0.0, 4.0]]]),
        "b": torch.tensor([[[21.0]]]),  # (25 − 21)² / (4 · 1 · 4) = 1
        "c": torch.zeros(1, 1, 1),
    }
    loss = style_loss(features, targets, {"a": 2.0, "b": 0.5})
    assert loss.item() == pytest.approx(2.0 * 16 / 256 + 0.5 * 1.0)


def test_style_loss_is_zero_when_targets_are_the_own_grams() -> None:
    gen = torch.Generator().manual_seed(4)
    features = {
        "x": torch.rand(1, 3, 4, 4, generator=gen),
        "y": torch.rand(1, 6, 2, 2, generator=gen),
    }
    targets = {k: gram(v) for k, v in features.items()}
    assert style_loss(features, targets, {"x": 0.5, "y": 0.5}).item() == 0.0


def test_style_loss_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        style_loss({}, {}, {})


# --- total variation ---------------------------------------------------------------------------


def test_tv_loss_of_a_checkerboard() -> None:
    board = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # Vertical differences (1, −1) and horizontal differences (1, −1): 1 + 1 + 1 + 1 = 4.
    assert tv_loss(board.view(1, 1, 2, 2)).item() == pytest.approx(4.0)
    # Summed over channels.
    assert tv_loss(board.expand(1, 3, 2, 2)).item() == pytest.approx(12.0)


def test_tv_loss_of_a_constant_image_is_zero() -> None:
    assert tv_loss(torch.full((1, 3, 5, 7), 0.7)).item() == 0.0


def test_tv_loss_matches_a_loop_on_random_images() -> None:
    x = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(5))
    v = x.tolist()
    expected = 0.0
    for b in range(2):
        for c in range(3):
            for i in range(4):
                for j in range(5):
                    if i + 1 < 4:
                        expected += (v[b][c][i + 1][j] - v[b][c][i][j]) ** 2
                    if j + 1 < 5:
                        expected += (v[b][c][i][j + 1] - v[b][c][i][j]) ** 2
    assert tv_loss(x).item() == pytest.approx(expected, rel=1e-5)


# --- blending ----------------------------------------------------------------------------------


def test_blend_grams_is_a_normalised_weighted_mean() -> None:
    one = {"conv1_1": torch.full((1, 2, 2), 4.0), "conv2_1": torch.tensor([[[1.0]]])}
    two = {"conv1_1": torch.full((1, 2, 2), 8.0), "conv2_1": torch.tensor([[[5.0]]])}
    mixed = blend_grams([one, two], [1.0, 3.0])
    assert set(mixed) == {"conv1_1", "conv2_1"}
    # ¼ · 4 + ¾ · 8 = 7 and ¼ · 1 + ¾ · 5 = 4
    assert torch.equal(mixed["conv1_1"], torch.full((1, 2, 2), 7.0))
    assert torch.equal(mixed["conv2_1"], torch.tensor([[[4.0]]]))
    # Only the ratio of the weights matters.
    again = blend_grams([one, two], [2.0, 6.0])
    for name in mixed:
        assert_close(again[name], mixed[name])


def test_blend_grams_of_one_style_is_that_style() -> None:
    g = {"conv3_1": torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(6))}
    assert_close(blend_grams([g], [0.3])["conv3_1"], g["conv3_1"])


@pytest.mark.parametrize("weights", [[1.0], [1.0, 2.0, 3.0]])
def test_blend_grams_needs_one_weight_per_style(weights: list[float]) -> None:
    g = {"conv1_1": torch.ones(1, 1, 1)}
    with pytest.raises(ValueError, match="one weight per style"):
        blend_grams([g, g], weights)


def test_blend_grams_needs_a_style() -> None:
    with pytest.raises(ValueError, match="one weight per style"):
        blend_grams([], [])


# --- guided Gram matrices ------------------------------------------------------------------------


def test_guided_gram_with_a_mask_of_ones_is_the_gram() -> None:
    ones = torch.ones(1, 1, 2, 2)
    assert_close(guided_gram(FEATURES, ones), GRAM[:, None])


def test_guided_gram_by_hand() -> None:
    # Only the two left positions (m = 0 and 2), the bottom one at half weight:
    #   G00 = 1·1 + 0.5·9 = 5.5, G01 = 1·(1·0) + 0.5·(3·0) = 0, G11 = 0
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    assert_close(guided_gram(FEATURES, mask), torch.tensor([[[[[5.5, 0.0], [0.0, 0.0]]]]])[0])


def test_complementary_masks_partition_the_gram() -> None:
    # Soft masks summing to one at every position: their guided Grams sum to the plain Gram
    # (the documented departure from the paper, which would weigh by T² and not add up).
    torch.manual_seed(0)
    f = torch.randn(2, 3, 5, 7)
    t = torch.rand(1, 1, 5, 7)
    both = guided_gram(f, torch.cat([t, 1 - t]))  # (B, 2, N, N)
    assert both.shape == (2, 2, 3, 3)
    assert_close(both[:, 0] + both[:, 1], gram(f), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(both[:, 0], gram(f) / 2, atol=1e-3)  # each region its own


def test_region_mass_counts_positions() -> None:
    masks = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    assert region_mass(masks).tolist() == [1.5, 4.0]


def test_guided_loss_with_one_full_region_is_the_plain_loss() -> None:
    torch.manual_seed(1)
    f = torch.randn(1, 4, 6, 5)
    a = gram(torch.randn(1, 4, 6, 5))  # a style's Gram at the same number of positions
    per_position = a / 30.0
    guided = guided_style_layer_loss(f, torch.ones(1, 1, 6, 5), per_position)
    assert_close(guided, style_layer_loss(f, a), rtol=1e-4)


def test_guided_loss_by_hand() -> None:
    # Region 0, the left column (μ = 2 of M = 4 positions): there f0 = (1, 3), f1 = (0, 0), so
    #   G = [[10, 0], [0, 0]] and G/μ = [[5, 0], [0, 0]]; against zeros Σ(.)² = 25; times
    #   μ/M = 1/2, over 4N² = 16: 25 / 2 / 16.
    # Region 1: nothing (μ = 0): adds nothing, whatever its target.
    masks = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    targets = torch.stack([torch.zeros(2, 2), torch.full((2, 2), 7.0)])
    loss = guided_style_layer_loss(FEATURES, masks, targets)
    assert_close(loss, torch.tensor(25 / 2 / 16))


def test_a_small_region_is_matched_per_position() -> None:
    # A region of one position whose statistics equal its target costs nothing, however small
    # it is against the image: the Gram is divided by the region's own mass.
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 1, 1] = 1.0
    f = FEATURES[0, :, 1, 1]  # (4, -1)
    target = torch.outer(f, f)[None]
    assert float(guided_style_layer_loss(FEATURES, mask, target)) == 0.0
    assert float(guided_style_layer_loss(FEATURES, mask, 2 * target)) > 0.0


def test_guided_style_loss_weighs_layers() -> None:
    masks = torch.ones(1, 1, 2, 2)
    zero = torch.zeros(1, 2, 2)
    one = guided_style_loss({"a": FEATURES}, {"a": (masks, zero)}, {"a": 1.0})
    three = guided_style_loss({"a": FEATURES}, {"a": (masks, zero)}, {"a": 3.0})
    assert_close(three, 3 * one)
    with pytest.raises(ValueError):
        guided_style_loss({}, {}, {})
