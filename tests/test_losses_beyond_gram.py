"""Known answers for the losses that compare distributions of features (impasto.losses, issue 21):
the sliced Wasserstein loss, the relaxed EMD, moment matching and self-similarity.

Kept apart from test_losses.py (the paper's losses) so that each file reads as one family."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from impasto import losses
from impasto.losses import (
    cosine_distances,
    interpolate_quantiles,
    moment_loss,
    relaxed_emd,
    self_similarity,
    self_similarity_loss,
    sliced_wasserstein,
    style_layer_loss,
)

ONE_CHANNEL = torch.tensor([[1.0], [-1.0]])  # the only two unit directions in R¹


def layer(values: list[list[float]], h: int, w: int) -> Tensor:
    """A response (1, N, h, w) from N rows of h*w values."""
    return torch.tensor(values).reshape(1, len(values), h, w)


def close(a: Tensor | float, b: float, tol: float = 1e-5) -> bool:
    return math.isclose(float(a), b, rel_tol=tol, abs_tol=tol)


# --- quantiles and the sliced Wasserstein loss ----------------------------------------------------


def test_quantiles_are_linear_between_samples_and_flat_beyond() -> None:
    # Samples 0, 2, 4, 6 stand at levels 1/8, 3/8, 5/8, 7/8.
    samples = torch.tensor([[0.0, 2.0, 4.0, 6.0]])
    levels = torch.tensor([[0.0, 0.125, 0.25, 0.5, 0.875, 1.0]])
    q = interpolate_quantiles(samples, levels)
    assert q.tolist() == [[0.0, 0.0, 1.0, 3.0, 6.0, 6.0]]


def test_the_sliced_loss_of_identical_sets_is_zero() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, 8, 5, 6, generator=g)
    d = torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1)
    flat = f.reshape(8, 30)
    assert float(sliced_wasserstein(f, d, [flat])) == 0.0
    # The arrangement does not count (a distribution), and a copy of every sample changes it not.
    shuffled = flat[:, torch.randperm(30, generator=g)]
    assert float(sliced_wasserstein(f, d, [shuffled])) == 0.0
    assert close(sliced_wasserstein(f, d, [flat.repeat(1, 2)]), 0.0)


def test_one_channel_is_the_exact_wasserstein_distance() -> None:
    # Sorted 0 1 2 3 against 0 4 6 10: squared differences 0 9 16 49, mean 74/4 (both signs of
    # the one direction give it: sorting the negated values pairs the same samples).
    a = layer([[3.0, 1.0, 2.0, 0.0]], 2, 2)
    b = torch.tensor([[10.0, 0.0, 4.0, 6.0]])
    assert close(sliced_wasserstein(a, ONE_CHANNEL, [b]), 74 / 4)
    assert close(sliced_wasserstein(a, ONE_CHANNEL[:1], [b]), 74 / 4)


def test_fewer_output_samples_meet_the_style_s_interpolated_quantiles() -> None:
    # Output 0, 1 at levels 1/4 and 3/4; the style's 0 2 4 6 give Q(1/4) = 1, Q(3/4) = 5:
    # ((0 - 1)² + (1 - 5)²) / 2. (The step-function quantiles would give 9.5: we compare with the
    # linear interpolation of the painting's sorted samples; docs/style-losses.md.)
    a = layer([[1.0, 0.0]], 1, 2)
    assert close(sliced_wasserstein(a, ONE_CHANNEL, [torch.tensor([[6.0, 0.0, 4.0, 2.0]])]), 8.5)


def test_it_sees_what_the_gram_matrix_cannot() -> None:
    # (2, 0) and (0, 0) against (√2, 0) and (-√2, 0): the same Gram matrix [[4, 0], [0, 0]],
    # other distributions. On the first axis: sorted 0, 2 against -√2, √2, W2² = 4 - 2√2; on
    # the second, 0. Averaged over the two directions: 2 - √2.
    x = layer([[2.0, 0.0], [0.0, 0.0]], 1, 2)
    y = torch.tensor([[math.sqrt(2), -math.sqrt(2)], [0.0, 0.0]])
    assert float(style_layer_loss(x, (y @ y.T)[None])) == pytest.approx(0.0, abs=1e-6)
    assert close(sliced_wasserstein(x, torch.eye(2), [y]), 2 - math.sqrt(2))


def test_the_gradient_moves_each_sample_to_its_quantile() -> None:
    # d/dx_m (1/M) Σ (x_(m) - t_m)² = 2 (x_m - t_m) / M for the sample of rank m.
    a = layer([[3.0, 1.0, 2.0, 0.0]], 2, 2).requires_grad_(True)
    b = torch.tensor([[10.0, 0.0, 4.0, 6.0]])
    (grad,) = torch.autograd.grad(sliced_wasserstein(a, ONE_CHANNEL, [b]), a)
    matched = torch.tensor([10.0, 4.0, 6.0, 0.0])  # rank of 3, 1, 2, 0 in 0 4 6 10
    assert torch.allclose(grad.flatten(), 2 * (a.detach().flatten() - matched) / 4)


def test_guided_regions_weigh_their_positions() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, 4, 3, 4, generator=g)
    d = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=1)
    t = torch.randn(4, 9, generator=g)
    plain = sliced_wasserstein(f, d, [t])
    # A region of ones is the unguided loss.
    assert close(sliced_wasserstein(f, d, [t], torch.ones(1, 12)), float(plain))
    # A binary region: the loss of its positions alone, times its share μ/M of the picture.
    inside = torch.zeros(1, 12)
    inside[0, :5] = 1.0
    alone = sliced_wasserstein(f.reshape(1, 4, 12)[:, :, :5].reshape(1, 4, 1, 5), d, [t])
    assert close(sliced_wasserstein(f, d, [t], inside), float(alone) * 5 / 12)
    # A region with no mass adds nothing; complementary regions add up.
    both = torch.cat([inside, 1 - inside, torch.zeros(1, 12)])
    total = sliced_wasserstein(f, d, [t, t, 100 * t], both)
    rest = sliced_wasserstein(f, d, [t], 1 - inside)
    assert close(total, float(sliced_wasserstein(f, d, [t], inside) + rest))


def test_the_sliced_loss_refuses_targets_that_do_not_fit() -> None:
    f = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError):
        sliced_wasserstein(f, torch.eye(2), [torch.zeros(2, 3), torch.zeros(2, 3)])
    with pytest.raises(ValueError):
        sliced_wasserstein(f, torch.eye(2), [torch.zeros(2, 3)], torch.ones(2, 4))


# --- the relaxed EMD, moments, self-similarity ----------------------------------------------------


def test_the_relaxed_emd_of_a_set_with_itself_is_zero() -> None:
    x = torch.randn(8, 50, generator=torch.Generator().manual_seed(2))
    assert float(relaxed_emd(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(relaxed_emd(x, x, "squared")) == pytest.approx(0.0, abs=1e-4)
    assert float(relaxed_emd(x, x[:, :20])) > 0  # a part of it is not all of it


def test_the_relaxed_emd_by_hand() -> None:
    # Cosine: x = {(1, 0)}, y = {(0, 1), (1, 0)}. Each x has a copy in y (0); y's (0, 1) is at
    # distance 1 from x's nearest: (0 + 1) / 2. The larger relaxation counts: 0.5.
    x = torch.tensor([[1.0], [0.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert close(relaxed_emd(x, y), 0.5)
    # Squared Euclidean in 1-D: x = {0}, y = {1, 3}: x -> 1 costs 1; y's cost 1 and 9, mean 5.
    assert close(relaxed_emd(torch.zeros(1, 1), torch.tensor([[1.0, 3.0]]), "squared"), 5)


def test_a_region_s_emd_looks_inside_it_only() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (1, 0) and (0, 1)
    y = torch.tensor([[0.0], [1.0]])  # (0, 1)
    assert close(relaxed_emd(x, y), 0.5)  # (1 + 0) / 2 against 0
    # Only the first position is in the region: it is 1 away, and y's nearest inside is too.
    assert close(relaxed_emd(x, y, weights=torch.tensor([1.0, 0.0])), 1.0)


@pytest.mark.parametrize("metric", ["cosine", "squared"])
@pytest.mark.parametrize("region", [False, True])
def test_the_relaxed_emd_is_the_dense_formula_in_chunks(
    monkeypatch: pytest.MonkeyPatch, metric: str, region: bool
) -> None:
    # Features of any sign for the cosine distance; colours in [0, 1] for the squared one.
    g = torch.Generator().manual_seed(3)
    draw = torch.randn if metric == "cosine" else torch.rand
    x = draw(3, 23, generator=g).requires_grad_(True)
    y = draw(3, 7, generator=g)
    w = (torch.rand(23, generator=g) > 0.5).float() if region else None
    monkeypatch.setattr(losses, "EMD_CHUNK", 4)
    chunked = relaxed_emd(x, y, metric, w)  # type: ignore[arg-type]
    (g_chunked,) = torch.autograd.grad(chunked, x)
    # The dense formula: min over the whole cost matrix, a region's outside penalised.
    if metric == "cosine":
        c = cosine_distances(x, y)
    else:
        c = (x.unsqueeze(2) - y.unsqueeze(1)).pow(2).sum(0)  # (M, S)
    if w is None:
        forward = c.min(dim=1).values.mean()
        backward = c.min(dim=0).values
    else:
        forward = (w * c.min(dim=1).values).sum() / w.sum()
        pick = (c + 1e6 * (1 - w).unsqueeze(1)).argmin(dim=0)
        backward = c.gather(0, pick.unsqueeze(0))[0]
    dense = torch.maximum(forward, backward.mean())
    (g_dense,) = torch.autograd.grad(dense, x)
    assert float(chunked.detach()) == pytest.approx(float(dense.detach()), rel=1e-5)
    assert torch.allclose(g_chunked, g_dense, atol=1e-5)


def test_moments_by_hand() -> None:
    # Columns (1, 0) and (3, 0): mean (2, 0), covariance [[1, 0], [0, 0]]; against zeros:
    # |2| / 2 + |1| / 4.
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert close(moment_loss(x, torch.zeros(2), torch.zeros(2, 2)), 1.25)
    assert close(moment_loss(x, torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 0], [0, 0]])), 0)
    # Weighted: only the first column counts (mean (1, 0), no spread).
    w = torch.tensor([1.0, 0.0])
    assert close(moment_loss(x, torch.tensor([1.0, 0.0]), torch.zeros(2, 2), w), 0.0)


def test_self_similarity_by_hand() -> None:
    # Positions (1, 0), (0, 1), (1, 0): cosine distances [[0, 1, 0], [1, 0, 1], [0, 1, 0]],
    # columns summing to 1, 2, 1.
    f = layer([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], 1, 3)
    expected = torch.tensor([[0.0, 0.5, 0.0], [1.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    assert torch.allclose(self_similarity(f), expected)
    assert float(self_similarity_loss(f, expected)) == 0.0
    # Only the arrangement counts: brighter responses at every position change nothing.
    assert float(self_similarity_loss(f * torch.tensor([2.0, 5.0, 1.0]), expected)) < 1e-6
    # Two opposite distributions per column are 2 apart: the loss is at most 2.
    other = layer([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], 1, 3)
    assert 0 < float(self_similarity_loss(other, expected)) <= 2.0
