"""The style and content losses beyond the paper's (issue 21) with the real network, at tiny sizes:
the terms, and everything that already works (blends, masks, segmentation, coarse to fine, colour
preservation, scale control, video, batch sweeps, the studio, the command line, the memory
estimate) with each of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import Transfer, TransferConfig, imageio, memory, video
from impasto.guidance import build_regions
from impasto.jobs.plan import parse_sweep, plan
from impasto.losses import style_loss
from impasto.vgg import VGG
from impasto.video import VideoOptions

LOSSES = [
    ("sliced", "features"),
    ("remd", "features"),
    ("gram", "self-similarity"),
    ("sliced", "self-similarity"),
]


def config(**options: object) -> TransferConfig:
    base: dict[str, object] = {"size": 48, "iterations": 6, "seed": 0, "device": "cpu"}
    return TransferConfig(**{**base, **options})  # type: ignore[arg-type]


def halves(size: tuple[int, int] = (64, 48)) -> list[torch.Tensor]:
    """Two masks: the left and the right half of a picture of ``size`` (W, H)."""
    w, h = size
    left = torch.zeros(h, w)
    left[:, : w // 2] = 1.0
    return [left, 1.0 - left]


# --- the defaults and the terms -------------------------------------------------------------------


def test_the_defaults_and_the_paper_preset_keep_the_paper_s_losses() -> None:
    for cfg in (TransferConfig(), TransferConfig(preset="paper")):
        assert (cfg.style_loss, cfg.content_loss) == ("gram", "features")
    # Only the Gram loss weighs its layers by 1/N_l²; the others put the layers on one scale.
    assert len(set(TransferConfig(style_loss="sliced").layer_weights().values())) == 1


def test_the_gram_objective_is_the_paper_s_and_prepares_nothing_more(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    t = Transfer(content_path, [style_path], config(), vgg=vgg19)
    assert t.problem.targets.samples is None and t.problem.targets.self_similarity is None
    x = t.problem.x0 + 3.0
    _, _, style, _ = t.objective(x)
    feats = vgg19(x, t.config.style_layers)
    expected = t.config.style_weight * style_loss(
        feats, t.problem.targets.style, t.config.layer_weights()
    )
    assert torch.equal(style, expected)  # bit for bit


@pytest.mark.slow
@pytest.mark.parametrize(("style_loss_name", "content_loss_name"), LOSSES)
def test_each_loss_is_a_named_term_that_a_short_run_lowers(
    content_path: Path, style_path: Path, vgg19: VGG, style_loss_name: str, content_loss_name: str
) -> None:
    cfg = config(style_loss=style_loss_name, content_loss=content_loss_name, iterations=8)
    t = Transfer(content_path, [style_path], cfg, vgg=vgg19)
    assert t.objective.names == ("content", "style", "tv")
    result = t.run()
    first, last = result.history[0], result.history[-1]
    assert last["total"] < first["total"]
    assert set(first) == {"total", "content", "style", "tv"} and first["style"] > 0
    assert not np.array_equal(np.asarray(result.image), np.asarray(t.content_image))


@pytest.mark.slow
def test_a_seed_gives_the_same_picture_with_the_sliced_loss(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    def run(seed: int) -> np.ndarray:
        cfg = config(style_loss="sliced", seed=seed)
        return np.asarray(Transfer(content_path, [style_path], cfg, vgg=vgg19).run().image)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_the_sliced_loss_projects_on_new_directions_at_each_evaluation(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    t = Transfer(content_path, [style_path], config(style_loss="sliced"), vgg=vgg19)
    samples = t.problem.targets.samples
    assert samples is not None and samples.directions is not None
    x = t.problem.x0
    with torch.no_grad():
        a, b = float(t.objective(x)[2]), float(t.objective(x)[2])
    assert a != b and a == pytest.approx(b, rel=0.5)  # another estimate of the same distance
    assert int(samples.directions.counter) == 2


# --- with everything that already works -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sliced", "remd"])
def test_blended_styles_are_a_mixture(
    content_path: Path, style_path: Path, tiny_dir: Path, vgg19: VGG, kind: str
) -> None:
    scream = tiny_dir / "the_scream.png"
    cfg = config(style_loss=kind, style_blend_weights=(3.0, 1.0), iterations=3)
    t = Transfer(content_path, [style_path, scream], cfg, vgg=vgg19)
    samples = t.problem.targets.samples
    assert samples is not None
    only = Transfer(content_path, [style_path], config(style_loss=kind), vgg=vgg19)
    assert only.problem.targets.samples is not None
    mixed = samples.layers["conv5_1"].regions[0]
    alone = only.problem.targets.samples.layers["conv5_1"].regions[0]
    assert mixed.shape[1] > alone.shape[1] // 2  # the smaller share fits: both paintings in it
    assert t.run().iterations == 3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sliced", "remd"])
def test_masks_and_segmentation_guide_each_region_to_its_style(
    content_path: Path, style_path: Path, tiny_dir: Path, vgg19: VGG, kind: str
) -> None:
    scream = tiny_dir / "the_scream.png"
    regions = build_regions(2, masks=halves())
    t = Transfer(
        content_path, [style_path, scream], config(style_loss=kind), vgg=vgg19, regions=regions
    )
    samples = t.problem.targets.samples
    assert samples is not None and len(samples.layers["conv1_1"].regions) == 2
    assert t.problem.targets.guided is not None
    assert t.run().iterations == 6
    # Two label maps: each colour of the photo from the same colour's part of the painting.
    label = Image.new("RGB", (64, 48), (255, 0, 0))
    label.paste((0, 0, 255), (32, 0, 64, 48))
    segmented = build_regions(1, segmentation=label, style_segmentation=label)
    s = Transfer(content_path, [style_path], config(style_loss=kind), vgg=vgg19, regions=segmented)
    assert s.run().iterations == 6


@pytest.mark.slow
def test_a_kept_part_is_kept_with_the_sliced_loss(
    content_path: Path, style_path: Path, vgg19: VGG
) -> None:
    regions = build_regions(1, keep=halves()[0])
    cfg = config(style_loss="sliced", keep_feather=0.0, iterations=10)
    t = Transfer(content_path, [style_path], cfg, vgg=vgg19, regions=regions)
    out = np.asarray(t.run().image).astype(int)
    photo = np.asarray(t.content_image).astype(int)
    w = out.shape[1]
    assert np.abs(out[:, : w // 2 - 2] - photo[:, : w // 2 - 2]).max() <= 1
    assert np.abs(out[:, w // 2 + 2 :] - photo[:, w // 2 + 2 :]).mean() > 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sliced", "remd"])
def test_coarse_to_fine_prepares_each_stage(
    content_path: Path, style_path: Path, vgg19: VGG, kind: str
) -> None:
    cfg = config(style_loss=kind, content_loss="self-similarity", scales=(32, 48), iterations=6)
    steps: list[int] = []
    result = Transfer(content_path, [style_path], cfg, vgg=vgg19).run(
        on_step=lambda s: steps.append(s.stage)
    )
    assert sorted(set(steps)) == [1, 2]
    assert result.image.size == (48, 36)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_colour_preservation(content_path: Path, style_path: Path, vgg19: VGG, mode: str) -> None:
    cfg = config(style_loss="sliced", preserve_colors=mode, iterations=4)
    assert Transfer(content_path, [style_path], cfg, vgg=vgg19).run().iterations == 4


@pytest.mark.slow
def test_the_fine_style_gives_the_fine_layers_samples(
    content_path: Path, style_path: Path, tiny_dir: Path, vgg19: VGG
) -> None:
    scream = tiny_dir / "the_scream.png"
    cfg = config(style_loss="sliced")
    plain = Transfer(content_path, [style_path], cfg, vgg=vgg19).problem.targets.samples
    mixed = Transfer(content_path, [style_path], cfg, vgg=vgg19, fine_style=scream)
    fine = mixed.problem.targets.samples
    assert plain is not None and fine is not None
    for layer, changed in (("conv1_1", True), ("conv2_1", True), ("conv3_1", False)):
        a, b = plain.layers[layer].regions[0], fine.layers[layer].regions[0]
        assert (a.shape != b.shape or not torch.equal(a, b)) == changed, layer
    assert mixed.run().iterations == 6


@pytest.mark.slow
def test_video_frames_with_the_sliced_loss(style_path: Path, vgg19: VGG) -> None:
    frames = [np.full((36, 48, 3), 60 * k, np.uint8) for k in range(1, 3)]
    cfg = config(style_loss="sliced", iterations=3)
    out = list(
        video.stylize_frames(frames, [style_path], cfg, VideoOptions(frame_iterations=2), vgg=vgg19)
    )
    assert [r.image.size for r in out] == [(48, 36), (48, 36)]


def test_a_batch_sweeps_the_style_loss(content_path: Path, style_path: Path) -> None:
    specs = plan(
        [str(content_path)],
        [str(style_path)],
        {"size": 32},
        sweeps=[parse_sweep("style_loss=gram,sliced,remd")],
    )
    assert [s.options["style_loss"] for s in specs] == ["gram", "sliced", "remd"]
    assert len({s.output for s in specs}) == 3


@pytest.mark.slow
def test_a_batch_sweep_of_the_losses_runs_and_makes_a_sheet(
    content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    from impasto.cli import main

    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    args = ["batch", str(content_path), "--styles", str(style_path), "-o", str(out)]
    sweeps = [
        "--sweep",
        "style_loss=gram,sliced",
        "--sweep",
        "content_loss=features,self-similarity",
    ]
    fast = ["--size", "32", "--iterations", "2", "-q", "--device", "cpu"]
    assert main([*args, *sweeps, *fast, "--contact-sheet", str(sheet)]) == 0
    recorded = set()
    for png in out.glob("*.png"):
        options = json.loads(imageio.read_metadata(png)["impasto:options"])
        recorded.add((options["style_loss"], options["content_loss"]))
    assert recorded == {(s, c) for s in ("gram", "sliced") for c in ("features", "self-similarity")}
    with Image.open(sheet) as im:
        assert im.width > im.height  # two by two, labelled


def test_the_studio_shows_both_losses() -> None:
    from impasto.serve.intake import describe_options
    from impasto.serve.settings import Limits

    by_name = {o["name"]: o for o in describe_options(Limits())}
    assert by_name["style_loss"]["choices"] == ["gram", "sliced", "remd"]
    assert by_name["content_loss"]["choices"] == ["features", "self-similarity"]
    assert by_name["style_loss"]["group"] == "main" and by_name["style_loss"]["default"] == "gram"


def test_the_memory_estimate_counts_the_new_terms() -> None:
    size = (512, 384)
    gram = memory.estimate_memory(size, TransferConfig())
    for kind in ("sliced", "remd"):
        cfg = TransferConfig(style_loss=kind)
        assert memory.estimate_memory(size, cfg) >= gram + 1500 * 512 * 384
        guided = memory.estimate_memory(size, cfg, regions=2)
        assert guided - memory.estimate_memory(size, cfg) > 2 * 1024 * 512 * 384
    similar = memory.estimate_memory(size, TransferConfig(content_loss="self-similarity"))
    assert similar - gram == 64 * (64 * 48) ** 2  # conv4_2's 3072 positions, squared
    huge = TransferConfig(size=4096, content_loss="self-similarity")
    assert (
        memory.estimate_memory((4096, 3072), huge)
        - memory.estimate_memory((4096, 3072), huge.replace(content_loss="features"))
        == 64 * 4096**2
    )  # pooled to 4096 positions at most


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_command_line_takes_both_losses_and_records_them(
    content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "impasto", "transfer", str(content_path), str(style_path)]
    opts = ["--size", "32", "--iterations", "2", "-q", "--seed", "1"]
    losses = ["--style-loss", "sliced", "--content-loss", "self-similarity"]
    proc = subprocess.run(
        [*argv, "-o", str(out), *opts, *losses], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    options = json.loads(imageio.read_metadata(out)["impasto:options"])
    assert (options["style_loss"], options["content_loss"]) == ("sliced", "self-similarity")


@pytest.mark.parametrize(
    ("flag", "value", "hint"),
    [
        ("--style-loss", "slised", "did you mean sliced? choose from gram, sliced, remd"),
        ("--content-loss", "self_similarity", "did you mean self-similarity?"),
    ],
)
def test_a_mistyped_loss_is_one_line_and_exit_2(
    content_path: Path,
    style_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    hint: str,
) -> None:
    from impasto.cli import main

    out = tmp_path / "out.png"
    code = main(["transfer", str(content_path), str(style_path), "-o", str(out), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and hint in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    ("style_loss_name", "content_loss_name"), [("sliced", "features"), ("remd", "self-similarity")]
)
def test_bf16_runs_keep_the_losses_in_fp32(
    content_path: Path, style_path: Path, vgg19: VGG, style_loss_name: str, content_loss_name: str
) -> None:
    cfg = config(
        style_loss=style_loss_name, content_loss=content_loss_name, precision="bf16", iterations=3
    )
    result = Transfer(content_path, [style_path], cfg, vgg=vgg19).run()
    assert all(np.isfinite(list(row.values())).all() for row in result.history)
    assert result.history[-1]["total"] < result.history[0]["total"]


def test_the_python_api_takes_both_losses(content_path: Path, style_path: Path) -> None:
    import impasto

    image = impasto.stylize(
        content_path,
        style_path,
        size=32,
        iterations=2,
        seed=0,
        style_loss="sliced",
        content_loss="self-similarity",
    )
    assert image.size == (32, 24)
    with pytest.raises(impasto.UsageError, match="did you mean remd"):
        impasto.stylize(content_path, style_path, size=32, style_loss="rmd")
