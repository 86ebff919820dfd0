"""The WSGI edge: what reaches the app untouched, path matching, preflights, URLs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from webtest import TestApp

from tus_filter import TusFilter
from tus_filter.urls import collection_url, match_upload_path


class EchoApp:
    """Answers with what it received, to prove pass-through is byte-for-byte."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Path", environ["PATH_INFO"]),
                                  ("X-Method", environ["REQUEST_METHOD"])])
        return [body]


@pytest.fixture
def app(tmp_path: Path) -> TestApp:
    return TestApp(TusFilter(EchoApp(), tmp_file_dir=str(tmp_path)))


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [
        pytest.param("GET", "/", None, b"", id="outside"),
        pytest.param(
            "POST", "/files-old", "application/json", b'{"a":1}', id="prefix-not-segment"
        ),
        pytest.param("POST", "/filesystem/x", "text/plain", b"abc", id="longer-segment"),
        pytest.param("GET", "/files", None, b"", id="plain-get-on-collection"),
        pytest.param("GET", "/files/report.pdf", None, b"", id="plain-get-below"),
        pytest.param("POST", "/files", "application/json", b"{}", id="json-not-an-upload"),
        pytest.param(
            "POST", "/files?chunkNumber=%FF&chunkCount=1&uploadUid=", "application/octet-stream",
            b"abc", id="query-not-utf8",
        ),
        pytest.param(
            "POST", "/files", "application/json",
            b'{"uploadUid":"","chunkNumber":0,"chunkCount":1,"pad":"' + b"x" * (17 << 20) + b'"}',
            id="json-too-large-to-read",
        ),
        pytest.param(
            "POST", "/files", "application/json", b"[" * 100_000, id="json-nested-too-deep"
        ),
        pytest.param(
            "POST", "/files",
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n'
            b'--XyZ\r\nContent-Disposition: form-data; name="doc"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + b"x" * 300_000 + b"\r\n--XyZ--\r\n",
            id="multipart-form-not-an-upload",
        ),
    ],
)
def test_unrecognised_requests_reach_the_app_byte_for_byte(
    app: TestApp, method: str, path: str, content_type: str | None, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = app.request(path, method=method, body=body, headers=headers)
    assert response.status_int == 200
    assert response.body == body
    assert response.headers["X-Path"] == path.split("?")[0]
    assert response.headers["X-Method"] == method


@pytest.mark.parametrize(
    ("path_info", "expected"),
    [
        pytest.param("/files", "", id="collection"),
        pytest.param("/files/", "", id="collection-slash"),
        pytest.param("/files/abc", "abc", id="upload"),
        pytest.param("/files/a/b", "a/b", id="deeper"),
        pytest.param("/files-x", None, id="sibling-prefix"),
        pytest.param("/file", None, id="shorter"),
        pytest.param("/other/files", None, id="not-at-start"),
    ],
)
def test_upload_path_matches_on_segment_boundaries(path_info: str, expected: str | None) -> None:
    assert match_upload_path(path_info, "/files") == expected


BASE = {"wsgi.url_scheme": "http", "HTTP_HOST": "app.local:8080", "SCRIPT_NAME": ""}


def test_collection_url_honours_script_name() -> None:
    environ = {**BASE, "SCRIPT_NAME": "/app"}
    assert collection_url(environ, "/files", behind_proxy=False) == "http://app.local:8080/app/files"


@pytest.mark.parametrize(
    ("origin", "status", "allow_origin"),
    [
        pytest.param("https://good.example", 200, "https://good.example", id="allowed"),
        pytest.param("https://evil.example", 403, None, id="refused"),
    ],
)
def test_preflight(tmp_path: Path, origin: str, status: int, allow_origin: str | None) -> None:
    app = TestApp(TusFilter(EchoApp(), tmp_file_dir=str(tmp_path),
                            cors_origins=["https://good.example"]))
    response = app.options(
        "/files/anything",
        headers={"Origin": origin, "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "tus-resumable, upload-offset, x-csrf"},
        status=status,
    )
    assert response.headers.get("Access-Control-Allow-Origin") == allow_origin
    if allow_origin:
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        allowed = response.headers["Access-Control-Allow-Headers"]
        assert allowed == "tus-resumable, upload-offset, x-csrf"
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Max-Age"] == "86400"
        assert "Origin" in response.headers["Vary"]


def test_wildcard_origin_is_echoed(tmp_path: Path) -> None:
    app = TestApp(TusFilter(EchoApp(), tmp_file_dir=str(tmp_path), cors_origins="*"))
    response = app.options("/files", headers={"Origin": "https://x.example",
                                              "Access-Control-Request-Method": "POST"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://x.example"


def test_preflight_is_not_special_without_cors(tmp_path: Path) -> None:
    app = TestApp(TusFilter(EchoApp(), tmp_file_dir=str(tmp_path), protocols=["flowjs"]))
    response = app.options("/files", headers={"Origin": "https://x.example",
                                              "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["X-Method"] == "OPTIONS"  # nobody claimed it: the app answered


def test_input_replay_supports_readline() -> None:
    from tus_filter.incoming import _ReplayStream

    stream = _ReplayStream(b"ab\ncd", io.BytesIO(b"ef\ngh"))
    assert stream.readline() == b"ab\n"
    assert stream.readline() == b"cdef\n"
    assert stream.read() == b"gh"


def test_a_protocol_failing_to_read_a_request_lets_the_next_one_try(tmp_path: Path) -> None:
    """uid cannot decode this query; flow.js still claims it and refuses it clearly."""
    app = TestApp(TusFilter(EchoApp(), tmp_file_dir=str(tmp_path)))
    response = app.post(
        "/files?flowChunkNumber=1&flowIdentifier=x&chunkNumber=0&bad=%FF", b"abc",
        headers={"Content-Type": "application/octet-stream"}, status=400,
    )
    assert "X-Method" not in response.headers  # answered by the filter, not the app


def _answer_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


FLOW_QUERY = (
    "flowChunkNumber=1&flowChunkSize=10&flowTotalSize=3&flowIdentifier=x&flowFilename=a"
)
UID_QUERY = "uploadUid=&fileName=a&totalSize=3&chunkNumber=0&chunkCount=1"


@pytest.mark.parametrize("bad_length", [
    pytest.param("abc", id="letters"),
    pytest.param("\u00b2", id="superscript-two"),  # a Latin-1 byte; str.isdigit() says yes
    pytest.param("\u0661", id="arabic-indic-one"),
])
@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        pytest.param(
            "PATCH", "<upload>",
            {"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
             "Content-Type": "application/offset+octet-stream"},
            400, id="tus-patch",
        ),
        pytest.param(
            "POST", "/files",
            {"Tus-Resumable": "1.0.0", "Upload-Length": "3",
             "Content-Type": "application/offset+octet-stream"},
            400, id="tus-creation-with-upload",
        ),
        pytest.param(
            "POST", "/files",
            {"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Content-Type": "text/plain"},
            400, id="tus-creation-other-type",
        ),
        pytest.param(
            "POST", "/files?" + FLOW_QUERY, {"Content-Type": "application/octet-stream"},
            400, id="flow-octet",
        ),
        pytest.param(
            "POST", "/files?" + UID_QUERY, {"Content-Type": "application/octet-stream"},
            400, id="uid-octet",
        ),
        pytest.param(
            "POST", "/files", {"Content-Type": "multipart/form-data; boundary=XyZ"},
            200, id="multipart-unreadable-reaches-app",
        ),
        pytest.param(
            "POST", "/files", {"Content-Type": "application/json"},
            200, id="json-unreadable-reaches-app",
        ),
    ],
)
def test_malformed_content_length_is_never_a_server_error(
    tmp_path: Path, method: str, path: str, headers: dict[str, str], status: int,
    bad_length: str,
) -> None:
    """Only ASCII digits are a length: ``int()`` accepts other digits, or raises."""
    wrapped = TusFilter(_answer_app, tmp_file_dir=str(tmp_path))
    if path == "<upload>":
        created = TestApp(wrapped).post(
            "/files", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3"}
        )
        path = created.headers["Location"].replace("http://localhost", "")
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(b"abc")}
    environ["PATH_INFO"], _, environ["QUERY_STRING"] = path.partition("?")
    setup_testing_defaults(environ)
    environ["CONTENT_LENGTH"] = bad_length
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    statuses: list[str] = []
    body = b"".join(wrapped(environ, lambda status, headers, exc=None: statuses.append(status)))
    assert int(statuses[0].split()[0]) == status, body
    assert (body == b"app") == (status == 200)
