"""``impasto serve`` with regions: masks painted over the photo, each from its own style, a part
kept as the photo; kept with the job and run again; refused when they cannot work."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from helpers import EXAMPLES, TINY, MakeClient, wait_for_job

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its test client and says so once, at import.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient


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
@pytest.mark.parametrize(
    "losses",
    [
        {},
        {"style_loss": "sliced"},  # issue 21: the guided forms, from the studio's fields
        {"style_loss": "remd", "content_loss": "self-similarity"},
    ],
)
def test_masks_paint_each_region_from_its_style_and_keep_a_part(
    client: TestClient, losses: dict[str, str]
) -> None:
    red, blue = texture_png((230, 40, 30), 1), texture_png((30, 60, 230), 2)
    # Masks at another size than the photo (64x48): the engine resizes them. The left half is
    # red's, the right half blue's, and the top quarter is kept as the photo.
    left, right = mask_png((32, 24), (0, 0, 16, 24)), mask_png((32, 24), (16, 0, 32, 24))
    top = mask_png((32, 24), (0, 0, 32, 6))
    options = {"size": 64, "iterations": 30, "seed": 5, **losses}
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
    recorded = json.loads(meta["impasto:options"])
    assert {k: recorded[k] for k in losses} == losses
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
    with Image.open(EXAMPLES / "tubingen.jpg") as im:
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
        ([(0, 0, 16, 24), None], None, {}, "Mask 'region1.png' covers nothing (it is all black)"),
        ([], None, {}, None),  # no masks: a plain blend, accepted (see below)
        ([(0, 0, 16, 24)] * 2, None, {"options": {"style_blend_weights": [1, 2]}}, "blend"),
        ([(0, 0, 16, 24), (16, 0, 32, 24)], (0, 0, 16, 24), {}, "covers all of mask 1"),
        ([], (0, 0, 32, 24), {}, "The kept region covers the whole photo"),
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
