"""impasto.prepare: the network kept between jobs."""

from __future__ import annotations

from impasto.config import TransferConfig
from impasto.prepare import NetworkCache
from impasto.vgg import VGG


def test_network_cache_reads_weights_once_per_network(vgg19: VGG) -> None:
    built: list[TransferConfig] = []

    def build(config: TransferConfig) -> VGG:
        built.append(config)
        return vgg19

    cache = NetworkCache(build)
    first = cache(TransferConfig(size=64))
    # Options that do not change the network (size, weights of the losses) reuse it ...
    assert cache(TransferConfig(size=128, style_weight=5.0)) is first
    assert cache.loads == 1 and len(built) == 1
    # ... a different network replaces it, and going back loads the first one again.
    cache(TransferConfig(pooling="max"))
    cache(TransferConfig(normalize_network=True))
    cache(TransferConfig(size=32))
    assert cache.loads == 4 == len(built)
    assert [(c.pooling, c.normalize_network) for c in built] == [
        ("avg", False),
        ("max", False),
        ("avg", True),
        ("avg", False),
    ]
