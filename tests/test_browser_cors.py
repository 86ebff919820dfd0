"""tus-js-client 4.3.1 in headless Chromium, uploading cross-origin: the CORS preflights.

The page comes from one waitress server and uploads to another (another
port, so another origin) whose filter allows the page's origin.  Chromium
preflights the ``POST`` and the ``PATCH`` (their ``Tus-Resumable`` and
``Upload-*`` headers are not CORS-safelisted); the filter answers them
``200`` and the upload must complete, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.apps import RecordingApp
from tests.support.servers import serve
from tests.support.static import with_static
from tus_filter import TusFilter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

SIZE = 200 * 1024
CHUNK = 64 * 1024
PAGE = """<!doctype html>
<script src="/node_modules/tus-js-client/dist/tus.js"></script>
<script>
window.upload = (endpoint, size, chunkSize) => new Promise((resolve) => {
  const bytes = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 255);
  const file = new Blob([bytes], {type: "application/octet-stream"});
  new tus.Upload(file, {
    endpoint, chunkSize, retryDelays: [],
    metadata: {filename: "cross.bin"},
    onSuccess: () => resolve("done"),
    onError: (error) => resolve(String(error)),
  }).start();
});
</script>
"""


class StatusLog:
    """WSGI middleware noting ``(method, status)`` of every request it passes on."""

    def __init__(self, app: WSGIApplication):
        self.app = app
        self.seen: list[tuple[str, int]] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def noting(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self.seen.append((environ["REQUEST_METHOD"], int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.app(environ, noting)


def test_cross_origin_upload_through_preflights(page: Page, tmp_path: Path) -> None:
    app = RecordingApp()
    with serve(with_static(RecordingApp(), {"/upload.html": PAGE})) as page_url:
        uploads = StatusLog(TusFilter(app, tmp_file_dir=str(tmp_path), cors_origins=[page_url]))
        with serve(uploads) as upload_url:
            assert page_url != upload_url
            page.goto(page_url + "/upload.html")
            result = page.evaluate(
                "([endpoint, size, chunk]) => upload(endpoint, size, chunk)",
                [upload_url + "/files", SIZE, CHUNK],
            )
    assert result == "done"
    preflights = [status for method, status in uploads.seen if method == "OPTIONS"]
    assert preflights and set(preflights) == {200}
    assert ("PATCH", 204) in uploads.seen
    [upload] = app.calls
    expected = bytes((index * 7 + 3) & 255 for index in range(SIZE))
    assert upload["sha256"] == hashlib.sha256(expected).hexdigest()
    assert upload["filename"] == "cross.bin"
