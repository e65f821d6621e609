"""The resumable cache of finished frames: a work directory of PNGs and a manifest.

Each finished frame is saved as an 8-bit PNG (``frame_000001.png``, 1-based), its cache key in a PNG
text chunk; ``manifest.json`` holds the run's options. A frame's key hashes the run (options, style
pixels, frame size, seed, source plan), its content frame and, with temporal consistency, the
previous frame's key, so a frame is reused only where everything it depends on is unchanged. A
folder holding another run's frames is refused unless ``restart``. This module is the only one
that knows the work directory's layout.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image

from .. import imageio
from ..atomic import atomic_write
from ..config import TransferConfig
from ..errors import InputError, UsageError
from .keys import digest

if TYPE_CHECKING:
    from .options import VideoOptions

_CACHE_FORMAT = "impasto-video-cache/1"
_MANIFEST = "manifest.json"
_KEY_FIELD = "impasto:frame-key"
# Options that change no pixel of a frame: left out of the cache key.
_KEYLESS = ("device", "max_memory")


def _pixels_hash(img: PIL.Image.Image) -> str:
    return digest(f"{img.size}", np.asarray(img.convert("RGB")).tobytes())


class FrameCache:
    """Stylised frames on disk: ``frame_000001.png``... (1-based) and ``manifest.json``.

    The manifest records the run (everything a frame depends on but its content frame); a folder
    holding another run's frames is refused unless ``restart``, which empties it first. Each PNG
    carries its frame's key, so a frame and its key are written in one atomic rename."""

    def __init__(self, folder: Path, run: Mapping[str, Any], *, restart: bool = False) -> None:
        self.folder = folder
        self.run = json.loads(json.dumps(run, sort_keys=True, default=str))  # plain JSON values
        self.key = digest(json.dumps(self.run, sort_keys=True))
        manifest = folder / _MANIFEST
        old = self._read_manifest(manifest)
        if old is not None and old.get("key") != self.key:
            if not restart:
                frames = len(frame_files(folder))
                raise UsageError(
                    f"work directory '{folder}' holds {frames} frame(s) of a run with other "
                    f"settings ({_differences(old.get('run'), self.run)}); pass --restart to "
                    "discard them, or choose another --work-dir"
                )
            self.clear()
            old = None
        if old is None:
            body = {"format": _CACHE_FORMAT, "key": self.key, "run": self.run}
            with atomic_write(manifest) as f:
                f.write(json.dumps(body, indent=1, sort_keys=True).encode())

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"key": None}  # unreadable: treated as another run's
        return data if isinstance(data, dict) else {"key": None}

    def path(self, index: int) -> Path:
        return self.folder / f"frame_{index + 1:06d}.png"

    def frame_key(self, index: int, content: PIL.Image.Image, previous: str | None) -> str:
        return digest(self.key, str(index), _pixels_hash(content), previous or "")

    def get(self, index: int, key: str) -> PIL.Image.Image | None:
        """The cached frame when its stored key is ``key``; None when absent, stale or broken."""
        p = self.path(index)
        if not p.is_file():
            return None
        try:
            if imageio.read_metadata(p).get(_KEY_FIELD) != key:
                return None
            return imageio.load_image(p)
        except InputError:
            return None

    def put(self, index: int, key: str, image: PIL.Image.Image) -> None:
        imageio.save_image(image, self.path(index), metadata={_KEY_FIELD: key})

    def clear(self) -> None:
        _clear(self.folder)


def _differences(old: object, new: Mapping[str, Any]) -> str:
    if not isinstance(old, dict):
        return "unreadable manifest"
    names: list[str] = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            names += [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            names.append(section)
    return "differs in " + ", ".join(names[:6]) if names else "another version"


def run_identity(
    cfg: TransferConfig,
    opts: VideoOptions,
    size: tuple[int, int],
    styles: Sequence[PIL.Image.Image],
    source: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Everything every frame depends on, apart from the content frames themselves."""
    options = {k: v for k, v in cfg.to_dict().items() if k not in _KEYLESS}
    video = opts.to_dict()
    video["frame_iterations"] = opts.iterations(1, cfg)  # the effective number
    return {
        "format": _CACHE_FORMAT,
        "options": options,
        "video": video,
        "frame_size": list(size),
        "styles": [_pixels_hash(s) for s in styles],
        "source": dict(source or {}),
    }


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output (``frames.work`` for a folder ``frames/``)."""
    p = Path(os.fspath(output).rstrip("/" + os.sep) or ".")
    return p.with_name(p.name + ".work")


def remove_work_dir(folder: Path) -> None:
    """Delete the frames and manifest a run cached in ``folder``, and the folder when empty."""
    _clear(folder)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _clear(folder: Path) -> None:
    for p in frame_files(folder):
        p.unlink(missing_ok=True)
    (folder / _MANIFEST).unlink(missing_ok=True)


def frame_files(folder: Path) -> list[Path]:
    """The cached frames in ``folder``, in order (none when it does not exist)."""
    return sorted(folder.glob("frame_*.png")) if folder.is_dir() else []


def cached_count(folder: Path) -> int:
    return len(frame_files(folder))
