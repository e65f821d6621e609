"""The studio's tests: apps that lend the session's VGG-19 to their worker, and their clients."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import MakeClient
from impasto import prepare
from impasto.config import TransferConfig
from impasto.serve.app import Settings, create_app
from impasto.serve.intake import Limits
from impasto.vgg import VGG

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and says so once, at import.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient


@pytest.fixture(autouse=True)
def _shared_network(monkeypatch: pytest.MonkeyPatch, vgg19: VGG) -> None:
    """Every app uses the session's VGG-19 (the same weights the worker would load)."""

    def build(config: TransferConfig) -> VGG:
        assert config.pooling == "avg" and config.weights is None
        return vgg19

    monkeypatch.setattr(prepare, "build_network", build)  # what workers' caches call


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """Clients of fresh apps (worker started, data folders under tmp_path unless given),
    closed at the end."""
    opened: list[TestClient] = []

    def make(
        keep: int = 50, loopback_only: bool = False, data_dir: Path | None = None, **limits: Any
    ) -> TestClient:
        defaults = {"max_size": 64, "max_iterations": 500}
        settings = Settings(
            limits=Limits(**{**defaults, **limits}),
            keep=keep,
            preview_every=1,
            data_dir=data_dir or tmp_path / f"data{len(opened)}",
            loopback_only=loopback_only,
        )
        client = TestClient(create_app(settings), base_url="http://127.0.0.1:8000")
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
