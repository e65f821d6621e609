"""Tests for impasto.objective: named, weighted terms and their sum, with known answers."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest
import torch
from torch import Tensor

from helpers import EXAMPLES
from impasto import Transfer, TransferConfig, imageio
from impasto.losses import content_loss
from impasto.objective import (
    Features,
    Jitter,
    Objective,
    Targets,
    Term,
    jitter_for,
    transfer_terms,
    translate,
)
from impasto.vgg import VGG


class FakeNetwork:
    """Stands in for VGG: 'double' is 2x, and it records which layers were asked for."""

    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    def __call__(self, x: Tensor, layers: Collection[str]) -> dict[str, Tensor]:
        self.asked.append(set(layers))
        return {"double": 2 * x}


def mean(x: Tensor, feats: Features) -> Tensor:
    return x.mean()


def double_sum(x: Tensor, feats: Features) -> Tensor:
    return feats["double"].sum()


def never(x: Tensor, feats: Features) -> Tensor:
    raise AssertionError("a term of weight 0 is not evaluated")


def test_terms_are_weighted_named_and_summed() -> None:
    net = FakeNetwork()
    objective = Objective(
        net,  # type: ignore[arg-type]
        [Term("a", 3.0, mean), Term("b", 0.5, double_sum, ("double",)), Term("off", 0.0, never)],
    )
    x = torch.arange(4.0).reshape(1, 1, 2, 2)  # mean 1.5, sum 6
    total, a, b, off = objective(x)
    assert objective.names == ("a", "b", "off")
    assert (float(a), float(b), float(off)) == (4.5, 6.0, 0.0)
    assert float(total) == 10.5
    assert net.asked == [{"double"}]


def test_names_stay_distinct_and_a_network_no_term_needs_is_not_run() -> None:
    net = FakeNetwork()
    more = Objective(net, [Term("a", 1.0, mean), Term("temporal", 2.0, mean)])  # type: ignore[arg-type]
    assert more.names == ("a", "temporal")
    assert float(more(torch.ones(1, 1, 2, 2))[0]) == 3.0
    assert net.asked == []  # no term needs a layer: the network is not run
    with pytest.raises(ValueError, match="distinct"):
        Objective(net, [Term("a", 1.0, mean), Term("a", 1.0, mean)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total"):
        Objective(net, [Term("total", 1.0, mean)])  # type: ignore[arg-type]


# --- jitter (issue 30) ---------------------------------------------------------------------------


def test_translate_moves_the_picture_and_reflects_into_the_gap() -> None:
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    moved = translate(x, 1, -2, reach=2)  # one row down, two columns left
    # Row r, column c of the result is x's row r − 1, column c + 2, reflected at the borders:
    # row −1 reflects to row 1, columns 5 and 6 to 3 and 2.
    rows, cols = [1, 0, 1, 2], [2, 3, 4, 3, 2]
    assert torch.equal(moved, x[:, :, rows][:, :, :, cols])
    assert translate(x, 0, 0, reach=0) is x


def test_jitter_is_off_by_default_and_its_reach_fits_the_picture() -> None:
    content = torch.zeros(1, 3, 8, 20)
    assert jitter_for(TransferConfig(), content, 1) is None
    jitter = jitter_for(TransferConfig(jitter=12), content, 1)
    assert jitter is not None and jitter.reach == 7  # the shorter side less one


def test_with_jitter_the_network_sees_the_moved_picture_and_the_terms_the_unmoved_one() -> None:
    net = FakeNetwork()
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    jitter = Jitter(2, torch.zeros(1, 1, 6, 6), ("double",), seed=0)
    corner = Term("corner", 1.0, lambda x, feats: x[0, 0, 0, 0])
    seen = Term("seen", 1.0, lambda x, feats: feats["double"][0, 0, 0, 0] / 2, ("double",))
    objective = Objective(net, [corner, seen], jitter)  # type: ignore[arg-type]
    values = [objective(x) for _ in range(8)]
    assert all(float(v[1]) == 0.0 for v in values)  # the pixels: x itself
    # The network's view: x moved, so its corner holds another pixel at least once.
    assert any(float(v[2]) != 0.0 for v in values)


@pytest.mark.slow
def test_jitter_moves_the_photo_with_the_iterate_and_varies_the_shift(vgg19: VGG) -> None:
    """At the photo itself the content loss is 0 whatever the shift, because the photo's
    features are taken under the same shift; the shifts drawn differ, and the same seed draws
    the same ones."""
    photo = imageio.to_tensor(
        imageio.resize_longest(imageio.load_image(EXAMPLES / "tubingen.jpg"), 48)
    )
    photo = photo * 255.0
    targets = Targets({"conv4_2": vgg19(photo, {"conv4_2"})["conv4_2"]}, {}, {})
    cfg = TransferConfig(jitter=4, style_weight=0.0, tv_weight=0.0)

    def shifts(seed: int) -> list[tuple[int, int]]:
        jitter = jitter_for(cfg, photo, seed)
        assert jitter is not None
        objective = Objective(vgg19, transfer_terms(cfg, targets), jitter)
        seen = []
        for _ in range(6):
            assert float(objective(photo)[1]) == 0.0  # the content term
            seen.append(jitter.next(vgg19)[0])
        return seen

    first = shifts(3)
    assert len(set(first)) > 1 and all(max(abs(d) for d in s) <= 4 for s in first)
    assert shifts(3) == first
    # Not taken under the shift, the same target would not match the moved photo.
    unshifted = content_loss(
        vgg19(translate(photo, 3, -2, 4), {"conv4_2"})["conv4_2"], targets.content["conv4_2"]
    )
    assert float(unshifted) > 0


@pytest.mark.slow
def test_a_jittered_transfer_lowers_its_loss_and_paints_another_picture(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    base = dict(size=64, iterations=12, seed=5, init="content")
    plain = Transfer(str(content_path), [str(style_path)], TransferConfig(**base), vgg=vgg19).run()
    moved = Transfer(
        str(content_path), [str(style_path)], TransferConfig(**base, jitter=4), vgg=vgg19
    ).run()
    # Each step's loss is taken under its own shift, so it falls less evenly than without.
    assert moved.history[-1]["style"] < 0.9 * moved.history[0]["style"]
    a, b = (imageio.to_tensor(r.image) for r in (plain, moved))
    assert float((a - b).abs().mean()) > 1 / 255
