"""The optimisation loop with the real VGG-19 weights, at 64 px and a few iterations."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import DivergedError, Result, Step, Transfer, TransferConfig, imageio
from impasto.losses import tv_loss
from impasto.objective import Objective
from impasto.vgg import VGG


def config(**changes: Any) -> TransferConfig:
    """A 64-px configuration with the weights and step size spelled out, so that retuning the
    defaults does not move the bounds these tests check."""
    options: dict[str, Any] = {
        "size": 64,
        "content_weight": 1.0,
        "style_weight": 1e4,
        "tv_weight": 0.0,
        "learning_rate": 8.0,
        "preserve_colors": "none",
        "seed": 0,
    }
    options.update(changes)
    return TransferConfig(**options)


def pixels(img: Image.Image) -> torch.Tensor:
    """(1, 3, H, W) in [0, 255], what :attr:`Transfer.objective` takes."""
    return imageio.to_tensor(img) * 255.0


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference in [0, 1]; ``b`` is resized to ``a``'s size first."""
    b = imageio.resize_to(b, a.size)
    return float((imageio.to_tensor(a) - imageio.to_tensor(b)).abs().mean())


def layout_correlation(a: Image.Image, b: Image.Image) -> float:
    """Correlation of the coarse light-and-dark layout (luminance box-averaged to 16x12) of two
    pictures: high for a picture and a restyled copy of it, low for unrelated pictures."""

    def layout(img: Image.Image) -> np.ndarray:
        small = img.convert("L").resize((16, 12), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float64).ravel()

    return float(np.corrcoef(layout(a), layout(b))[0, 1])


@dataclass
class Recorded:
    result: Result
    steps: list[Step]


def run_recorded(transfer: Transfer) -> Recorded:
    steps: list[Step] = []
    result = transfer.run(on_step=steps.append)
    return Recorded(result, steps)


# --- from white noise, with each optimiser ----------------------------------------------------

NOISE_ITERATIONS = 20


@pytest.fixture(scope="module", params=["lbfgs", "adam"])
def noise_run(request: pytest.FixtureRequest, tiny_dir: Path, vgg19: VGG) -> Recorded:
    cfg = config(optimizer=request.param, init="noise", iterations=NOISE_ITERATIONS)
    transfer = Transfer(tiny_dir / "tubingen.png", [tiny_dir / "starry_night.png"], cfg, vgg=vgg19)
    return run_recorded(transfer)


@pytest.mark.slow
def test_total_loss_falls_from_noise(noise_run: Recorded) -> None:
    totals = [row["total"] for row in noise_run.result.history]
    assert totals[-1] < totals[0] / 4
    # The returned image is the best iterate seen, not merely the last.
    assert noise_run.result.final_loss <= min(totals)


@pytest.mark.slow
def test_every_iteration_runs_and_moves(noise_run: Recorded) -> None:
    result = noise_run.result
    assert result.iterations == NOISE_ITERATIONS
    assert len(result.history) >= NOISE_ITERATIONS
    assert not result.interrupted
    # No silent early stop: an optimiser that quit would report the same loss over and over.
    totals = [row["total"] for row in result.history]
    assert len(set(totals)) == len(totals)


@pytest.mark.slow
def test_on_step_reports_each_iteration_once(noise_run: Recorded) -> None:
    steps, result = noise_run.steps, noise_run.result
    assert [s.iteration for s in steps] == list(range(1, NOISE_ITERATIONS + 1))
    assert all(s.iterations == NOISE_ITERATIONS for s in steps)
    elapsed = [s.elapsed for s in steps]
    assert elapsed[0] > 0
    assert all(a <= b for a, b in itertools.pairwise(elapsed))  # a clock, never backwards
    assert elapsed[-1] <= result.elapsed
    # The steps carry the same losses as the result, and the parts add up to the total.
    assert [{"total": s.loss, **s.terms} for s in steps] == result.history
    for s in steps:
        assert set(s.terms) == {"content", "style", "tv"}
        assert s.loss == pytest.approx(sum(s.terms.values()), rel=1e-5)
    if result.config.optimizer == "adam":
        assert all(s.learning_rate == pytest.approx(8.0) for s in steps)  # decays at step 100
    else:
        assert all(s.learning_rate is None for s in steps)


# --- from the content image -------------------------------------------------------------------


@pytest.fixture(scope="module")
def content_run(tiny_dir: Path, vgg19: VGG) -> Result:
    cfg = config(optimizer="lbfgs", init="content", iterations=15)
    return Transfer(
        tiny_dir / "tubingen.png", [tiny_dir / "starry_night.png"], cfg, vgg=vgg19
    ).run()


@pytest.mark.slow
def test_output_moves_toward_the_style(
    content_run: Result, content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    judge = Transfer(content_path, [style_path], config(), vgg=vgg19)
    with torch.no_grad():
        _, _, style_of_output, _ = judge.objective(pixels(content_run.image))
        _, _, style_of_content, _ = judge.objective(pixels(imageio.load_image(content_path)))
    assert float(style_of_output) < float(style_of_content) / 2


@pytest.mark.slow
def test_output_keeps_the_content_layout(
    content_run: Result, content_path: Path, tiny_dir: Path
) -> None:
    output = content_run.image
    own = layout_correlation(output, imageio.load_image(content_path))
    assert own > 0.7
    for other in ("the_scream", "shipwreck", "starry_night"):
        unrelated = layout_correlation(output, imageio.load_image(tiny_dir / f"{other}.png"))
        assert own > unrelated + 0.3, other


# --- seeds ------------------------------------------------------------------------------------


def quick_run(content: Path, style: Path, vgg: VGG, **changes: Any) -> Result:
    options: dict[str, Any] = {"optimizer": "adam", "init": "noise", "iterations": 2}
    options.update(changes)
    return Transfer(content, [style], config(**options), vgg=vgg).run()


def test_same_seed_same_image_other_seed_other_image(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    first = quick_run(content_path, style_path, vgg19, seed=7)
    again = quick_run(content_path, style_path, vgg19, seed=7)
    other = quick_run(content_path, style_path, vgg19, seed=8)
    assert torch.equal(imageio.to_tensor(first.image), imageio.to_tensor(again.image))
    assert not torch.equal(imageio.to_tensor(first.image), imageio.to_tensor(other.image))


def test_random_seed_is_recorded_and_reproduces(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    first = quick_run(content_path, style_path, vgg19, seed=None)
    assert isinstance(first.seed, int)
    assert 0 <= first.seed < 2**31
    assert first.config.seed == first.seed
    assert first.metadata()["impasto:seed"] == str(first.seed)
    again = quick_run(content_path, style_path, vgg19, seed=first.seed)
    assert torch.equal(imageio.to_tensor(first.image), imageio.to_tensor(again.image))


# --- where the optimisation starts ------------------------------------------------------------


def first_step_image(transfer: Transfer) -> Image.Image:
    """The picture reported after iteration 1; the run is stopped there."""
    seen: list[Image.Image] = []

    def stop_after_first(step: Step) -> None:
        seen.append(step.image())
        raise KeyboardInterrupt

    result = transfer.run(on_step=stop_after_first)
    assert result.interrupted
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("init", ["style", "file"])
def test_init_sets_the_starting_image(
    init: str, content_path: Path, style_path: Path, tiny_dir: Path, vgg19: VGG
) -> None:
    expected = style_path if init == "style" else tiny_dir / "shipwreck.png"
    start = "style" if init == "style" else str(expected)
    # L-BFGS's first step is tiny (scaled by 1/|gradient|), so step 1 still shows the start.
    cfg = config(optimizer="lbfgs", init=start, iterations=5)
    image = first_step_image(Transfer(content_path, [style_path], cfg, vgg=vgg19))
    content = imageio.load_image(content_path)
    assert image.size == imageio.resize_longest(content, 64).size
    near = mean_abs_diff(image, imageio.load_image(expected))
    assert near < 0.03
    assert near < mean_abs_diff(image, content) / 3


# --- stopping early ---------------------------------------------------------------------------


def test_keyboard_interrupt_in_callback_returns_best_so_far(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    seen: list[int] = []

    def interrupt_at_three(step: Step) -> None:
        seen.append(step.iteration)
        if step.iteration == 3:
            raise KeyboardInterrupt

    cfg = config(optimizer="adam", init="content", iterations=10)
    transfer = Transfer(content_path, [style_path], cfg, vgg=vgg19)
    result = transfer.run(on_step=interrupt_at_three)
    assert result.interrupted
    assert seen == [1, 2, 3]
    assert result.iterations == 3  # iteration 3 had finished when its callback interrupted
    assert len(result.history) == 3
    assert result.final_loss == min(row["total"] for row in result.history)
    assert isinstance(result.image, Image.Image)
    assert result.image.mode == "RGB"
    assert result.image.size == transfer.size
    assert mean_abs_diff(result.image, imageio.load_image(content_path)) < 0.2  # a real picture


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_nan_loss_raises_diverged(
    optimizer: str,
    content_path: Path,
    style_path: Path,
    vgg19: VGG,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_objective = Objective.__call__
    calls = 0

    def objective_going_nan(self: Objective, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        nonlocal calls
        calls += 1
        total, c, s, t = real_objective(self, x)
        if calls >= 3:  # the objective blows up on the third evaluation
            total = total * float("nan")
        return total, c, s, t

    monkeypatch.setattr(Objective, "__call__", objective_going_nan)
    transfer = Transfer(
        content_path, [style_path], config(optimizer=optimizer, iterations=10), vgg=vgg19
    )
    seen: list[int] = []
    with pytest.raises(DivergedError, match=r"nan at iteration 3\b"):
        # A listener that reads the loss never sees a non-finite one: reading it raises.
        transfer.run(on_step=lambda step: seen.append(step.iteration) if step.loss else None)
    assert seen == [1, 2]

    calls = 0
    quiet: list[int] = []
    with pytest.raises(DivergedError, match=r"nan at iteration 3\b"):
        # Without one, divergence is still caught within a few steps (no read-back every step).
        transfer.run(on_step=lambda step: quiet.append(step.iteration))
    assert 3 <= len(quiet) <= 10


def test_nan_in_style_target_raises_diverged(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    transfer = Transfer(
        content_path, [style_path], config(optimizer="adam", iterations=3), vgg=vgg19
    )
    transfer.problem.targets.style["conv1_1"][0, 0, 0] = float("nan")
    with pytest.raises(DivergedError, match=re.escape("iteration 1")):
        transfer.run()


# --- the style targets ------------------------------------------------------------------------


def test_style_scale_sets_the_style_image_size(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    full = Transfer(content_path, [style_path], config(), vgg=vgg19)
    half = Transfer(content_path, [style_path], config(style_scale=0.5), vgg=vgg19)
    double = Transfer(content_path, [style_path], config(style_scale=2.0), vgg=vgg19)
    assert max(full.style_images[0].size) == 64
    assert max(half.style_images[0].size) == 32
    assert max(double.style_images[0].size) == 128
    # A different scale is a different texture target (brushstrokes twice as large, say).
    full_style, half_style = full.problem.targets.style, half.problem.targets.style
    assert not torch.allclose(full_style["conv3_1"], half_style["conv3_1"])


def test_blend_weights_pick_out_one_style(
    content_path: Path, style_path: Path, tiny_dir: Path, vgg19: VGG
) -> None:
    scream = tiny_dir / "the_scream.png"

    def style_targets(styles: list[Path], **changes: Any) -> Mapping[str, torch.Tensor]:
        transfer = Transfer(content_path, styles, config(**changes), vgg=vgg19)
        return transfer.problem.targets.style

    first = style_targets([style_path])
    second = style_targets([scream])
    only_first = style_targets([style_path, scream], style_blend_weights=(1.0, 0.0))
    only_second = style_targets([style_path, scream], style_blend_weights=(0.0, 1.0))
    assert set(only_first) == set(first)
    for layer in first:
        assert torch.allclose(only_first[layer], first[layer], rtol=1e-6)
        assert torch.allclose(only_second[layer], second[layer], rtol=1e-6)
        assert not torch.allclose(first[layer], second[layer], rtol=1e-2)


# --- other terms ------------------------------------------------------------------------------


def test_tv_weight_smooths_the_result(content_path: Path, style_path: Path, vgg19: VGG) -> None:
    def tv_of_result(tv_weight: float) -> float:
        cfg = config(optimizer="adam", init="noise", iterations=8, tv_weight=tv_weight)
        result = Transfer(content_path, [style_path], cfg, vgg=vgg19).run()
        return float(tv_loss(pixels(result.image)))

    assert tv_of_result(1e4) < 0.75 * tv_of_result(0.0)


def test_content_weight_zero_is_texture_synthesis(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    cfg = config(content_weight=0.0, optimizer="adam", init="noise", iterations=8)
    transfer = Transfer(content_path, [style_path], cfg, vgg=vgg19)
    result = transfer.run()
    assert all(row["content"] == 0.0 for row in result.history)
    totals = [row["total"] for row in result.history]
    assert totals[-1] < totals[0] / 2
    assert result.image.size == imageio.resize_longest(imageio.load_image(content_path), 64).size


def test_loss_rows_grow_with_the_steps_taken() -> None:
    from impasto.optimize import _Rows

    rows = _Rows(3, torch.device("cpu"))
    for i in range(600):
        rows.append(torch.tensor([float(i), 1.0, 2.0]))
    assert len(rows.blocks) == 3  # 600 rows in blocks of 256, not a reservation for the run
    start, tail = rows.since(250)
    assert start == 250 and tail.shape == (350, 3)
    assert tail[0, 0] == 250.0 and tail[-1, 0] == 599.0
    assert rows.since(0)[1][:, 0].tolist() == [float(i) for i in range(600)]


def test_a_huge_iteration_count_stopped_early_keeps_only_its_steps(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    cfg = TransferConfig(size=32, iterations=100_000, seed=0)

    def stop(step: Step) -> None:
        if step.iteration == 3:
            raise KeyboardInterrupt

    result = Transfer(content_path, [style_path], cfg, vgg=vgg19).run(on_step=stop)
    assert result.interrupted and len(result.history) == 3


# --- one final loss per run (issue 33) ----------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_the_last_step_reports_the_loss_of_the_returned_image(
    optimizer: str, content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    """The bar (the last Step), the summary (history[-1]) and the metadata (final_loss) show
    one number: the objective of the image the run returns, evaluated once after the loop."""
    cfg = config(optimizer=optimizer, init="noise", iterations=6)
    transfer = Transfer(content_path, [style_path], cfg, vgg=vgg19)
    run = run_recorded(transfer)
    result, last = run.result, run.steps[-1]
    assert [s.iteration for s in run.steps] == list(range(1, 7))  # no extra Step
    assert last.loss == result.final_loss == result.history[-1]["total"]
    assert last.terms == {k: v for k, v in result.history[-1].items() if k != "total"}
    assert sum(last.terms.values()) == pytest.approx(last.loss, rel=1e-5)
    assert np.array_equal(np.asarray(last.image()), np.asarray(result.image))
    assert last.elapsed == pytest.approx(result.elapsed)  # one clock
