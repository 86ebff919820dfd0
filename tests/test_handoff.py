"""The hand-off: what the app receives for a completed upload, and how answers merge."""

from __future__ import annotations

import sys
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
    assert dict(merged.headers.items()) == headers
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


# -- PEP 3333: the app is called as a WSGI server would call it ------------------------------


def lazy_app(environ: dict[str, Any], start_response: Any) -> Any:
    """A generator: start_response runs only when the body is consumed."""
    start_response("201 Created", [("X-Doc-Id", "7")])
    yield b"made"


def write_app(environ: dict[str, Any], start_response: Any) -> Any:
    """The legacy ``write`` callable, then an empty iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"and returned"]


def recovering_app(environ: dict[str, Any], start_response: Any) -> Any:
    """Replaces its status after an error, before any body: allowed with exc_info."""
    start_response("200 OK", [("X-Doc-Id", "7")])
    try:
        raise ValueError("database down")
    except ValueError:
        start_response("503 Service Unavailable", [("Retry-After", "5")], sys.exc_info())
    return [b"later"]


def silent_app(environ: dict[str, Any], start_response: Any) -> Any:
    return []


@pytest.mark.parametrize(
    ("app", "status", "headers", "body"),
    [
        pytest.param(lazy_app, 201, [("X-Doc-Id", "7")], b"made",
                     id="start-response-while-the-iterable-is-consumed"),
        pytest.param(write_app, 200, [("Content-Type", "text/plain")], b"written and returned",
                     id="write-callable-then-iterable"),
        pytest.param(recovering_app, 503, [("Retry-After", "5")], b"later",
                     id="exc-info-replaces-status-before-the-body"),
        pytest.param(silent_app, 500, [("Content-Type", "text/plain; charset=utf-8")],
                     b"the application did not answer\n", id="never-called-is-a-500"),
    ],
)
def test_call_app_collects_like_a_server(
    app: Any, status: int, headers: list[tuple[str, str]], body: bytes, tmp_path: Path
) -> None:
    answer = call_app(app, {"REQUEST_METHOD": "PATCH"}, upload_at(tmp_path / "data"),
                      send_file=False)
    assert (answer.status, answer.headers.items(), answer.body) == (status, headers, body)


class Closing:
    """An iterable with ``close``; with ``fail`` it raises while it is consumed."""

    def __init__(self, fail: bool):
        self.fail = fail
        self.closed = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return self

    def __iter__(self) -> Any:
        yield b"part"
        if self.fail:
            raise ValueError("broken")

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fail", [False, True], ids=["consumed", "failing-midway"])
def test_call_app_closes_the_iterable(fail: bool, tmp_path: Path) -> None:
    app = Closing(fail)
    if fail:
        with pytest.raises(ValueError, match="broken"):
            call_app(app, {"REQUEST_METHOD": "PATCH"}, upload_at(tmp_path / "data"),
                     send_file=False)
    else:
        call_app(app, {"REQUEST_METHOD": "PATCH"}, upload_at(tmp_path / "data"), send_file=False)
    assert app.closed


def late_error_app(environ: dict[str, Any], start_response: Any) -> Any:
    """exc_info after the first body bytes: the server must re-raise the app's error."""
    start_response("200 OK", [])
    yield b"first bytes"
    try:
        raise KeyError("lost")
    except KeyError:
        start_response("500 Internal Server Error", [], sys.exc_info())


def body_first_app(environ: dict[str, Any], start_response: Any) -> Any:
    yield b"no status"


def twice_app(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    start_response("201 Created", [])
    return []


@pytest.mark.parametrize(
    ("app", "error"),
    [
        pytest.param(late_error_app, KeyError, id="exc-info-after-body-reraises"),
        pytest.param(twice_app, RuntimeError, id="second-call-without-exc-info-is-an-error"),
        pytest.param(body_first_app, RuntimeError, id="body-before-start-response-is-an-error"),
    ],
)
def test_call_app_refuses_what_pep_3333_forbids(
    app: Any, error: type[Exception], tmp_path: Path
) -> None:
    with pytest.raises(error):
        call_app(app, {"REQUEST_METHOD": "PATCH"}, upload_at(tmp_path / "data"),
                 send_file=False)
