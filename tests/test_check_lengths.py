"""scripts/check_lengths.py, the file-length rule of `make lint`, on files made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_lengths.py"


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"x = {i}\n" for i in range(n)))
    return path


def test_a_file_at_the_limit_passes_and_one_line_more_fails(tmp_path: Path) -> None:
    lines(tmp_path / "pkg" / "ok.py", 600)
    assert check(tmp_path).returncode == 0
    long = lines(tmp_path / "pkg" / "sub" / "long.py", 601)
    result = check(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{long}: 601 lines, over the limit of 600: split it along its concerns"
    ]


def test_every_kind_of_source_is_counted_and_data_is_not(tmp_path: Path) -> None:
    for name in ("app.js", "page.html", "look.css", "mod.py", "data.json", "icon.svg"):
        lines(tmp_path / name, 11)
    lines(tmp_path / "__pycache__" / "mod.py", 11)  # not a source file of the tree
    result = check("--max", "10", tmp_path)
    assert result.returncode == 1
    named = sorted(line.split(":")[0] for line in result.stdout.splitlines())
    assert named == sorted(str(tmp_path / n) for n in ("app.js", "page.html", "look.css", "mod.py"))


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = check(tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip() == f"check_lengths: no such file or folder: {tmp_path / 'nowhere'}"
