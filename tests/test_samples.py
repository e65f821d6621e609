"""Tests for impasto.samples: the painting's samples, the direction bank, pooling."""

from __future__ import annotations

import pytest
import torch

from impasto.samples import (
    DIRECTION_SETS,
    Directions,
    Sampler,
    direction_bank,
    generator,
    pooled,
    positions,
    projections,
    sample_positions,
)

CPU = torch.device("cpu")


def test_positions_follow_vgg_s_poolings() -> None:
    assert positions("conv1_1", (256, 193)) == 256 * 193
    assert positions("pool1", (256, 193)) == 128 * 96  # odd sides are floored
    assert positions("conv3_1", (257, 193)) == 64 * 48
    assert positions("conv5_1", (256, 192)) == 16 * 12


def test_all_positions_when_they_are_few_and_a_sample_otherwise() -> None:
    gen = generator(CPU, 0)
    assert sorted(sample_positions(None, 10, 6.0, gen, 6).tolist()) == list(range(6))
    picked = sample_positions(None, 4, 100.0, gen, 100)
    assert len(set(picked.tolist())) == 4


def test_a_binary_mask_gives_each_inside_position_once() -> None:
    weights = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    idx = sample_positions(weights, 100, 3.0, generator(CPU, 1), 6)
    assert sorted(idx.tolist()) == [1, 2, 4]


def test_soft_weights_are_sampled_in_proportion() -> None:
    # Mass 400: each position is drawn with probability its weight, so 100 of the first kind
    # are expected per draw (over 20 seeds: within a few percent).
    weights = torch.tensor([0.25, 0.75] * 400)
    counts = []
    for seed in range(20):
        idx = sample_positions(weights, 400, 400.0, generator(CPU, seed), 800)
        assert len(idx) == 400
        counts.append(sum(1 for i in idx.tolist() if i % 2 == 0))
    assert abs(sum(counts) / len(counts) - 100) <= 5


def test_a_blend_is_the_mixture_in_its_proportions() -> None:
    # Painting A is all 0, painting B all 1 (and smaller): blended 3:1, a quarter of the
    # samples of every layer are B's, whichever painting has the fewer positions.
    features_a = {"conv1_1": torch.zeros(1, 2, 40, 40)}
    features_b = {"conv1_1": torch.ones(1, 2, 10, 10)}
    sampler = Sampler(["conv1_1"], [3.0, 1.0], [(40, 40), (10, 10)], generator(CPU, 3))
    sampler.add_style(0, features_a, torch.zeros(1, 3, 40, 40))
    sampler.add_style(1, features_b, torch.full((1, 3, 10, 10), 255.0))
    (mixed,) = sampler.layer_samples(guided=False, regions=1)["conv1_1"].regions
    assert mixed.shape == (2, 400)  # B's 100 positions are a quarter: 400 in all
    assert float(mixed[0].mean()) == 0.25
    (palette,) = sampler.palette(guided=False, regions=1)
    assert abs(float(palette.mean()) - 0.25) < 0.01


def test_a_region_takes_its_part_of_its_painting() -> None:
    f = torch.arange(16.0).reshape(1, 1, 4, 4)
    part = torch.zeros(1, 1, 4, 4)
    part[..., :2, :] = 1.0  # the top half: values 0..7
    sampler = Sampler(["conv1_1"], [1.0], [(4, 4)], generator(CPU, 4))
    channels = {"conv1_1": part, "pixels": part}
    sampler.add_style(0, {"conv1_1": f}, torch.zeros(1, 3, 4, 4), {0: channels, 1: None})
    top, whole = sampler.layer_samples(guided=True, regions=2)["conv1_1"].regions
    assert sorted(top.flatten().tolist()) == list(range(8))
    assert sorted(whole.flatten().tolist()) == list(range(16))


def test_the_scale_makes_a_layer_relative() -> None:
    sampler = Sampler(["conv1_1"], [1.0], [(4, 4)], generator(CPU, 5))
    sampler.add_style(0, {"conv1_1": torch.full((1, 2, 4, 4), 3.0)}, torch.zeros(1, 3, 4, 4))
    layer = sampler.layer_samples(guided=False, regions=1, moments=True)["conv1_1"]
    assert float(layer.scale) == pytest.approx(1 / 9)
    assert layer.means[0].tolist() == [3.0, 3.0]
    assert float(layer.covariances[0].abs().sum()) == 0.0


def test_the_bank_holds_orthonormal_sets_drawn_from_the_seed() -> None:
    bank = direction_bank({"conv1_1": 64, "conv4_1": 512}, generator(CPU, 6))
    again = direction_bank({"conv1_1": 64, "conv4_1": 512}, generator(CPU, 6))
    assert bank["conv1_1"].shape == (DIRECTION_SETS, projections(64), 64) == (128, 8, 64)
    assert bank["conv4_1"].shape == (DIRECTION_SETS, 64, 512)
    assert DIRECTION_SETS * projections(512) == 16 * 512  # the bank shows 16 N directions
    for sets in bank.values():
        gram = sets @ sets.transpose(1, 2)  # (K, P, P): identity for orthonormal rows
        assert torch.allclose(gram, torch.eye(gram.shape[1]).expand_as(gram), atol=1e-5)
    assert torch.equal(bank["conv1_1"], again["conv1_1"])
    assert not torch.equal(bank["conv1_1"][0], bank["conv1_1"][1])


def test_the_counter_picks_the_next_set_on_the_device() -> None:
    bank = direction_bank({"conv1_1": 8}, generator(CPU, 7), sets=3)
    directions = Directions(bank, torch.zeros(1, dtype=torch.long))
    seen = []
    for _ in range(4):
        seen.append(directions.current("conv1_1"))
        directions.advance()
    assert torch.equal(seen[0], bank["conv1_1"][0]) and torch.equal(seen[1], bank["conv1_1"][1])
    assert torch.equal(seen[3], seen[0])  # around the bank


def test_pooling_keeps_every_position_within_the_limit() -> None:
    f = torch.rand(1, 3, 50, 70)
    small = pooled(f, most=100)
    assert small.shape[2] * small.shape[3] <= 100
    assert torch.allclose(small.mean(), f.mean(), atol=0.05)
    assert pooled(f, most=50 * 70) is f
