"""Keeping the content photo's colours, as pure tensor functions.

Gatys, Bethge, Hertzmann and Shechtman (2016), "Preserving Color in Neural Artistic Style
Transfer", give two ways:

* **Luminance-only transfer.** Style only the luminance: the network sees grey images (the content's
  Y and the style's Y, the latter matched to the content's mean and spread), and the result's Y is
  then put together with the content's I and Q (``rgb_to_yiq``, ``match_luminance``,
  ``luminance_only``, ``recombine_luminance``).
* **Colour histogram matching.** Before the transfer, move the style image's colours by an affine
  map so that their mean and covariance equal the content's (``match_histogram``).

Images are float tensors (B, 3, H, W) in any value range (impasto uses 0..255); nothing here clamps,
so the caller decides what to do with values outside its range. No function changes its inputs.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "HistogramMode",
    "histogram_transform",
    "luminance_only",
    "match_histogram",
    "match_luminance",
    "recombine_luminance",
    "rgb_to_yiq",
    "yiq_to_rgb",
]

HistogramMode = Literal["cholesky", "sym"]

# NTSC YIQ with the FCC (1987) coefficients. Rows: Y, I, Q; columns: R, G, B. The Y row sums to 1
# and the I and Q rows to 0, so a grey pixel (v, v, v) has Y = v and I = Q = 0.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.5959, -0.2746, -0.3213],
        [0.2115, -0.5227, 0.3112],
    ],
    dtype=torch.float64,
)
# The exact inverse of the same matrix (not the rounded textbook inverse), computed once in float64,
# so that rgb -> yiq -> rgb returns the input to float precision.
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


# --- YIQ ----------------------------------------------------------------------------------------


def rgb_to_yiq(x: Tensor) -> Tensor:
    """RGB (B, 3, H, W) -> YIQ (B, 3, H, W), NTSC with FCC 1987 coefficients.

    Y = 0.299 R + 0.587 G + 0.114 B, I = 0.5959 R − 0.2746 G − 0.3213 B,
    Q = 0.2115 R − 0.5227 G + 0.3112 B.
    """
    return _apply_matrix(_RGB_TO_YIQ, _check_image(x, "image"))


def yiq_to_rgb(x: Tensor) -> Tensor:
    """YIQ (B, 3, H, W) -> RGB (B, 3, H, W), by the exact inverse of ``rgb_to_yiq``'s matrix."""
    return _apply_matrix(_YIQ_TO_RGB, _check_image(x, "image"))


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    # Half precision is computed in fp32: the products of 0..255 values need its mantissa.
    work = torch.promote_types(x.dtype, torch.float32)
    out = torch.einsum("ij,bjhw->bihw", m.to(x.device, work), x.to(work))  # (B, 3, H, W)
    return out.to(x.dtype)


# --- luminance-only transfer --------------------------------------------------------------------


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """The paper's luminance matching: L_s' = (σ_c / σ_s)(L_s − μ_s) + μ_c.

    ``style_y`` and ``content_y`` are luminance images, (B, 1, H, W) (any shape whose first
    dimension is the batch); the two may differ in size. μ and σ (population standard deviation) are
    taken over all pixels of each batch item. A batch of 1 on either side is broadcast against the
    other. A flat style (σ_s = 0) has no spread to rescale: it becomes the constant μ_c.
    """
    if style_y.dim() != content_y.dim() or style_y.dim() < 2:
        raise ValueError(
            "luminance images need the same number of dimensions, batch first; got shapes "
            f"{tuple(style_y.shape)} and {tuple(content_y.shape)}"
        )
    if not (style_y.is_floating_point() and content_y.is_floating_point()):
        raise TypeError("luminance images must be floating-point tensors")
    _check_batches(style_y, content_y)
    mu_s, sigma_s = _mean_std(style_y, "style")
    mu_c, sigma_c = _mean_std(content_y, "content")
    # where() rather than a clamped divisor: a flat style gets gain 0, not a huge one.
    gain = torch.where(sigma_s > 0, sigma_c / sigma_s.clamp_min(torch.finfo(torch.float64).tiny), 0)
    out = gain * (style_y.to(torch.float64) - mu_s) + mu_c
    return out.to(style_y.dtype)


def _mean_std(y: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Per-item mean and population std in float64, shaped (B, 1, ..., 1) for broadcasting."""
    if y[0].numel() == 0:
        raise ValueError(f"the {what} luminance image has no pixels")
    dims = tuple(range(1, y.dim()))
    y64 = y.to(torch.float64)
    mu = y64.mean(dim=dims, keepdim=True)
    sigma = (y64 - mu).pow(2).mean(dim=dims, keepdim=True).sqrt()
    return mu, sigma


def luminance_only(image: Tensor) -> Tensor:
    """The grey RGB image (B, 3, H, W) with R = G = B = Y: what the network sees in luminance mode.

    Its own Y is Y again and its I = Q = 0, because the YIQ rows sum to 1, 0 and 0.
    """
    y = _luminance(_check_image(image, "image"))  # (B, 1, H, W)
    return y.expand(-1, 3, -1, -1).contiguous()


def recombine_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    """RGB (B, 3, H, W) from the stylized result's Y and the content's I and Q.

    ``stylized`` is either an RGB image (its Y is used) or a luminance image (B, 1, H, W);
    ``content`` is RGB. Height and width must be equal; a batch of 1 on either side is broadcast.
    """
    if stylized.dim() != 4 or stylized.shape[1] not in (1, 3):
        raise ValueError(
            "stylized must be (B, 3, H, W) RGB or (B, 1, H, W) luminance, "
            f"got {tuple(stylized.shape)}"
        )
    _check_image(content, "content")
    if stylized.shape[-2:] != content.shape[-2:]:
        raise ValueError(
            f"stylized is {stylized.shape[-1]}x{stylized.shape[-2]} pixels but content is "
            f"{content.shape[-1]}x{content.shape[-2]}; resize one to the other first"
        )
    _check_batches(stylized, content)
    y = stylized if stylized.shape[1] == 1 else _luminance(stylized)  # (B, 1, H, W)
    iq = rgb_to_yiq(content)[:, 1:]  # (B, 2, H, W)
    b = max(y.shape[0], iq.shape[0])
    yiq = torch.cat([y.expand(b, -1, -1, -1), iq.expand(b, -1, -1, -1).to(y.dtype)], dim=1)
    return yiq_to_rgb(yiq)


def _luminance(x: Tensor) -> Tensor:
    """Y = 0.299 R + 0.587 G + 0.114 B of an RGB image, (B, 3, H, W) -> (B, 1, H, W)."""
    return rgb_to_yiq(x)[:, :1]


# --- colour histogram matching -------------------------------------------------------------------


def match_histogram(
    style: Tensor, content: Tensor, *, mode: HistogramMode = "sym", eps: float = 1e-5
) -> Tensor:
    """The paper's colour histogram matching: x' = A x + b on every style pixel x (an RGB 3-vector).

    A and b are chosen so that the mean and 3x3 covariance of the style's colours become the
    content's: A Σ_s Aᵀ = Σ_c and b = μ_c − A μ_s (see ``histogram_transform``). The two ways to
    pick A out of the many that satisfy this:

    * ``"sym"`` (default): A = Σ_c^{1/2} Σ_s^{-1/2}, with symmetric matrix square roots (from an
      eigendecomposition): the "image analogies" colour transfer, the variant the paper reports.
    * ``"cholesky"``: A = L_c L_s⁻¹, with L the lower Cholesky factors (Σ = L Lᵀ).

    ``style`` (B, 3, Hs, Ws) and ``content`` (B, 3, Hc, Wc) may differ in size; statistics are per
    batch item, and a batch of 1 on either side is broadcast. The 3x3 algebra is done in float64;
    the result has the style's dtype and is not clamped. ``eps`` floors the eigenvalues of Σ_s (it
    is inverted), so a flat or grey style gives finite numbers: a constant style becomes the
    constant μ_c. In ``"cholesky"`` mode it floors Σ_c's too, as Cholesky needs it positive
    definite (a grey content photo's is not).
    """
    a, mu_s, mu_c = _affine(style, content, mode, eps)  # (B, 3, 3), (B, 3), (B, 3)
    b, c, h, w = style.shape
    x = style.reshape(b, c, h * w).to(torch.float64)  # (B, 3, N)
    # A (x − μ_s) + μ_c is A x + b rearranged: with a near-singular Σ_s, A is huge, and A x and b
    # would cancel each other catastrophically; centring first keeps a flat style exactly at μ_c.
    out = torch.matmul(a, x - mu_s.unsqueeze(-1)) + mu_c.unsqueeze(-1)  # (B, 3, N)
    return out.reshape(out.shape[0], c, h, w).to(style.dtype)


def histogram_transform(
    style: Tensor, content: Tensor, *, mode: HistogramMode = "sym", eps: float = 1e-5
) -> tuple[Tensor, Tensor]:
    """The affine colour map of ``match_histogram``: A (B, 3, 3) and b (B, 3), in float64.

    x' = A x + b takes the style's colour mean and covariance to the content's. Covariances are
    population ones (divided by the pixel count). ``mode`` and ``eps`` as in ``match_histogram``.
    """
    a, mu_s, mu_c = _affine(style, content, mode, eps)
    b = mu_c - (a @ mu_s.unsqueeze(-1)).squeeze(-1)  # b = μ_c − A μ_s
    return a, b


def _affine(
    style: Tensor, content: Tensor, mode: HistogramMode, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """A (B, 3, 3) with A Σ_s Aᵀ = Σ_c, and the mean colours μ_s, μ_c (B, 3), all float64."""
    if mode not in ("sym", "cholesky"):
        raise ValueError(f"mode must be 'sym' or 'cholesky', not {mode!r}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, not {eps}")
    _check_image(style, "style")
    _check_image(content, "content")
    _check_batches(style, content)
    mu_s, cov_s = _colour_stats(style, "style")  # (B, 3), (B, 3, 3)
    mu_c, cov_c = _colour_stats(content, "content")
    # Σ_s is inverted in both modes, so its eigenvalues are floored at eps: a grey style (rank 1)
    # or a flat one (rank 0) must not give infinities.
    if mode == "sym":
        inv_sqrt_s = _sym_power(cov_s, -0.5, floor=eps)  # Σ_s^{-1/2}
        # Σ_c is only square-rooted, never inverted: clamping its round-off negatives at 0 keeps
        # the match exact even for a grey content photo.
        sqrt_c = _sym_power(cov_c, 0.5, floor=0.0)  # Σ_c^{1/2}
        return sqrt_c @ inv_sqrt_s, mu_s, mu_c
    # Cholesky needs positive definite matrices, so both are floored at eps; for a grey content
    # this adds a colour variance of eps in the directions it lacks, far below one level.
    l_s = torch.linalg.cholesky(_sym_power(cov_s, 1.0, floor=eps))
    l_c = torch.linalg.cholesky(_sym_power(cov_c, 1.0, floor=eps))
    # A = L_c L_s⁻¹ is the solution of A L_s = L_c: a triangular solve, no explicit inverse.
    return torch.linalg.solve_triangular(l_s, l_c, upper=False, left=False), mu_s, mu_c


def _colour_stats(x: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Per-item mean colour (B, 3) and population covariance (B, 3, 3), in float64."""
    b, c, h, w = x.shape
    if h * w == 0:
        raise ValueError(f"the {what} image has no pixels")
    flat = x.reshape(b, c, h * w).to(torch.float64)  # (B, 3, N)
    mu = flat.mean(dim=2)
    centred = flat - mu.unsqueeze(-1)
    cov = centred @ centred.transpose(1, 2) / (h * w)  # (B, 3, 3)
    return mu, cov


def _sym_power(cov: Tensor, power: float, *, floor: float) -> Tensor:
    """V diag(max(λ, floor)^power) Vᵀ for symmetric (B, 3, 3) matrices, by eigendecomposition."""
    sym = 0.5 * (cov + cov.transpose(-1, -2))  # exact symmetry for eigh, whatever the round-off
    evals, evecs = torch.linalg.eigh(sym)  # (B, 3), (B, 3, 3) with columns the eigenvectors
    scaled = evals.clamp_min(floor).pow(power)  # (B, 3)
    return torch.matmul(evecs * scaled.unsqueeze(-2), evecs.transpose(-1, -2))


# --- checks ---------------------------------------------------------------------------------------


def _check_image(x: Tensor, what: str) -> Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"the {what} must be an RGB tensor (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"the {what} must be a floating-point tensor, got {x.dtype}")
    return x


def _check_batches(a: Tensor, b: Tensor) -> None:
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(
            f"batch sizes {a.shape[0]} and {b.shape[0]} differ (only a batch of 1 is broadcast)"
        )
