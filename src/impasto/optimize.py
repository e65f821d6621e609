"""The optimisation loop: minimise α·L_content + β·L_style (+ TV) over the pixels.

:class:`Transfer` prepares the targets once (content features, style Gram matrices) and runs the
chosen optimiser, reporting a :class:`Step` to an optional callback after every iteration. It never
prints and never writes files: progress bars, intermediate saves and the web page are listeners.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor

from . import color, imageio
from .config import TransferConfig
from .errors import DivergedError, InputError, ResourceError, UsageError
from .lbfgs import DeviceLBFGS
from .losses import blend_grams, content_loss, gram, style_loss, tv_loss
from .vgg import VGG, build_vgg

ImageLike = str | PIL.Image.Image | Tensor


@dataclass
class Step:
    """What the loop reports after each iteration (losses already weighted by α, β, TV).

    The losses are read back from the device only when a listener asks for them, so a listener
    that looks at every tenth step costs one host round trip per ten steps."""

    iteration: int  # 1-based, counted across coarse-to-fine stages
    iterations: int  # planned total
    elapsed: float  # seconds of optimisation so far
    learning_rate: float | None
    _losses: Callable[[], tuple[float, float, float, float]] = field(repr=False)
    _render: Callable[[], Tensor] = field(repr=False)
    stage: int = 1  # coarse-to-fine stage, 1-based
    stages: int = 1

    @property
    def loss(self) -> float:
        """The objective α·L_content + β·L_style (+ TV, + any extra term)."""
        return self._losses()[0]

    @property
    def content_loss(self) -> float:
        return self._losses()[1]

    @property
    def style_loss(self) -> float:
        return self._losses()[2]

    @property
    def tv_loss(self) -> float:
        return self._losses()[3]

    def image(self) -> PIL.Image.Image:
        """The current iterate as an 8-bit RGB image (a copy; costs a device-to-host transfer)."""
        return imageio.to_image(self._render() / 255.0)


@dataclass
class Result:
    """A finished (or interrupted) transfer."""

    image: PIL.Image.Image
    config: TransferConfig
    seed: int
    iterations: int  # completed
    elapsed: float
    losses: list[tuple[float, float, float, float]]  # (total, content, style, tv) per iteration
    final_loss: float  # objective of the returned image
    interrupted: bool = False
    device: str = "cpu"

    def metadata(self, sources: dict[str, str] | None = None) -> dict[str, str]:
        """Text to store in the output file, enough to reproduce the run."""
        from . import __version__

        meta = {
            "Software": f"impasto {__version__}",
            "impasto:options": self.config.to_json(),  # config carries the seed used
            "impasto:seed": str(self.seed),
            "impasto:iterations": str(self.iterations),
            "impasto:final_loss": f"{self.final_loss:.6g}",
            "impasto:device": self.device,
            "impasto:torch": torch.__version__,
        }
        if sources:
            meta["impasto:inputs"] = _json(sources)
        return meta


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def build_network(config: TransferConfig) -> VGG:
    """The frozen VGG a configuration asks for (model, weights file and format, pooling, and
    whether its filters are normalised to mean activation one)."""
    return build_vgg(
        config.model,
        config.weights,
        config.pooling,
        config.weights_format,
        normalize=config.normalize_network,
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here (use --device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Apple's MPS is not available here (use --device auto)")
    return torch.device(name)


def _as_image(source: ImageLike) -> PIL.Image.Image:
    if isinstance(source, Tensor):
        return imageio.to_image(source)
    return imageio.load_image(source)


def _scaled(img: PIL.Image.Image, longest: int) -> PIL.Image.Image:
    return imageio.resize_to(img, _fit(img.size, longest))


class Transfer:
    """One content image, one or more styles, one configuration: targets once, then the loop.

    >>> t = Transfer("photo.jpg", ["painting.jpg"], TransferConfig(size=256))
    >>> result = t.run(on_step=lambda s: print(s.iteration, s.loss))
    """

    def __init__(
        self,
        content: ImageLike,
        styles: Sequence[ImageLike],
        config: TransferConfig | None = None,
        *,
        vgg: VGG | None = None,
        init: ImageLike | None = None,
        extra_loss: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        """``init`` (an image, resized to the output) overrides ``config.init``; ``extra_loss``
        maps the iterate (1, 3, H, W) in [0, 255] to a scalar added to the objective (already
        weighted), e.g. the temporal term of video transfer."""
        self.config = cfg = config or TransferConfig()
        self.extra_loss = extra_loss
        if not styles and cfg.style_weight > 0:
            raise UsageError("give at least one style image")
        blend = cfg.style_blend_weights
        if blend is not None and len(blend) != len(styles):
            raise UsageError(
                f"--style-blend-weights has {len(blend)} values for {len(styles)} style images"
            )
        self.device = resolve_device(cfg.device)
        self.seed = cfg.seed if cfg.seed is not None else secrets.randbits(31)

        source = _as_image(content)
        # Refuse a run that cannot fit before allocating anything large (the resize included).
        check_memory(_fit(source.size, cfg.size), cfg, self.device)
        content_img = _scaled(source, cfg.size)
        self.size = content_img.size  # (W, H) of the output
        # Full-size originals are kept for coarse-to-fine stages, which resize them again.
        self._source = source
        self._style_sources = [_as_image(s) for s in styles]
        self.smallest_size = _smallest_size(source, self._style_sources, cfg.style_scale)
        if cfg.size < self.smallest_size:
            raise UsageError(
                f"--size {cfg.size} leaves an image less than {_MIN_SIDE} px on its short side, "
                f"too small for VGG's pooling; use --size {self.smallest_size} or more"
            )
        style_imgs = [
            _scaled(s, round(max(self.size) * cfg.style_scale)) for s in self._style_sources
        ]
        self.content_image = content_img
        self.style_images = style_imgs
        self._stage_results: list[PIL.Image.Image] = []

        try:
            net = vgg if vgg is not None else build_network(cfg)
            self.vgg = net.to(self.device)
            self._content_rgb = self._tensor(content_img)
            # What the network sees of the content: its luminance only in luminance mode.
            self._content_t = self._view(self._content_rgb)
            self._targets(style_imgs)
            if init is not None:
                start = imageio.resize_to(_as_image(init), self.size)
                self._x0 = self._view(self._tensor(start))
            else:
                self._x0 = self._initial(cfg.init)
        except torch.OutOfMemoryError as e:
            raise _oom(cfg.size) from e

    # --- preparation --------------------------------------------------------------------------
    def _tensor(self, img: PIL.Image.Image) -> Tensor:
        return (imageio.to_tensor(img) * 255.0).to(self.device)  # (1, 3, H, W) in [0, 255]

    def _view(self, x: Tensor) -> Tensor:
        """The content or an initial image as the optimisation sees it."""
        if self.config.preserve_colors == "luminance":
            return color.luminance_only(x)
        return x

    def _style_view(self, style: Tensor) -> Tensor:
        """A style image prepared for colour preservation (Gatys, Bethge et al. 2016).

        histogram: the style's colours are mapped onto the content's mean and covariance, then
        transferred as usual. luminance: the style's luminance, matched to the content's mean and
        standard deviation, is transferred alone; colour comes back from the content at the end.
        """
        mode = self.config.preserve_colors
        if mode == "histogram":
            return color.match_histogram(style, self._content_rgb).clamp(0.0, 255.0)
        if mode == "luminance":
            y_style = color.rgb_to_yiq(style)[:, :1]
            y_content = color.rgb_to_yiq(self._content_rgb)[:, :1]
            return color.match_luminance(y_style, y_content).expand(-1, 3, -1, -1).contiguous()
        return style

    def render(self, x: Tensor) -> Tensor:
        """The picture for iterate ``x``: in luminance mode, x's luminance with the content's
        I and Q (YIQ) channels; always clamped to [0, 255]."""
        x = x.detach()
        if self.config.preserve_colors == "luminance":
            x = color.recombine_luminance(x, self._content_rgb)
        return x.clamp(0.0, 255.0)

    @torch.no_grad()
    def _targets(self, style_imgs: list[PIL.Image.Image]) -> None:
        cfg = self.config
        # One pass gives the content targets and, from the style layers' shapes, the number of
        # positions M per style layer in the output (for the Gram rescaling below).
        feats = self.vgg(self._content_t, set(cfg.content_layers) | set(cfg.style_layers))
        self.content_targets = {k: feats[k].detach() for k in cfg.content_layers}
        m_out = {k: feats[k].shape[2] * feats[k].shape[3] for k in cfg.style_layers}
        grams = []
        for img in style_imgs:
            sf = self.vgg(self._style_view(self._tensor(img)), cfg.style_layers)
            # Gatys et al. take the style image at the output's size, so A and G sum over the
            # same number of positions M. For a style image of another size (--style-scale, or
            # a different aspect ratio) we rescale A by M_out/M_style: identical to the paper
            # when the sizes agree, and the per-position statistics match otherwise.
            grams.append(
                {k: gram(v) * (m_out[k] / (v.shape[2] * v.shape[3])) for k, v in sf.items()}
            )
        weights = list(cfg.style_blend_weights or [1.0] * len(grams))
        self.style_targets = blend_grams(grams, weights) if grams else {}
        self.layer_weights = cfg.layer_weights()

    def _initial(self, init: str) -> Tensor:
        return self._view(self._initial_rgb(init))

    def _initial_rgb(self, init: str) -> Tensor:
        w, h = self.size
        if init == "content":
            return self._content_rgb.clone()
        if init == "noise":
            # White noise (the paper's start), drawn on the CPU so a seed gives the same start
            # on every device; centred on mid-grey with a spread of about a quarter of the range.
            gen = torch.Generator().manual_seed(self.seed)
            noise = torch.randn((1, 3, h, w), generator=gen) * 64.0 + 127.5
            return noise.clamp(0, 255).to(self.device)
        if init == "style":
            if not self.style_images:
                raise UsageError("--init style needs a style image")
            return self._tensor(imageio.resize_to(self.style_images[0], (w, h)))
        try:
            img = imageio.load_image(init)
        except InputError as e:
            raise UsageError(f"--init must be noise, content, style or an image file ({e})") from e
        return self._tensor(imageio.resize_to(img, (w, h)))

    # --- the objective ------------------------------------------------------------------------
    def losses(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(total, α·content, β·style, tv) at ``x`` (1, 3, H, W) in [0, 255]; the total also
        holds the extra loss, when one was given."""
        cfg = self.config
        layers = set(cfg.content_layers) if cfg.content_weight else set()
        if cfg.style_weight and self.style_targets:
            layers |= set(cfg.style_layers)
        feats = self.vgg(x, layers)
        zero = x.new_zeros(())
        c = zero
        if cfg.content_weight:
            for name in cfg.content_layers:
                c = c + content_loss(feats[name], self.content_targets[name])
            c = cfg.content_weight * c
        s = zero
        if cfg.style_weight and self.style_targets:
            s = cfg.style_weight * style_loss(feats, self.style_targets, self.layer_weights)
        t = cfg.tv_weight * tv_loss(x) if cfg.tv_weight else zero
        total = c + s + t
        if self.extra_loss is not None:
            total = total + self.extra_loss(x)
        return total, c, s, t

    # --- the loop -----------------------------------------------------------------------------
    def run(self, on_step: Callable[[Step], None] | None = None) -> Result:
        """Optimise; Ctrl-C or a callback raising :class:`KeyboardInterrupt` ends the run early
        with ``Result.interrupted`` set and the best image so far.

        With several ``config.scales`` the run is coarse to fine (``config.stage_plan``): each
        stage but the last is a transfer at a smaller size, started from the previous stage's
        result; its steps are reported with the image scaled up to the output's size, numbered
        on across the stages."""
        cfg = self.config
        # Coarse stages too small for some image's short side are left out.
        stages, plan = zip(*cfg.stage_plan(self.smallest_size), strict=True)
        total, done, elapsed = sum(plan), 0, 0.0
        rows: list[tuple[float, float, float, float]] = []
        x0 = self._x0
        for k, (size, iterations) in enumerate(zip(stages[:-1], plan, strict=False)):
            sub = Transfer(
                self._source,
                self._style_sources,
                cfg.replace(size=size, iterations=iterations, scales="one", seed=self.seed),
                vgg=self.vgg,
                init=self._stage_start(k),
            )
            listen = _renumbered(on_step, done, total, k + 1, len(stages), self.size)
            part = sub._optimize(sub._x0, listen, iterations, done, elapsed)
            done, elapsed = part.iterations, part.elapsed
            rows += part.losses
            if part.interrupted:
                return dataclasses.replace(
                    part, image=imageio.resize_to(part.image, self.size), config=cfg
                )
            self._stage_results.append(part.image)
            x0 = self._view(self._tensor(imageio.resize_to(part.image, self.size)))
        listen = _renumbered(on_step, done, total, len(stages), len(stages), None)
        result = self._optimize(x0, listen, plan[-1], done, elapsed)
        return dataclasses.replace(result, losses=rows + result.losses)

    def _stage_start(self, k: int) -> PIL.Image.Image | None:
        return self._stage_results[-1] if k > 0 else None

    def _optimize(
        self,
        x0: Tensor,
        on_step: Callable[[Step], None] | None,
        iterations: int,
        done_before: int = 0,
        elapsed_before: float = 0.0,
    ) -> Result:
        """``iterations`` steps from ``x0``. Nothing is read back to the host inside a step
        (losses, the best iterate and the divergence flag stay on the device) unless a
        listener asks for a value; divergence is checked every few steps."""
        cfg = self.config
        x = x0.clone()
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        best = x.detach().clone()
        best_loss = torch.full((), math.inf, device=self.device)
        history = torch.zeros(iterations, 4, device=self.device)  # (total, α·c, β·s, tv)
        lbfgs: DeviceLBFGS | None = None
        adam: torch.optim.Adam | None = None
        sched: torch.optim.lr_scheduler.StepLR | None = None
        if cfg.optimizer == "lbfgs":
            lbfgs = DeviceLBFGS(
                x.numel(), history=_LBFGS_HISTORY, device=self.device, max_step=_LBFGS_MAX_STEP
            )
        else:
            adam = torch.optim.Adam([x], lr=cfg.learning_rate)
            sched = torch.optim.lr_scheduler.StepLR(adam, cfg.lr_decay_every, cfg.lr_decay)

        start = time.perf_counter()
        done = 0
        interrupted = False
        try:
            with self._arithmetic():
                for i in range(1, iterations + 1):
                    # The loss reported for step i is the objective at the iterate *before* the
                    # update; the best iterate is tracked with it.
                    x_before = x.detach().clone()
                    total, c, s, t = self.losses(x)
                    (grad,) = torch.autograd.grad(total, x)
                    if lbfgs is not None:
                        lbfgs.step(x, grad)
                    elif adam is not None and sched is not None:
                        x.grad = grad
                        adam.step()
                        sched.step()
                        with torch.no_grad():
                            x.clamp_(0.0, 255.0)  # keep Adam's iterate a valid image
                    row = torch.stack([total, c, s, t]).detach().float()
                    history[i - 1] = row
                    better = row[0] < best_loss  # False for NaN
                    best = torch.where(better, x_before, best)
                    best_loss = torch.where(better, row[0], best_loss)
                    done = i
                    if i % _CHECK_EVERY == 0 or i == iterations:
                        _check_finite(history[:i], done_before)
                    if on_step is not None:
                        lr = adam.param_groups[0]["lr"] if adam is not None else None
                        losses = _Losses(row, i + done_before)
                        on_step(
                            Step(
                                i,
                                iterations,
                                elapsed_before + time.perf_counter() - start,
                                lr,
                                losses,
                                lambda: self.render(x),
                            )
                        )
        except KeyboardInterrupt:
            interrupted = True
        except (torch.OutOfMemoryError, MemoryError) as e:
            raise _oom(cfg.size) from e
        except RuntimeError as e:
            if "can't allocate memory" in str(e) or "out of memory" in str(e):
                raise _oom(cfg.size) from e
            raise
        elapsed = time.perf_counter() - start
        _check_finite(history[:done], done_before)
        rows = [(a, b, c, d) for a, b, c, d in history[:done].tolist()]
        best_value = float(best_loss)
        if not interrupted:
            # The last update's result has no loss yet; evaluate it and keep it if it is best.
            with torch.no_grad(), self._arithmetic():
                final = float(self.losses(x.detach())[0])
            if math.isfinite(final) and final <= best_value:
                best, best_value = x.detach(), final
        image = imageio.to_image(self.render(best) / 255.0)
        return Result(
            image=image,
            config=cfg.replace(seed=self.seed),
            seed=self.seed,
            iterations=done_before + done,
            elapsed=elapsed_before + elapsed,
            losses=rows,
            final_loss=best_value,
            interrupted=interrupted,
            device=str(self.device),
        )

    def _arithmetic(self) -> contextlib.AbstractContextManager[None]:
        """The precision the network runs in (Gram matrices and losses are always fp32)."""
        return arithmetic(self.config.precision, self.device)


# How many curvature pairs L-BFGS keeps (torch's default is 100, as is the Lua reference's).
_LBFGS_HISTORY = 100
# No pixel moves more than this many levels in one L-BFGS step. Without curvature pairs yet
# (torch's first step is scaled by 1/‖g‖₁, about 1e-11 here, too small to measure any), the next
# step is the raw gradient, millions of levels at 256 px from noise, and the run blows up; torch's
# LBFGS takes the same step. Normal steps stay well under it (at most 46 levels in a 256 px run
# from the content), so the cap changes nothing else.
_LBFGS_MAX_STEP = 64.0
# Steps between divergence checks: each check reads one flag back from the device.
_CHECK_EVERY = 10


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is tf32 on CUDA (tensor cores, 10-bit mantissa) and fp32 elsewhere."""
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
    return precision


@contextlib.contextmanager
def arithmetic(precision: str, device: torch.device) -> Iterator[None]:
    """fp32: exact (TF32 switched off, cuDNN's default is on); tf32: TF32 matmuls and
    convolutions on CUDA (a no-op elsewhere); bf16: autocast of the convolutions to bfloat16.
    On CUDA, cuDNN's autotuner is on for the duration."""
    mode = resolve_precision(precision, device)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    saved_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    # One image size for hundreds of steps: let cuDNN time its algorithms once and keep the best.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        if mode == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        torch.backends.cudnn.benchmark = saved_benchmark


class _Losses:
    """The four losses of one step, read back from the device once, on first use."""

    def __init__(self, row: Tensor, iteration: int) -> None:
        self._row: Tensor | None = row
        self._values: tuple[float, float, float, float] | None = None
        self.iteration = iteration

    def __call__(self) -> tuple[float, float, float, float]:
        if self._values is None:
            assert self._row is not None
            total, c, s, t = self._row.tolist()
            self._values, self._row = (total, c, s, t), None
            _check_finite_value(total, self.iteration)
        return self._values


def _check_finite_value(total: float, iteration: int) -> None:
    if not math.isfinite(total):
        raise DivergedError(
            f"the loss became {total} at iteration {iteration}; try --optimizer adam, a "
            "smaller --learning-rate or smaller --style-weight"
        )


def _check_finite(history: Tensor, done_before: int) -> None:
    """Raise :class:`DivergedError` naming the first step whose loss is not finite."""
    if history.numel() == 0:
        return
    bad = ~torch.isfinite(history[:, 0])
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        _check_finite_value(float(history[first, 0]), done_before + first + 1)


_MIN_SIDE = 16  # four 2x2 poolings before conv5_1


def _smallest_size(
    content: PIL.Image.Image, styles: Sequence[PIL.Image.Image], style_scale: float
) -> int:
    """The smallest --size at which content and styles keep 16 px on their short sides."""

    def need(img: PIL.Image.Image, scale: float) -> int:
        return math.ceil(_MIN_SIDE * max(img.size) / min(img.size) / scale)

    return max([need(content, 1.0)] + [need(s, style_scale) for s in styles])


def _renumbered(
    on_step: Callable[[Step], None] | None,
    offset: int,
    total: int,
    stage: int,
    stages: int,
    size: tuple[int, int] | None,
) -> Callable[[Step], None] | None:
    """A listener for one stage: steps numbered across the whole run, images at ``size``."""
    if on_step is None:
        return None

    def listen(step: Step) -> None:
        render = step._render
        if size is not None:
            w, h = size

            def render() -> Tensor:
                return F.interpolate(step._render(), size=(h, w), mode="bilinear")

        on_step(
            dataclasses.replace(
                step,
                iteration=step.iteration + offset,
                iterations=total,
                _render=render,
                stage=stage,
                stages=stages,
            )
        )

    return listen


# --- memory -------------------------------------------------------------------------------------

# Measured on the CPU (torch 2.13, VGG-19 to conv5_1): the saved activations and gradients of one
# forward+backward take about 1.8 KB per output pixel; we budget 2 KB. L-BFGS keeps 100 pairs of
# image-sized fp32 vectors (2 x 100 x 3 x 4 bytes per pixel); Adam two moment buffers.
_ACTIVATION_BYTES_PER_PIXEL = 2048
_FIXED_BYTES = 600 * 2**20  # weights (80 MB), torch's own arenas, Python, the images


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(W, H) of an image of ``size`` scaled to ``longest`` (at least VGG's 16 pixels)."""
    return imageio.fit_longest(size, max(16, longest))


def estimate_memory(size: tuple[int, int], config: TransferConfig) -> int:
    """Bytes a transfer of output size (W, H) needs, roughly (the peak, not the average)."""
    pixels = size[0] * size[1]
    per_pixel = _ACTIVATION_BYTES_PER_PIXEL
    per_pixel += 2 * 100 * 3 * 4 if config.optimizer == "lbfgs" else 2 * 3 * 4
    style_pixels = pixels * config.style_scale**2  # forward only, no gradients kept
    return int(_FIXED_BYTES + pixels * per_pixel + style_pixels * 1024)


def available_memory(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes, or None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def check_memory(size: tuple[int, int], config: TransferConfig, device: torch.device) -> None:
    """Raise :class:`ResourceError` naming a size that fits when the estimate exceeds what the
    device has free (or ``--max-memory``)."""
    limit = available_memory(device)
    if config.max_memory is not None:
        cap = int(config.max_memory * 2**30)
        limit = cap if limit is None else min(limit, cap)
    need = estimate_memory(size, config)
    if limit is None or need <= limit:
        return
    per_pixel = (need - _FIXED_BYTES) / (size[0] * size[1])
    fit_pixels = max(0.0, (limit - _FIXED_BYTES) / per_pixel)
    fits = int(config.size * math.sqrt(fit_pixels / (size[0] * size[1])))
    advice = f"try --size {fits} or less" if fits >= 16 else "not even the smallest size fits"
    raise ResourceError(
        f"--size {config.size} ({size[0]}x{size[1]}) needs about {need / 2**30:.1f} GiB but "
        f"{limit / 2**30:.1f} GiB is available on {device.type}; {advice}"
    )


def _oom(size: int) -> ResourceError:
    smaller = max(16, int(size / math.sqrt(2)))
    return ResourceError(f"out of memory at --size {size}; try --size {smaller} or less")
