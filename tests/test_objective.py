"""Tests for impasto.objective: named, weighted terms and their sum, with known answers."""

from __future__ import annotations

from collections.abc import Collection

import pytest
import torch
from torch import Tensor

from impasto.objective import Features, Objective, Term


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
