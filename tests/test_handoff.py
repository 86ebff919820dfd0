"""The hand-off: what the app receives for a completed upload, and how answers merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tus_filter.handoff import call_app, merge
from tus_filter.http import Response
from tus_filter.upload import Upload

TUS = {"Tus-Resumable": "1.0.0"}


def upload_at(path: Path) -> Upload:
    path.write_bytes(b"file-bytes")
    return Upload(protocol="tus", upload_id="a" * 32, path=str(path), size=10,
                  filename="a.txt", metadata={"filename": "a.txt"}, content_type="text/plain")


class Downstream:
    def __init__(self, status: str = "200 OK", headers: list[tuple[str, str]] | None = None,
                 body: bytes = b""):
        self.status, self.headers, self.body = status, headers or [], body
        self.seen: list[dict[str, Any]] = []
        self.closed = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ["CONTENT_LENGTH"])
        self.seen.append({**environ, "body": environ["wsgi.input"].read(length)})
        start_response(self.status, self.headers)
        app = self

        class Body(list[bytes]):
            def close(self) -> None:
                app.closed = True

        return Body([self.body])


def test_app_gets_an_empty_post_with_the_upload(tmp_path: Path) -> None:
    app = Downstream()
    upload = upload_at(tmp_path / "data")
    environ = {"REQUEST_METHOD": "PATCH", "PATH_INFO": "/files/x", "CONTENT_LENGTH": "99",
               "CONTENT_TYPE": "application/offset+octet-stream", "wsgi.input": None}
    call_app(app, environ, upload, send_file=False)
    seen = app.seen[0]
    assert seen["tus_filter.upload"] is upload
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["tus_filter.original_method"] == "PATCH"
    assert seen["PATH_INFO"] == "/files/x"
    assert seen["CONTENT_LENGTH"] == "0"
    assert "CONTENT_TYPE" not in seen
    assert seen["body"] == b""
    assert environ["REQUEST_METHOD"] == "PATCH"  # the caller's environ is left alone
    assert app.closed


def test_send_file_presents_the_file_as_the_body(tmp_path: Path) -> None:
    app = Downstream()
    call_app(app, {"REQUEST_METHOD": "POST"}, upload_at(tmp_path / "data"), send_file=True)
    assert app.seen[0]["body"] == b"file-bytes"
    assert app.seen[0]["CONTENT_LENGTH"] == "10"
    assert app.seen[0]["CONTENT_TYPE"] == "text/plain"


PATCH_OK = Response(204, {"Upload-Offset": "10", **TUS})
POST_OK = Response(201, {"Location": "http://h/files/x", "Upload-Offset": "10", **TUS})


@pytest.mark.parametrize(
    ("protocol", "app", "status", "headers", "body"),
    [
        pytest.param(
            PATCH_OK, Response(200, {"X-Doc-Id": "7", "Content-Type": "text/html"}), 204,
            {"Upload-Offset": "10", "X-Doc-Id": "7", **TUS}, b"",
            id="2xx-empty-gives-protocol-answer-plus-app-headers",
        ),
        pytest.param(
            PATCH_OK, Response(200, {"Content-Type": "application/json"}, b'{"id":7}'), 200,
            {"Upload-Offset": "10", "Content-Type": "application/json", **TUS}, b'{"id":7}',
            id="2xx-body-gives-app-status-and-body",
        ),
        pytest.param(
            POST_OK, Response(200, {"Content-Type": "application/json"}, b'{"id":7}'), 201,
            {"Location": "http://h/files/x", "Upload-Offset": "10",
             "Content-Type": "application/json", **TUS}, b'{"id":7}',
            id="creation-keeps-201-and-location",
        ),
        pytest.param(
            PATCH_OK, Response(200, {"upload-offset": "999"}), 204,
            {"Upload-Offset": "10", **TUS}, b"",
            id="protocol-headers-win-case-insensitively",
        ),
        pytest.param(
            PATCH_OK, Response(403, {"Content-Type": "text/plain"}, b"quota exceeded"), 403,
            {"Content-Type": "text/plain", **TUS}, b"quota exceeded",
            id="non-2xx-reaches-client-with-essential-headers",
        ),
    ],
)
def test_merge(protocol: Response, app: Response, status: int, headers: dict[str, str],
               body: bytes) -> None:
    merged = merge(protocol, app, TUS)
    assert merged.status == status
    assert merged.headers == headers
    assert merged.body == body


@pytest.mark.parametrize(
    ("status", "body", "offsets"),
    [
        pytest.param("200 OK", b"", ["10"], id="2xx-empty"),
        pytest.param("200 OK", b'{"id":7}', ["10"], id="2xx-body"),
        pytest.param("403 Forbidden", b"no", ["999", "998"], id="non-2xx-as-sent"),
    ],
)
def test_repeated_app_headers_all_reach_the_client(
    tmp_path: Path, status: str, body: bytes, offsets: list[str]
) -> None:
    """Two ``Set-Cookie`` lines (a session and a CSRF cookie...) must both survive."""
    app = Downstream(status, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                              ("upload-offset", "999"), ("Upload-Offset", "998")], body)
    answer = call_app(app, {"REQUEST_METHOD": "PATCH"}, upload_at(tmp_path / "data"),
                      send_file=False)
    lines = merge(PATCH_OK, answer, TUS).header_list()
    assert [value for name, value in lines if name == "Set-Cookie"] == ["a=1", "b=2"]
    assert [value for name, value in lines if name.lower() == "upload-offset"] == offsets
    assert [name for name, _ in lines].count("Tus-Resumable") == 1
