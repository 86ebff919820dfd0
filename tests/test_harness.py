"""Smoke tests proving the shared live-test harness in ``tests/support``."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import webtest

from tests.support import REPO_ROOT, servers
from tests.support.apps import UPLOAD_KEY, RecordingApp, read_records, recording_app_factory
from tests.support.node import NodeScriptError, run_node
from tests.support.servers import serve, serve_gunicorn, serve_processes
from tests.support.static import with_static
from tus_filter import Upload

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


def _fake_upload(path: str) -> Upload:
    return Upload(
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


NOT_TORN_DOWN = 0.5  # how long a finishing request waits to see serve() close too early


def test_serve_lets_a_finishing_request_end_before_closing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client has the whole response while waitress' task thread still
    finishes it (``close()``, then pulling the trigger); serve() must not close
    the connection or the trigger under it (that thread then hits EBADF)."""
    finishing = threading.Event()
    kept_alive_closed = threading.Event()
    closed_under_request: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"x" * 100_000  # over waitress' send_bytes: sent by the task thread

        def close(self) -> None:
            finishing.set()
            # Nothing in the fixed harness can set the event: waiting out the
            # timeout is the passing path.
            closed_under_request.append(kept_alive_closed.wait(NOT_TORN_DOWN))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "100000")])
        return Body()

    def wait_for_close(connection: http.client.HTTPConnection) -> None:
        assert connection.sock is not None
        with suppress(ConnectionResetError):
            connection.sock.recv(1)
        kept_alive_closed.set()

    caplog.set_level(logging.INFO, logger="waitress")
    with serve(app) as base_url:
        connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
        connection.request("GET", "/")
        assert len(connection.getresponse().read()) == 100_000
        watcher = threading.Thread(target=wait_for_close, args=(connection,))
        watcher.start()
        assert finishing.wait(10)
    watcher.join(10)
    connection.close()
    assert closed_under_request == [False]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_serve_raises_when_a_request_outlives_the_stop_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    started = threading.Event()

    def stuck(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started.set()
        release.wait(10)
        start_response("200 OK", [])
        return [b""]

    def get(url: str) -> None:
        with suppress(requests.ConnectionError):  # serve() drops it, as it must
            requests.get(url, timeout=10)

    monkeypatch.setattr(servers, "STOP_TIMEOUT", 0.2)
    client = None
    try:
        with pytest.raises(RuntimeError, match="still serving"), serve(stuck) as base_url:
            client = threading.Thread(target=get, args=(base_url,))
            client.start()
            assert started.wait(10)
    finally:
        release.set()
        if client is not None:
            client.join(10)


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


def test_serve_processes_gives_each_worker_its_private_kwargs() -> None:
    with serve_processes(
        "tests.test_harness:pid_app_factory", {"greeting": "hi"}, workers=2,
        private=lambda index: {"greeting": f"host{index}"},
    ) as urls:
        bodies = [requests.get(url, timeout=10).text for url in urls]
    assert [body.split(" ")[0] for body in bodies] == ["host0", "host1"]


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
        "record_dir = %(records)s\n"
    )
    with serve_processes(ini, {"records": str(tmp_path)}, workers=1) as [url]:
        response = requests.get(url + "/elsewhere", timeout=10)
    assert (response.status_code, response.text) == (404, "no such page")


def test_filtered_recording_app_passes_other_requests_through(tmp_path: Path) -> None:
    kwargs = {"record_dir": str(tmp_path / "records"), "tmp_file_dir": str(tmp_path / "tmp")}
    with serve_processes("tests.support.apps:filtered_recording_app", kwargs, workers=1) as [url]:
        response = requests.get(url + "/elsewhere", timeout=10)
    assert (response.status_code, response.text) == (404, "no such page")


def test_serve_gunicorn_serves_from_its_own_process_and_stops(tmp_path: Path) -> None:
    with serve_gunicorn("tests.test_harness:pid_app_factory", {"greeting": "hi"}) as url:
        body = requests.get(url, timeout=10).text
    assert body.startswith("hi ") and body != f"hi {os.getpid()}"
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)


def test_serve_gunicorn_reports_an_app_that_fails_to_load() -> None:
    with (
        pytest.raises(RuntimeError, match="gunicorn exited"),
        serve_gunicorn("tests.test_harness:no_such_factory"),
    ):
        pass


def test_serve_processes_reports_worker_that_fails_to_start() -> None:
    with (
        pytest.raises(RuntimeError, match="before listening"),
        serve_processes("tests.test_harness:no_such_factory", workers=1),
    ):
        pass


NOT_SERVED = ("404 Not Found", "text/plain", b"not found")
PASSED_ON = ("404 Not Found", "text/plain", b"no such page")
JS = "text/javascript; charset=utf-8"


# fmt: off
@pytest.mark.parametrize(("method", "path", "expected"), [
    pytest.param("GET", "/page.html", ("200 OK", "text/html; charset=utf-8", b"<p>hi</p>"),
                 id="page"),
    pytest.param("GET", "/node_modules/tus-js-client/dist/tus.js", ("200 OK", JS, b"(function"),
                 id="script"),
    pytest.param("HEAD", "/node_modules/uppy/dist/uppy.min.css",
                 ("200 OK", "text/css; charset=utf-8", b""), id="head"),
    pytest.param("POST", "/node_modules/tus-js-client/package.json",
                 ("405 Method Not Allowed", None, b""), id="read-only"),
    pytest.param("GET", "/node_modules/../setup.cfg", NOT_SERVED, id="dot-dot"),
    pytest.param("GET", "/node_modules/tus-js-client/../../setup.cfg", NOT_SERVED,
                 id="nested-dot-dot"),
    pytest.param("GET", "/node_modules//etc/passwd", NOT_SERVED, id="empty-segment"),
    pytest.param("GET", "/node_modules/tus-js-client\\..\\..\\setup.cfg", NOT_SERVED,
                 id="backslashes"),
    pytest.param("GET", "/node_modules/tus-js-client", NOT_SERVED, id="directory"),
    pytest.param("GET", "/node_modulesx/tus.js", PASSED_ON, id="prefix-ends-on-segment"),
    pytest.param("GET", "/files/", PASSED_ON, id="anything-else-passes-through"),
])
# fmt: on
def test_with_static(method: str, path: str, expected: tuple[str, str | None, bytes]) -> None:
    app = webtest.TestApp(with_static(RecordingApp(), {"/page.html": "<p>hi</p>"}))
    response = app.request(path, method=method, expect_errors=True)
    status, content_type, body_start = expected
    assert (response.status, response.headers.get("Content-Type")) == (status, content_type)
    assert response.body.startswith(body_start)
    if method == "GET" and status == "200 OK":
        assert response.headers["Content-Length"] == str(len(response.body))


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
def test_page_loads_client_libraries_from_node_modules(page: Page, screenshot: Any) -> None:
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
