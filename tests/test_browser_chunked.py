"""flow.js 2.14.1 and resumable.js 1.1.0 in headless Chromium against the live filter.

The page ``tests/browser/chunked.html`` builds files from a seeded PRNG,
hashes them with ``crypto.subtle`` and adds them, as ``File`` objects, to the
unmodified client from ``node_modules``.  Waitress serves the page, the
libraries and the filter on 127.0.0.1 (one origin, so no CORS).  Every test
checks what the issue asks of browser interop: the app is called exactly
once per file, with the bytes the page built (same sha256 and size), the
filename as given and the relative path in the metadata.

:class:`ChunkTraffic` logs each request to the upload URL as the server saw
it, so the tests also pin the exchange: the chunk layout with and without
``forceChunkSize`` (§1.2), test requests answered 204 for absent and 200 for
stored chunks (F1, F2, R3), chunks uploaded in parallel, a resumed
upload that skips what is stored, and a refusal from ``on_create`` that
each client gives up on at once.  Case numbers cite
``chunked-protocols-contract.md``.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from tests.support import backend
from tests.support.apps import RecordingApp
from tests.support.servers import serve
from tests.support.static import with_static
from tus_filter import Reject, TusFilter, UploadInfo

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("storage_backend")]

PAGE_PATH = "/chunked.html"
PAGE = (Path(__file__).parent / "browser" / "chunked.html").read_text()
UPLOAD_PATH = "/upload"
C = 64 * 1024  # chunkSize: small, so that a few hundred KiB make several chunks
SETTLE_TIMEOUT_MS = 30_000
# Held by every chunk upload before the filter sees it, so that chunks sent in
# parallel overlap on the server, where the concurrency assertion looks.
UPLOAD_LATENCY = 0.05

# Each library's protocol name; the library's name prefixes its parameters (flowChunkNumber...).
PROTOCOL = {"flow": "flowjs", "resumable": "resumablejs"}


# -- what the server saw -------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request to the upload URL: its method, chunk parameters and response status."""

    method: str
    params: dict[str, str]  # flow*/resumable* parameters, prefix removed: "ChunkNumber"...
    status: int

    @property
    def number(self) -> int:
        return int(self.params["ChunkNumber"])

    @property
    def identifier(self) -> str:
        return self.params["Identifier"]

    @property
    def current_size(self) -> int:
        return int(self.params["CurrentChunkSize"])


_FIELD = re.compile(rb'Content-Disposition: form-data; name="([^"]+)"\r\n\r\n(.*?)\r\n--', re.S)


class ChunkTraffic:
    """WSGI middleware logging every request to ``UPLOAD_PATH`` as an :class:`Exchange`.

    The parameters named ``<prefix>...`` come from the query string and, for
    multipart bodies, from the text fields (flow.js sends them only there).
    The body is read whole and replayed to ``app`` unchanged: test chunks are
    small.  Each POST is held for ``UPLOAD_LATENCY`` first; ``peak_uploads``
    is the most POSTs held or handled at once.
    """

    def __init__(self, app: WSGIApplication, *, prefix: str):
        self.app = app
        self.prefix = prefix
        self.exchanges: list[Exchange] = []
        self.peak_uploads = 0
        self._uploads = 0
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != UPLOAD_PATH:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        method = environ["REQUEST_METHOD"]
        statuses: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        with self._counted(method == "POST"):
            result = self.app(environ, recording_start_response)
            try:
                response = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        with self._lock:  # before the client can see the response
            self.exchanges.append(Exchange(method, self._params(environ, body), statuses[-1]))
        return [response]

    @contextmanager
    def _counted(self, upload: bool) -> Iterator[None]:
        if not upload:
            yield
            return
        with self._lock:
            self._uploads += 1
            self.peak_uploads = max(self.peak_uploads, self._uploads)
        try:
            time.sleep(UPLOAD_LATENCY)
            yield
        finally:
            with self._lock:
                self._uploads -= 1

    def _params(self, environ: WSGIEnvironment, body: bytes) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, values in parse_qs(environ.get("QUERY_STRING", "")).items():
            found.setdefault(name, values[0])
        if environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            for name, value in _FIELD.findall(body):
                found.setdefault(name.decode(), value.decode())
        return {
            name[len(self.prefix) :]: value
            for name, value in found.items()
            if name.startswith(self.prefix)
        }

    def since(self, start: int) -> list[Exchange]:
        """The exchanges logged after the first ``start``, in arrival order."""
        with self._lock:
            return self.exchanges[start:]

    def of(self, identifier: str, method: str) -> list[Exchange]:
        """The exchanges for file ``identifier`` with ``method``, in arrival order."""
        return [e for e in self.since(0) if e.method == method and e.identifier == identifier]


# -- the site and the page --------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Page, libraries and filter on one waitress server; what the app and the server saw."""

    base_url: str
    app: RecordingApp
    traffic: ChunkTraffic


@pytest.fixture
def filter_options() -> dict[str, Any]:
    """More ``TusFilter`` options for ``site``; a test parametrises it to change them."""
    return {}


@pytest.fixture
def site(library: str, filter_options: dict[str, Any], tmp_path: Path) -> Iterator[Site]:
    """``library`` is each test's parametrised client: "flow" or "resumable"."""
    app = RecordingApp()
    traffic = ChunkTraffic(
        TusFilter(
            with_static(app, {PAGE_PATH: PAGE}),
            tmp_file_dir=str(tmp_path),
            upload_path=UPLOAD_PATH,
            **backend.options(),
            **filter_options,
        ),
        prefix=library,
    )
    with serve(traffic) as base_url:
        yield Site(base_url, app, traffic)


def run_client(
    page: Page,
    site: Site,
    library: str,
    files: list[dict[str, Any]],
    *,
    until: str = "harness.settled()",
    pause_after_chunks: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Load the page, upload ``files`` with ``library`` and return its report once ``until``.

    ``files`` are the page's file specs (name, size, seed, type, relativePath);
    ``options`` add to the client's ``target`` and ``chunkSize``.
    """
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site.base_url + PAGE_PATH)
    assert page.evaluate("() => isSecureContext"), "crypto.subtle needs a secure context"
    page.evaluate(
        "spec => harness.start(spec)",
        {
            "library": library,
            "options": {"target": UPLOAD_PATH, "chunkSize": C, **options},
            "files": files,
            "pauseAfterChunks": pause_after_chunks,
        },
    )
    page.wait_for_function(f"() => {until}", timeout=SETTLE_TIMEOUT_MS)
    report: dict[str, Any] = page.evaluate("() => harness.report()")
    assert errors == []
    return report


# -- expectations -------------------------------------------------------------------------------


def chunk_sizes(total: int, *, force: bool) -> list[int]:
    """How both clients cut ``total`` bytes into chunks of ``C`` (§1.2)."""
    count = max(-(-total // C) if force else total // C, 1)
    return [C] * (count - 1) + [total - (count - 1) * C]


def assert_handed_over(site: Site, library: str, report: dict[str, Any]) -> None:
    """Every file succeeded and reached the app exactly once, byte for byte."""
    files = report["files"]
    assert [(f["name"], f["status"], f["message"]) for f in files if f["status"] != "success"] == []
    calls = site.app.calls
    assert sorted(call["filename"] for call in calls) == sorted(f["name"] for f in files)
    by_name = {call["filename"]: call for call in calls}
    for f in files:
        call = by_name[f["name"]]
        assert {
            "protocol": call["protocol"],
            "size": call["size"],
            "sha256": call["sha256"],
            "relativePath": call["metadata"].get("relativePath"),
        } == {
            "protocol": PROTOCOL[library],
            "size": f["size"],
            "sha256": f["sha256"],
            "relativePath": f["relativePath"],
        }, f["name"]


def assert_each_chunk_once(site: Site, identifier: str, sizes: list[int]) -> None:
    """Each chunk was tested once (204: absent, F2/R3) and uploaded once (200) at its size."""
    numbers = range(1, len(sizes) + 1)
    tests = site.traffic.of(identifier, "GET")
    uploads = site.traffic.of(identifier, "POST")
    assert sorted((e.number, e.status) for e in tests) == [(n, 204) for n in numbers]
    assert sorted((e.number, e.current_size, e.status) for e in uploads) == [
        (n, size, 200) for n, size in zip(numbers, sizes, strict=True)
    ]


def identifier_of(report: dict[str, Any], name: str) -> str:
    identifier: str = next(f["identifier"] for f in report["files"] if f["name"] == name)
    return identifier


# -- the tests ----------------------------------------------------------------------------------

# Not forced: 5 chunks, the last C + C/2 + 7 bytes (between C and 2C-1).
# forceChunkSize: 6 chunks, the last C/2 + 7 bytes.
LAYOUT_SIZE = 5 * C + C // 2 + 7


@pytest.mark.parametrize(
    ("library", "method", "force"),
    [
        pytest.param(
            library, method, force,
            id=f"{library}-{method}-{'forceChunkSize' if force else 'last-chunk-over-C'}",
        )
        for library in ("flow", "resumable")
        for method in ("multipart", "octet")
        for force in (False, True)
    ],
)
def test_layout_matrix(page: Page, site: Site, library: str, method: str, force: bool) -> None:
    """Both bodies, both layouts, 3 simultaneous chunks: right chunks and file (§1.2, F13-F20)."""
    name = "layout test (1).bin"
    report = run_client(
        page, site, library,
        [{"name": name, "size": LAYOUT_SIZE, "seed": 1}],
        method=method, forceChunkSize=force, simultaneousUploads=3,
    )
    assert_handed_over(site, library, report)
    sizes = chunk_sizes(LAYOUT_SIZE, force=force)
    assert len(sizes) == (6 if force else 5)
    assert_each_chunk_once(site, identifier_of(report, name), sizes)
    assert 2 <= site.traffic.peak_uploads <= 3, "chunks ran in parallel, never more than 3"


MIB = 1024 * 1024


@pytest.mark.parametrize("library", ["flow"])
@pytest.mark.parametrize(
    ("size", "options"),
    [
        # On S3: 1 MiB chunks grouped in slots of 5, each slot one part.
        pytest.param(11 * MIB + 123, {"chunkSize": MIB}, id="1-MiB-chunks-in-5-MiB-slots"),
        # On S3: chunks of 5 MiB are parts of their own (the manual's advice for S3).
        pytest.param(
            11 * MIB + 123, {"chunkSize": 5 * MIB, "forceChunkSize": True},
            id="forceChunkSize-5-MiB-chunks-as-parts",
        ),
    ],
)
def test_flow_files_of_several_parts(
    page: Page, site: Site, library: str, size: int, options: dict[str, Any]
) -> None:
    """flow.js with chunks of S3's sizes: one hand-off, the bytes the page built."""
    report = run_client(
        page, site, "flow", [{"name": "big.bin", "size": size, "seed": 7}],
        simultaneousUploads=3, **options,
    )
    assert_handed_over(site, "flow", report)


TWO_FILES: list[dict[str, Any]] = [
    {
        "name": "Grüße 日本 (1).txt",
        "size": 2 * C + 1,
        "seed": 2,
        "type": "text/plain",
        "relativePath": "photos/sub dir/Grüße 日本 (1).txt",
    },
    {"name": "small.bin", "size": C // 2 + 3, "seed": 3},  # smaller than one chunk
]


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_two_files_at_once(
    page: Page, site: Site, library: str, screenshot: Any
) -> None:
    """Two files in one client: two records, two hand-offs, names/paths/types kept (F12)."""
    report = run_client(page, site, library, TWO_FILES)
    screenshot("done")
    assert [f["relativePath"] for f in report["files"]] == [
        "photos/sub dir/Grüße 日本 (1).txt", "small.bin"
    ]
    assert_handed_over(site, library, report)
    typed = next(call for call in site.app.calls if call["filename"] == TWO_FILES[0]["name"])
    assert typed["content_type"] == "text/plain"
    for spec in TWO_FILES:
        assert_each_chunk_once(
            site, identifier_of(report, spec["name"]), chunk_sizes(spec["size"], force=False)
        )


@pytest.mark.parametrize(
    ("library", "options"),
    [
        pytest.param("flow", {}, id="flow"),
        # resumable.js refuses empty files unless told otherwise (default minFileSize: 1, R10).
        pytest.param("resumable", {"minFileSize": 0}, id="resumable-minFileSize-0"),
    ],
)
def test_zero_byte_file(page: Page, site: Site, library: str, options: dict[str, Any]) -> None:
    """One empty chunk completes an empty upload (F22, R10)."""
    name = "empty.txt"
    report = run_client(page, site, library, [{"name": name, "size": 0, "seed": 4}], **options)
    assert_handed_over(site, library, report)
    assert_each_chunk_once(site, identifier_of(report, name), [0])


RESUME_SIZE = 8 * C + C // 3  # 8 chunks, the last C + C/3
STORED = 3  # chunks the first page uploads before it pauses


@pytest.mark.parametrize("library", ["flow", "resumable"])
def test_resume_from_new_page(
    browser: Browser, page: Page, site: Site, library: str, screenshot: Any
) -> None:
    """Pause, close the page, add the same file on a new one: stored chunks are skipped (F1)."""
    files = [{"name": "resume me.bin", "size": RESUME_SIZE, "seed": 5}]
    first = browser.new_context()
    try:
        paused = run_client(
            first.new_page(), site, library, files,
            until="harness.report().paused", pause_after_chunks=STORED, simultaneousUploads=1,
        )
    finally:
        first.close()
    identifier = identifier_of(paused, "resume me.bin")
    first_visit = site.traffic.since(0)
    assert site.app.calls == []
    assert [(e.method, e.number, e.status) for e in first_visit] == [
        (method, n, status)
        for n in range(1, STORED + 1)
        for method, status in (("GET", 204), ("POST", 200))
    ]

    resumed = run_client(page, site, library, files)
    screenshot("resumed")
    assert identifier_of(resumed, "resume me.bin") == identifier
    second_visit = site.traffic.since(len(first_visit))
    count = len(chunk_sizes(RESUME_SIZE, force=False))
    assert sorted((e.number, e.status) for e in second_visit if e.method == "GET") == [
        (n, 200 if n <= STORED else 204) for n in range(1, count + 1)
    ]
    assert sorted((e.number, e.status) for e in second_visit if e.method == "POST") == [
        (n, 200) for n in range(STORED + 1, count + 1)
    ]
    assert_handed_over(site, library, resumed)


def refuse_uploads(environ: dict[str, Any], info: UploadInfo) -> None:
    raise Reject(403, "uploads are closed today")


@pytest.mark.parametrize(
    ("library", "filter_options", "options", "status"),
    [
        # flow.js retries a 403 when told to retry at all; its default 0 retries hides that.
        pytest.param("flow", {"on_create": refuse_uploads},
                     {"maxChunkRetries": 5, "chunkRetryInterval": 10}, 415,
                     id="flow-maxChunkRetries-5"),
        # resumable.js retries a 403 at once, 100 times, by default.
        pytest.param("resumable", {"on_create": refuse_uploads}, {}, 400,
                     id="resumable-defaults"),
    ],
)
def test_a_refusal_stops_the_client(
    page: Page, site: Site, library: str, options: dict[str, Any], status: int
) -> None:
    """Reject(403) from on_create: one refused chunk, an error event with the hook's message."""
    report = run_client(
        page, site, library, [{"name": "refused.bin", "size": C // 2, "seed": 6}], **options
    )
    [file] = report["files"]
    assert file["status"] == "error"
    assert json.loads(file["message"]) == {"error": "uploads are closed today"}
    page.wait_for_timeout(500)  # a retry after the error event would show up meanwhile
    assert [(e.method, e.status) for e in site.traffic.since(0)] == [
        ("GET", 204), ("POST", status)
    ]
    assert site.app.calls == []
