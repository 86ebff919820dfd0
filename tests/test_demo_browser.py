"""The demo in headless Chromium: a file through each uploader, listed with its SHA-256.

The app is ``examples/demo.ini`` loaded as ``pserve`` loads it, with 1 MiB
chunks so that every file takes several requests, served by waitress.  A
recorder in front of it counts each client's upload requests, which proves
the page gives each library its chunk size (a 2 GB file needs that).
The screenshot ``test-artifacts/<test>-uploaded.png`` shows the page.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from paste.deploy import loadapp
from playwright.sync_api import Page, expect
from waitress.channel import HTTPChannel

from tests.support import REPO_ROOT
from tests.support.servers import serve

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MiB = 1024 * 1024
#: Uploader (its panel's id on the page) → a file to send through it.
FILES = {
    "tus": ("holiday-photo.jpg", 2 * MiB + 500_000),
    "flowjs": ("measurements.csv", 3 * MiB + 100_000),
    "resumablejs": ("slides.pdf", 2 * MiB + 200_000),
}
TIMEOUT_MS = 20_000


def demo_app(directory: Path) -> WSGIApplication:
    """``examples/demo.ini`` as pserve loads it, with 1 MiB chunks, storing under ``directory``."""
    app: WSGIApplication = loadapp(
        f"config:{REPO_ROOT / 'examples' / 'demo.ini'}",
        global_conf={"received_dir": str(directory / "received"),
                     "incoming_dir": str(directory / "incoming"),
                     "tus_chunk_mib": "1", "chunk_mib": "1"},
    )
    return app


def client_of(environ: WSGIEnvironment) -> str | None:
    """Which library sent this chunk upload (None for anything else)."""
    method = environ["REQUEST_METHOD"]
    if method == "PATCH" and "HTTP_TUS_RESUMABLE" in environ:
        return "tus"
    if method != "POST" or "HTTP_TUS_RESUMABLE" in environ:
        return None
    # resumable.js repeats its parameters in the query string; flow.js does not.
    return "resumablejs" if "resumableChunkNumber" in environ.get("QUERY_STRING", "") else "flowjs"


def counting(app: WSGIApplication, counts: Counter[str]) -> WSGIApplication:
    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        client = client_of(environ)
        if client is not None:
            counts[client] += 1
        return app(environ, start_response)

    return wrapped


@pytest.mark.browser
def test_demo_uploads_through_each_uploader(
    page: Page, screenshot: Callable[[str], Path], tmp_path: Path
) -> None:
    files = {}
    for uploader, (name, size) in FILES.items():
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        files[uploader] = path
    counts: Counter[str] = Counter()
    app = demo_app(tmp_path)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 1400, "height": 900})

    with serve(counting(app, counts)) as base_url:
        page.goto(base_url + "/")
        expect(page.locator("#received-empty")).to_be_visible()
        for uploader, path in files.items():
            # Uppy's Dashboard has a second input, for folders: the first takes files.
            page.locator(f"#{uploader} input[type=file]").first.set_input_files(path)
        for uploader, path in files.items():
            row = page.locator(f"#received-rows tr[data-sha256='{_sha256(path)}']")
            expect(row).to_contain_text(path.name, timeout=TIMEOUT_MS)
            expect(row).to_contain_text(uploader)
        for uploader in ("flowjs", "resumablejs"):
            expect(page.locator(f"#{uploader} .file .status")).to_have_text("Complete")
        expect(page.locator("#tus .uppy-StatusBar")).to_contain_text("Complete")
        expect(page.locator("#received-count")).to_have_text("3")
        shot = screenshot("uploaded")

    assert problems == []
    assert {uploader: counts[uploader] >= 2 for uploader in FILES} == dict.fromkeys(FILES, True), (
        counts
    )
    stored = sorted(path.read_bytes() for path in (tmp_path / "received").iterdir()
                    if path.name != "received.jsonl")
    assert stored == sorted(path.read_bytes() for path in files.values())
    assert shot.stat().st_size > 0


@pytest.fixture
def close_abandoned_request_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Close the body buffer of a request whose client went away mid-body.

    Pausing aborts the chunk requests in flight.  waitress 3.0.2 then drops
    the half-received request without closing its body buffer, a temporary
    file once the body passed ``inbuf_overflow`` (512 KiB), and the garbage
    collector's ResourceWarning would fail the run.
    """
    handle_close = HTTPChannel.handle_close

    def closing_handle_close(channel: HTTPChannel) -> None:
        if channel.request is not None:
            channel.request.close()
        handle_close(channel)

    monkeypatch.setattr(HTTPChannel, "handle_close", closing_handle_close)


@pytest.mark.browser
@pytest.mark.parametrize("uploader", ["flowjs", "resumablejs"])
@pytest.mark.usefixtures("close_abandoned_request_bodies")
def test_demo_pauses_and_resumes(uploader: str, page: Page, tmp_path: Path) -> None:
    """The page's own file list (Uppy has its own): Pause stops the requests, Resume finishes."""
    path = tmp_path / "video.mp4"
    path.write_bytes(os.urandom(3 * MiB))
    counts: Counter[str] = Counter()
    # 2 MB/s upstream: a 3 MiB file takes over a second, time enough to pause it.
    page.context.new_cdp_session(page).send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2_000_000},
    )
    with serve(counting(demo_app(tmp_path), counts)) as base_url:
        page.goto(base_url + "/")
        page.locator(f"#{uploader} input[type=file]").set_input_files(path)
        item = page.locator(f"#{uploader} .file")
        expect(item.locator(".status")).to_contain_text("/s", timeout=TIMEOUT_MS)  # speed shown

        item.locator(".action").click()
        expect(item).to_have_attribute("data-state", "paused")
        expect(item.locator(".status")).to_have_text(re.compile(r"Paused at \d+%"))
        page.wait_for_timeout(500)  # a chunk that had fully arrived may still be handled
        sent = counts[uploader]
        page.wait_for_timeout(1000)
        assert counts[uploader] == sent

        item.locator(".action").click()
        expect(item.locator(".status")).to_have_text("Complete", timeout=TIMEOUT_MS)
        row = page.locator(f"#received-rows tr[data-sha256='{_sha256(path)}']")
        expect(row).to_contain_text(uploader)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
