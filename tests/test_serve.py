"""``impasto serve``: the JSON API through FastAPI's test client, the job queue, the command.

Jobs are real transfers with the real weights at 32 px and a few iterations; the network is
loaded once per session (the ``vgg19`` fixture) instead of once per app.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

import impasto.serve
from helpers import WAIT, wait_for_job, wait_until
from impasto import cli, prepare
from impasto.config import TransferConfig, choices
from impasto.optimize import Transfer
from impasto.serve import intake, jobs
from impasto.serve.app import Settings, create_app
from impasto.serve.intake import Limits
from impasto.serve.settings import is_loopback
from impasto.vgg import VGG

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and says so once, at import.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
TINY = {"size": 32, "iterations": 3, "seed": 1}


@pytest.fixture(autouse=True)
def _shared_network(monkeypatch: pytest.MonkeyPatch, vgg19: VGG) -> None:
    """Every app uses the session's VGG-19 (the same weights the worker would load)."""

    def build(config: TransferConfig) -> VGG:
        assert config.pooling == "avg" and config.weights is None
        return vgg19

    monkeypatch.setattr(prepare, "build_network", build)  # what workers' caches call


MakeClient = Callable[..., TestClient]


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


def image_bytes(path: Path, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


def submit(
    client: TestClient,
    content: Path | bytes | None = None,
    styles: tuple[Path | bytes, ...] = (),
    options: dict[str, Any] | str | None = None,
    headers: dict[str, str] | None = None,
    **form: Any,
) -> httpx.Response:
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


# --- options ------------------------------------------------------------------------------------


def test_options_are_the_configs(client: TestClient) -> None:
    info = client.get("/api/options").json()
    by_name = {o["name"]: o for o in info["options"]}
    config = TransferConfig()
    for name in ("optimizer", "preserve_colors", "pooling"):
        assert by_name[name]["choices"] == list(choices(name) or ())
        assert by_name[name]["default"] == getattr(config, name)
    assert by_name["style_layers"]["default"] == list(config.style_layers)
    assert by_name["init"]["choices"] == ["content", "noise", "style"]
    assert by_name["style_weight"]["help"].startswith("β")
    # Server settings are not job options; the defaults respect this server's limits.
    assert not {"device", "weights", "weights_format", "model"} & set(by_name)
    assert by_name["size"]["default"] == 64
    assert info["limits"]["max_size"] == 64
    ratio = info["style_strength"]
    assert ratio["default_ratio"] == config.content_weight / config.style_weight
    assert ratio["min_ratio"] < ratio["default_ratio"] < ratio["max_ratio"]
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
    assert f"impasto-{job['id']}.png" in result.headers["content-disposition"]
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
        ({"sise": 32}, {}, "unknown option 'sise'; did you mean size?"),
        ({"size": "big"}, {}, "option 'size' must be an integer"),
        ({"size": True}, {}, "option 'size' must be an integer"),
        ({"style_weight": [1]}, {}, "option 'style_weight' must be a number"),
        ({"size": 65}, {}, "size 65 is over this server's limit of 64"),
        ({"iterations": 501}, {}, "iterations 501 is over this server's limit of 500"),
        ({"style_scale": 3}, {}, "style_scale 3"),
        ({"optimizer": "adma"}, {}, "did you mean adam?"),
        ({"style_layers": "conv9_1"}, {}, "conv9_1"),
        ({"weights": "/etc/passwd"}, {}, "option 'weights' is set by the server"),
        ({"device": "cuda"}, {}, "option 'device' is set by the server"),
        ({"init": "/etc/passwd"}, {}, "init must be one of content, noise, style"),
        ({"seed": -1}, {}, "seed must be between"),
        ({"style_blend_weights": [1, 2]}, {}, "2 values for 1 style images"),
        ("[1, 2]", {}, "options must be a JSON object"),
        ("{size: 3", {}, "options must be a JSON object"),
        ('{"style_weight": NaN}', {}, "finite number"),
        ({}, {"style_examples": []}, "give at least one style image"),
        ({}, {"content_example": None}, "give a content image"),
        ({}, {"content_example": "mona_lisa"}, "no example 'mona_lisa'; choose from shipwreck"),
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
    big = image_bytes(ROOT / "examples" / "tubingen.jpg", "BMP")
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


# --- regions: masks painted over the photo ------------------------------------------------------


def mask_png(size: tuple[int, int], white: tuple[int, int, int, int] | None) -> bytes:
    """A grayscale PNG of ``size``, black but for the box ``white`` (None: all black)."""
    img = Image.new("L", size, 0)
    if white is not None:
        img.paste(255, white)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def submit_masked(
    client: TestClient,
    masks: list[bytes],
    keep: bytes | None = None,
    styles: tuple[bytes, ...] = (),
    options: dict[str, Any] | None = None,
    **form: Any,
) -> httpx.Response:
    files = [("styles", (f"painting{i}.png", s, "image/png")) for i, s in enumerate(styles)]
    files += [("masks", (f"region{i}.png", m, "image/png")) for i, m in enumerate(masks)]
    if keep is not None:
        files.append(("keep", ("keep.png", keep, "image/png")))
    form = {"content_example": "tubingen", "options": json.dumps(options or TINY), **form}
    return client.post("/api/jobs", files=files or None, data=form)


def texture_png(rgb: tuple[int, int, int], seed: int) -> bytes:
    """A painting of one dominant colour: blotches of it over dark grey, as PNG."""
    blotches = np.random.default_rng(seed).random((16, 16)) > 0.4
    big = np.kron(blotches, np.ones((4, 4), dtype=bool))  # 64x64
    arr = np.where(big[..., None], np.array(rgb), np.array([40, 40, 40])).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_masks_paint_each_region_from_its_style_and_keep_a_part(client: TestClient) -> None:
    red, blue = texture_png((230, 40, 30), 1), texture_png((30, 60, 230), 2)
    # Masks at another size than the photo (64x48): the engine resizes them. The left half is
    # red's, the right half blue's, and the top quarter is kept as the photo.
    left, right = mask_png((32, 24), (0, 0, 16, 24)), mask_png((32, 24), (16, 0, 32, 24))
    top = mask_png((32, 24), (0, 0, 32, 6))
    options = {"size": 64, "iterations": 30, "seed": 5}
    r = submit_masked(client, [left, right], top, styles=(red, blue), options=options)
    assert r.status_code == 202, r.text
    assert r.json()["masks"] == ["region0.png", "region1.png"]
    assert r.json()["keep_mask"] == "keep.png"
    done = wait_for_job(client, r.json()["id"])
    assert done["state"] == "done", done
    assert (done["masks"], done["keep_mask"]) == (["region0.png", "region1.png"], "keep.png")

    result = client.get(done["result_url"])
    with Image.open(io.BytesIO(result.content)) as img:
        meta = {k: str(v) for k, v in img.info.items()}
        out = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert json.loads(meta["impasto:inputs"]) == {
        "content": "tubingen.jpg",
        "styles": "painting0.png,painting1.png",
        "masks": "region0.png,region1.png",
        "keep": "keep.png",
    }
    photo_t = photo_64()
    # The kept top stays the photo (away from its feathered edge); the rest is painted, red on
    # the left and blue on the right.
    assert np.abs(out[:9] - photo_t[:9]).mean() < 3
    below = slice(16, 48)
    lhs, rhs = out[below, :26].reshape(-1, 3).mean(0), out[below, 38:].reshape(-1, 3).mean(0)
    assert (lhs[0] - lhs[2]) > (rhs[0] - rhs[2]) + 30, (lhs, rhs)
    assert np.abs(out[below] - photo_t[below]).mean() > 10


def photo_64() -> np.ndarray:
    """The example photo as the server scales it for size 64 (64x48), as floats."""
    with Image.open(ROOT / "examples" / "tubingen.jpg") as im:
        photo = im.convert("RGB").resize((64, 48), Image.Resampling.LANCZOS)
    return np.asarray(photo, dtype=np.float64)


@pytest.mark.slow
def test_masks_are_kept_with_the_job_and_run_again(make_client: MakeClient, tmp_path: Path) -> None:
    data = tmp_path / "studio"
    first = make_client(data_dir=data)
    left, right = mask_png((32, 24), (0, 0, 16, 24)), mask_png((32, 24), (16, 0, 32, 24))
    top = mask_png((32, 24), (0, 0, 32, 6))
    options = {"size": 64, "iterations": 5, "seed": 5}
    styles = {"style_examples": ["starry_night", "the_scream"]}
    job = submit_masked(first, [left, right], top, options=options, **styles).json()
    assert wait_for_job(first, job["id"])["state"] == "done"
    root: Path = first.app.state.jobs.root  # type: ignore[attr-defined]
    kept = sorted(p.name for p in (root / job["id"]).iterdir())
    assert kept == [
        *("content.png", "keep.png", "mask-1.png", "mask-2.png"),
        *("preview.jpg", "result.png", "style-1.png", "style-2.png"),
    ]
    with Image.open(root / job["id"] / "mask-2.png") as im:
        assert im.size == (32, 24)  # as received: the engine resizes it
        assert im.convert("L").getpixel((24, 12)) == 255 and im.convert("L").getpixel((8, 12)) == 0
    first.__exit__(None, None, None)

    # A new server lists the job with its masks, and runs it again with them.
    second = make_client(data_dir=data)
    listed = second.get(f"/api/jobs/{job['id']}").json()
    assert (listed["masks"], listed["keep_mask"]) == (["region0.png", "region1.png"], "keep.png")
    r = second.post(f"/api/jobs/{job['id']}/rerun")
    assert r.status_code == 202, r.text
    again = wait_for_job(second, r.json()["id"])
    assert again["state"] == "done", again
    assert (again["masks"], again["keep_mask"]) == (["region0.png", "region1.png"], "keep.png")
    with Image.open(io.BytesIO(second.get(again["result_url"]).content)) as img:
        assert json.loads(img.info["impasto:inputs"])["masks"] == "region0.png,region1.png"
        out = np.asarray(img.convert("RGB"), dtype=np.float64)
    photo = photo_64()
    assert np.abs(out[:9] - photo[:9]).mean() < 3  # the kept top: the rerun kept it too
    assert np.abs(out[16:] - photo[16:]).mean() > 5


@pytest.mark.parametrize(
    "masks, keep, form, message",
    [
        ([(0, 0, 32, 24)], None, {}, "1 mask(s) for 2 style image(s): send one per style"),
        ([(0, 0, 9, 9)] * 3, None, {}, "3 mask(s) for 2 style image(s)"),
        ([(0, 0, 16, 24), None], None, {}, "mask 'region1.png' covers nothing (it is all black)"),
        ([], None, {}, None),  # no masks: a plain blend, accepted (see below)
        ([(0, 0, 16, 24)] * 2, None, {"options": {"style_blend_weights": [1, 2]}}, "blend"),
        ([(0, 0, 16, 24), (16, 0, 32, 24)], (0, 0, 16, 24), {}, "covers all of mask 1"),
        ([], (0, 0, 32, 24), {}, "the kept region covers the whole photo"),
        ([], None, {"keep_": b"%PDF not a picture"}, "'keep.png' is not an image"),
    ],
)
def test_masks_that_cannot_work_get_422_with_a_reason(
    client: TestClient,
    masks: list[tuple[int, int, int, int] | None],
    keep: tuple[int, int, int, int] | None,
    form: dict[str, Any],
    message: str | None,
) -> None:
    data = form.pop("keep_", None)
    keep_png = data if data is not None else (mask_png((32, 24), keep) if keep else None)
    styles = {"style_examples": ["starry_night", "shipwreck"]}
    r = submit_masked(client, [mask_png((32, 24), m) for m in masks], keep_png, **styles, **form)
    if message is None:
        assert r.status_code == 202, r.text
        assert r.json()["masks"] == [] and r.json()["keep_mask"] is None
        client.post(f"/api/jobs/{r.json()['id']}/cancel")
        return
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


def test_masks_over_the_byte_limit_get_413(make_client: MakeClient) -> None:
    client = make_client(max_upload_bytes=20_000)
    noise = Image.effect_noise((200, 200), 100)  # incompressible: a large PNG
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    assert len(buf.getvalue()) > 20_000
    r = submit_masked(client, [buf.getvalue()], style_examples=["starry_night"])
    assert r.status_code == 413
    assert "'region0.png' is" in r.json()["detail"] and "MB per image" in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


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
    assert failed["error"].startswith("the loss became inf at iteration 1")
    assert client.get(f"/api/jobs/{diverged['id']}/result").status_code == 409

    # A bug (which cannot be made on demand, hence the fake): one line, and the worker lives.
    def broken(self: object, on_step: object = None) -> None:
        raise ValueError("something unforeseen")

    with monkeypatch.context() as patched:
        patched.setattr(Transfer, "run", broken)
        bug = wait_for_job(client, submit(client, options=TINY, **form).json()["id"])
    assert bug["error"] == "unexpected error: ValueError: something unforeseen"
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


# --- hostile but fair: storage deleted under the server, jobs that can only fail -----------------


@pytest.mark.slow
def test_a_deleted_storage_folder_is_made_again_and_lost_results_are_gone(
    client: TestClient,
) -> None:
    import shutil

    root = client.app.state.jobs.root  # type: ignore[attr-defined]
    first = submit(client, options=TINY, content_example="tubingen", style_examples=["shipwreck"])
    assert first.status_code == 202, first.text
    assert wait_for_job(client, first.json()["id"])["state"] == "done"
    shutil.rmtree(root)  # a /tmp cleaner on a long-running server
    r = client.get(f"/api/jobs/{first.json()['id']}/result")
    assert r.status_code == 410, r.text
    assert "gone" in r.json()["detail"]
    again = submit(client, options=TINY, content_example="tubingen", style_examples=["shipwreck"])
    assert again.status_code == 202, again.text
    assert wait_for_job(client, again.json()["id"])["state"] == "done"
    assert client.get(f"/api/jobs/{again.json()['id']}/result").status_code == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 16, "style_scale": 0.05}, "less than 16 px on its short side"),
        ({"size": 64, "iterations": 10**12}, "--iterations must be between 1 and"),
        ({"size": 64, "style_weight": 1e300}, "--style-weight must be between 0 and"),
        ({"size": 64, "scales": list(range(16, 64))}, "stages"),
    ],
)
def test_a_job_that_could_only_fail_is_refused(
    client: TestClient, options: dict[str, Any], message: str
) -> None:
    r = submit(client, options=options, content_example="tubingen", style_examples=["shipwreck"])
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    ("size", "shown"),
    [(20 * 2**20, "20 MB"), (20 * 2**20 + 1, "20.1 MB"), (21_000_000, "20.1 MB"), (1, "0.1 MB")],
)
def test_sizes_over_a_limit_never_read_as_the_limit(size: int, shown: str) -> None:
    assert intake.megabytes(size) == shown


# --- a restart: the store keeps the jobs -----------------------------------------------------


@pytest.mark.slow
def test_recent_jobs_survive_a_restart_and_interrupted_ones_run_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    import sqlite3

    data = tmp_path / "studio"
    form = {"content_example": "tubingen", "style_examples": ["starry_night"]}
    first = make_client(data_dir=data)
    done = wait_for_job(first, submit(first, options=TINY, client_token="t1", **form).json()["id"])
    assert done["state"] == "done" and not done["interrupted"]
    result = first.get(done["result_url"]).content
    preview = first.get(done["preview_url"]).content
    running = submit(first, options={**TINY, "iterations": 500}, **form).json()
    waiting = submit(first, options={**TINY, "iterations": 2}, **form).json()
    wait_for_job(first, running["id"], {"running"}, ok=lambda s: s["iteration"] >= 1)
    first.__exit__(None, None, None)  # a clean stop, as Ctrl-C makes

    second = make_client(data_dir=data)
    listed = second.get("/api/jobs").json()
    assert [j["id"] for j in listed] == [waiting["id"], running["id"], done["id"]]
    by_id = {j["id"]: j for j in listed}
    # The finished job, as it was: options, labels, losses, its result and preview.
    again = by_id[done["id"]]
    for key in ("state", "options", "content", "styles", "iteration", "iterations", "loss"):
        assert again[key] == done[key], key
    assert second.get(again["result_url"]).content == result
    assert second.get(again["preview_url"]).content == preview
    # The running job and the waiting one were interrupted; the first keeps its image so far.
    cut = by_id[running["id"]]
    assert (cut["state"], cut["interrupted"], cut["error"]) == (
        "cancelled",
        True,
        "interrupted by a server stop",
    )
    assert 1 <= cut["iteration"] < 500 and second.get(cut["result_url"]).status_code == 200
    never = by_id[waiting["id"]]
    assert never["interrupted"] and never["started"] is None and never["result_url"] is None
    # A retry of the first request (same client token) still finds its job.
    retry = submit(second, options=TINY, client_token="t1", **form)
    assert retry.status_code == 200 and retry.json()["id"] == done["id"]

    # Run again: a new job from the stored inputs and options.
    r = second.post(never["rerun_url"])
    assert r.status_code == 202, r.text
    rerun = wait_for_job(second, r.json()["id"])
    assert rerun["state"] == "done" and rerun["id"] != waiting["id"]
    assert (rerun["content"], rerun["styles"]) == ("tubingen.jpg", ["starry_night.jpg"])
    assert rerun["options"] == never["options"] and rerun["iteration"] == 2
    assert second.post("/api/jobs/0123456789abcdef/rerun").status_code == 404
    second.__exit__(None, None, None)

    # A server killed outright records nothing: its jobs are still queued or running in the
    # store, and the next start finds them so.
    db = sqlite3.connect(data / "impasto.sqlite")
    db.execute("UPDATE jobs SET state = 'running', error = NULL WHERE id = ?", (rerun["id"],))
    db.commit()
    db.close()
    third = make_client(data_dir=data)
    killed = third.get(f"/api/jobs/{rerun['id']}").json()
    assert killed["state"] == "cancelled" and killed["interrupted"]
    assert len(third.get("/api/jobs").json()) == 4


@pytest.mark.slow
def test_the_retention_policy_holds_across_restarts(
    make_client: MakeClient, tmp_path: Path
) -> None:
    data = tmp_path / "studio"
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    client = make_client(data_dir=data)
    ids = [wait_for_job(client, submit(client, options=TINY, **form).json()["id"])["id"]]
    ids.append(wait_for_job(client, submit(client, options=TINY, **form).json()["id"])["id"])
    client.__exit__(None, None, None)
    (data / "jobs" / "0123456789abcdef").mkdir()  # a folder whose row is gone: removed
    client = make_client(data_dir=data, keep=1)  # a lower --keep applies at once
    assert [j["id"] for j in client.get("/api/jobs").json()] == ids[1:]
    assert sorted(p.name for p in (data / "jobs").iterdir()) == ids[1:]


@pytest.mark.slow
def test_a_rerun_must_wait_for_its_job_and_obey_this_servers_limits(
    make_client: MakeClient, tmp_path: Path
) -> None:
    data = tmp_path / "studio"
    client = make_client(data_dir=data)
    form = {"content_example": "tubingen", "style_examples": ["shipwreck"]}
    job = submit(client, options={**TINY, "iterations": 500}, **form).json()
    assert job["rerun_url"] is None
    wait_for_job(client, job["id"], {"running"})
    r = client.post(f"/api/jobs/{job['id']}/rerun")
    assert r.status_code == 409 and "running" in r.json()["detail"]
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert wait_for_job(client, job["id"])["rerun_url"] == f"/api/jobs/{job['id']}/rerun"
    client.__exit__(None, None, None)
    smaller = make_client(data_dir=data, max_size=16)
    r = smaller.post(f"/api/jobs/{job['id']}/rerun")
    assert r.status_code == 422 and "over this server's limit of 16" in r.json()["detail"]
    # Inputs deleted behind the server's back: 410.
    for p in (data / "jobs" / job["id"]).glob("style-*.png"):
        p.unlink()
    assert smaller.post(f"/api/jobs/{job['id']}/rerun").status_code == 410


@pytest.mark.parametrize("problem", ["file", "newer", "corrupt", "busy", "unwritable"])
def test_a_bad_data_dir_is_one_line_at_start(
    problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import sqlite3

    data = tmp_path / "data"
    held = None
    if problem == "file":
        data.write_text("not a folder")
    elif problem == "newer":
        jobs.JobManager(data_dir=data).close()
        db = sqlite3.connect(data / "impasto.sqlite")
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
        db.close()
    elif problem == "corrupt":
        data.mkdir()
        (data / "impasto.sqlite").write_bytes(b"garbage" * 1000)
    elif problem == "busy":
        held = jobs.JobManager(data_dir=data)
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes any folder")
        data.mkdir(mode=0o500)
    try:
        status = cli.main(["serve", "--port", "0", "--data-dir", str(data)])
    finally:
        if held is not None:
            held.close()
    expected = {"file": 3, "newer": 3, "corrupt": 3, "busy": 2, "unwritable": 3}[problem]
    err = capsys.readouterr().err.strip().splitlines()
    assert status == expected, err
    assert len(err) == 1 and err[0].startswith("impasto: error: "), err
    message = {
        "file": "is not a folder",
        "newer": "made by a newer impasto",
        "corrupt": "cannot use the job store",
        "busy": "another impasto serve uses",
        "unwritable": "cannot write --data-dir",
    }[problem]
    assert message in err[0]
