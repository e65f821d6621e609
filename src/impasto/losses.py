"""The losses of Gatys et al. as pure tensor functions (known-answer tested), and the style and
content losses of later work that compare distributions of features instead of Gram matrices:
the sliced Wasserstein loss (Heitz et al. 2021), the relaxed earth mover's distance, moment
matching and self-similarity (Kolkin et al., STROTSS, 2019). docs/style-losses.md compares them.

Notation of the paper: a layer's response F is N filters x M positions. For a batch we keep the
leading dimension: features are (B, N, H, W) and Gram matrices (B, N, N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor


def gram(features: Tensor) -> Tensor:
    """G = F Fᵀ, the filter correlations of one layer (paper eq. 3), unnormalised.

    (B, N, H, W) -> (B, N, N). Computed in fp32 whatever the feature dtype: sums over many
    positions lose too much in half precision.
    """
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w).float()  # (B, N, M)
    with torch.autocast(features.device.type, enabled=False):  # bf16 runs: the Gram stays fp32
        return torch.bmm(f, f.transpose(1, 2))


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """½ Σ (F − P)² (paper eq. 1), summed over the batch."""
    return 0.5 * (features.float() - target.float()).pow(2).sum()


def style_layer_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """E_l = Σ (G − A)² / (4 N² M²) (paper eq. 4) for one layer, summed over the batch.

    ``target_gram`` A is (B or 1, N, N), the Gram matrix of the style image at this layer.
    """
    _, n, h, w = features.shape
    m = h * w
    return (gram(features) - target_gram).pow(2).sum() / (4.0 * n * n * m * m)


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float],
) -> Tensor:
    """L_style = Σ_l w_l E_l (paper eq. 5) over the layers in ``layer_weights``."""
    total: Tensor | None = None
    for name, weight in layer_weights.items():
        term = weight * style_layer_loss(features[name], target_grams[name])
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer")
    return total


def tv_loss(image: Tensor) -> Tensor:
    """Total variation Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])² (not in the paper).

    An optional smoothness prior used by most implementations since Johnson et al.; it removes the
    high-frequency noise that the L-BFGS solution tends to keep. Image (B, C, H, W).
    """
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    return dy.float().pow(2).sum() + dx.float().pow(2).sum()


def blend_grams(
    grams: Sequence[Mapping[str, Tensor]], weights: Sequence[float]
) -> dict[str, Tensor]:
    """Weighted mean of several styles' Gram matrices: the target for blended styles.

    Matching the mean Gram matrix is what Gatys et al.'s formulation implies for a mixture of
    textures; weights are normalised to sum to one.
    """
    if len(grams) != len(weights) or not grams:
        raise ValueError("need one weight per style")
    total = float(sum(weights))
    out: dict[str, Tensor] = {}
    for name in grams[0]:
        mix = torch.zeros_like(grams[0][name])
        for g, w in zip(grams, weights, strict=True):
            mix = mix + (w / total) * g[name]
        out[name] = mix
    return out


# --- guided Gram matrices (Gatys, Ecker, Bethge, Hertzmann, Shechtman 2017, section 4) ---------


def guided_gram(features: Tensor, masks: Tensor) -> Tensor:
    """G_r = Σ_m T_r,m F_m F_mᵀ: the Gram matrix of the positions of region r, each weighted by
    its guidance value T_r,m in [0, 1].

    Features (B, N, H, W) and guidance channels (R, 1, H, W) -> (B, R, N, N), fp32. A mask of
    ones gives :func:`gram`; masks that sum to one at every position give Grams that sum to
    :func:`gram` (soft masks too). Where we differ from the paper: it multiplies the features by
    T_r before the Gram, which weighs a position by T_r²; we weigh it by T_r, so that soft
    complementary masks partition the statistics exactly (binary masks agree with the paper).
    """
    b, n, h, w = features.shape
    if masks.dim() != 4 or masks.shape[1] != 1 or tuple(masks.shape[2:]) != (h, w):
        raise ValueError(f"masks {tuple(masks.shape)} do not fit features {tuple(features.shape)}")
    f = features.reshape(b, n, h * w).float()  # (B, N, M)
    t = masks.reshape(masks.shape[0], h * w).float()  # (R, M)
    with torch.autocast(features.device.type, enabled=False):
        weighted = f.unsqueeze(1) * t.unsqueeze(0).unsqueeze(2)  # (B, R, N, M)
        return torch.matmul(weighted, f.unsqueeze(1).transpose(2, 3))  # (B, R, N, N)


def region_mass(masks: Tensor) -> Tensor:
    """μ_r = Σ_m T_r,m, the number of positions region r covers (fractions for soft masks):
    (R, 1, H, W) -> (R,)."""
    return masks.float().flatten(1).sum(1)


def guided_style_layer_loss(features: Tensor, masks: Tensor, targets: Tensor) -> Tensor:
    """E_l for guided regions, summed over the batch:

        E_l = Σ_r (μ_r / M) · Σ_ij (G_r,ij / μ_r − Â_r,ij)² / (4 N²)

    with G_r the guided Gram matrix (:func:`guided_gram`), μ_r the region's mass
    (:func:`region_mass`), M = H·W the positions of the layer and Â_r (R, N, N) the style's
    statistics for region r *per position* (its guided Gram divided by its own mass).

    Dividing G_r by μ_r compares the per-position statistics of each region, so a small region
    is matched to its style as strictly as a large one (not drowned in the average); the factor
    μ_r / M keeps each pixel's balance of style against content as in the unguided loss. With one
    mask of ones (μ = M) this is exactly :func:`style_layer_loss`:
    Σ (G/M − A/M)² / (4N²) = Σ (G − A)² / (4N²M²). A region with no mass at this layer adds 0.
    """
    _, n, h, w = features.shape
    m = h * w
    mass = region_mass(masks)  # (R,)
    grams = guided_gram(features, masks)  # (B, R, N, N)
    present = mass > 0
    safe = torch.where(present, mass, torch.ones_like(mass))
    per_position = grams / safe.view(1, -1, 1, 1)
    diff = (per_position - targets.float().unsqueeze(0)).pow(2).sum(dim=(2, 3))  # (B, R)
    weights = torch.where(present, mass / m, torch.zeros_like(mass))  # (R,)
    return (diff * weights.unsqueeze(0)).sum() / (4.0 * n * n)


def guided_style_loss(
    features: Mapping[str, Tensor],
    guided: Mapping[str, tuple[Tensor, Tensor]],
    layer_weights: Mapping[str, float],
) -> Tensor:
    """L_style = Σ_l w_l E_l with guided E_l (:func:`guided_style_layer_loss`); ``guided``
    maps each layer to (guidance channels (R, 1, H, W), per-position targets (R, N, N))."""
    total: Tensor | None = None
    for name, weight in layer_weights.items():
        masks, targets = guided[name]
        term = weight * guided_style_layer_loss(features[name], masks, targets)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("guided_style_loss needs at least one layer")
    return total


# --- beyond the Gram matrix: distributions of features (issue 21) ------------------------------
#
# A layer's response is also a set of M samples in R^N, one per position. The Gram matrix keeps
# only their second moments; the losses below compare the samples' distributions. Features are
# (B, N, H, W) as above and a style's samples (N, S), S positions of the painting (all, or a
# seeded sample of them: impasto.samples). Every function is computed in fp32.


def interpolate_quantiles(sorted_values: Tensor, levels: Tensor) -> Tensor:
    """Q(t), the quantile function of S sorted samples (..., S) at ``levels`` t (..., M) in
    [0, 1]: the k-th sample (0-based) stands at level (k + ½)/S, Q is linear in between and
    constant beyond the first and the last. ``sorted_values`` must expand to the leading shape
    of ``levels``."""
    s = sorted_values.shape[-1]
    pos = (levels * s - 0.5).clamp(0.0, s - 1.0)
    lo = pos.floor()
    frac = pos - lo
    lo_i = lo.long()
    hi_i = (lo_i + 1).clamp(max=s - 1)
    values = sorted_values.expand(*levels.shape[:-1], s)
    a = values.gather(-1, lo_i)
    b = values.gather(-1, hi_i)
    return a + frac * (b - a)


def sliced_wasserstein(
    features: Tensor,
    directions: Tensor,
    targets: Sequence[Tensor],
    weights: Tensor | None = None,
) -> Tensor:
    """The sliced Wasserstein loss of Heitz, Vanhoey, Chambon and Belcour (CVPR 2021) for one
    layer, summed over the batch: project the output's features (B, N, H, W) and the style's
    samples (N, S) on P unit ``directions`` (P, N), sort each projection, and compare them as
    1-D distributions by the squared Wasserstein-2 distance, averaged over the directions:

        SW = (1/P) Σ_p ∫₀¹ (Q_x,p(t) − Q_s,p(t))² dt = (1/(P·M)) Σ_p Σ_m (y_p,(m) − Q_s,p(t_m))²

    with y_p,(m) the output's m-th smallest projection on direction p, t_m = (m + ½)/M its
    level and Q_s,p the style's quantile function (:func:`interpolate_quantiles`). With as many
    style samples as positions (S = M) this is the exact W2² between the two sets (sorted
    values against sorted values); otherwise the style's distribution is the linear
    interpolation of its sorted samples (where we differ from the paper, which takes the style
    at the output's size).

    Guided (regions, as :func:`guided_style_layer_loss`): ``weights`` (R, M) are the regions'
    guidance values T_r,m at the positions and ``targets`` one sample set per region. The
    output's distribution in region r weighs position m by T_r,m; with μ_r = Σ_m T_r,m, a
    sorted position's level is the midpoint of its share of the region's mass, and

        SW = Σ_r (μ_r / M) · SW_r = (1/(P·M)) Σ_r Σ_m T_r,m (y_p,(m) − Q_r,p(t_r,m))²

    so that one region of ones is the unguided loss and a region with no mass adds 0.
    """
    b, n, h, w = features.shape
    m = h * w
    d = directions.float()  # (P, N)
    p = d.shape[0]
    with torch.autocast(features.device.type, enabled=False):
        x = torch.matmul(d, features.reshape(b, n, m).float())  # (B, P, M)
        ys, order = torch.sort(x, dim=-1)
        if weights is None:
            if len(targets) != 1:
                raise ValueError("an unguided sliced loss takes one target")
            target, _ = torch.sort(torch.matmul(d, targets[0].float()), dim=-1)  # (P, S)
            if target.shape[-1] == m:
                diff = ys - target
            else:
                levels = (torch.arange(m, device=x.device, dtype=x.dtype) + 0.5) / m
                diff = ys - interpolate_quantiles(target, levels.expand(p, m))
            return diff.pow(2).sum() / (p * m)
        if weights.shape != (len(targets), m):
            raise ValueError(f"weights {tuple(weights.shape)} do not fit {len(targets)} targets")
        total = x.new_zeros(())
        for r, samples in enumerate(targets):
            target, _ = torch.sort(torch.matmul(d, samples.float()), dim=-1)  # (P, S_r)
            wr = weights[r].float()
            mass = wr.sum()
            w_sorted = wr.expand(b, p, m).gather(-1, order)  # (B, P, M)
            levels = (torch.cumsum(w_sorted, dim=-1) - 0.5 * w_sorted) / mass.clamp(min=1e-12)
            diff = ys - interpolate_quantiles(target, levels)
            total = total + (w_sorted * diff.pow(2)).sum() / (p * m)
        return total


def _unit_columns(x: Tensor) -> Tensor:
    """Columns of (..., N, K) scaled to unit length (a zero column stays zero)."""
    unit: Tensor = x / torch.linalg.vector_norm(x, dim=-2, keepdim=True).clamp(min=1e-12)
    return unit


def cosine_distances(x: Tensor, y: Tensor) -> Tensor:
    """C_ij = 1 − cos(x_i, y_j) for the columns of x (N, A) and y (N, B): (A, B) in [0, 2]."""
    return 1.0 - torch.matmul(_unit_columns(x).transpose(-2, -1), _unit_columns(y))


# Positions of the output compared at once in the relaxed EMD: the score matrices of one chunk
# (chunk x S floats) are all it keeps, whatever the size of the picture.
EMD_CHUNK = 2048

Metric = Literal["cosine", "squared"]


def relaxed_emd(
    x: Tensor, y: Tensor, metric: Metric = "cosine", weights: Tensor | None = None
) -> Tensor:
    """The relaxed earth mover's distance of Kolkin, Salavon and Shakhnarovich (STROTSS, CVPR
    2019) between the columns of x (N, M), the output's samples, and y (N, S), the style's:

        REMD = max( Σ_i w_i min_j C_ij / Σ_i w_i ,  (1/S) Σ_j min_i C_ij )

    each side moved to its nearest neighbour on the other (the two relaxations of the transport
    plan's marginal constraints), with C the cosine distance 1 − cos(x_i, y_j) (``metric``
    "cosine", as the paper's features) or the squared distance ‖x_i − y_j‖² ("squared", for
    colours in [0, 1]³), and ``weights`` w (M,) in [0, 1] for a region (None: all ones). In the
    second term a position counts as far as it lies in the region: min_i (C_ij + c·(1 − w_i)),
    c the largest cost (2 for cosine, 3 for colours). The nearest neighbours are found without
    gradients, chunk by chunk, so the memory stays that of one chunk whatever M; the costs to them
    are then recomputed with gradients (the same value: min's gradient flows to its argmin).
    """
    x = x.float()
    y = y.float()
    with torch.autocast(x.device.type, enabled=False):  # bf16 runs: the search stays fp32
        nearest_y, nearest_x = _nearest(x, y, metric, weights)
        to_style = _cost(metric, x, y.index_select(1, nearest_y))  # (M,)
        to_output = _cost(metric, x.index_select(1, nearest_x), y)  # (S,)
    if weights is None:
        forward = to_style.mean()
    else:
        w = weights.float()
        forward = (w * to_style).sum() / w.sum().clamp(min=1e-12)
    return torch.maximum(forward, to_output.mean())


@torch.no_grad()
def _nearest(x: Tensor, y: Tensor, metric: Metric, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    """For each column of x its nearest column of y (M,), and for each column of y its nearest
    column of x, a region's inside preferred (S,). Both searches maximise a score whose order
    is the cost's reversed (cosine: the similarity; squared: 2 xᵀy − ‖y‖² along a row and
    2 xᵀy − ‖x‖² along a column), each in a layout that reduces along contiguous memory."""
    m, s = x.shape[1], y.shape[1]
    if metric == "cosine":
        a, b = _unit_columns(x), _unit_columns(y)
        penalty = 2.0
    else:
        a, b = 2.0 * x, y
        penalty = 3.0
    row_bias = -y.pow(2).sum(0) if metric == "squared" else None  # (S,)
    nearest_y = torch.empty(m, dtype=torch.long, device=x.device)
    best = torch.full((s,), -float("inf"), device=x.device)
    nearest_x = torch.zeros(s, dtype=torch.long, device=x.device)
    for start in range(0, m, EMD_CHUNK):
        stop = min(m, start + EMD_CHUNK)
        chunk = a[:, start:stop]
        rows = torch.matmul(chunk.transpose(0, 1), b)  # (chunk, S)
        if row_bias is not None:
            rows = rows + row_bias
        nearest_y[start:stop] = rows.argmax(dim=1)
        cols = torch.matmul(b.transpose(0, 1), chunk)  # (S, chunk)
        if metric == "squared":
            cols = cols - x[:, start:stop].pow(2).sum(0)
        if weights is not None:
            cols = cols - penalty * (1.0 - weights[start:stop].float())
        high, where = cols.max(dim=1)
        better = high > best
        best = torch.where(better, high, best)
        nearest_x = torch.where(better, where + start, nearest_x)
    return nearest_y, nearest_x


def _cost(metric: Metric, a: Tensor, b: Tensor) -> Tensor:
    """C(a_k, b_k) for each column k of a and b (N, K): (K,)."""
    if metric == "cosine":
        return 1.0 - (_unit_columns(a) * _unit_columns(b)).sum(0)
    return (a - b).pow(2).sum(0)


def moment_loss(
    x: Tensor, mean: Tensor, covariance: Tensor, weights: Tensor | None = None
) -> Tensor:
    """STROTSS's moment matching: ‖μ_x − μ_s‖₁ / N + ‖Σ_x − Σ_s‖₁ / N² between the mean and
    covariance of the columns of x (N, M) (each weighted by ``weights`` (M,) when given) and the
    style's ``mean`` (N,) and ``covariance`` (N, N)."""
    x = x.float()
    n = x.shape[0]
    if weights is None:
        w = x.new_full((x.shape[1],), 1.0 / x.shape[1])
    else:
        w = weights.float() / weights.float().sum().clamp(min=1e-12)
    mu = (x * w).sum(1)  # (N,)
    centred = x - mu.unsqueeze(1)
    with torch.autocast(x.device.type, enabled=False):
        cov = torch.matmul(centred * w, centred.transpose(0, 1))  # (N, N)
    return (mu - mean).abs().sum() / n + (cov - covariance).abs().sum() / (n * n)


def self_similarity(features: Tensor) -> Tensor:
    """STROTSS's self-similarity of one layer's response (1, N, H, W): the cosine distances
    D_ij between every two positions, each column divided by its sum: (M, M). A column of a
    picture of one flat colour (all distances 0) stays 0."""
    _, n, h, w = features.shape
    f = features.reshape(n, h * w).float()
    with torch.autocast(features.device.type, enabled=False):
        d = cosine_distances(f, f).clamp(min=0.0)
    return d / d.sum(dim=0, keepdim=True).clamp(min=1e-12)


def self_similarity_loss(features: Tensor, target: Tensor) -> Tensor:
    """(1/M) Σ_ij |D̂^x_ij − D̂^c_ij| (STROTSS's content loss, times M): how far the output's
    self-similarity (:func:`self_similarity`) is from the content's ``target`` (M, M). Each
    column is a distribution over positions, so this is the mean over positions of an L1
    distance between two distributions, in [0, 2] at any size (the paper's 1/M² makes it shrink
    with the picture)."""
    d = self_similarity(features)
    return (d - target.float()).abs().sum() / d.shape[0]
