"""What a transfer reports: a :class:`Step` after every iteration (a flat record, every term
weighted and named, read back from the device only when asked) and a :class:`Result` at its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import PIL.Image
import torch
from torch import Tensor

from . import imageio
from .config import TransferConfig
from .version import __version__

TOTAL = "total"
Listener = Callable[["Step"], None]


@dataclass
class Step:
    """What the loop reports after each iteration: a flat record, every term weighted and named.

    The values are read back from the device only when a listener asks for them, so a listener
    that looks at every tenth step costs one host round trip per ten steps."""

    iteration: int  # 1-based, counted across coarse-to-fine stages
    iterations: int  # planned total
    elapsed: float  # seconds of optimisation so far
    learning_rate: float | None
    _values: Callable[[], Mapping[str, float]] = field(repr=False)  # "total" and every term
    _render: Callable[[], Tensor] = field(repr=False)
    stage: int = 1  # coarse-to-fine stage, 1-based
    stages: int = 1
    peak_memory: int | None = None  # bytes allocated on the device at most so far (CUDA)

    @property
    def loss(self) -> float:
        """The objective: the sum of :attr:`terms`."""
        return self._values()[TOTAL]

    @property
    def terms(self) -> dict[str, float]:
        """Each term of the objective by name (content, style, tv, temporal, ...), weighted."""
        return {k: v for k, v in self._values().items() if k != TOTAL}

    def term(self, name: str) -> float:
        """One term by name; 0 for a term this run's objective does not have."""
        return self._values().get(name, 0.0)

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
    history: list[dict[str, float]]  # per iteration: "total" and every weighted term by name
    # The objective of the returned image (the best iterate, often the one after the last
    # update, evaluated once the loop is done). A finished run reports it as its last Step and
    # history[-1] too, so that the bar, the summary and the metadata show one number.
    final_loss: float
    interrupted: bool = False
    device: str = "cpu"
    peak_memory: int | None = None  # bytes (CUDA), None where it cannot be read
    replayed: int = 0  # iterations replayed from a captured CUDA graph (impasto.graphs)

    def metadata(self, sources: dict[str, str] | None = None) -> dict[str, str]:
        """Text to store in the output file, enough to reproduce the run."""
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
