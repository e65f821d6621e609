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
