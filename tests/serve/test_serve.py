"""``impasto serve``: the JSON API through FastAPI's test client, the job queue, the command.

Jobs are real transfers with the real weights at 32 px and a few iterations; the network is
loaded once per session (the ``vgg19`` fixture, lent to every app by this folder's conftest)
instead of once per app. Masks are in test_serve_regions.py, the job store (restarts,
retention, storage deleted under the server) in test_serve_store.py.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from PIL import Image

import impasto.serve
from helpers import (
    EXAMPLES,
    TINY,
    WAIT,
    MakeClient,
    events,
    image_bytes,
    submit,
    wait_for_job,
    wait_until,
)
from impasto import cli
from impasto.config import TransferConfig, choices
from impasto.optimize import Transfer
from impasto.serve import intake, jobs
from impasto.serve.app import Settings, create_app
from impasto.serve.intake import Limits
from impasto.serve.settings import is_loopback

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and says so once, at import.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient


# --- options ------------------------------------------------------------------------------------


def test_options_are_the_configs(client: TestClient) -> None:
    info = client.get("/api/options").json()
    by_name = {o["name"]: o for o in info["options"]}
    config = TransferConfig()
    for name in ("optimizer", "preserve_colors", "pooling", "style_loss", "content_loss"):
        assert by_name[name]["choices"] == list(choices(name) or ())
        assert by_name[name]["default"] == getattr(config, name)
    assert by_name["style_layers"]["default"] == list(config.style_layers)
    assert by_name["init"]["choices"] == ["content", "noise", "style"]
    assert by_name["style_weight"]["help"].startswith("β")
    # Every field has a label and a line of help for the page (no flags, no FILE, no raw name).
    for name, opt in by_name.items():
        assert opt["label"] and opt["label"] != name and opt["tip"], name
        assert "--" not in opt["tip"] and "FILE" not in opt["tip"], name
        assert opt["group"] in ("main", "more", "slider"), name
    assert by_name["size"]["label"] == "Size (px)" and by_name["size"]["group"] == "main"
    assert {by_name[n]["group"] for n in ("content_weight", "style_weight")} == {"slider"}
    # Server settings are not job options; the defaults respect this server's limits.
    assert not {"device", "weights", "weights_format", "model"} & set(by_name)
    assert by_name["size"]["default"] == 64
    assert info["limits"]["max_size"] == 64
    ratio = info["style_strength"]
    assert ratio["default_ratio"] == config.content_weight / config.style_weight
    assert ratio["decades"] > 0
    assert info["examples"] == ["shipwreck", "starry_night", "the_scream", "tubingen"]
    assert client.get("/api/examples/tubingen").headers["content-type"] == "image/jpeg"
    assert client.get("/api/examples/..%2Fpyproject").status_code == 404


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "impasto studio" in page.text
    assert client.get("/static/studio.js").status_code == 200
    assert client.get("/static/studio.css").status_code == 200
    assert client.get("/static/brush.js").status_code == 200
    assert client.get("/static/../jobs.py").status_code == 404


# --- a job from start to result -----------------------------------------------------------------


@pytest.mark.slow
def test_job_streams_progress_then_result(
    client: TestClient, content_path: Path, style_path: Path
) -> None:
    r = submit(client, content_path, (style_path,), {**TINY, "iterations": 4})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["state"] in ("queued", "running")
    assert job["content"] == "photo.png" and job["styles"] == ["painting0.png"]

    stream = client.get(job["events_url"])
    assert stream.headers["content-type"].startswith("text/event-stream")
    seen = events(stream.text)
    ids = [i for i, _ in seen]
    assert ids == sorted(set(ids))
    states = [s["state"] for _, s in seen]
    assert states[0] == "queued" and states[-1] == "done"
    running = [s for _, s in seen if s["state"] == "running" and s["iteration"] > 0]
    assert [s["iteration"] for s in running] == [1, 2, 3, 4]  # preview_every=1: each one
    assert all(s["loss"] > 0 and s["terms"]["style"] > 0 for s in running)
    assert running[-1]["loss"] < running[0]["loss"]

    done = seen[-1][1]
    assert done["iteration"] == done["iterations"] == 4
    assert done["options"]["size"] == 32 and done["options"]["seed"] == 1
    preview = client.get(done["preview_url"])
    assert preview.headers["content-type"] == "image/jpeg"
    result = client.get(done["result_url"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert 'filename="photo__painting0.png"' in result.headers["content-disposition"]
    assert done["download_name"] == "photo__painting0.png"
    with Image.open(io.BytesIO(result.content)) as img:
        assert max(img.size) == 32
        meta = {k: str(v) for k, v in img.info.items()}
    assert json.loads(meta["impasto:options"])["iterations"] == 4
    assert json.loads(meta["impasto:inputs"]) == {
        "content": "photo.png",
        "styles": "painting0.png",
    }

    # A reconnecting EventSource (Last-Event-ID) gets nothing twice: the job is over, 204.
    again = client.get(job["events_url"], headers={"Last-Event-ID": str(ids[-1])})
    assert again.status_code == 204
    later = client.get(job["events_url"], params={"after": ids[-2]})
    assert [i for i, _ in events(later.text)] == [ids[-1]]
    assert client.get("/api/jobs").json()[0]["id"] == job["id"]
    # The uploads were decoded in memory and kept as images under names of the server's own,
    # beside the last preview and the result.
    root: Path = client.app.state.jobs.root  # type: ignore[attr-defined]
    kept = sorted(p.name for p in (root / job["id"]).iterdir())
    assert kept == ["content.png", "preview.jpg", "result.png", "style-1.png"]


@pytest.mark.slow
def test_examples_and_several_styles(client: TestClient) -> None:
    r = submit(
        client,
        options={**TINY, "style_blend_weights": [2, 1], "preserve_colors": "luminance"},
        content_example="tubingen",
        style_examples=["starry_night", "the_scream"],
    )
    assert r.status_code == 202, r.text
    done = wait_for_job(client, r.json()["id"])
    assert done["state"] == "done", done
    assert done["content"] == "tubingen.jpg"
    assert done["styles"] == ["starry_night.jpg", "the_scream.jpg"]
    assert done["options"]["preserve_colors"] == "luminance"


@pytest.mark.slow
def test_same_client_token_gives_the_same_job(client: TestClient) -> None:
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    first = submit(client, options=TINY, client_token="abc", **form)
    second = submit(client, options=TINY, client_token="abc", **form)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get("/api/jobs").json()) == 1


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, form, message",
    [
        ({"sise": 32}, {}, "Unknown option 'sise'; did you mean size?"),
        ({"size": "big"}, {}, "Size must be an integer"),
        ({"size": True}, {}, "Size must be an integer"),
        ({"style_weight": [1]}, {}, "Painting weight must be a number"),
        ({"size": 65}, {}, "Size 65 px is over this server's limit of 64 px"),
        ({"iterations": 501}, {}, "Iterations 501 is over this server's limit of 500"),
        ({"style_scale": 3}, {}, "Painting scale 3 makes the paintings"),
        ({"optimizer": "adma"}, {}, "did you mean adam?"),
        ({"style_loss": "slised"}, {}, "did you mean sliced?"),
        ({"content_loss": "similarity"}, {}, "did you mean self-similarity?"),
        ({"style_layers": "conv9_1"}, {}, "conv9_1"),
        ({"weights": "/etc/passwd"}, {}, "Weights file is set by the server"),
        ({"device": "cuda"}, {}, "Device is set by the server"),
        ({"init": "/etc/passwd"}, {}, "Init must be one of content, noise, style"),
        ({"seed": -1}, {}, "Seed must be between"),
        ({"style_blend_weights": [1, 2]}, {}, "2 values for 1 style images"),
        ("[1, 2]", {}, "Options must be a JSON object"),
        ("{size: 3", {}, "Options must be a JSON object"),
        ('{"style_weight": NaN}', {}, "finite number"),
        ({}, {"style_examples": []}, "Give at least one style image"),
        ({}, {"content_example": None}, "Give a content image"),
        ({}, {"content_example": "mona_lisa"}, "No example 'mona_lisa'; choose from shipwreck"),
        ({}, {"style_examples": ["starry_night"] * 5}, "5 style images; this server takes 4"),
    ],
)
def test_invalid_requests_get_422_with_a_reason(
    client: TestClient, options: dict[str, Any] | str, form: dict[str, Any], message: str
) -> None:
    form = {"content_example": "tubingen", "style_examples": ["starry_night"], **form}
    form = {k: v for k, v in form.items() if v is not None}
    r = submit(client, options=options, **form)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header (and has no pixels)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_uploads_that_are_not_usable_images(
    make_client: MakeClient, content_path: Path, style_path: Path
) -> None:
    client = make_client(max_upload_bytes=20_000, max_pixels=60 * 60)
    good = image_bytes(style_path)
    cases = {
        b"%PDF-1.4 not a picture": "'photo.png' is not an image",
        b"": "'photo.png' is empty",
        image_bytes(content_path)[:200]: "truncated or corrupt",
        png_header(100_000, 100_000): "too large to decode safely",
        png_header(64, 64): "the limit is 3,600 pixels",
    }
    for data, message in cases.items():
        r = submit(client, data, (good,), TINY)
        assert r.status_code == 422, (message, r.text)
        assert message in r.json()["detail"]
    # Over the byte limit per file: 413, naming the file.
    big = image_bytes(EXAMPLES / "tubingen.jpg", "BMP")
    assert len(big) > 20_000
    r = submit(client, good, (big,), TINY)
    assert r.status_code == 413
    assert "'painting0.png' is" in r.json()["detail"] and "MB per image" in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


def test_oversized_requests_get_413_before_they_are_read(make_client: MakeClient) -> None:
    client = make_client(max_upload_bytes=10_000, max_styles=1)  # requests up to ~1.04 MB
    huge = b"x" * 1_100_000
    r = client.post("/api/jobs", files={"content": ("a.png", huge, "image/png")})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"--b\r\nContent-Disposition: form-data; name=content; filename=a\r\n\r\n"
        for _ in range(20):
            yield b"x" * 100_000

    headers = {"content-type": "multipart/form-data; boundary=b"}
    r = client.post("/api/jobs", content=chunks(), headers=headers)
    assert r.status_code == 413


def test_requests_made_by_other_sites_are_refused(make_client: MakeClient) -> None:
    client = make_client(loopback_only=True)
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    # A form on another site may post here without asking (no CORS preflight for forms).
    r = submit(client, options="{size: 3", **form, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "another site" in r.json()["detail"]
    # A page of this server may, of course.
    r = submit(client, options="{size: 3", **form, headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 422
    # DNS rebinding: evil.example resolving to 127.0.0.1 still names evil.example.
    r = client.get("/api/jobs", headers={"Host": "evil.example:8000"})
    assert r.status_code == 403 and "127.0.0.1 and localhost only" in r.json()["detail"]
    assert client.get("/api/jobs", headers={"Host": "localhost:8000"}).status_code == 200


# --- the queue ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_jobs_run_one_at_a_time_in_order(make_client: MakeClient) -> None:
    client = make_client(queue_limit=3)
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    long = submit(client, options={**TINY, "iterations": 500}, **form).json()
    wait_for_job(client, long["id"], {"running"})
    queued = [submit(client, options=TINY, **form).json() for _ in range(3)]
    assert [j["position"] for j in queued] == [1, 2, 3]
    full = submit(client, options=TINY, **form)
    assert full.status_code == 429 and full.headers["retry-after"]
    assert "waiting already" in full.json()["detail"]

    assert client.post(f"/api/jobs/{long['id']}/cancel").json()["cancel_requested"]
    finished = [wait_for_job(client, j["id"]) for j in queued]
    assert [j["state"] for j in finished] == ["done"] * 3
    # Each started after the one before had finished.
    ends = [wait_for_job(client, long["id"])["finished"]] + [j["finished"] for j in finished]
    starts = [j["started"] for j in finished]
    assert all(start >= end for start, end in zip(starts, ends, strict=False))
    # The last one saw its place in the queue move up.
    positions = [s["position"] for _, s in events(client.get(queued[2]["events_url"]).text)]
    assert [p for p in positions if p is not None] == [3, 2, 1]


@pytest.mark.slow
def test_cancel_a_running_job_keeps_its_image_so_far(client: TestClient) -> None:
    form = {"content_example": "tubingen", "style_examples": ["the_scream"]}
    job = submit(client, options={**TINY, "iterations": 500}, **form).json()
    waiting = submit(client, options=TINY, **form).json()
    wait_for_job(client, job["id"], {"running"}, ok=lambda s: s["iteration"] >= 1)

    # A queued job leaves the queue at once and never runs.
    gone = client.post(f"/api/jobs/{waiting['id']}/cancel").json()
    assert gone["state"] == "cancelled" and gone["position"] is None
    assert client.get(f"/api/jobs/{waiting['id']}/result").status_code == 409

    client.post(f"/api/jobs/{job['id']}/cancel")
    done = wait_for_job(client, job["id"])
    assert done["state"] == "cancelled" and done["error"] is None
    assert 1 <= done["iteration"] < 500
    result = client.get(done["result_url"])
    assert result.status_code == 200
    with Image.open(io.BytesIO(result.content)) as img:
        assert 1 <= int(img.info["impasto:iterations"]) < 500
    # Cancelling again, or a finished job, changes nothing.
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    assert wait_for_job(client, waiting["id"])["started"] is None
    assert client.post("/api/jobs/0123456789abcdef/cancel").status_code == 404


@pytest.mark.slow
def test_failing_jobs_report_why_and_the_worker_goes_on(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    # A real failure: the loss overflows float32 at the first step.
    diverged = submit(client, options={**TINY, "style_weight": 1e38}, **form).json()
    failed = wait_for_job(client, diverged["id"])
    assert failed["state"] == "failed"
    assert failed["error"].startswith("The loss became inf at iteration 1")
    assert "--" not in failed["error"] and "smaller Painting weight" in failed["error"]
    assert client.get(f"/api/jobs/{diverged['id']}/result").status_code == 409

    # A bug (which cannot be made on demand, hence the fake): one line, and the worker lives.
    def broken(self: object, on_step: object = None) -> None:
        raise ValueError("something unforeseen")

    with monkeypatch.context() as patched:
        patched.setattr(Transfer, "run", broken)
        bug = wait_for_job(client, submit(client, options=TINY, **form).json()["id"])
    assert bug["error"] == "Unexpected error: ValueError: something unforeseen"
    ok = wait_for_job(client, submit(client, options=TINY, **form).json()["id"])
    assert ok["state"] == "done"


@pytest.mark.slow
def test_old_results_are_forgotten_with_their_files(make_client: MakeClient) -> None:
    client = make_client(keep=2)
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    ids = []
    for _ in range(3):
        ids.append(submit(client, options=TINY, **form).json()["id"])
        wait_for_job(client, ids[-1])
    root: Path = client.app.state.jobs.root  # type: ignore[attr-defined]
    assert client.get(f"/api/jobs/{ids[0]}").status_code == 404
    assert client.get(f"/api/jobs/{ids[0]}/events").status_code == 404
    assert sorted(p.name for p in root.iterdir()) == sorted(ids[1:])
    assert [j["id"] for j in client.get("/api/jobs").json()] == ids[:0:-1]


def test_unknown_jobs_are_404(client: TestClient) -> None:
    for path in ("", "/events", "/preview", "/result"):
        r = client.get(f"/api/jobs/nope{path}")
        assert r.status_code == 404, path
        assert "no " in r.json()["detail"]


# --- a real server: clients that go away ----------------------------------------------------------


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, jobs.JobManager]]:
    """The app under uvicorn on a free loopback port, in a thread."""
    import uvicorn

    app = create_app(Settings(limits=Limits(max_size=64), preview_every=1, data_dir=tmp_path))
    sock = impasto.serve._listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start", timeout=WAIT)
    port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}", app.state.jobs
    app.state.jobs.stop()
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_a_client_leaving_mid_stream_loses_and_duplicates_nothing(
    live_server: tuple[str, jobs.JobManager],
) -> None:
    url, manager = live_server
    with httpx.Client(base_url=url, timeout=WAIT) as http:
        form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
        job = http.post(
            "/api/jobs", data={**form, "options": json.dumps(TINY | {"iterations": 40})}
        )
        job_id = job.json()["id"]
        seen: list[int] = []
        with http.stream("GET", f"/api/jobs/{job_id}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                if len(seen) == 3:
                    break  # and hang up mid-job
        ended = manager.wait(job_id, WAIT)
        assert ended is not None and ended.state == "done", ended
        # Resuming where it left off gives each later snapshot exactly once.
        rest = http.get(f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": str(seen[-1])})
        later = [i for i, _ in events(rest.text)]
        assert later and min(later) > seen[-1] and len(later) == len(set(later))
        assert events(rest.text)[-1][1]["state"] == "done"
        assert [j["id"] for j in http.get("/api/jobs").json()] == [job_id]


# --- the command ----------------------------------------------------------------------------------


def test_serve_without_the_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(impasto.serve, "_importable", lambda name: name != "fastapi")
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "impasto: error: " + impasto.serve.EXTRA_HINT
    assert "pip install 'impasto[serve]'" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--max-size", "8"], "--max-size 8 is too small"),
        (["--queue-limit", "0"], "--queue-limit must be a positive number"),
        (["--host", "no.such.host.invalid"], "--host no.such.host.invalid"),
    ],
)
def test_serve_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_serve_on_a_missing_gpu_says_so_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--device", "cuda", "--port", "0"]) == 2
    assert "no CUDA GPU is available here" in capsys.readouterr().err


def test_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    taken = impasto.serve._listen("127.0.0.1", 0)
    with taken:
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"impasto: error: cannot listen on 127.0.0.1:{port}")


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ("127.0.0.1", "::1", "localhost", "127.8.0.1")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.4", "example")))


def test_impasto_help_does_not_import_the_web_stack() -> None:
    code = (
        "import sys, impasto.cli; impasto.cli.build_parser(); print(sorted(m for m in "
        "('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_client_file_names_are_labels_only() -> None:
    assert intake.display_name("../../etc/passwd", "x") == "passwd"
    assert intake.display_name("C:\\Users\\me\\photo.jpg", "x") == "photo.jpg"
    assert intake.display_name("bad\x00\nname.png", "x") == "badname.png"
    assert intake.display_name("", "content image") == "content image"
    assert intake.display_name(None, "style image 1") == "style image 1"
    assert len(intake.display_name("a" * 500, "x")) == 80


def test_intake_coercion_round_trips() -> None:
    """Lists may come as JSON arrays or comma-separated text; numbers as numbers or text."""
    limits = Limits()
    a = intake.parse_options({"style_layers": "conv1_1, conv2_1", "scales": "auto"}, limits, "cpu")
    b = intake.parse_options(
        '{"style_layers": ["conv1_1", "conv2_1"], "size": "512"}', limits, "cpu"
    )
    assert a.style_layers == b.style_layers == ("conv1_1", "conv2_1")
    assert a.scales == (256, 362, 512) and a.device == "cpu"
    assert intake.parse_options(None, Limits(max_size=100), "auto").size == 100


# --- fuzzing the schema -------------------------------------------------------------------------


@pytest.mark.slow
def test_fuzzed_requests_never_get_a_server_error(tmp_path: Path) -> None:
    """Schemathesis generates requests from the app's own OpenAPI schema, valid and invalid; the
    limits keep any job it manages to create tiny, and a short queue answers the rest with 429."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    limits = Limits(max_size=32, max_iterations=2, queue_limit=2, max_upload_bytes=100_000)
    app = create_app(Settings(limits=limits, data_dir=tmp_path))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    validate = [
        not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ]
    # Random ids find no job; one real job lets the job routes answer with more than 404.
    # (No `with`: the client's lifespan would close the job manager when it ends.)
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    real = submit(TestClient(app), options={**TINY, "iterations": 2}, **form).json()
    ended = app.state.jobs.wait(real["id"], WAIT)
    assert ended is not None and ended.state == "done", ended

    def run(strategy: Any) -> None:
        @given(case=strategy)
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=validate)

        fuzz()

    try:
        for found in schema.get_all_operations():
            operation = found.ok()
            run(operation.as_strategy())
            # Invalid requests where there is something to get wrong besides the path (any path
            # string is a valid id; Hypothesis would search for an invalid one and give up).
            if len(operation.query) or len(operation.body):
                run(operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
            if "{job_id}" in operation.path:
                run(operation.as_strategy(path_parameters={"job_id": real["id"]}))
    finally:
        app.state.jobs.close()


def test_uploads_are_decoded_a_few_at_a_time_on_the_same_threads() -> None:
    """However many requests decode at once, at most DECODES_AT_ONCE do, always on the same
    threads (what bounds the server's memory: see intake.DECODES_AT_ONCE)."""
    from concurrent.futures import ThreadPoolExecutor

    buf = io.BytesIO()
    Image.new("RGB", (1200, 900), (9, 99, 199)).save(buf, format="PNG")
    now, most, threads = 0, 0, set()
    lock = threading.Lock()
    decode = intake._decode_upload

    def counted(*args: Any) -> Image.Image:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
            threads.add(threading.get_ident())
        try:
            return decode(*args)
        finally:
            with lock:
                now -= 1

    limits = Limits(max_size=64)
    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(12) as pool:
        mp.setattr(intake, "_decode_upload", counted)
        images = list(
            pool.map(lambda i: intake.decode_upload(buf.getvalue(), f"p{i}", limits, 64), range(24))
        )
    assert all(im.size == (64, 48) for im in images)
    assert most <= intake.DECODES_AT_ONCE and len(threads) <= intake.DECODES_AT_ONCE
