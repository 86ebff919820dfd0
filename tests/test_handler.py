"""UploadHandler in a view: the filter's answers, URLs from the route, hooks seeing the request.

A "view" here is the smallest one: ``webob.Request(environ)`` handed to
``UploadHandler.handle``, its ``response`` returned.  Each row of the first
table sends one request to such a view and to a ``TusFilter`` with the same
options and proves both answer alike; the filter is the edge over the
handler, so the rest of the suite tests both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import webob
import webtest  # type: ignore[import-untyped]

from tests.support import backend
from tests.support.chunked import ClientFile
from tus_filter import TusFilter, UploadHandler, UploadInfo, UploadResult

pytestmark = pytest.mark.usefixtures("storage_backend")

TUS = {"Tus-Resumable": "1.0.0"}
CORS = {"cors_origins": "https://app.example"}


def downstream(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Behind the filter: takes uploads silently, and answers others as a view does."""
    if "tus_filter.upload" in environ:
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                     ("Content-Length", "22")])
    return [b"not an upload request\n"]


class View:
    """A WSGI app that answers every request with ``handler.handle``; keeps the results."""

    def __init__(self, handler: UploadHandler, scope: str | None = None):
        self.handler = handler
        self.scope = scope
        self.results: list[UploadResult] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        result = self.handler.handle(webob.Request(environ), scope=self.scope)
        self.results.append(result)
        return result.response(environ, start_response)


def answer(app: webtest.TestApp, method: str, path: str, headers: dict[str, str],
           body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    response = app.request(path, method=method, headers=headers, body=body, status="*")
    lines = [(name, re.sub(r"[0-9a-f]{32}", "<id>", value)) for name, value in response.headerlist
             if name != "Upload-Expires"]
    return response.status_int, lines, response.body


# fmt: off
@pytest.mark.parametrize(("method", "path", "headers", "body", "options"), [
    pytest.param("OPTIONS", "/files", TUS, b"", {}, id="tus-options"),
    pytest.param("POST", "/files", {**TUS, "Upload-Length": "5"}, b"", {}, id="tus-creation"),
    pytest.param("POST", "/files", {**TUS, "Upload-Length": "5",
                                    "Content-Type": "application/offset+octet-stream"},
                 b"hello", {}, id="tus-creation-with-whole-upload"),
    pytest.param("POST", "/files", {**TUS, "Upload-Length": "5000"}, b"",
                 {"max_size": 1000}, id="tus-too-large"),
    pytest.param("HEAD", "/files/" + "a" * 32, TUS, b"", {}, id="tus-head-unknown"),
    pytest.param("PATCH", "/files/" + "a" * 32, {**TUS, "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"}, b"x", {},
                 id="tus-patch-unknown"),
    pytest.param("GET", "/files?flowChunkNumber=1&flowChunkSize=10&flowCurrentChunkSize=5"
                 "&flowTotalSize=5&flowIdentifier=f&flowFilename=a&flowRelativePath=a"
                 "&flowTotalChunks=1", {}, b"", {}, id="flow-test-request"),
    pytest.param("OPTIONS", "/files", {"Origin": "https://app.example",
                 "Access-Control-Request-Method": "PATCH"}, b"", CORS, id="cors-preflight"),
    pytest.param("POST", "/files", {**TUS, "Upload-Length": "5",
                                    "Origin": "https://app.example"}, b"", CORS,
                 id="cors-on-an-answer"),
    pytest.param("POST", "/files", {"Content-Type": "text/plain"}, b"hi", {},
                 id="not-an-upload-404"),
])
# fmt: on
def test_view_answers_as_the_filter_does(
    method: str, path: str, headers: dict[str, str], body: bytes, options: dict[str, Any],
    tmp_path: Path,
) -> None:
    view = webtest.TestApp(View(UploadHandler(tmp_file_dir=str(tmp_path / "v"),
                                              **backend.options(), **options)))
    edge = webtest.TestApp(TusFilter(downstream, tmp_file_dir=str(tmp_path / "f"),
                                     **backend.options(), **options))
    assert answer(view, method, path, headers, body) == answer(edge, method, path, headers, body)


def test_completing_request_carries_the_upload_once(tmp_path: Path) -> None:
    view = View(UploadHandler(tmp_file_dir=str(tmp_path), **backend.options()))
    app = webtest.TestApp(view)
    created = app.post("/files", headers={**TUS, "Upload-Length": "5"}, status=201)
    path = created.headers["Location"].removeprefix("http://localhost")
    patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
    app.patch(path, b"hel", headers={**patch, "Upload-Offset": "0"}, status=204)
    app.patch(path, b"lo", headers={**patch, "Upload-Offset": "3"}, status=204)
    app.head(path, headers=TUS, status=200)
    assert [result.upload is not None for result in view.results] == [False, False, True, False]
    upload = view.results[2].upload
    assert upload is not None
    with upload.open() as file:
        assert file.read() == b"hello"
    assert all(result.recognized for result in view.results)


@pytest.mark.parametrize(
    ("script_name", "path", "location"),
    [
        pytest.param("", "/files", "http://localhost/files/", id="at-the-root"),
        pytest.param("/site", "/files", "http://localhost/site/files/",
                     id="mounted-below-script-name"),
        pytest.param("/site", "/files/", "http://localhost/site/files/",
                     id="collection-with-slash"),
    ],
)
def test_urls_follow_the_route(script_name: str, path: str, location: str,
                               tmp_path: Path) -> None:
    """``upload_path`` is the route's prefix below ``request.script_name``."""
    app = webtest.TestApp(View(UploadHandler(tmp_file_dir=str(tmp_path), **backend.options())),
                          extra_environ={"SCRIPT_NAME": script_name})
    created = app.post(script_name + path, headers={**TUS, "Upload-Length": "5"}, status=201)
    assert re.fullmatch(re.escape(location) + "[0-9a-f]{32}", created.headers["Location"])


def test_concatenation_urls_follow_the_route(tmp_path: Path) -> None:
    """Partials named by the Locations a view below ``SCRIPT_NAME`` handed out."""
    app = webtest.TestApp(View(UploadHandler(tmp_file_dir=str(tmp_path), **backend.options())),
                          extra_environ={"SCRIPT_NAME": "/site"})
    partial = {**TUS, "Upload-Concat": "partial",
               "Content-Type": "application/offset+octet-stream"}
    parts = [app.post("/site/files", data, headers={**partial, "Upload-Length": "3"},
                      status=201).headers["Location"] for data in (b"abc", b"def")]
    final = app.post("/site/files", headers={**TUS, "Upload-Concat": "final;" + " ".join(parts)},
                     status=201)
    assert final.headers["Location"].startswith("http://localhost/site/files/")
    head = app.head(final.headers["Location"].removeprefix("http://localhost"), headers=TUS)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "6"


def test_unrecognised_request_keeps_its_body_for_the_view(tmp_path: Path) -> None:
    handler = UploadHandler(tmp_file_dir=str(tmp_path), **backend.options())
    body = b'{"not": "an upload"}'
    request = webob.Request.blank("/files", method="POST", body=body,
                                  content_type="application/json")
    result = handler.handle(request)
    assert (result.recognized, result.upload, result.response.status_int) == (False, None, 404)
    assert request.body == body


def test_outside_upload_path_is_not_recognised(tmp_path: Path) -> None:
    handler = UploadHandler(tmp_file_dir=str(tmp_path), **backend.options())
    request = webob.Request.blank("/files-old", method="POST", headers={**TUS,
                                                                         "Upload-Length": "5"})
    assert handler.handle(request).recognized is False


def test_hooks_see_the_view_request(tmp_path: Path) -> None:
    seen: list[tuple[str, Any]] = []

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        seen.append(("create", environ["tus_filter.request"]))

    def on_terminate(environ: dict[str, Any], info: UploadInfo) -> None:
        seen.append(("terminate", environ["tus_filter.request"]))

    handler = UploadHandler(tmp_file_dir=str(tmp_path), **backend.options(), on_create=on_create,
                            on_terminate=on_terminate)
    create = webob.Request.blank("/files", method="POST", headers={**TUS, "Upload-Length": "5"})
    location = handler.handle(create).response.location
    delete = webob.Request.blank(location, method="DELETE", headers=TUS)
    assert handler.handle(delete).response.status_int == 204
    assert seen == [("create", create), ("terminate", delete)]


def test_scope_given_by_the_view_separates_equal_flow_identifiers(tmp_path: Path) -> None:
    handler = UploadHandler(tmp_file_dir=str(tmp_path), **backend.options())
    views = {user: webtest.TestApp(View(handler, scope=user)) for user in ("alice", "bob")}
    file = ClientFile.of_size(25, identifier="same-id")

    def has_chunk(user: str) -> int:
        return int(views[user].get("/files", file.params(1), status="*").status_int)

    views["alice"].post("/files", file.params(1), upload_files=[("file", "b", file.chunk(1))])
    assert (has_chunk("alice"), has_chunk("bob")) == (200, 204)
