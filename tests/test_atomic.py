"""impasto.atomic: files and folders that appear whole or not at all, and what killed writers
left behind cleaned up by the next write (impasto.process tells the dead from the living)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from helpers import dead_pid
from impasto import atomic, imageio
from impasto.process import pid_alive

# --- temporaries of killed runs, folders written whole --------------------------------------


def test_a_killed_runs_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    stale = tmp_path / f".out.impasto-{dead_pid()}-x1y2.png"
    live = tmp_path / f".out.impasto-{os.getpid()}-z3w4.png"  # a run writing now: kept
    other = tmp_path / ".other.impasto-1-abcd.png"  # another file's: not ours to judge
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    imageio.save_image(Image.new("RGB", (8, 8)), out)
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert out.is_file()


def test_a_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    target.mkdir()
    for i in range(8):
        (target / f"frame_{i + 1:06d}.png").write_bytes(b"old")
    done = atomic.temporary_folder(target)
    (done / "frame_000001.png").write_bytes(b"new")
    atomic.replace_folder(done, target)
    assert sorted(p.name for p in target.iterdir()) == ["frame_000001.png"]
    assert (target / "frame_000001.png").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # nothing hidden left


def test_a_process_is_alive_until_it_has_exited() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())


def test_write_bytes_replaces_the_file_whole_or_leaves_it(tmp_path: Path) -> None:
    out = tmp_path / "data.bin"
    atomic.write_bytes(out, b"first")
    atomic.write_bytes(out, b"second")
    assert out.read_bytes() == b"second"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_write(out) as f:
        f.write(b"half")
        raise KeyboardInterrupt  # Ctrl-C half way: the old file stays, no temporary is left
    assert out.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]
