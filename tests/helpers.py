"""The tests' shared helpers (fixtures are in conftest.py): impasto in a child process, waiting
with a deadline, and tensor comparison.

Every wait has a deadline and fails saying what it waited for; nothing here measures time.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode

from impasto import imageio
from impasto.jobs.spec import JobSpec
from impasto.jobs.store import FINISHED, Job

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # the photo and paintings bundled

# A child impasto: one thread (the tests run several at once on two cores) and warnings as errors.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
TIMEOUT = 300.0  # seconds: generous for a loaded two-core machine; only a hang gets near it
WAIT = 60.0  # seconds for a studio job to get somewhere: generous, for a loaded two-core machine
PYTHON_M = (sys.executable, "-m", "impasto")


def installed_script() -> list[str]:
    """The ``impasto`` script pip installed next to this interpreter (or, where impasto was
    installed into a folder of its own, as benchmarks/gpu_check.sh does, the one on PATH)."""
    script = Path(sys.executable).parent / "impasto"
    found = str(script) if script.is_file() else shutil.which("impasto")
    assert found, f"{script} is missing: is impasto installed in this environment?"
    return [found]


def run_impasto(
    *args: object,
    cwd: Path | None = None,
    command: Sequence[str] = PYTHON_M,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``impasto ARGS`` (``python -m impasto`` unless ``command`` says otherwise) to its end,
    its output captured."""
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        env=ENV if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        check=False,
    )


@contextmanager
def impasto_process(
    args: Sequence[object],
    cwd: Path,
    env: dict[str, str] | None = None,
    command: Sequence[str] = PYTHON_M,
) -> Iterator[subprocess.Popen[str]]:
    """``impasto ARGS`` (``python -m impasto`` unless ``command`` says otherwise) in ``cwd``,
    started and left running, its output piped; killed on leaving the block if it is still
    running then (a test that failed half way)."""
    proc = subprocess.Popen(
        [*command, *map(str, args)],
        cwd=cwd,
        env=ENV if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[str, str]:
    """Wait for ``proc`` to end; its (stdout, stderr). Past ``timeout`` seconds it raises
    :class:`subprocess.TimeoutExpired` (and :func:`impasto_process` kills it)."""
    return proc.communicate(timeout=timeout)


def signal_at_first_step(
    args: Sequence[object], cwd: Path, signum: int, steps: str = "out_steps"
) -> tuple[int, str, str]:
    """Run ``impasto ARGS`` (which saves every step into ``cwd/steps``), send it ``signum`` once
    its first step is saved (frames appear by atomic rename: complete when seen), and wait for
    it to end: (exit status, stdout, stderr)."""
    with impasto_process(args, cwd) as proc:
        first = cwd / steps / "00001.png"
        wait_until(first.exists, "the first saved step", proc=proc)
        proc.send_signal(signum)
        stdout, stderr = finish(proc)
    return proc.returncode, stdout, stderr


def next_line(stream: IO[str] | None, what: str, timeout: float = TIMEOUT) -> str:
    """The next line of ``stream`` (a child's piped output); fails naming ``what`` it waited for
    when none has come in ``timeout`` seconds (the reading thread ends once the child is
    killed)."""
    assert stream is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise AssertionError(f"{what}: no line after {timeout:g} s")
    return lines[0]


def wait_until(
    check: Callable[[], T],
    what: str,
    *,
    ok: Callable[[T], object] = bool,
    timeout: float = TIMEOUT,
    proc: subprocess.Popen[str] | None = None,
    every: float = 0.02,
) -> T:
    """Call ``check`` until ``ok`` holds for what it returns (by default: until that is true),
    and return that. Fails, naming ``what`` it waited for and the last value seen, when
    ``timeout`` seconds pass first, or when ``proc`` (the process that should get there) ends
    first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if ok(value):
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"the process ended (exit {proc.returncode}) before {what}: {out}{err}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout:g} s (last seen: {value!r})")
        time.sleep(every)


class Client(Protocol):
    """A client of the studio's JSON API (FastAPI's TestClient, an httpx.Client)."""

    def get(self, url: str) -> Any: ...

    def post(self, url: str, **kwargs: Any) -> Any: ...


TINY = {"size": 32, "iterations": 3, "seed": 1}  # a studio job that takes a moment
MakeClient = Callable[..., "TestClient"]  # serve/conftest.py's make_client: a fresh app's client


def image_bytes(path: Path, fmt: str = "PNG") -> bytes:
    """An image file's pixels, encoded anew (as an upload)."""
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


def submit(
    client: Client,
    content: Path | bytes | None = None,
    styles: tuple[Path | bytes, ...] = (),
    options: dict[str, Any] | str | None = None,
    headers: dict[str, str] | None = None,
    **form: Any,
) -> Any:
    """POST a studio job: images as files (or bytes), options as JSON, more form fields; the
    response."""
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    if content is not None:
        data = content if isinstance(content, bytes) else content.read_bytes()
        files.append(("content", ("photo.png", data, "image/png")))
    for i, style in enumerate(styles):
        data = style if isinstance(style, bytes) else style.read_bytes()
        files.append(("styles", (f"painting{i}.png", data, "image/png")))
    if options is not None:
        form["options"] = options if isinstance(options, str) else json.dumps(options)
    return client.post("/api/jobs", files=files or None, data=form, headers=headers)


def events(text: str) -> list[tuple[int, dict[str, Any]]]:
    """The (id, data) of each event in a Server-Sent Events body."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            out.append((int(fields["id"]), json.loads(fields["data"])))
    return out


def job_status(client: Client, job_id: str) -> dict[str, Any]:
    """A studio job's status, as the API gives it."""
    status: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
    return status


def wait_for_job(
    client: Client,
    job_id: str,
    states: Collection[str] = FINISHED,
    *,
    ok: Callable[[dict[str, Any]], object] | None = None,
    what: str | None = None,
    timeout: float = WAIT,
) -> dict[str, Any]:
    """Poll a studio job's status until it is in one of ``states`` (default: finished) and
    ``ok`` holds for it; that status. Fails saying so after ``timeout`` seconds."""
    return wait_until(
        lambda: job_status(client, job_id),
        what or f"job {job_id} {' or '.join(states)}" + (" and as expected" if ok else ""),
        ok=lambda s: s["state"] in states and (ok is None or ok(s)),
        timeout=timeout,
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones included): a file's bytes, None for a folder."""
    return {
        p.relative_to(folder).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def dead_pid() -> int:
    """A process id that no process has now (a child that has exited and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    return int(proc.stdout)


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    """Like torch.testing.assert_close, without its one-second import of torch.distributed."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    worst = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"max |difference| {worst}"


# --- the studio in a browser ---------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # what a browser test waits for a page to get somewhere


def needs_chromium() -> None:
    """Skip (a developer without root) or fail (root, CI: make test installs it) without
    Debian's Chromium, which the browser tests drive (Playwright cannot download its own)."""
    if CHROMIUM.is_file():
        return
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium)")
    pytest.skip(f"needs {CHROMIUM}: run `make test` as root, or `apt-get install chromium`")


def start_studio(data_dir: Path) -> tuple[str, subprocess.Popen[str]]:
    """``impasto serve`` on a free loopback port, its jobs in ``data_dir``: (its URL, the
    process), once it answers."""
    proc = subprocess.Popen(
        [
            *installed_script(),
            "serve",
            "--port",
            "0",
            "--max-size",
            "128",
            "--max-iterations",
            "50",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        line = next_line(proc.stdout, "the server's address")
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"no URL in {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
        url = found.group(0)
        # The socket listens before the app has started: wait for an answer.
        wait_until(lambda: _answers(url + "api/options"), "an answer", proc=proc, every=0.1)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return url, proc


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


# --- GPU paths proven on the CPU ---------------------------------------------------------------

CUDA = torch.cuda.is_available()
on_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (none here)")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, on_cuda])]


class HostAllocations(TorchFunctionMode):
    """Records every tensor factory called without a device: on a GPU run each would be a tensor
    on the host (and a copy, or a synchronisation, to use it)."""

    def __init__(self, ours_only: bool = False) -> None:
        super().__init__()
        self.factories = _device_constructors()
        self.calls: list[str] = []
        self.ours_only = ours_only  # only calls made by impasto's own code

    # Tensors made from Python data: on a GPU each is a copy from the host, whatever the device.
    FROM_HOST = (torch.Tensor.new_tensor,)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if (func in self.factories and kwargs.get("device") is None) or func in self.FROM_HOST:
            where = traceback.extract_stack(limit=3)[0]
            name = getattr(func, "__name__", str(func))
            if not self.ours_only or f"{os.sep}impasto{os.sep}" in where.filename:
                self.calls.append(f"{name} at {where.filename}:{where.lineno}")
        return func(*args, **kwargs)


class HostReads(TorchDispatchMode):
    """Counts the values read back to the host (``.item()``, ``bool(t)``, ``float(t)``, indexing
    with a 0-dim tensor ...): each makes the host wait for a GPU, and none may be captured in a
    CUDA graph. Works on the CPU, so the GPU's waits are proven absent here."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads += 1
        return func(*args, **(kwargs or {}))


# --- clips with a known motion -------------------------------------------------------------------

SIZE = (48, 32)  # the video tests' frames
STEP = 2  # pixels the camera pans per frame
SHOT_SIZE = (64, 48)  # the cut tests' frames: big enough for the flow to find its way


def pan_frames(count: int, size: tuple[int, int] = SIZE, step: int = STEP) -> list[np.ndarray]:
    """Frames of a camera panning right over a photo, ``step`` pixels a frame: frame k shows
    columns k*step .. k*step + W of the photo, so its true backward flow is (+step, 0)."""
    w, h = size
    photo = imageio.load_image(EXAMPLES / "tubingen.jpg")
    wide = np.asarray(imageio.resize_to(photo, (w + step * count, h)))
    return [np.ascontiguousarray(wide[:, k * step : k * step + w]) for k in range(count)]


def two_shots(first: int = 4, second: int = 3) -> list[np.ndarray]:
    """A pan over tubingen.jpg, then a pan over shipwreck.jpg: a cut at frame ``first``."""
    a = pan_frames(first, size=SHOT_SIZE)
    photo = imageio.load_image(EXAMPLES / "shipwreck.jpg")
    wide = np.asarray(imageio.resize_to(photo, (SHOT_SIZE[0] + 2 * second, SHOT_SIZE[1])))
    b = [np.ascontiguousarray(wide[:, 2 * k : 2 * k + SHOT_SIZE[0]]) for k in range(second)]
    return a + b


def queued_jobs(specs: Sequence[JobSpec]) -> list[Job]:
    """The store's rows of planned ``specs`` as they stand before any run (queued, no times)."""
    return [
        Job(
            id=s.id,
            seq=k,
            inputs={},
            options=dict(s.options),
            output=s.output,
            labels=dict(s.labels),
            state="queued",
            attempts=0,
            worker=None,
            device=None,
            lease=None,
            created=0.0,
            started=None,
            finished=None,
            seconds=None,
            terms=None,
            error=None,
        )
        for k, s in enumerate(specs)
    ]
