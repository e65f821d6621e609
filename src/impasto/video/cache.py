"""The resumable cache of finished frames: a work directory of PNGs and a manifest.

Each finished frame is saved as an 8-bit PNG (``frame_000001.png``, 1-based), its cache key in a PNG
text chunk; ``manifest.json`` holds the run's options. A frame's key hashes the run (options, style
pixels, frame size, seed, source plan), its content frame and, with temporal consistency, the
previous frame's key, so a frame is reused only where everything it depends on is unchanged. A
file-valued option (``--init``, ``--weights``) enters the key by its content's digest, not its
name. A folder holding another run's frames is refused unless ``restart``.

impasto deletes only what it can prove it wrote: the manifest is written when the folder is
taken (new or empty), and lists every frame before it is written; clean-up and ``restart``
unlink only the listed frames and the manifest. A folder with files but no manifest of impasto's
is refused, never adopted. This module is the only one that knows the work directory's layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image

from .. import imageio
from ..atomic import atomic_write
from ..config import TransferConfig
from ..errors import InputError, UsageError, unreadable
from ..paths import check_regular_file
from .keys import digest

if TYPE_CHECKING:
    from .options import VideoOptions

_CACHE_FORMAT = "impasto-video-cache/1"
_MANIFEST = "manifest.json"
_KEY_FIELD = "impasto:frame-key"
_WRITTEN = "written"  # the manifest's list of the frames this cache wrote, as 1-based ranges
_FRAME_NAME = re.compile(r"frame_(\d{6})\.png")
_MAX_FRAME = 999_999
# Options that change no pixel of a frame: left out of the cache key.
_KEYLESS = ("device", "max_memory")


def _pixels_hash(img: PIL.Image.Image) -> str:
    return digest(f"{img.size}", np.asarray(img.convert("RGB")).tobytes())


class FrameCache:
    """Stylised frames on disk: ``frame_000001.png``... (1-based) and ``manifest.json``.

    The manifest records the run (everything a frame depends on but its content frame) and
    which frames this cache wrote; it is impasto's mark on the folder. A folder that is neither
    new, empty nor marked is refused, never adopted (:func:`check_work_dir`). A folder holding
    another run's frames is refused unless ``restart``, which deletes those frames (only those
    the manifest lists). Each PNG carries its frame's key, so a frame and its key are written in
    one atomic rename; its name enters the manifest just before, so that no frame of impasto's is
    ever unlisted."""

    def __init__(self, folder: Path, run: Mapping[str, Any], *, restart: bool = False) -> None:
        self.folder = folder
        self.run = json.loads(json.dumps(run, sort_keys=True, default=str))  # plain JSON values
        self.key = digest(json.dumps(self.run, sort_keys=True))
        old = check_work_dir(folder)
        self.written: set[int] = set() if old is None else _written(folder, old)
        if old is not None and old.get("key") != self.key:
            kept = _listed_files(folder, self.written)
            if kept and not restart:
                raise UsageError(
                    f"work directory '{folder}' holds {len(kept)} frame(s) of a run with other "
                    f"settings ({_differences(old.get('run'), self.run)}); pass --restart to "
                    "discard them, or choose another --work-dir"
                )
            _unlink(kept)  # with --restart; or nothing finished, as a refused run leaves it
            self.written = set()
            old = None
        if old is None or old.get(_WRITTEN) is None:
            self._save()

    def _save(self) -> None:
        body = {"format": _CACHE_FORMAT, "key": self.key, "run": self.run,
                _WRITTEN: _ranges(self.written)}  # fmt: skip
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write '{self.folder}': {exc.strerror or exc}") from exc
        with atomic_write(self.folder / _MANIFEST) as f:
            f.write(json.dumps(body, indent=1, sort_keys=True).encode())

    def path(self, index: int) -> Path:
        return self.folder / f"frame_{index + 1:06d}.png"

    def frame_key(self, index: int, content: PIL.Image.Image, previous: str | None) -> str:
        return digest(self.key, str(index), _pixels_hash(content), previous or "")

    def get(self, index: int, key: str) -> PIL.Image.Image | None:
        """The cached frame when its stored key is ``key``; None when absent, stale, broken or
        not written by this cache (a file the user put there, a folder in its place)."""
        p = self.path(index)
        if index + 1 not in self.written or not p.is_file():
            return None
        try:
            if imageio.read_metadata(p).get(_KEY_FIELD) != key:
                return None
            return imageio.load_image(p)
        except InputError:
            return None

    def put(self, index: int, key: str, image: PIL.Image.Image) -> None:
        p = self.path(index)
        if index + 1 not in self.written:
            if os.path.lexists(p):
                raise InputError(
                    f"cannot write '{p}': impasto did not write the file there, so it is left "
                    "as it is; move it away, or choose another --work-dir"
                )
            self.written.add(index + 1)
            self._save()  # listed before it exists: a crash between leaves no unlisted frame
        imageio.save_image(image, p, metadata={_KEY_FIELD: key})


def check_work_dir(folder: Path) -> dict[str, Any] | None:
    """The manifest of the work directory ``folder`` (None when the folder is new or empty);
    :class:`UsageError` when it is a file, or a folder of files impasto did not write (no
    manifest of impasto's): it is never adopted. Reads, writes nothing."""
    if os.path.lexists(folder) and not folder.is_dir():
        raise UsageError(
            f"the work directory '{folder}' is a file, not a folder; name a new or empty folder "
            "with --work-dir"
        )
    try:
        names = sorted(os.listdir(folder)) if folder.is_dir() else []
    except OSError as exc:
        raise InputError(f"cannot read the folder '{folder}': {exc.strerror or exc}") from exc
    # A temporary of impasto's own (".manifest.impasto-PID-....json", left by a process killed as
    # it first wrote the manifest) does not make the folder a stranger's.
    names = [n for n in names if not (n.startswith(".") and ".impasto-" in n)]
    if not names:
        return None
    manifest = _read_manifest(folder / _MANIFEST)
    if manifest is None:
        stranger = next((n for n in names if n != _MANIFEST), names[0])
        raise UsageError(
            f"the work directory '{folder}' holds files impasto did not write (such as "
            f"'{stranger}'); it is left as it is: name a new or empty folder with --work-dir"
        )
    return manifest


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """``path``'s contents when it is a manifest impasto wrote; None otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return None
    return data


def _written(folder: Path, manifest: Mapping[str, Any]) -> set[int]:
    """The frames (1-based) the manifest says impasto wrote. A manifest from before the list
    was kept: the frames that carry impasto's key."""
    listed = manifest.get(_WRITTEN)
    if listed is None:
        return {n for n, p in _frames_in(folder) if _keyed(p)}
    frames: set[int] = set()
    for pair in listed if isinstance(listed, list) else []:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(n, int) and 0 < n <= _MAX_FRAME for n in pair)
            and pair[0] <= pair[1]
        ):
            frames.update(range(pair[0], pair[1] + 1))
    return frames


def _frames_in(folder: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(int(m.group(1)), folder / n) for n in names if (m := _FRAME_NAME.fullmatch(n))]
    return sorted(found)


def _keyed(path: Path) -> bool:
    try:
        return path.is_file() and _KEY_FIELD in imageio.read_metadata(path)
    except (InputError, OSError):
        return False


def _ranges(frames: set[int]) -> list[list[int]]:
    """``{1, 2, 3, 7}`` as ``[[1, 3], [7, 7]]``: a long run's list stays a few numbers."""
    out: list[list[int]] = []
    for n in sorted(frames):
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def _listed_files(folder: Path, frames: set[int]) -> list[Path]:
    """The listed frames that are there as files (a folder in a frame's place is not one)."""
    return [p for n in sorted(frames) if (p := folder / f"frame_{n:06d}.png").is_file()]


def _unlink(paths: Sequence[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


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
    run = {
        "format": _CACHE_FORMAT,
        "options": options,
        "video": video,
        "frame_size": list(size),
        "styles": [_pixels_hash(s) for s in styles],
        "source": dict(source or {}),
    }
    files = {name: file_digest(path) for name, path in _option_files(cfg).items()}
    if files:  # left out when there are none, so that such runs keep their keys
        run["files"] = files
    return run


def _option_files(cfg: TransferConfig) -> dict[str, str]:
    """The files the options name: an --init image, a --weights file (video takes no masks)."""
    files: dict[str, str] = {}
    if cfg.init not in ("noise", "content", "style"):
        files["init"] = cfg.init
    if cfg.weights is not None:
        files["weights"] = cfg.weights
    return files


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes: a changed picture behind the same name is another input."""
    check_regular_file(path, "the file")
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise unreadable(f"'{os.fspath(path)}'", exc) from exc
    return h.hexdigest()


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output (``frames.work`` for a folder ``frames/``)."""
    p = Path(os.fspath(output).rstrip("/" + os.sep) or ".")
    return p.with_name(p.name + ".work")


def remove_work_dir(folder: Path) -> None:
    """Delete the frames a run cached in ``folder`` (those its manifest lists), the manifest,
    and the folder when nothing else is left in it. A folder without impasto's manifest is left
    untouched."""
    if not folder.is_dir():
        return
    manifest = _read_manifest(folder / _MANIFEST)
    if manifest is None:
        return
    _unlink(_listed_files(folder, _written(folder, manifest)))
    (folder / _MANIFEST).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def cached_count(folder: Path) -> int:
    """How many finished frames ``folder`` keeps: the listed frames that are files."""
    manifest = _read_manifest(folder / _MANIFEST) if folder.is_dir() else None
    if manifest is None:
        return 0
    return len(_listed_files(folder, _written(folder, manifest)))
