"""Tests for impasto.config: defaults, validation (every bad value a UsageError), round trips."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import pytest

from impasto.config import TransferConfig, check_bounds, check_choices, choices, option
from impasto.errors import UsageError


def test_the_paper_preset_is_the_paper() -> None:
    cfg = TransferConfig(preset="paper")
    # Gatys et al.: style from conv1_1 ... conv5_1 with equal weights, content from conv4_2,
    # average pooling, optimised with L-BFGS from white noise, on VGG-19, one scale, no TV.
    assert cfg.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert cfg.content_layers == ("conv4_2",)
    assert cfg.layer_weights() == {
        "conv1_1": 0.2,
        "conv2_1": 0.2,
        "conv3_1": 0.2,
        "conv4_1": 0.2,
        "conv5_1": 0.2,
    }
    assert cfg.pooling == "avg"
    assert cfg.optimizer == "lbfgs"
    assert cfg.model == "vgg19"
    assert cfg.tv_weight == 0.0  # no TV term in the paper
    assert cfg.init == "noise"
    assert cfg.scales == (cfg.size,)


def test_the_default_preset_departs_from_the_paper_where_measured() -> None:
    cfg, paper = TransferConfig(), TransferConfig(preset="paper")
    assert cfg.preset == "default"
    assert (cfg.style_layers, cfg.content_layers, cfg.pooling) == (
        paper.style_layers,
        paper.content_layers,
        paper.pooling,
    )
    # Layers weighed by 1/N_l² (N = 64, 128, 256, 512, 512 filters), conv4_1/conv5_1 as in the
    # paper: every lower layer counts (512/N)² times more.
    w = cfg.layer_weights()
    assert w["conv4_1"] == w["conv5_1"] == paper.layer_weights()["conv4_1"]
    assert [w[x] / w["conv4_1"] for x in ("conv1_1", "conv2_1", "conv3_1")] == [64, 16, 4]
    assert cfg.tv_weight > 0
    assert cfg.init == "content"
    assert len(cfg.scales) > 1 and cfg.scales[-1] == cfg.size  # type: ignore[arg-type]
    assert cfg.replace(size=256).scales == (256,)  # small pictures: one stage


def test_the_default_style_weight_keeps_the_balance_at_every_size() -> None:
    """β grows with the pixel count (the content loss sums over positions, E_l does not)."""
    at512 = TransferConfig(size=512).style_weight
    assert TransferConfig(size=256).style_weight == pytest.approx(at512 / 4)
    assert TransferConfig(size=512).replace(size=1024).style_weight == pytest.approx(4 * at512)
    assert TransferConfig(size=256, style_weight=7.0).replace(size=512).style_weight == 7.0
    assert TransferConfig(preset="paper", size=256).style_weight == 1e3  # paper: α/β = 10⁻³


def test_given_options_win_over_the_preset_and_defaults_follow_a_new_preset() -> None:
    given = TransferConfig(preset="paper", tv_weight=5.0, init="content", scales="auto")
    assert (given.tv_weight, given.init) == (5.0, "content")
    assert len(given.scales) > 1  # type: ignore[arg-type]
    # Defaults left alone are resolved again when the preset or the size changes.
    cfg = TransferConfig().replace(preset="paper")
    assert (cfg.init, cfg.tv_weight, cfg.scales) == ("noise", 0.0, (cfg.size,))
    back = cfg.replace(preset="default")
    assert (back.init, back.tv_weight, back.scales) == (
        TransferConfig().init,
        TransferConfig().tv_weight,
        TransferConfig().scales,
    )
    assert TransferConfig().replace(size=724).scales[-1] == 724  # type: ignore[index]
    # Normalised networks keep equal weights (their layers are on one scale already).
    normal = TransferConfig(normalize_network=True).layer_weights()
    assert len(set(normal.values())) == 1


def test_stage_plan_spends_equal_time_per_stage_and_every_iteration() -> None:
    cfg = TransferConfig(size=512, scales=(128, 256, 512), iterations=210)
    plan = cfg.stage_plan()
    assert [s for s, _ in plan] == [128, 256, 512]
    assert sum(n for _, n in plan) == 210
    # Iterations ∝ 1/pixels: 16 : 4 : 1.
    assert [n for _, n in plan] == [160, 40, 10]
    # Stages under the smallest usable size are left out; one stage gets everything.
    assert cfg.stage_plan(smallest=200) == [(256, 168), (512, 42)]
    assert TransferConfig(size=512, scales="one", iterations=7).stage_plan() == [(512, 7)]
    # Every stage runs at least once.
    assert [
        n for _, n in TransferConfig(size=512, scales=(64, 512), iterations=2).stage_plan()
    ] == [
        1,
        1,
    ]


def test_layer_weights_uses_given_weights() -> None:
    cfg = TransferConfig(style_layers=("conv1_1", "conv3_1"), style_layer_weights=(0.75, 0.25))
    assert cfg.layer_weights() == {"conv1_1": 0.75, "conv3_1": 0.25}
    equal = TransferConfig(
        preset="paper", style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1")
    )
    assert equal.layer_weights() == dict.fromkeys(equal.style_layers, 0.25)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 0}, "--size must be at least 16"),
        ({"size": 8}, "too small"),
        ({"iterations": 0}, "--iterations must be at least 1"),
        ({"lr_decay_every": 0}, "--lr-decay-every"),
        ({"content_weight": -1.0}, "--content-weight"),
        ({"style_weight": -0.5}, "--style-weight"),
        ({"tv_weight": -1e-3}, "--tv-weight"),
        ({"style_weight": math.nan}, "--style-weight"),
        ({"content_weight": math.inf}, "--content-weight"),
        ({"learning_rate": 0.0}, "--learning-rate"),
        ({"learning_rate": -1.0}, "--learning-rate"),
        ({"style_scale": 0.0}, "--style-scale"),
        ({"lr_decay": 0.0}, "--lr-decay"),
        ({"lr_decay": 1.5}, "--lr-decay"),
        ({"content_weight": 0.0, "style_weight": 0.0}, "cannot both be 0"),
        ({"style_layer_weights": (1.0, 1.0)}, "2 values for 5 style layers"),
        ({"style_layer_weights": (1.0, 1.0, -1.0, 1.0, 1.0)}, "--style-layer-weights"),
        ({"style_layer_weights": (0.0,) * 5}, "positive sum"),
        ({"style_layer_weights": (1.0, math.nan, 1.0, 1.0, 1.0)}, "--style-layer-weights"),
        ({"style_blend_weights": (1.0, -2.0)}, "--style-blend-weights"),
        ({"optimizer": "lbgfs"}, "did you mean lbfgs"),
        ({"device": "gpu"}, "--device 'gpu' is not valid"),
        ({"model": "vgg20"}, "--model 'vgg20' is not valid"),
        ({"pooling": "min"}, "--pooling"),
        ({"weights_format": "onnx"}, "--weights-format"),
        ({"precision": "fp16"}, "--precision"),
        ({"style_layers": ("conv1_1", "conv6_1")}, "unknown layer 'conv6_1'"),
        ({"content_layers": ("conv4_9",)}, "did you mean conv4_"),
        ({"content_layers": ()}, "needs at least one layer"),
        ({"model": "vgg16", "style_layers": ("conv3_4",)}, "unknown layer 'conv3_4' for vgg16"),
        ({"init": "  "}, "--init"),
    ],
)
def test_invalid_values_raise_usage_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        TransferConfig(**options)


def test_choices_come_from_the_literal_types() -> None:
    assert choices("optimizer") == ("lbfgs", "adam")
    assert choices("device") == ("auto", "cpu", "cuda", "mps")
    assert choices("model") == ("vgg19", "vgg16")
    assert choices("size") is None


def test_from_options_rejects_unknown_names_with_a_hint() -> None:
    with pytest.raises(
        UsageError, match="unknown option 'style_wieght'; did you mean style_weight"
    ):
        TransferConfig.from_options({"style_wieght": 5.0})
    with pytest.raises(UsageError, match=r"unknown option 'zzz'$"):
        TransferConfig.from_options({"zzz": 1})


def test_from_options_builds_a_config() -> None:
    cfg = TransferConfig.from_options({"style_weight": 5.0, "iterations": 7})
    assert (cfg.style_weight, cfg.iterations) == (5.0, 7)
    assert cfg.size == 512  # untouched options keep their defaults


def test_relu_names_are_canonicalised() -> None:
    cfg = TransferConfig(
        content_layers=("relu4_2",), style_layers=("relu1_1", " RELU2_1 ", "conv3_1")
    )
    assert cfg.content_layers == ("conv4_2",)
    assert cfg.style_layers == ("conv1_1", "conv2_1", "conv3_1")
    assert list(cfg.layer_weights()) == ["conv1_1", "conv2_1", "conv3_1"]


def test_vgg16_layers_are_checked_against_vgg16() -> None:
    cfg = TransferConfig(model="vgg16", style_layers=("conv3_3", "conv5_3"))
    assert cfg.style_layers == ("conv3_3", "conv5_3")


def test_config_is_frozen() -> None:
    cfg = TransferConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.size = 256  # type: ignore[misc]


def test_replace_changes_and_revalidates() -> None:
    cfg = TransferConfig()
    smaller = cfg.replace(size=128, style_layers=("relu2_1",))
    assert (smaller.size, smaller.style_layers) == (128, ("conv2_1",))
    assert cfg.size == 512  # the original is untouched
    with pytest.raises(UsageError, match="--size"):
        cfg.replace(size=0)
    with pytest.raises(UsageError, match="did you mean adam"):
        cfg.replace(optimizer="adan")


def test_to_dict_round_trips() -> None:
    cfg = TransferConfig(
        size=64,
        iterations=3,
        style_layers=("relu1_1", "conv2_1"),
        style_layer_weights=(2.0, 1.0),
        style_blend_weights=(1.0, 3.0),
        optimizer="adam",
        seed=7,
        pooling="max",
    )
    d = cfg.to_dict()
    assert d["style_layers"] == ("conv1_1", "conv2_1")
    assert d["seed"] == 7
    assert set(d) == {f.name for f in dataclasses.fields(TransferConfig)}
    assert TransferConfig(**d) == cfg
    assert TransferConfig.from_options(d) == cfg


def test_a_new_field_reaches_the_cli_the_api_and_the_server() -> None:
    """One home per option: a field added to (a copy of) the config is a CLI flag, an API keyword
    and a server option (described for the page, parsed, validated) with no list touched."""
    import argparse

    from impasto.cli.options import ConfigFlags, add_config_options, options_from_args
    from impasto.config import option
    from impasto.serve import intake
    from impasto.serve.settings import Limits

    @dataclasses.dataclass(frozen=True)
    class Extended(TransferConfig):
        grain: float = option(0.5, "strength of a film grain")

    parser = argparse.ArgumentParser()
    add_config_options(parser, ConfigFlags(Extended))
    assert "strength of a film grain (default: 0.5)" in parser.format_help()
    cli = options_from_args(parser.parse_args(["--grain", "0.7", "--size", "64"]), Extended)
    assert (cli.grain, cli.size) == (0.7, 64)

    assert Extended.from_options({"grain": 0.2}).grain == 0.2
    with pytest.raises(UsageError, match="did you mean grain"):
        Extended.from_options({"grian": 0.2})

    described = {o["name"]: o for o in intake.describe_options(Limits(), Extended)}
    assert described["grain"]["type"] == "number" and described["grain"]["default"] == 0.5
    assert described["grain"]["group"] == "more"
    job = intake.parse_options({"grain": "0.25"}, Limits(), "cpu", Extended)
    assert isinstance(job, Extended) and job.grain == 0.25
    with pytest.raises(UsageError, match="option 'grain' must be a number"):
        intake.parse_options({"grain": [1]}, Limits(), "cpu", Extended)


@dataclasses.dataclass(frozen=True)
class _Options:
    """An options dataclass of the house's kind: its choices in a type, its ranges in bounds."""

    mode: Literal["fast", "exact"] = option("fast", "how")
    count: int = option(2, "how many", bounds=(1, 9))
    amount: float = option(0.5, "how much", bounds=(0, 1))
    side: int = option(32, "how wide", bounds=(16, 64), below="too narrow to see")

    def __post_init__(self) -> None:
        check_choices(self)
        check_bounds(self)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"mode": "exakt"},
            "--mode 'exakt' is not valid; did you mean exact? choose from fast, exact",
        ),
        ({"count": 0}, "--count must be at least 1, not 0"),
        ({"count": 10}, "--count must be between 1 and 9, not 10"),
        ({"amount": -0.5}, "--amount must be a finite number >= 0, not -0.5"),
        ({"amount": math.nan}, "--amount must be a finite number >= 0, not nan"),
        ({"amount": 2.0}, "--amount must be between 0 and 1, not 2"),
        ({"side": 8}, "--side 8 is too small; too narrow to see"),
    ],
)
def test_choices_come_from_the_type_and_ranges_from_the_bounds(
    options: dict[str, Any], message: str
) -> None:
    assert choices("mode", _Options) == ("fast", "exact")
    assert choices("count", _Options) is None
    _Options()  # the defaults pass
    with pytest.raises(UsageError) as refused:
        _Options(**options)
    assert str(refused.value) == message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 2**70, 16385, 16385.0, 15])
def test_a_size_out_of_range_is_refused_as_an_int_a_float_or_not_finite(value: Any) -> None:
    # check_bounds decides a plain number between the ends at once: every range's ends are
    # finite, so what is outside them, or not finite, still gets the full check's message.
    for f in dataclasses.fields(TransferConfig):
        bounds = f.metadata.get("bounds")
        assert bounds is None or all(math.isfinite(x) for x in bounds), f.name
    with pytest.raises(UsageError, match="--size"):
        TransferConfig(size=value)
