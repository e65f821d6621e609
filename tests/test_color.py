"""Tests for impasto.color: expectations worked out by hand or computed independently in numpy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from helpers import EXAMPLES
from impasto import imageio
from impasto.color import (
    HistogramMode,
    histogram_transform,
    luminance_only,
    match_histogram,
    match_luminance,
    recombine_luminance,
    rgb_to_yiq,
    yiq_to_rgb,
)

# NTSC YIQ, FCC 1987 coefficients, typed in from the standard (not imported from the module).
YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.5959, -0.2746, -0.3213],
        [0.2115, -0.5227, 0.3112],
    ]
)
MODES: list[HistogramMode] = ["sym", "cholesky"]


def as_np(t: torch.Tensor) -> np.ndarray:
    return np.asarray(t.detach().to(torch.float64).numpy(), dtype=np.float64)


def from_np(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


def np_yiq(t: torch.Tensor) -> np.ndarray:
    """YIQ of a (B, 3, H, W) tensor by numpy, as (B, 3, H, W) float64."""
    out: np.ndarray = np.einsum("ij,bjhw->bihw", YIQ, as_np(t))
    return out


def colour_stats(t: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per batch item: mean colour (3,) and population covariance (3, 3) by numpy."""
    out = []
    for item in as_np(t):
        pixels = item.reshape(3, -1)  # (3, N)
        out.append((pixels.mean(axis=1), np.cov(pixels, bias=True)))
    return out


def random_rgb(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return from_np(np.random.default_rng(seed).uniform(0.0, 255.0, size=shape))


def coloured(
    seed: int, hw: tuple[int, int], mean: tuple[float, float, float], mix: list[list[float]]
) -> torch.Tensor:
    """(1, 3, H, W) pixels = mix @ z + mean with z standard normal: correlated channels."""
    h, w = hw
    z = np.random.default_rng(seed).standard_normal((3, h * w))
    pixels = np.array(mix) @ z + np.array(mean)[:, None]
    return from_np(pixels.reshape(1, 3, h, w))


def blueish(seed: int = 0, hw: tuple[int, int] = (24, 32)) -> torch.Tensor:
    # Strongly correlated channels: most of the variation is along one blue-green direction.
    return coloured(seed, hw, (40.0, 70.0, 190.0), [[8, 2, 1], [10, 12, 2], [25, 20, 6]])


def reddish(seed: int = 1, hw: tuple[int, int] = (20, 28)) -> torch.Tensor:
    # Different spreads and a negative red-blue correlation.
    return coloured(seed, hw, (200.0, 60.0, 50.0), [[30, 0, 5], [4, 10, 0], [-12, 3, 8]])


# --- YIQ ----------------------------------------------------------------------------------------


def test_white_has_full_luminance_and_no_chroma() -> None:
    yiq = rgb_to_yiq(torch.full((1, 3, 2, 3), 255.0))
    assert yiq.shape == (1, 3, 2, 3)
    # 0.299 + 0.587 + 0.114 = 1; the I and Q rows sum to 0.
    assert torch.allclose(yiq[:, 0], torch.full((1, 2, 3), 255.0), atol=1e-4)
    assert yiq[:, 1:].abs().max().item() < 1e-3


def test_pure_red_by_hand() -> None:
    red = torch.tensor([255.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    y, i, q = rgb_to_yiq(red).flatten().tolist()
    assert y == pytest.approx(0.299 * 255, abs=1e-4)  # 76.245
    assert i == pytest.approx(0.5959 * 255, abs=1e-4)
    assert q == pytest.approx(0.2115 * 255, abs=1e-4)


def test_grey_in_yiq_is_grey_in_rgb() -> None:
    yiq = torch.tensor([[[[100.0]], [[0.0]], [[0.0]]]])  # Y = 100, I = Q = 0
    assert torch.allclose(yiq_to_rgb(yiq).flatten(), torch.full((3,), 100.0), atol=1e-4)


def test_yiq_matches_numpy_and_inverse_is_numpy_inverse() -> None:
    x = random_rgb(2, (2, 3, 5, 7))
    assert np.allclose(as_np(rgb_to_yiq(x)), np_yiq(x), atol=1e-3)
    yiq = from_np(np_yiq(x))
    expected = np.einsum("ij,bjhw->bihw", np.linalg.inv(YIQ), as_np(yiq))
    assert np.allclose(as_np(yiq_to_rgb(yiq)), expected, atol=1e-3)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_round_trip_rgb_yiq_rgb(dtype: torch.dtype, tol: float) -> None:
    x = random_rgb(3, (2, 3, 17, 13)).to(dtype)
    back = yiq_to_rgb(rgb_to_yiq(x))
    assert back.dtype == dtype
    assert (back - x).abs().max().item() < tol


@pytest.mark.parametrize("shape", [(3, 4, 4), (1, 4, 4, 4), (1, 1, 4, 4)])
def test_yiq_rejects_non_rgb_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="B, 3, H, W"):
        rgb_to_yiq(torch.zeros(shape))


def test_yiq_rejects_integer_images() -> None:
    with pytest.raises(TypeError, match="floating"):
        rgb_to_yiq(torch.zeros((1, 3, 2, 2), dtype=torch.uint8))


# --- match_luminance ----------------------------------------------------------------------------


def test_match_luminance_takes_the_contents_mean_and_std() -> None:
    rng = np.random.default_rng(4)
    style_y = rng.normal(50.0, 10.0, size=(1, 1, 20, 30))
    content_y = rng.gamma(2.0, 30.0, size=(1, 1, 16, 24)) + 20.0
    out = as_np(match_luminance(from_np(style_y), from_np(content_y)))
    assert out.shape == style_y.shape
    assert out.mean() == pytest.approx(content_y.mean(), abs=1e-3)
    assert out.std() == pytest.approx(content_y.std(), rel=1e-5)  # population std (ddof=0)
    # Affine in the input, with a positive slope: correlation exactly 1.
    assert np.corrcoef(out.ravel(), style_y.ravel())[0, 1] == pytest.approx(1.0, abs=1e-9)
    # And it is the paper's formula, L' = (σ_c / σ_s)(L − μ_s) + μ_c, evaluated by numpy.
    expected = content_y.std() / style_y.std() * (style_y - style_y.mean()) + content_y.mean()
    assert np.allclose(out, expected, atol=1e-3)


def test_match_luminance_uses_each_batch_items_own_statistics() -> None:
    rng = np.random.default_rng(5)
    style_y = np.concatenate([rng.normal(30, 5, (1, 1, 8, 9)), rng.normal(200, 40, (1, 1, 8, 9))])
    content_y = np.concatenate([rng.normal(120, 20, (1, 1, 6, 7)), rng.normal(60, 2, (1, 1, 6, 7))])
    out = as_np(match_luminance(from_np(style_y), from_np(content_y)))
    for k in range(2):
        assert out[k].mean() == pytest.approx(content_y[k].mean(), abs=1e-3)
        assert out[k].std() == pytest.approx(content_y[k].std(), rel=1e-5)


def test_match_luminance_of_a_flat_style_is_the_content_mean() -> None:
    content_y = torch.arange(12.0).reshape(1, 1, 3, 4)  # mean 5.5
    out = match_luminance(torch.full((1, 1, 5, 5), 80.0), content_y)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full((1, 1, 5, 5), 5.5))


def test_match_luminance_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="batch"):
        match_luminance(torch.rand(2, 1, 4, 4), torch.rand(3, 1, 4, 4))


# --- luminance_only and recombine_luminance -----------------------------------------------------


def test_luminance_only_is_grey_with_r_g_b_equal_to_y() -> None:
    x = random_rgb(6, (2, 3, 5, 6))
    grey = luminance_only(x)
    assert grey.shape == (2, 3, 5, 6)
    r, g, b = as_np(x).transpose(1, 0, 2, 3)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    for channel in range(3):
        assert np.allclose(as_np(grey[:, channel]), y, atol=1e-3)
    assert torch.equal(grey[:, 0], grey[:, 1])
    assert torch.equal(grey[:, 1], grey[:, 2])


def test_recombine_takes_y_from_stylized_and_iq_from_content() -> None:
    stylized = random_rgb(7, (2, 3, 6, 5))
    content = random_rgb(8, (2, 3, 6, 5))
    out = recombine_luminance(stylized, content)
    assert out.shape == (2, 3, 6, 5)
    yiq_out = np_yiq(out)
    assert np.allclose(yiq_out[:, 0], np_yiq(stylized)[:, 0], atol=1e-3)
    assert np.allclose(yiq_out[:, 1:], np_yiq(content)[:, 1:], atol=1e-3)


def test_recombine_accepts_a_luminance_channel() -> None:
    stylized = random_rgb(9, (1, 3, 4, 4))
    content = random_rgb(10, (1, 3, 4, 4))
    y = from_np(np_yiq(stylized)[:, :1])  # (1, 1, 4, 4)
    assert torch.allclose(
        recombine_luminance(y, content), recombine_luminance(stylized, content), atol=1e-3
    )


def test_recombining_a_photos_own_grey_version_gives_the_photo_back() -> None:
    content = random_rgb(11, (1, 3, 7, 3))
    back = recombine_luminance(luminance_only(content), content)
    assert (back - content).abs().max().item() < 1e-3


@pytest.mark.parametrize(
    ("stylized_shape", "match"),
    [((1, 3, 8, 8), "pixels"), ((1, 3, 6, 9), "pixels"), ((1, 2, 6, 8), "stylized must be")],
)
def test_recombine_rejects_mismatched_sizes(stylized_shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        recombine_luminance(torch.rand(stylized_shape), torch.rand(1, 3, 6, 8))


# --- match_histogram ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_match_histogram_gives_the_contents_mean_and_covariance(mode: HistogramMode) -> None:
    style, content = blueish(), reddish()
    ((mu_s, cov_s),) = colour_stats(style)
    ((mu_c, cov_c),) = colour_stats(content)
    assert np.abs(mu_s - mu_c).max() > 100  # really different to begin with
    out = match_histogram(style, content, mode=mode)
    assert out.shape == style.shape
    assert out.dtype == torch.float32
    ((mu_o, cov_o),) = colour_stats(out)
    assert np.allclose(mu_o, mu_c, atol=1e-3)
    assert np.allclose(cov_o, cov_c, rtol=1e-4, atol=1e-3)
    assert not np.allclose(cov_s, cov_c, rtol=0.5)


def test_the_two_modes_differ_but_both_match() -> None:
    style, content = blueish(), reddish()
    sym = match_histogram(style, content, mode="sym")
    chol = match_histogram(style, content, mode="cholesky")
    assert (sym - chol).abs().max().item() > 1.0  # levels on a 0..255 scale
    # Same statistics, to the precision of the previous test.
    for out in (sym, chol):
        ((mu_o, cov_o),) = colour_stats(out)
        ((mu_c, cov_c),) = colour_stats(content)
        assert np.allclose(mu_o, mu_c, atol=1e-3)
        assert np.allclose(cov_o, cov_c, rtol=1e-4, atol=1e-3)


# Three zero-mean, unit-variance, mutually orthogonal ±1 patterns over 4 pixels (2x2): their
# population covariance is exactly the identity.
Z = np.array([[1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=np.float64)
# S is symmetric and S² = [[5, 4, 0], [4, 5, 0], [0, 0, 1]]: the content's covariance.
S = np.array([[2, 1, 0], [1, 2, 0], [0, 0, 1]], dtype=np.float64)
MU_S = np.array([10.0, 20.0, 30.0])
MU_C = np.array([100.0, 50.0, 25.0])
# Cholesky factor of S² by hand: l11 = √5, l21 = 4/√5, l22 = √(5 − 16/5) = 3/√5, l33 = 1.
L_C = np.array([[math.sqrt(5), 0, 0], [4 / math.sqrt(5), 3 / math.sqrt(5), 0], [0, 0, 1]])


@pytest.mark.parametrize(("mode", "a_expected"), [("sym", S), ("cholesky", L_C)])
def test_match_histogram_known_answer(mode: HistogramMode, a_expected: np.ndarray) -> None:
    # Σ_s = I, so A = Σ_c^{1/2} = S (sym) or A = L_c (cholesky), and b = μ_c − A μ_s.
    style = from_np((Z + MU_S[:, None]).reshape(1, 3, 2, 2), torch.float64)
    content = from_np((S @ Z + MU_C[:, None]).reshape(1, 3, 2, 2), torch.float64)
    a, b = histogram_transform(style, content, mode=mode)
    assert a.shape == (1, 3, 3) and b.shape == (1, 3)
    assert np.allclose(as_np(a[0]), a_expected, atol=1e-9)
    assert np.allclose(as_np(b[0]), MU_C - a_expected @ MU_S, atol=1e-9)
    out = match_histogram(style, content, mode=mode)
    assert out.dtype == torch.float64
    expected = (a_expected @ Z + MU_C[:, None]).reshape(1, 3, 2, 2)
    assert np.allclose(as_np(out), expected, atol=1e-9)
    if mode == "sym":  # S Z + μ_c is the content itself
        assert torch.allclose(out, content, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_match_histogram_of_an_image_with_itself_is_the_identity(mode: HistogramMode) -> None:
    x = blueish(seed=12)
    a, b = histogram_transform(x, x.clone(), mode=mode)
    assert np.allclose(as_np(a[0]), np.eye(3), atol=1e-6)
    assert np.allclose(as_np(b[0]), np.zeros(3), atol=1e-3)
    out = match_histogram(x, x.clone(), mode=mode)
    assert (out - x).abs().max().item() < 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_match_histogram_works_per_batch_item(mode: HistogramMode) -> None:
    style = torch.cat([blueish(seed=13, hw=(10, 12)), reddish(seed=14, hw=(10, 12))])
    content = torch.cat([reddish(seed=15, hw=(9, 11)), blueish(seed=16, hw=(9, 11))])
    out = match_histogram(style, content, mode=mode)
    assert out.shape == (2, 3, 10, 12)
    for k, ((mu_o, cov_o), (mu_c, cov_c)) in enumerate(
        zip(colour_stats(out), colour_stats(content), strict=True)
    ):
        assert np.allclose(mu_o, mu_c, atol=1e-3), k
        assert np.allclose(cov_o, cov_c, rtol=1e-4, atol=1e-3), k
        alone = match_histogram(style[k : k + 1], content[k : k + 1], mode=mode)
        assert (out[k : k + 1] - alone).abs().max().item() < 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_a_constant_colour_style_becomes_the_content_mean(mode: HistogramMode) -> None:
    style = torch.empty(1, 3, 6, 6)
    style[:, 0], style[:, 1], style[:, 2] = 30.0, 140.0, 220.0  # Σ_s = 0
    content = reddish()
    out = match_histogram(style, content, mode=mode)
    assert torch.isfinite(out).all()
    ((mu_c, _),) = colour_stats(content)
    assert np.allclose(as_np(out[0]).reshape(3, -1), mu_c[:, None], atol=1e-2)


@pytest.mark.parametrize("mode", MODES)
def test_a_grey_content_makes_the_style_grey(mode: HistogramMode) -> None:
    # R = G = B: the content's covariance has rank 1.
    grey = from_np(np.random.default_rng(17).uniform(0, 255, (1, 1, 12, 12)).repeat(3, axis=1))
    out = match_histogram(blueish(), grey, mode=mode)
    assert torch.isfinite(out).all()
    ((mu_o, cov_o),) = colour_stats(out)
    ((mu_c, cov_c),) = colour_stats(grey)
    assert np.allclose(mu_o, mu_c, atol=1e-3)
    assert np.allclose(cov_o, cov_c, rtol=1e-4, atol=1e-2)


def test_match_histogram_leaves_its_inputs_alone() -> None:
    style, content = blueish(), reddish()
    style_before, content_before = style.clone(), content.clone()
    match_histogram(style, content)
    match_histogram(style, content, mode="cholesky")
    assert torch.equal(style, style_before) and torch.equal(content, content_before)


def test_match_histogram_rejects_bad_arguments() -> None:
    style, content = blueish(), reddish()
    with pytest.raises(ValueError, match="mode"):
        match_histogram(style, content, mode="lab")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps"):
        match_histogram(style, content, eps=0.0)
    with pytest.raises(ValueError, match="batch"):
        match_histogram(torch.cat([style] * 2), torch.cat([content] * 3))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        match_histogram(style[:, :2], content)


def test_match_histogram_on_the_example_paintings() -> None:
    def load(name: str) -> torch.Tensor:
        img = imageio.resize_longest(imageio.load_image(EXAMPLES / f"{name}.jpg"), 64)
        return imageio.to_tensor(img) * 255.0

    style, content = load("starry_night"), load("tubingen")
    out = match_histogram(style, content)
    assert out.shape == style.shape
    pixels_out = as_np(out[0]).reshape(3, -1)
    pixels_c = as_np(content[0]).reshape(3, -1)
    assert np.abs(pixels_out.mean(axis=1) - pixels_c.mean(axis=1)).max() <= 1.0
    assert np.allclose(pixels_out.std(axis=1), pixels_c.std(axis=1), rtol=0.02)


# --- every function ----------------------------------------------------------------------------


FUNCTIONS: list[tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = [
    ("rgb_to_yiq", lambda a, b: rgb_to_yiq(a)),
    ("yiq_to_rgb", lambda a, b: yiq_to_rgb(a)),
    ("luminance_only", lambda a, b: luminance_only(a)),
    ("match_luminance", lambda a, b: match_luminance(a[:, :1], b[:, :1])),
    ("recombine_luminance", recombine_luminance),
    ("match_histogram", match_histogram),
]


@pytest.mark.parametrize(("name", "fn"), FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_function_keeps_dtype_and_inputs(
    name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], dtype: torch.dtype
) -> None:
    a = blueish(hw=(8, 8)).to(dtype)
    b = reddish(hw=(8, 8)).to(dtype)
    a_before, b_before = a.clone(), b.clone()
    out = fn(a, b)
    assert out.dtype == dtype, name
    assert torch.isfinite(out).all(), name
    assert torch.equal(a, a_before) and torch.equal(b, b_before), name
    assert out.data_ptr() not in (a.data_ptr(), b.data_ptr()), name
