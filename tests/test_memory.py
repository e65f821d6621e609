"""The memory estimate: refuse what cannot fit, before allocating, with a size that does fit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import run_impasto
from impasto import ResourceError, Transfer, TransferConfig, UsageError, imageio
from impasto.memory import check_memory, estimate_memory, largest_fitting_size
from impasto.memory import output_size as _fit

CPU = torch.device("cpu")


@pytest.mark.parametrize("size", [(1024, 768), (333, 999), (7, 5), (100, 100)])
@pytest.mark.parametrize("longest", [16, 257, 512])
def test_fit_matches_the_resize(size: tuple[int, int], longest: int) -> None:
    resized = imageio.resize_longest(Image.new("RGB", size), longest)
    assert _fit(size, longest) == resized.size


def test_estimate_is_fixed_plus_per_pixel_and_counts_lbfgs_history() -> None:
    cfg = TransferConfig()
    e = {n: estimate_memory((4 * n, 3 * n), cfg) for n in (32, 64, 128)}
    # Quadrupling the pixels quadruples the per-pixel part: e(128) - e(64) = 4 (e(64) - e(32)).
    assert abs((e[128] - e[64]) - 4 * (e[64] - e[32])) <= 8
    assert e[32] > 0 and e[64] > e[32]
    # L-BFGS keeps 100 pairs of fp32 image-sized vectors: 2400 bytes per pixel more than Adam.
    px = 4 * 128 * 3 * 128
    adam = estimate_memory((4 * 128, 3 * 128), cfg.replace(optimizer="adam"))
    assert e[128] - adam == px * (2 * 100 * 3 * 4 - 2 * 3 * 4)


def test_guided_regions_are_budgeted_per_pixel() -> None:
    cfg = TransferConfig()
    plain = estimate_memory((400, 300), cfg)
    assert estimate_memory((400, 300), cfg, 3) - plain == 3 * 1024 * 400 * 300
    limit = estimate_memory((1024, 768), cfg.replace(size=1024)) - 1
    alone = largest_fitting_size((1024, 768), cfg.replace(size=1024), limit)
    guided = largest_fitting_size((1024, 768), cfg.replace(size=1024), limit, 3)
    assert 16 < guided < alone < 1024


def test_refusal_names_a_size_that_fits() -> None:
    cfg = TransferConfig(size=1024, max_memory=2.0)
    with pytest.raises(ResourceError) as err:
        check_memory((1024, 768), cfg, CPU)
    fits = int(re.search(r"try --size (\d+)", str(err.value)).group(1))  # type: ignore[union-attr]
    assert 64 < fits < 1024
    check_memory(_fit((1024, 768), fits), cfg.replace(size=fits), CPU)  # does not raise
    with pytest.raises(ResourceError):
        check_memory(_fit((1024, 768), fits + 64), cfg.replace(size=fits + 64), CPU)


def test_max_memory_must_be_positive() -> None:
    with pytest.raises(UsageError):
        TransferConfig(max_memory=0)
    with pytest.raises(UsageError):
        TransferConfig(max_memory=float("nan"))


def test_cli_refuses_absurd_size_cleanly(
    tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    out = tmp_path / "out.png"
    proc = run_impasto(
        "transfer", content_path, style_path, "-o", out, "--size", "16000", "--max-memory", "1"
    )
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error:") and "--size" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_estimate_counts_the_per_iteration_records() -> None:
    few, many = TransferConfig(iterations=10), TransferConfig(iterations=100_000)
    assert estimate_memory((64, 48), many) - estimate_memory((64, 48), few) >= 99_990 * 400


@pytest.mark.parametrize("shape", [(1024, 768), (4000, 3), (3, 4000), (5000, 17)])
def test_advice_is_the_largest_size_that_fits_for_any_shape(shape: tuple[int, int]) -> None:
    cfg = TransferConfig(size=8000)
    limit = estimate_memory(_fit(shape, 3000), cfg) + 1
    fits = largest_fitting_size(shape, cfg, limit)
    assert estimate_memory(_fit(shape, fits), cfg) <= limit
    assert estimate_memory(_fit(shape, fits + 1), cfg) > limit


def test_a_sliver_gets_crop_advice_not_a_size_that_fails(tmp_path: Path, style_path: Path) -> None:
    sliver = tmp_path / "sliver.png"
    Image.new("RGB", (1000, 2), "gray").save(sliver)  # needs --size 8000 for 16 px
    cfg = TransferConfig(size=64, iterations=1, max_memory=1.0)
    with pytest.raises(UsageError, match="would not fit in memory: crop the image"):
        Transfer(sliver, [style_path], cfg)
    with pytest.raises(UsageError, match="use --size 8000 or more"):
        Transfer(sliver, [style_path], cfg.replace(max_memory=None))
