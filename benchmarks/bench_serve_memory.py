"""The studio's memory under large uploads: many posts at once of an image that is small on the wire
but large once decoded (a flat 7000x7000 PNG: 49 MP, under the default 50 MP limit, about 150 KB).

Starts ``impasto serve`` (its own process, a fresh data folder), runs one small job so that the
network is loaded, then posts ``--posts`` jobs at once, each with the large PNG as its photo
(``size`` 32, one iteration, so that the jobs themselves are small), waits for them all, and
reads the server's memory from ``/proc``: resident before the posts, the peak (``VmHWM``) and
resident after.

    python benchmarks/bench_serve_memory.py                 # 8 posts of a 49 MP PNG
    python benchmarks/bench_serve_memory.py --posts 16 --side 7000 --format JPEG

Prints one line per figure; nothing here is a test.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = json.dumps({"size": 32, "iterations": 1, "seed": 1})


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) // 1024
    return out


def _post(url: str, photo: bytes, name: str) -> tuple[int, dict[str, object]]:
    boundary = uuid.uuid4().hex
    parts = [
        ("options", None, OPTIONS.encode()),
        ("style_examples", None, b"starry_night"),
        ("content", name, photo),
    ]
    body = io.BytesIO()
    for field, filename, data in parts:
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name={field}".encode())
        if filename:
            body.write(f'; filename="{filename}"\r\nContent-Type: image/png'.encode())
        body.write(b"\r\n\r\n" + data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        url + "api/jobs",
        data=body.getvalue(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wait(url: str, job_id: str) -> str:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}api/jobs/{job_id}", timeout=60) as r:
            state = json.loads(r.read())["state"]
        if state in ("done", "failed", "cancelled"):
            return str(state)
        time.sleep(0.2)
    raise TimeoutError(job_id)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--posts", type=int, default=8, help="posts at once")
    p.add_argument("--side", type=int, default=7000, help="the square image's side in pixels")
    p.add_argument("--format", default="PNG", choices=["PNG", "JPEG"])
    args = p.parse_args()

    buf = io.BytesIO()
    Image.new("RGB", (args.side, args.side), (120, 90, 60)).save(buf, format=args.format)
    photo = buf.getvalue()
    small = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(small, format="PNG")

    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "impasto", "serve", "--port", "0", "--data-dir", tmp + "/d"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            found = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
            assert found, "the server printed no address"
            url = found.group(0)
            for _ in range(100):  # the socket listens before the app has started
                try:
                    urllib.request.urlopen(url + "api/options", timeout=5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            status, job = _post(url, small.getvalue(), "small.png")  # loads the network
            assert status == 202, job
            _wait(url, str(job["id"]))
            before = _memory(proc.pid)
            started = time.monotonic()
            with ThreadPoolExecutor(args.posts) as pool:
                answers = list(
                    pool.map(lambda i: _post(url, photo, f"big{i}.png"), range(args.posts))
                )
            posted = time.monotonic() - started
            states = [_wait(url, str(j["id"])) for s, j in answers if s == 202]
            after = _memory(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
    mb = len(photo) / 2**20
    print(f"posts: {args.posts} x {args.side}x{args.side} {args.format} ({mb:.2f} MB each)")
    print(f"answers: {sorted(s for s, _ in answers)}; jobs: {sorted(states)}; {posted:.1f} s")
    print(f"server RSS before: {before['VmRSS']} MiB")
    print(f"server peak RSS:   {after['VmHWM']} MiB")
    print(f"server RSS after:  {after['VmRSS']} MiB")


if __name__ == "__main__":
    main()
