"""Every GPU claim of impasto checked in one short run: ``bash benchmarks/gpu_check.sh OUTDIR``.

Sections, each in processes of its own (a crash or a hang in one does not end the others), in the
order that puts the figures first and the longest part last:

- ``env``: GPU, driver, CUDA, cuDNN, torch and Python versions, and where each package came from;
- ``gpu-tests``: ``pytest -m gpu`` (the tests that need CUDA);
- ``profile``: ``benchmarks/gpu_profile.py``: time per iteration eager and with CUDA graphs, the
  kernels' own time, the lines that make the host wait;
- ``speed``: ``benchmarks/bench_speed.py`` at 512 px x 500 L-BFGS iterations, impasto in fp32, tf32
  and bf16 against pastiche 1.6.0 in the same run (each image rescored by one fp32 objective);
- ``big``: the default preset at 2048 px and at 3840x2160: time, peak GPU memory against impasto's
  own memory estimate (the one it refuses runs with);
- ``video``: 10 frames of the shared Big Buck Bunny clip at 512 px wide, seconds per frame;
- ``batch``: ``impasto batch --executor ray --workers 1`` (one GPU worker), jobs per minute;
- ``tests``: the fast unit tests (``-m "not slow"``), which run on CUDA wherever a test leaves
  the device at ``auto``.

Writes ``OUTDIR/gpu.json`` (every figure, after each section, so a cut-off run keeps what it did),
``OUTDIR/gpu.md`` (the same, readable), ``OUTDIR/big.jpg`` and ``OUTDIR/video.jpg`` (to look at).
Exit status: 0 when every section ran and every target was met; 1 when a section failed (an
error, a failing test, an estimate below the real peak); 4 when all ran but a target was missed.

``--device cpu --tiny`` runs the same sections on the CPU at toy sizes: the way to check the
script itself on a machine without a GPU. Nothing here is a unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONTENT, STYLE = EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg"
PAINTINGS = [EXAMPLES / f"{n}.jpg" for n in ("starry_night", "the_scream", "shipwreck")]
# The video frames: carried in the wheelhouse (benchmarks/gpu_wheelhouse.sh), else decoded here
# from the shared clip.
WHEELHOUSE = ROOT / ".whl"
CLIP = ROOT.parent / "shared" / "videos" / "bigbuckbunny.mp4"
SECTIONS = ("env", "gpu-tests", "profile", "speed", "big", "video", "batch", "tests")
GiB = 2**30


# --- targets (issue: "Ready for the first GPU") -------------------------------------------------


def check(name: str, value: float, op: str, target: float, hard: bool = False) -> dict[str, Any]:
    """One figure against its target. ``hard``: a broken promise (the section fails), not a
    speed or size target that is only missed."""
    met = value >= target if op == ">=" else value <= target
    return {"name": name, "value": value, "op": op, "target": target, "met": met, "hard": hard}


# --- running things -----------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.out: Path = args.outdir
        self.log = (self.out / "gpu.log").open("a")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def cmd(self, argv: list[str], timeout: float, cwd: Path = ROOT) -> tuple[int, str, float]:
        """Run ``argv``; its output goes to the log (and the last of it is returned)."""
        self.say(f"$ {shlex.join(map(str, argv))}")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                list(map(str, argv)),
                cwd=cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            rc, text = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            rc = 124
            out = e.stdout or b""
            text = (out.decode(errors="replace") if isinstance(out, bytes) else out) + (
                f"\n(stopped after {timeout:.0f} s)"
            )
        wall = time.perf_counter() - start
        self.log.write(text + f"\n(exit {rc}, {wall:.1f} s)\n")
        self.log.flush()
        return rc, text, wall

    def child(self, section: str, timeout: float, *extra: str) -> tuple[dict[str, Any], float]:
        """This file in child mode for ``section``: its figures, and the process's wall time."""
        argv = [sys.executable, __file__, str(self.out), "--child", section, *self._common()]
        rc, text, wall = self.cmd([*argv, *extra], timeout)
        line = next((s for s in text.splitlines()[::-1] if s.startswith("RESULT ")), None)
        if rc != 0 or line is None:
            raise RuntimeError(f"exit {rc}: {_tail(text)}")
        figures: dict[str, Any] = json.loads(line[len("RESULT ") :])
        return figures, wall

    def _common(self) -> list[str]:
        return ["--device", self.a.device, *(["--tiny"] if self.a.tiny else [])]


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(s for s in text.strip().splitlines()[-lines:])


# --- sections (parent side) ---------------------------------------------------------------------


def section_env(r: Run) -> dict[str, Any]:
    import torch

    import impasto

    f: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "impasto": impasto.__version__,
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        f |= {
            "gpu": p.name,
            "gpu_memory_gib": round(p.total_memory / GiB, 1),
            "capability": f"{p.major}.{p.minor}",
            "multiprocessors": p.multi_processor_count,
        }
        rc, text, _ = r.cmd(
            ["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"], 30
        )
        if rc == 0:
            f["driver"], f["max_sm_clock"] = (s.strip() for s in text.splitlines()[0].split(","))
    elif r.a.device == "cuda":
        raise RuntimeError(f"torch {torch.__version__} sees no CUDA GPU")
    f["packages"] = _package_origins()
    return {"figures": f, "checks": []}


def _package_origins() -> dict[str, str]:
    """Version and origin (carried in the wheelhouse, or already on the machine) of each package
    impasto runs with."""
    from importlib import metadata

    site = os.environ.get("IMPASTO_CHECK_SITE")
    out = {}
    for name in (
        "torch", "numpy", "pillow", "tqdm", "matplotlib", "opencv-python-headless", "pastiche",
        "av", "fastapi", "uvicorn", "pydantic", "platformdirs", "ray", "pytest",
    ):  # fmt: skip
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
            continue
        where = str(dist.locate_file(""))
        carried = site is not None and where.startswith(site)
        out[name] = f"{dist.version} ({'carried' if carried else 'on the machine'})"
    return out


# Test modules that import a package at the top, which a machine may lack (the wheelhouse leaves
# PyAV out): left out of collection, and said so, rather than failing it.
NEEDS = {"av": ("tests/test_video.py", "tests/test_animate.py")}


def _pytest(
    r: Run, name: str, args: list[str], timeout: float, spread: bool = False
) -> dict[str, Any]:
    """pytest with ``args``; ``spread``: over 8 processes where pytest-xdist is installed (the
    fast suite takes ~4 minutes in one process)."""
    import importlib.util

    xml = r.out / f"{name}.xml"
    argv = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    if spread and importlib.util.find_spec("xdist") is not None:
        argv += ["-n", "8", "--dist", "loadfile"]
        if importlib.util.find_spec("pytest_benchmark") is not None:
            # pytest-benchmark warns under xdist, and the suite turns warnings into errors.
            argv += ["-p", "no:benchmark"]
    left_out = {}
    for package, modules in NEEDS.items():
        if importlib.util.find_spec(package) is None:
            argv += [f"--ignore={m}" for m in modules]
            left_out[package] = list(modules)
    rc, text, wall = r.cmd([*argv, *args], timeout)
    f: dict[str, Any] = {"exit": rc, "seconds": round(wall, 1)}
    if left_out:
        f["left_out_for_missing_packages"] = left_out
    if xml.exists() and rc != 124:
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        for key in ("tests", "failures", "errors", "skipped"):
            f[key] = int(suite.get(key, 0))
        bad = []
        for case in suite.iter("testcase"):
            for kind in ("failure", "error"):
                node = case.find(kind)
                if node is not None:
                    message = (node.get("message") or "").strip().splitlines()
                    bad.append(f"{case.get('name')}: {message[0][:200] if message else kind}")
        f["failed"] = bad
        skips = {}
        for case in suite.iter("testcase"):
            node = case.find("skipped")
            if node is not None:
                why = (node.get("message") or "").strip()[:120]
                skips[why] = skips.get(why, 0) + 1
        f["skip_reasons"] = skips
        xml.unlink()
    else:  # cut off: the failures seen so far, from -v's lines
        f["failed"] = [
            next((w for w in line.split() if "::" in w), line)
            for line in text.splitlines()
            if " FAILED" in line
        ]
        f["passed"] = sum(" PASSED" in line for line in text.splitlines())
        f["output"] = _tail(text, 4)
    # pytest: 0 all passed, 5 none collected (no GPU test selected): both fine.
    if rc not in (0, 5):
        raise SectionFailed(f, f"pytest exit {rc}: {len(f.get('failed', []))} failed")
    return {"figures": f, "checks": []}


class SectionFailed(Exception):
    def __init__(self, figures: dict[str, Any], why: str) -> None:
        super().__init__(why)
        self.figures = figures


def section_gpu_tests(r: Run) -> dict[str, Any]:
    return _pytest(r, "gpu-tests", ["-m", "gpu", "-rs"], 240)


def section_tests(r: Run) -> dict[str, Any]:
    args = shlex.split(r.a.pytest_args) if r.a.pytest_args else ["-m", "not slow and not gpu"]
    return _pytest(r, "tests", args, r.a.tests_timeout, spread=True)


def section_speed(r: Run) -> dict[str, Any]:
    data = r.out / "speed.json"
    size, its = (64, 10) if r.a.tiny else (512, 500)
    tools = "impasto-fp32,impasto-tf32,impasto-bf16,impasto-tf32-eager,pastiche"
    if r.a.device == "cpu":
        tools = "impasto-fp32,impasto-bf16,pastiche"  # tf32 is CUDA's
    argv = [sys.executable, ROOT / "benchmarks" / "bench_speed.py", "--device", r.a.device]
    argv += ["--size", str(size), "--iterations", str(its), "--tools", tools, "--json", data]
    rc, text, _ = r.cmd(argv, 420)
    if rc != 0 or not data.exists():
        raise RuntimeError(f"bench_speed exit {rc}: {_tail(text)}")
    f = json.loads(data.read_text())
    data.unlink()
    missing = set(tools.split(",")) - set(f["rows"])
    if missing:
        raise SectionFailed(f, f"bench_speed: {', '.join(sorted(missing))} failed")
    checks = []
    if r.a.device == "cuda":
        v = f["vs_pastiche"]
        checks += [
            check("optimisation vs pastiche (x)", v["optimisation_speedup"], ">=", 10),
            check("whole process vs pastiche (x)", v["whole_process_speedup"], ">=", 4),
        ]
        for tool in ("impasto-fp32", "impasto-tf32", "impasto-bf16"):
            mb = f["rows"][tool]["peak_gpu_mb"]
            checks.append(check(f"{tool} peak GPU memory (GB)", mb * 2**20 / 1e9, "<=", 1.5))
    for mode, v in f["vs_fp32"].items():
        change = abs(v["objective_change"]) * 100
        checks.append(check(f"{mode} objective vs fp32 (|%|)", change, "<=", 1.0))
    return {"figures": f, "checks": checks}


def section_profile(r: Run) -> dict[str, Any]:
    argv = [sys.executable, ROOT / "benchmarks" / "gpu_profile.py", r.out, "--device", r.a.device]
    argv += ["--size", "48" if r.a.tiny else "512"]
    rc, text, _ = r.cmd(argv, 200)
    data = r.out / "profile.json"
    if rc != 0 or not data.exists():
        raise RuntimeError(f"gpu_profile exit {rc}: {_tail(text)}")
    f = json.loads(data.read_text())
    data.unlink()
    return {"figures": f, "checks": []}


def section_big(r: Run) -> dict[str, Any]:
    runs = [("2048", "2048"), ("3840x2160", "3840x2160")]
    if r.a.tiny:
        runs = [("96", "96"), ("128x72", "128x72")]
    figures: dict[str, Any] = {}
    checks = []
    for name, spec in runs:
        f, wall = r.child("big", 360, "--spec", spec)
        f["whole_s"] = round(wall, 1)
        figures[name] = f
        if f["peak_bytes"] is not None:
            ratio = f["estimate_bytes"] / f["peak_bytes"]
            f["estimate_over_peak"] = round(ratio, 3)
            checks.append(check(f"{name}: estimate / peak (>= 1)", ratio, ">=", 1.0, hard=True))
            checks.append(check(f"{name}: estimate / peak (<= 1.5)", ratio, "<=", 1.5))
        if "x" in name and not r.a.tiny:
            checks.append(check(f"{name}: whole process (s)", wall, "<=", 180))
    return {"figures": figures, "checks": checks}


def section_video(r: Run) -> dict[str, Any]:
    f, wall = r.child("video", 420)
    f["whole_s"] = round(wall, 1)
    checks = []
    if not r.a.tiny and r.a.device == "cuda":
        checks.append(check("seconds per frame after the first", f["after_first_s"], "<=", 1.0))
    return {"figures": f, "checks": checks}


def section_batch(r: Run) -> dict[str, Any]:
    import sqlite3

    size, its, seeds = ("64", "5", "0") if r.a.tiny else ("512", "200", "0,1")
    outdir = r.out / "batch"
    argv = [sys.executable, "-m", "impasto", "batch", CONTENT, "--styles", *PAINTINGS]
    argv += ["-o", outdir, "--size", size, "--iterations", its, "--sweep", f"seed={seeds}"]
    argv += ["--executor", "ray", "--workers", "1", "--device", r.a.device]
    rc, text, wall = r.cmd(argv, 300)
    if rc != 0:
        raise RuntimeError(f"impasto batch exit {rc}: {_tail(text)}")
    with sqlite3.connect(outdir / "impasto.sqlite") as db:
        rows = db.execute("SELECT state, device, seconds FROM jobs").fetchall()
    done = [row for row in rows if row[0] == "done"]
    devices = sorted({str(row[1]) for row in rows})
    optimising = sum(float(row[2] or 0) for row in done)
    f = {
        "jobs": len(rows),
        "done": len(done),
        "devices": devices,
        "size": int(size),
        "iterations": int(its),
        "wall_s": round(wall, 1),
        "jobs_per_minute_whole_command": round(60 * len(done) / wall, 2),
        "jobs_per_minute_in_workers": round(60 * len(done) / optimising, 2) if optimising else None,
        "summary": _tail(text, 2),
    }
    checks = [check("jobs done", len(done), ">=", len(rows), hard=True)]
    if r.a.device == "cuda":
        on_gpu = all(d.startswith("cuda") for d in devices)
        checks.append(check("every job ran on the GPU (1 = yes)", float(on_gpu), ">=", 1, True))
    shutil.rmtree(outdir)  # the figures are what come back, not the pictures
    return {"figures": f, "checks": checks}


RUNNERS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "env": section_env,
    "gpu-tests": section_gpu_tests,
    "profile": section_profile,
    "speed": section_speed,
    "big": section_big,
    "video": section_video,
    "batch": section_batch,
    "tests": section_tests,
}


# --- sections (child side) ----------------------------------------------------------------------


def child_big(a: argparse.Namespace) -> dict[str, Any]:
    """The default preset at ``--spec`` (a longest side, or WxH: the content cropped to that
    shape first), with the peak memory against impasto's estimate for the run."""
    import torch
    from PIL import Image

    from impasto import Transfer, TransferConfig, imageio
    from impasto.memory import estimate_memory, output_size

    content = imageio.load_image(CONTENT)
    if "x" in a.spec:
        w, h = (int(v) for v in a.spec.split("x"))
        cw, ch = content.size
        if cw * h > ch * w:  # too wide: crop the sides
            nw = ch * w // h
            content = content.crop(((cw - nw) // 2, 0, (cw - nw) // 2 + nw, ch))
        else:
            nh = cw * h // w
            content = content.crop((0, (ch - nh) // 2, cw, (ch - nh) // 2 + nh))
        size = max(w, h)
    else:
        size = int(a.spec)
    cfg = TransferConfig(size=size, device=a.device, seed=0)
    if a.tiny:
        cfg = cfg.replace(iterations=12)
    start = time.perf_counter()
    t = Transfer(content, [STYLE], cfg)
    result = t.run()
    _sync(a.device)
    wall = time.perf_counter() - start
    estimate = estimate_memory(output_size(content.size, cfg.size), cfg)
    peak = torch.cuda.max_memory_allocated() if a.device == "cuda" else None
    picture = result.image.copy()
    picture.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
    picture.save(a.outdir / f"big-{a.spec}.jpg", quality=88)
    return {
        "size": list(result.image.size),
        "stages": [list(s) for s in cfg.stage_plan(t.smallest_size)],
        "iterations": result.iterations,
        "optimise_s": round(result.elapsed, 2),
        "transfer_s": round(wall, 2),
        "final_loss": result.final_loss,
        "peak_bytes": peak,
        "peak_gib": round(peak / GiB, 2) if peak else None,
        "estimate_bytes": estimate,
        "estimate_gib": round(estimate / GiB, 2),
    }


def child_video(a: argparse.Namespace) -> dict[str, Any]:
    """Ten frames of the real clip at 512 px wide (defaults otherwise), seconds per frame."""
    from impasto import TransferConfig
    from impasto.video import VideoOptions, stylize_video

    frames = _frames(a)
    size = 64 if a.tiny else 512
    cfg = TransferConfig(size=size, device=a.device, seed=0)
    if a.tiny:
        cfg = cfg.replace(iterations=10)
    out = a.outdir / "video-frames"
    s = stylize_video(frames, [STYLE], out, cfg, VideoOptions(), restart=True)
    times = s.computed_seconds
    after = times[1:]
    strip = _strip(sorted(out.glob("*.png")))
    strip.save(a.outdir / "video.jpg", quality=88)
    for png in out.glob("*.png"):
        png.unlink()
    out.rmdir()
    return {
        "frames": s.frames,
        "size": list(s.size),
        "iterations_first": cfg.iterations,
        "first_frame_s": round(times[0], 2),
        "after_first_s": round(sum(after) / len(after), 3) if after else None,
        "per_frame_s": [round(t, 3) for t in times],
        "seconds": round(s.seconds, 1),
        "device": s.device,
    }


def _frames(a: argparse.Namespace) -> Path:
    """The folder of the clip's first frames (carried, or decoded now from the shared clip)."""
    from PIL import Image

    count, width = (3, 64) if a.tiny else (10, 512)
    carried = WHEELHOUSE / "bigbuckbunny"
    if carried.is_dir() and not a.tiny:
        return carried
    folder = a.outdir / f"bbb-{width}"
    folder.mkdir(exist_ok=True)
    if carried.is_dir():  # --tiny: the carried frames, smaller
        for path in sorted(carried.glob("*.png"))[:count]:
            img = Image.open(path)
            img.resize((width, round(img.height * width / img.width))).save(folder / path.name)
    else:
        decode_frames(CLIP, folder, count, width)
    return folder


def decode_frames(clip: Path, folder: Path, count: int, width: int) -> None:
    """The first ``count`` frames of ``clip``, ``width`` px wide, as PNGs in ``folder``."""
    import av
    from PIL import Image

    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == count:
                break
            img = frame.to_image()
            height = round(img.height * width / img.width)
            img.resize((width, height), Image.Resampling.LANCZOS).save(folder / f"{i:04d}.png")


def _strip(paths: list[Path]) -> Any:
    """The first, middle and last frames side by side."""
    from PIL import Image

    picks = [paths[0], paths[len(paths) // 2], paths[-1]]
    images = [Image.open(p).convert("RGB") for p in picks]
    w, h = images[0].size
    sheet = Image.new("RGB", (w * len(images), h))
    for i, img in enumerate(images):
        sheet.paste(img, (i * w, 0))
    return sheet


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# --- the report ---------------------------------------------------------------------------------


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str))
    lines = [f"# impasto GPU check, {report['started']}", ""]
    env = report["sections"].get("env", {}).get("figures", {})
    if env:
        lines += [
            f"- GPU: {env.get('gpu', 'none')} ({env.get('gpu_memory_gib', '?')} GiB, "
            f"capability {env.get('capability', '?')}), driver {env.get('driver', '?')}",
            f"- torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), "
            f"Python {env.get('python')}, {env.get('machine')}",
            f"- command: `{report['command']}`",
            "",
        ]
    lines += ["| section | status | seconds | figures |", "| --- | --- | ---: | --- |"]
    for name, s in report["sections"].items():
        figures = json.dumps(s.get("figures", {}), default=str)
        if len(figures) > 600:
            figures = figures[:600] + "…"
        why = f" ({s['error']})" if s.get("error") else ""
        lines.append(f"| {name} | {s['status']}{why} | {s.get('seconds', 0):.0f} | `{figures}` |")
    lines += ["", "| check | value | target | |", "| --- | ---: | --- | --- |"]
    for name, s in report["sections"].items():
        for c in s.get("checks", []):
            mark = "met" if c["met"] else ("FAILED" if c["hard"] else "missed")
            value = f"{c['value']:.3g}"
            lines.append(f"| {name}: {c['name']} | {value} | {c['op']} {c['target']} | {mark} |")
    lines += ["", f"**Verdict: {report['verdict']}** (exit {report['exit']})", ""]
    (out / "gpu.md").write_text("\n".join(lines))


def parent(a: argparse.Namespace) -> int:
    a.outdir.mkdir(parents=True, exist_ok=True)
    r = Run(a)
    wanted = [s for s in SECTIONS if s in a.only] if a.only else list(SECTIONS)
    wanted = [s for s in wanted if s not in a.skip]
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": shlex.join(sys.argv),
        "device": a.device,
        "tiny": a.tiny,
        "sections": {},
    }
    overall = time.perf_counter()
    for name in wanted:
        r.say(f"\n=== {name} ===")
        start = time.perf_counter()
        entry: dict[str, Any]
        try:
            entry = RUNNERS[name](r)
            hard = [c for c in entry["checks"] if c["hard"] and not c["met"]]
            entry["status"] = "failed" if hard else "ok"
            if hard:
                entry["error"] = "; ".join(c["name"] for c in hard)
        except SectionFailed as e:
            entry = {"status": "failed", "error": str(e), "figures": e.figures, "checks": []}
        except Exception as e:  # a section's failure is a figure of the report, not the end
            entry = {"status": "failed", "error": f"{type(e).__name__}: {e}", "checks": []}
        entry["seconds"] = round(time.perf_counter() - start, 1)
        report["sections"][name] = entry
        r.say(f"{name}: {entry['status']} in {entry['seconds']:.0f} s")
        r.say(json.dumps(entry.get("figures", {}), default=str)[:3000])
        for c in entry["checks"]:
            r.say(f"  {c['name']}: {c['value']:.4g} (target {c['op']} {c['target']})"
                  f" {'met' if c['met'] else 'MISSED'}")  # fmt: skip
        if entry.get("error"):
            r.say(f"  error: {entry['error']}")
        report["seconds"] = round(time.perf_counter() - overall, 1)
        failed = any(s["status"] == "failed" for s in report["sections"].values())
        missed = any(not c["met"] for s in report["sections"].values() for c in s["checks"])
        report["exit"] = 1 if failed else 4 if missed else 0
        report["verdict"] = (
            "a check failed" if failed else "a target was missed" if missed else "all met"
        )
        write_report(a.outdir, report)
    r.say(f"\nverdict: {report['verdict']} in {report['seconds']:.0f} s; see {a.outdir}/gpu.md")
    return int(report["exit"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("outdir", type=Path)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--tiny", action="store_true", help="toy sizes (to check this script)")
    p.add_argument("--only", type=lambda s: s.split(","), default=None, help="sections to run")
    p.add_argument("--skip", type=lambda s: s.split(","), default=[], help="sections to leave out")
    p.add_argument("--pytest-args", default=None, help='the fast tests (default: -m "not slow")')
    p.add_argument("--tests-timeout", type=float, default=300)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    for name in [*(a.only or []), *a.skip]:
        if name not in SECTIONS:
            p.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
    if a.child:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        figures = {"big": child_big, "video": child_video}[a.child](a)
        print("RESULT " + json.dumps(figures), flush=True)
        return 0
    return parent(a)


if __name__ == "__main__":
    sys.exit(main())
