"""The losses of Gatys et al. as pure tensor functions (known-answer tested).

Notation of the paper: a layer's response F is N filters x M positions. For a batch we keep the
leading dimension: features are (B, N, H, W) and Gram matrices (B, N, N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
