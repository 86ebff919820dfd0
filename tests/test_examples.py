"""Every example loads, imports and really receives uploads, so none can rot.

* every ``examples/*.ini`` loads with Paste Deploy, as ``pserve`` loads it,
  into a ``TusFilter`` that keeps its files where the test says;
* every module under ``examples/`` imports;
* every filter example receives a tus and (where enabled) a uid upload, sent
  in several requests, and keeps the exact bytes (the view examples,
  Pyramid and Flask, have ``test_view_examples.py``);
* ``examples.hooks.on_create`` refuses what it says it refuses;
* the demo serves its page, its client libraries (and nothing else from
  disk) and lists what it received with a SHA-256;
* ``make demo`` serves the demo, and ``python -m examples.workers`` serves
  one upload directory from two processes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests
import waitress.adjustments
import webtest  # type: ignore[import-untyped]
from paste.deploy import loadapp
from tusclient.client import TusClient

from examples import wsgi_app
from examples.demo.assets import VENDOR
from examples.demo.inbox import Inbox
from examples.hooks import on_create
from tests.support import REPO_ROOT
from tus_filter import Reject, TusFilter, Upload, UploadInfo

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

EXAMPLES = REPO_ROOT / "examples"
INI_FILES = sorted(path.name for path in EXAMPLES.glob("*.ini"))
MODULES = sorted(
    ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in EXAMPLES.rglob("*.py")
    if "var" not in path.relative_to(EXAMPLES).parts
)
UPLOAD_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")
MiB = 1024 * 1024
STARTUP_TIMEOUT = 30.0


def load_ini(name: str, directory: Path, **overrides: str) -> WSGIApplication:
    """``examples/<name>`` as ``pserve`` loads it, storing under ``directory``.

    Every example ini reads ``received_dir`` and ``incoming_dir`` with
    ``get``, so these overrides win over its [DEFAULT]s.
    """
    global_conf = {
        "received_dir": str(directory / "received"),
        "incoming_dir": str(directory / "incoming"),
        **overrides,
    }
    app: WSGIApplication = loadapp(f"config:{EXAMPLES / name}", global_conf=global_conf)
    return app


def received_files(directory: Path) -> list[Path]:
    """The files an example app kept in ``directory/received`` (named by upload id)."""
    return [path for path in (directory / "received").iterdir() if UPLOAD_ID.fullmatch(path.name)]


# -- uploads sent with WebTest --------------------------------------------------------------


def upload_uid(app: webtest.TestApp, data: bytes, name: str, chunks: int = 3) -> Any:
    """Send ``data`` with the uid protocol in ``chunks`` requests; return the last response."""
    size = -(-len(data) // chunks)
    uid = ""
    for number in range(chunks):
        fields = {
            "uploadUid": uid,
            "fileName": name,
            "totalSize": str(len(data)),
            "chunkNumber": str(number),
            "chunkCount": str(chunks),
        }
        part = data[number * size : (number + 1) * size]
        response = app.post("/files", fields, upload_files=[("content", "blob", part)])
        uid = uid or response.json["uploadUid"]
    return response


def upload_tus(app: webtest.TestApp, data: bytes, name: str, chunk: int = 100_000) -> Any:
    """Send ``data`` with tus: a creation, then one PATCH per ``chunk`` bytes."""
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    created = app.post(
        "/files",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                 "Upload-Metadata": metadata},
        status=201,
    )
    path = urlsplit(created.headers["Location"]).path
    offset = 0
    while offset < len(data):
        response = app.patch(
            path,
            data[offset : offset + chunk],
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset)},
            content_type="application/offset+octet-stream",
        )
        offset = int(response.headers["Upload-Offset"])
    return response


UPLOADERS: dict[str, Callable[[webtest.TestApp, bytes, str], Any]] = {
    "tus": upload_tus,
    "uid": upload_uid,
}


# -- loading and importing ------------------------------------------------------------------


def test_examples_exist() -> None:
    assert {"demo.ini", "pipeline.ini", "filter_with.ini"} <= set(INI_FILES)
    assert {"examples.wsgi_app", "examples.workers", "examples.demo.app"} <= set(MODULES)


@pytest.mark.parametrize("name", INI_FILES)
def test_ini_loads_into_filter_storing_where_told(name: str, tmp_path: Path) -> None:
    app = load_ini(name, tmp_path)
    assert isinstance(app, TusFilter)
    assert app.settings.tmp_file_dir == str(tmp_path / "incoming")
    assert (tmp_path / "received").is_dir()


@pytest.mark.parametrize("module", MODULES)
def test_module_imports(module: str) -> None:
    importlib.import_module(module)


# -- every example app receives uploads -----------------------------------------------------


@dataclass(frozen=True)
class Example:
    build: Callable[[Path], WSGIApplication]
    protocols: tuple[str, ...]


EXAMPLE_APPS = {
    "pipeline.ini": Example(lambda d: load_ini("pipeline.ini", d), ("tus", "uid")),
    # filter_with.ini enables tus, flow.js and resumable.js only.
    "filter_with.ini": Example(lambda d: load_ini("filter_with.ini", d), ("tus",)),
    "demo.ini": Example(lambda d: load_ini("demo.ini", d), ("tus", "uid")),
    "wsgi_app": Example(wsgi_app.make_application, ("tus", "uid")),
}


@pytest.mark.parametrize(
    ("example", "protocol"),
    [
        pytest.param(name, protocol, id=f"{name}-{protocol}")
        for name, example in EXAMPLE_APPS.items()
        for protocol in example.protocols
    ],
)
def test_example_app_receives_upload(example: str, protocol: str, tmp_path: Path) -> None:
    spec = EXAMPLE_APPS[example]
    app = webtest.TestApp(spec.build(tmp_path))
    data = os.urandom(300_001)

    last = UPLOADERS[protocol](app, data, "scan.png")

    [stored] = received_files(tmp_path)
    assert stored.read_bytes() == data
    if protocol == "uid":  # an empty 2xx: the client gets the protocol's own answer
        assert last.json == {"uploadUid": stored.name, "complete": True}
    else:
        assert last.status_int == 204


@pytest.mark.parametrize("example", ["wsgi_app", "pipeline.ini"])
def test_example_app_answers_404_without_upload(example: str, tmp_path: Path) -> None:
    """A request below /files that no protocol recognises reaches the app: 404."""
    app = webtest.TestApp(EXAMPLE_APPS[example].build(tmp_path))
    app.post("/files/nothing", "plain body", content_type="text/plain", status=404)


# -- the on_create hook ---------------------------------------------------------------------


def info(filename: str | None, size: int | None = 1000,
         content_type: str | None = None) -> UploadInfo:
    return UploadInfo(protocol="tus", upload_id="0" * 32, size=size, filename=filename,
                      content_type=content_type)


# fmt: off
@pytest.mark.parametrize(("upload", "refusal"), [
    pytest.param(info("scan.png"), None, id="png"),
    pytest.param(info("Report.PDF", content_type="application/pdf"), None, id="pdf-any-case"),
    pytest.param(info("photo.jpeg", content_type="application/octet-stream"), None,
                 id="unknown-type-judged-by-name"),
    pytest.param(info("scan.png", size=None), None, id="deferred-length-passes"),
    pytest.param(info("scan.png", size=100 * MiB), None, id="exactly-the-limit"),
    pytest.param(info("scan.png", size=100 * MiB + 1), 413, id="too-large"),
    pytest.param(info("setup.exe"), 415, id="wrong-extension"),
    pytest.param(info(None), 415, id="no-name"),
    pytest.param(info("scan.png", content_type="text/html"), 415, id="declared-wrong-type"),
])
# fmt: on
def test_on_create_hook(upload: UploadInfo, refusal: int | None) -> None:
    if refusal is None:
        on_create({}, upload)
        return
    with pytest.raises(Reject) as raised:
        on_create({}, upload)
    assert raised.value.status == refusal


# fmt: off
@pytest.mark.parametrize(("name", "length", "status", "message"), [
    pytest.param("setup.exe", 10, 415, "PDF, PNG and JPEG files only", id="wrong-type"),
    pytest.param("scan.png", 100 * MiB + 1, 413, "files up to 100 MiB only", id="too-large"),
])
# fmt: on
def test_filter_with_ini_runs_hook(
    name: str, length: int, status: int, message: str, tmp_path: Path
) -> None:
    app = webtest.TestApp(load_ini("filter_with.ini", tmp_path))
    metadata = "filename " + base64.b64encode(name.encode()).decode()
    response = app.post(
        "/files",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(length),
                 "Upload-Metadata": metadata},
        status=status,
    )
    assert message in response.text


# -- the demo ------------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> webtest.TestApp:
    return webtest.TestApp(load_ini("demo.ini", tmp_path))


def test_demo_page_carries_settings_that_fit_waitress(demo: webtest.TestApp) -> None:
    page = demo.get("/")
    body = page.html.body
    assert (body["data-upload-path"], body["data-tus-chunk-size"], body["data-chunk-size"]) == (
        "/files", str(50 * MiB), str(5 * MiB)
    )
    # A 2 GB file goes through: no request is bigger than waitress accepts.
    limit = waitress.adjustments.Adjustments().max_request_body_size
    assert 50 * MiB < limit and 2 * 5 * MiB < limit
    scripts = [script["src"] for script in page.html.find_all("script")]
    assert scripts == ["/vendor/uppy.min.js", "/vendor/flow.js", "/vendor/resumable.js",
                       "/static/demo.js"]


@pytest.mark.parametrize(
    ("url", "file", "content_type"),
    [
        *(pytest.param(f"/vendor/{name}", REPO_ROOT / "node_modules" / relative,
                       "text/css" if name.endswith(".css") else "text/javascript", id=name)
          for name, relative in VENDOR.items()),
        pytest.param("/static/demo.js", EXAMPLES / "demo/static/demo.js", "text/javascript",
                     id="demo.js"),
        pytest.param("/static/demo.css", EXAMPLES / "demo/static/demo.css", "text/css",
                     id="demo.css"),
    ],
)
def test_demo_serves_assets(demo: webtest.TestApp, url: str, file: Path, content_type: str) -> None:
    response = demo.get(url)
    assert response.content_type == content_type
    assert response.body == file.read_bytes()


# fmt: off
@pytest.mark.parametrize("url", [
    pytest.param("/vendor/../setup.cfg", id="dot-dot"),
    pytest.param("/vendor/%2e%2e/setup.cfg", id="encoded-dot-dot"),
    pytest.param("/vendor/..%2fsetup.cfg", id="encoded-slash"),
    pytest.param("/vendor/uppy/dist/uppy.min.js", id="node-modules-path"),
    pytest.param("/node_modules/uppy/dist/uppy.min.js", id="node-modules-not-mounted"),
    pytest.param("/vendor/", id="directory"),
    pytest.param("/static/../app.py", id="own-dot-dot"),
    pytest.param("/static/index.html", id="only-listed-files"),
    pytest.param("/files", id="upload-path-get-without-protocol"),
])
# fmt: on
def test_demo_serves_nothing_else(demo: webtest.TestApp, url: str) -> None:
    demo.get(url, status=404)


def test_demo_lists_received_upload_with_sha256(demo: webtest.TestApp) -> None:
    assert demo.get("/received").json["files"] == []
    data = os.urandom(200_000)

    answer = upload_uid(demo, data, "notes.txt")

    [entry] = demo.get("/received").json["files"]
    assert entry == {
        "id": answer.json["uploadUid"],
        "name": "notes.txt",
        "size": len(data),
        "protocol": "uid",
        "sha256": hashlib.sha256(data).hexdigest(),
        "stored_as": answer.json["uploadUid"],
        "received": entry["received"],
    }


def test_inbox_moves_file_out_of_filter_directory(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "received")
    entries = []
    for number, data in enumerate([b"first", b"second"]):
        source = tmp_path / f"data{number}"
        source.write_bytes(data)
        upload = Upload(protocol="tus", upload_id=f"{number:032x}", path=str(source),
                        size=len(data), filename=f"f{number}.txt")

        entry = inbox.receive(upload)

        assert not source.exists()
        assert (inbox.directory / upload.upload_id).read_bytes() == data
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        entries.append(entry)
    assert inbox.received() == entries[::-1]  # newest first


# -- running for real -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_served(url: str, process: subprocess.Popen[str]) -> requests.Response | None:
    """The first answer from ``url``; None if ``process`` exits or times out first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.1)
    return None


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the process group ``process`` leads (it was started in a new session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_make_demo_serves_the_page(tmp_path: Path) -> None:
    """``make demo`` exactly as a newcomer runs it (the setup steps assumed done)."""
    port = free_port()
    log = tmp_path / "make-demo.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["make", "-o", ".make-stamps/demo", "-o", ".make-stamps/node",
             "demo", "HOST=127.0.0.1", f"PORT={port}"],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        try:
            page = wait_until_served(f"http://127.0.0.1:{port}/", process)
            library = requests.get(f"http://127.0.0.1:{port}/vendor/uppy.min.js", timeout=5)
        except requests.ConnectionError:
            library = None
        finally:
            stop_group(process)
    printed = log.read_text()
    assert page is not None and library is not None, f"make demo did not serve:\n{printed}"
    assert page.status_code == 200 and "tus_filter demo" in page.text
    assert library.status_code == 200
    assert f"open http://127.0.0.1:{port}/ in a browser" in printed
    assert f"finished uploads are moved to {EXAMPLES / 'var' / 'uploads'}" in printed


# Two workers: one exits at once, one waits for SIGTERM.  The profile hook
# delivers the parent's SIGTERM right after the supervisor's wait returns,
# the moment `kill -TERM -<group>` under load once hit.
SIGTERM_AFTER_THE_WAIT = """
import os, signal, sys
from examples import workers

signal.signal(signal.SIGTERM, workers.stop)
# Blocked across the forks: a signal caught by a Python handler between
# fork() and the child's first bytecode is lost; a blocked one stays pending.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
quitter = os.fork()
if quitter == 0:
    os._exit(0)
waiter = os.fork()
if waiter == 0:
    os.close(1), os.close(2)  # the test reads the parent's output to its end
    signal.alarm(30)  # dies by itself should the supervisor never stop it
    signal.sigwait({signal.SIGTERM})
    os._exit(0)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

def sigterm_when_the_wait_returns(frame, event, function):
    if event == "c_return" and function in (os.wait, os.waitid):
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGTERM)

sys.setprofile(sigterm_when_the_wait_returns)
sys.exit(workers.supervise([quitter, waiter]))
"""


def test_workers_supervisor_stops_cleanly_on_sigterm_after_a_worker_exit() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_AFTER_THE_WAIT],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_workers_example_shares_uploads_across_processes(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "examples.workers", "--workers", "2", "--port", "0",
         "--directory", str(tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:
        assert process.stdout is not None
        try:
            banner = process.stdout.readline()
            match = re.search(r"(http://\S+)/files with 2 worker processes \((\d+), (\d+)\)",
                              banner)
            assert match, banner
            base_url, workers = match.group(1), {int(match.group(2)), int(match.group(3))}
            answered_by = set()
            for _ in range(200):  # fresh connections until both processes have answered
                hello = requests.get(base_url + "/", headers={"Connection": "close"}, timeout=5)
                answered_by.add(int(hello.text.split("process ")[1].split(":")[0]))
                if answered_by == workers:
                    break
            assert answered_by == workers

            data = {name: os.urandom(250_000) for name in ("tus.png", "uid.png")}
            uploader = TusClient(base_url + "/files/").uploader(
                file_stream=io.BytesIO(data["tus.png"]), chunk_size=60_000,
                metadata={"filename": "tus.png"},
            )
            uploader.upload()
            uid = ""
            for number in range(4):  # one request per chunk, each on a new connection
                part = data["uid.png"][number * 62_500 : (number + 1) * 62_500]
                response = requests.post(
                    base_url + "/files",
                    data={"uploadUid": uid, "fileName": "uid.png", "totalSize": "250000",
                          "chunkNumber": str(number), "chunkCount": "4"},
                    files={"content": ("blob", part)},
                    timeout=10,
                )
                uid = uid or response.json()["uploadUid"]
            assert response.json() == {"uploadUid": uid, "complete": True}
        finally:
            stop_group(process)
        assert process.returncode == 0
    assert sorted(path.read_bytes() for path in received_files(tmp_path)) == sorted(data.values())
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

