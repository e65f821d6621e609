"""Every setting of a server, with its default and help, in one place.

:class:`ServeOptions` is what ``impasto serve`` accepts (its flags are generated from the fields,
as the transfer flags are from :class:`~impasto.config.TransferConfig`); :class:`Limits` is what
one job request may ask for and :class:`Settings` what the app is built with. The limits' defaults
are the options' own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import MAX_ITERATIONS, MAX_SIZE, POSITIVE, TOO_SMALL, Device, option
from ..jobs.executor import ExecutorOptions
from ..layers import MIN_SIDE

_MB = 2**20

# Set per server (``impasto serve --device``) or fixed: a client may not name server files or
# pick the hardware. ``model`` is fixed because only the bundled VGG-19 can be loaded without a
# weights file.
SERVER_OPTIONS = ("device", "weights", "weights_format", "model", "max_memory")
INIT_CHOICES = ("content", "noise", "style")  # ``init`` may also be a file path elsewhere: not here
MAX_STAGES = 8  # coarse-to-fine stages (each prepares its own targets)
# The page's balance slider: β on a log scale, from the default β (which follows the size, the
# preset and the network) divided by 10^BALANCE_DECADES ("more photo") to multiplied by it ("more
# painting"): Gatys et al.'s Fig. 3 spans four decades of α/β.
BALANCE_DECADES = 2.0


def page_control(name: str, meta: Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    """How the page shows option ``name``: its group, label and tip (from the field's metadata,
    kept beside the option in the config) and its input bounds on this server. An option with
    no label is shown under "more options" by its name."""
    group, label = meta.get("place", "more"), meta.get("label") or name
    tip = meta.get("tip") or meta.get("help", "")
    bounds: dict[str, float | None] = {"min": None, "max": None, "step": None}
    if name == "size":
        bounds = {"min": MIN_SIDE, "max": limits.max_size, "step": 16}
    elif name == "iterations":
        bounds = {"min": 1, "max": limits.max_iterations, "step": None}
    elif name == "style_scale":
        bounds = {"min": 0.1, "max": None, "step": 0.05}
    return {"group": group, "label": label, "tip": tip, **bounds}


@dataclass(frozen=True)
class ServeOptions(ExecutorOptions):
    """The options of ``impasto serve``: where jobs run (shared with ``impasto batch``: with
    ``--executor ray``, as many jobs at once as there are Ray workers), and the server's own.
    Their choices and ranges are checked where ExecutorOptions checks its own."""

    host: str = option(
        "127.0.0.1",
        "address to listen on (127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
        metavar="HOST",
    )
    port: int = option(8000, "port (0 picks a free one)", metavar="PORT", bounds=(0, 65535))
    device: Device = option("auto", "where jobs run (auto: a GPU when there is one)")
    # The limits and retention: positive numbers (the least of each range is POSITIVE).
    max_upload_mb: float = option(
        20.0,
        "largest image file accepted; larger ones get 413",
        metavar="MB",
        bounds=(POSITIVE, 10_000),
    )
    max_megapixels: float = option(
        50.0, "largest decoded image; larger ones get 422", metavar="MP", bounds=(POSITIVE, 1000)
    )
    max_size: int = option(
        1024,
        "largest output size a job may ask for",
        metavar="PX",
        bounds=(MIN_SIDE, MAX_SIZE),
        below=TOO_SMALL,
    )
    max_iterations: int = option(
        2000, "most iterations a job may ask for", metavar="N", bounds=(POSITIVE, MAX_ITERATIONS)
    )
    max_styles: int = option(4, "most style images per job", metavar="N", bounds=(POSITIVE, 64))
    queue_limit: int = option(
        16, "jobs that may wait; more get 429", metavar="N", bounds=(POSITIVE, 10_000)
    )
    keep: int = option(
        50, "finished jobs kept with their results", metavar="N", bounds=(POSITIVE, 100_000)
    )
    keep_hours: float = option(
        24.0, "hours a finished job is kept", metavar="H", bounds=(POSITIVE, 100_000)
    )
    data_dir: str | None = option(
        None,
        "folder of the job store and the jobs' images, kept across restarts",
        shown="the user's data folder, such as ~/.local/share/impasto",
        metavar="DIR",
    )

    @property
    def loopback_only(self) -> bool:
        """Whether the server listens on this machine only."""
        return is_loopback(self.host)

    def limits(self) -> Limits:
        return Limits(
            max_upload_bytes=int(self.max_upload_mb * _MB),
            max_pixels=int(self.max_megapixels * 1_000_000),
            max_size=self.max_size,
            max_iterations=self.max_iterations,
            max_styles=self.max_styles,
            queue_limit=self.queue_limit,
        )

    def settings(self) -> Settings:
        return Settings(
            limits=self.limits(),
            device=self.device,
            keep=self.keep,
            keep_hours=self.keep_hours,
            data_dir=self.data_folder(),
            loopback_only=self.loopback_only,
            executor=ExecutorOptions(self.executor, self.ray_address, self.workers),
        )

    def data_folder(self) -> Path:
        """``--data-dir``, or the user's data folder (platformdirs: ~/.local/share/impasto on
        Linux, ~/Library/Application Support/impasto on macOS)."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        import platformdirs  # the serve extra's

        return Path(platformdirs.user_data_dir("impasto", appauthor=False))


_DEFAULT = ServeOptions()


@dataclass(frozen=True)
class Limits:
    """What one server accepts (from :class:`ServeOptions`)."""

    max_upload_bytes: int = int(_DEFAULT.max_upload_mb * _MB)  # per image file
    max_pixels: int = int(_DEFAULT.max_megapixels * 1_000_000)  # per decoded image
    max_size: int = _DEFAULT.max_size  # longest side of the output
    max_iterations: int = _DEFAULT.max_iterations
    max_styles: int = _DEFAULT.max_styles
    queue_limit: int = _DEFAULT.queue_limit  # jobs waiting (the running one not counted)

    def body_limit(self) -> int:
        """Bytes one job request may carry: every image and every mask (one per style, one to
        keep) at its limit, plus the form fields."""
        return self.max_upload_bytes * 2 * (self.max_styles + 1) + _MB


@dataclass(frozen=True)
class Settings:
    """One server's limits and storage; ``impasto serve`` fills it from its options."""

    limits: Limits = field(default_factory=Limits)
    device: str = _DEFAULT.device
    keep: int = _DEFAULT.keep  # finished jobs kept (with their files)
    keep_hours: float = _DEFAULT.keep_hours
    preview_every: int | None = None
    data_dir: Path | None = None  # the job store and the jobs' files (None: a temporary folder)
    loopback_only: bool = False  # refuse Host names other than loopback (impasto serve sets it)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)  # where jobs run


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
