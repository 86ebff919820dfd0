"""Smoke tests proving the shared live-test harness in ``tests/support``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults

import pytest
import requests

from tests.support import REPO_ROOT
from tests.support.apps import UPLOAD_KEY, RecordingApp, read_records, recording_app_factory
from tests.support.node import NodeScriptError, run_node
from tests.support.servers import serve, serve_processes
from tests.support.static import with_static

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import Page


def pid_app_factory(greeting: str) -> WSGIApplication:
    """Worker factory: answers every request with ``<greeting> <pid>``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = f"{greeting} {os.getpid()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


def fake_upload_factory(*, record_dir: str, upload_path: str) -> WSGIApplication:
    """Worker factory: a recording app behind a stand-in for the filter."""
    recorder = recording_app_factory(record_dir=record_dir, body="stored")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[UPLOAD_KEY] = _fake_upload(upload_path)
        return recorder(environ, start_response)

    return app


def _fake_upload(path: str) -> SimpleNamespace:
    return SimpleNamespace(
        upload_id="u1",
        path=path,
        size=os.path.getsize(path),
        protocol="tus",
        filename="hello.txt",
        metadata={"filename": "hello.txt"},
        content_type="text/plain",
    )


def test_serve_runs_app_in_thread_and_stops() -> None:
    recorder = RecordingApp()
    with serve(recorder) as base_url:
        response = requests.get(base_url + "/anything", timeout=10)
    assert (response.status_code, response.text) == (404, "no such page")
    with pytest.raises(requests.ConnectionError):
        requests.get(base_url, timeout=10)


def test_recording_app_records_upload_in_memory_and_on_disk(tmp_path: Path) -> None:
    upload_file = tmp_path / "upload.bin"
    upload_file.write_bytes(b"hello")
    recorder = recording_app_factory(record_dir=str(tmp_path), body="stored")

    def filter_stand_in(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[UPLOAD_KEY] = _fake_upload(str(upload_file))
        return recorder(environ, start_response)

    with serve(filter_stand_in) as base_url:
        response = requests.post(base_url + "/files/u1", timeout=10)

    assert (response.status_code, response.text) == (200, "stored")
    assert recorder.calls == read_records(tmp_path)
    [record] = recorder.calls
    assert record == {
        "upload_id": "u1",
        "path": str(upload_file),
        "size": 5,
        "sha256": hashlib.sha256(b"hello").hexdigest(),
        "protocol": "tus",
        "filename": "hello.txt",
        "metadata": {"filename": "hello.txt"},
        "content_type": "text/plain",
        "request_method": "POST",
        "path_info": "/files/u1",
        "pid": os.getpid(),
    }


def test_serve_processes_runs_separate_processes() -> None:
    with serve_processes(
        "tests.test_harness:pid_app_factory", {"greeting": "hi"}, workers=2
    ) as urls:
        bodies = [requests.get(url, timeout=10).text for url in urls]
    pids = {body.removeprefix("hi ") for body in bodies}
    assert len(set(urls)) == 2
    assert all(body.startswith("hi ") for body in bodies)
    assert len(pids) == 2 and str(os.getpid()) not in pids


def test_serve_processes_share_records_through_record_dir(tmp_path: Path) -> None:
    upload_file = tmp_path / "upload.bin"
    upload_file.write_bytes(b"x" * 100_000)
    kwargs = {"record_dir": str(tmp_path), "upload_path": str(upload_file)}
    with serve_processes("tests.test_harness:fake_upload_factory", kwargs, workers=2) as urls:
        for url in urls:
            assert requests.put(url + "/done", timeout=10).text == "stored"
    records = read_records(tmp_path)
    assert len({record["pid"] for record in records}) == 2
    assert {record["sha256"] for record in records} == {
        hashlib.sha256(upload_file.read_bytes()).hexdigest()
    }


def test_serve_processes_loads_paste_ini(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\n"
        "use = call:tests.support.apps:recording_app_factory\n"
        "record_dir = %(record_dir)s\n"
    )
    with serve_processes(ini, {"record_dir": str(tmp_path)}, workers=1) as [url]:
        response = requests.get(url + "/elsewhere", timeout=10)
    assert (response.status_code, response.text) == (404, "no such page")


def test_serve_processes_reports_worker_that_fails_to_start() -> None:
    with (
        pytest.raises(RuntimeError, match="before listening"),
        serve_processes("tests.test_harness:no_such_factory", workers=1),
    ):
        pass


def _call(app: WSGIApplication, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    started: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    status, headers = started
    return status, dict(headers), body


@pytest.mark.parametrize(
    ("path", "method", "status", "content_type"),
    [
        pytest.param("/page.html", "GET", "200 OK", "text/html; charset=utf-8", id="page"),
        pytest.param(
            "/node_modules/tus-js-client/dist/tus.js",
            "GET",
            "200 OK",
            "text/javascript; charset=utf-8",
            id="script",
        ),
        pytest.param(
            "/node_modules/uppy/dist/uppy.min.css", "HEAD", "200 OK", "text/css; charset=utf-8",
            id="head-stylesheet",
        ),
        pytest.param("/node_modules/tus-js-client/package.json", "POST", "405 Method Not Allowed",
                     None, id="read-only"),
        pytest.param("/node_modules/../setup.cfg", "GET", "404 Not Found", "text/plain",
                     id="dot-dot"),
        pytest.param("/node_modules/tus-js-client/../../setup.cfg", "GET", "404 Not Found",
                     "text/plain", id="nested-dot-dot"),
        pytest.param("/node_modules//etc/passwd", "GET", "404 Not Found", "text/plain",
                     id="empty-segment"),
        pytest.param("/node_modules/tus-js-client\\..\\..\\setup.cfg", "GET", "404 Not Found",
                     "text/plain", id="backslash"),
        pytest.param("/node_modules/tus-js-client", "GET", "404 Not Found", "text/plain",
                     id="directory"),
        pytest.param("/node_modulesx/tus.js", "GET", "404 Not Found", "text/plain",
                     id="prefix-needs-segment-boundary"),
        pytest.param("/files/", "GET", "404 Not Found", "text/plain", id="passes-through"),
    ],
)
def test_with_static(path: str, method: str, status: str, content_type: str | None) -> None:
    app = with_static(RecordingApp(), {"/page.html": "<p>hi</p>"})
    got_status, headers, body = _call(app, path, method)
    assert got_status == status
    assert headers.get("Content-Type") == content_type
    if method == "HEAD":
        assert body == b""
    elif status == "200 OK":
        assert headers["Content-Length"] == str(len(body)) and body
    elif content_type == "text/plain":
        assert body in (b"not found", b"no such page")


CLIENTS_PAGE = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>client libraries</title>
  <link rel="stylesheet" href="/node_modules/uppy/dist/uppy.min.css">
  <script src="/node_modules/@flowjs/flow.js/dist/flow.js"></script>
  <script src="/node_modules/resumablejs/resumable.js"></script>
  <script src="/node_modules/tus-js-client/dist/tus.js"></script>
  <script src="/node_modules/uppy/dist/uppy.min.js"></script>
</head>
<body>
  <div id="uppy"></div>
  <script>
    new Uppy.Uppy()
      .use(Uppy.Dashboard, { inline: true, target: "#uppy", height: 300 })
      .use(Uppy.Tus, { endpoint: "/files/" })
  </script>
</body>
</html>
"""


@pytest.mark.browser
def test_page_loads_client_libraries_from_node_modules(
    page: Page, screenshot: Any
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with serve(with_static(RecordingApp(), {"/clients.html": CLIENTS_PAGE})) as base_url:
        page.goto(base_url + "/clients.html")
        types = page.evaluate(
            """() => ({
                Flow: typeof Flow,
                Resumable: typeof Resumable,
                tus: typeof tus,
                tusSupported: tus.isSupported,
                Uppy: [typeof Uppy.Uppy, typeof Uppy.Dashboard, typeof Uppy.Tus],
            })"""
        )
        page.locator(".uppy-Dashboard").wait_for()
        path = screenshot("loaded")
    assert errors == []
    assert types == {
        "Flow": "function",
        "Resumable": "function",
        "tus": "object",
        "tusSupported": True,
        "Uppy": ["function", "function", "function"],
    }
    assert path.stat().st_size > 0


def test_run_node_requires_pinned_tus_js_client() -> None:
    info = run_node(REPO_ROOT / "tests/node/tus_info.js", "an-arg")
    assert info == {"isSupported": True, "version": "4.3.1", "argv": ["an-arg"]}


def test_run_node_raises_with_output_on_failure(tmp_path: Path) -> None:
    script = tmp_path / "fail.js"
    script.write_text("require('tus-js-client'); console.log('so far'); process.exit(3)\n")
    with pytest.raises(NodeScriptError, match=r"(?s)exited with 3.*so far"):
        run_node(script)
