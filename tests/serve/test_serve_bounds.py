"""The studio under hostile-but-fair requests (issue 28): bodies that are not uploads capped at
kilobytes, a form that gives one field twice, and malformed multipart bodies that leave nothing
on the server's stderr. No job runs: each request is refused before one is made."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from PIL import Image

from helpers import MakeClient
from impasto.serve.guards import JSON_LIMIT


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), "gray").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("chunked", [False, True])
def test_a_json_body_over_the_cap_is_413_before_it_is_parsed(
    make_client: MakeClient, chunked: bool
) -> None:
    # POST /api/options/resolve took bodies up to the upload limit (201 MB): one 50 MB body
    # cost some 620 MB to parse.
    client = make_client()
    body = b'{"size": 64, "note": "' + b"a" * JSON_LIMIT + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    headers = {"content-type": "application/json"}
    # Refused by its length on any endpoint; counted as it arrives where a body is read.
    urls = ["/api/options/resolve"] + ([] if chunked else ["/api/jobs/nope/cancel"])
    for url in urls:
        r = client.post(url, content=chunks() if chunked else body, headers=headers)
        assert r.status_code == 413, (url, r.text)
        detail = r.json()["detail"]
        assert "64 KiB" in detail and "\n" not in detail
    # A body of the form's size is answered as before.
    r = client.post("/api/options/resolve", json={"size": 64})
    assert r.status_code == 200 and r.json()["options"]["size"] == 64


def test_a_form_with_two_contents_is_refused(make_client: MakeClient) -> None:
    # 202, and one of the two photos used without a word.
    client = make_client()
    png = _png()
    files = [("content", ("a.png", png, "image/png")), ("content", ("b.png", png, "image/png"))]
    r = client.post("/api/jobs", files=files, data={"style_examples": "starry_night"})
    assert r.status_code == 400 and r.json()["detail"] == "the form has 2 'content' parts; send one"
    form = {"content_example": "tubingen", "style_examples": "starry_night"}
    r = client.post("/api/jobs", data={**form, "options": ['{"size": 32}', '{"size": 48}']})
    assert r.status_code == 400 and "2 'options' parts" in r.json()["detail"]
    assert client.get("/api/jobs").json() == []


@pytest.mark.parametrize(
    "body",
    [
        b"this is not multipart",
        b"--xyz\r\nbogus\r\n\r\n{}\r\n--xyz--\r\n",
    ],
)
def test_a_malformed_multipart_body_is_400_and_nothing_on_stderr(
    make_client: MakeClient, body: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    # The multipart parser logged "Expected boundary character 45, got 116 at index 2" through
    # logging's last resort: a stray line on the server's stderr for each such request.
    client = make_client()
    capfd.readouterr()
    root = logging.getLogger()
    handlers = root.handlers[:]
    for handler in handlers:  # as under `impasto serve`: no handler of the root's own
        root.removeHandler(handler)
    try:
        headers = {"content-type": "multipart/form-data; boundary=xyz"}
        r = client.post("/api/jobs", content=body, headers=headers)
    finally:
        for handler in handlers:
            root.addHandler(handler)
    assert r.status_code == 400 and r.json()["detail"] == "Invalid multipart data."
    assert capfd.readouterr().err == ""
