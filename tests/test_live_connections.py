"""Real sockets: keep-alive under waitress; stalled and vanishing clients under gunicorn.

waitress buffers each request body before the app runs, so a client that
stalls or disconnects mid-body never reaches the filter there; gunicorn
(gthread) streams bodies, so these tests run under gunicorn, with raw
sockets for the misbehaving client.  Case numbers refer to
/work/shared/reference/tus-server-contract.md.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.apps import RecordingApp, read_records
from tests.support.chunked import ClientFile, multipart
from tests.support.servers import serve, serve_gunicorn
from tests.support.tus import OCTET, TUS
from tus_filter import TusFilter

LOCK_TIMEOUT = 3.0
SIZE = 1024 * 1024
HALF = SIZE // 2


def payload(size: int) -> bytes:
    return random.Random(7).randbytes(size)


class Live:
    """A filter served by gunicorn, with its storage and record directories."""

    def __init__(self, base_url: str, root: Path):
        self.base_url = base_url
        self.root = root
        self.port = urlsplit(base_url).port or 80

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> http.client.HTTPResponse:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response
        finally:
            connection.close()

    def create(self, length: int) -> str:
        response = self.request("POST", "/files", {**TUS, "Upload-Length": str(length)})
        assert response.status == 201
        return urlsplit(response.getheader("Location") or "").path

    def data_size(self, path: str) -> int:
        upload_id = path.rsplit("/", 1)[1]
        data = self.root / "store" / "uploads" / upload_id[:2] / upload_id / "data"
        return data.stat().st_size

    def wait_for_data(self, path: str, size: int) -> None:
        """Until the filter has written ``size`` bytes of the upload at ``path``."""
        deadline = time.monotonic() + 10
        while self.data_size(path) < size:
            assert time.monotonic() < deadline, self.data_size(path)
            time.sleep(0.02)

    def offset(self, path: str) -> int:
        return int(self.request("HEAD", path, TUS).getheader("Upload-Offset") or "-1")

    def resume(self, path: str, data: bytes) -> int:
        """What a tus client does: HEAD, PATCH the rest; on 409 once more.  The last status."""
        status = 0
        for _ in range(3):
            offset = self.offset(path)
            headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OCTET}
            status = self.request("PATCH", path, headers, data[offset:]).status
            if status != 409:
                break
        return status

    def records(self) -> list[dict[str, object]]:
        return read_records(self.root / "records")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    options = {
        "record_dir": str(tmp_path / "records"),
        "tmp_file_dir": str(tmp_path / "store"),
        "lock_timeout": LOCK_TIMEOUT,
    }
    (tmp_path / "records").mkdir()
    with serve_gunicorn("tests.support.apps:filtered_recording_app", options, threads=2) as url:
        yield Live(url, tmp_path)


def open_request(live: Live, head: str, body: bytes) -> socket.socket:
    """A raw connection that sent ``head`` and ``body`` (only part of what it announced)."""
    client = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    client.sendall(head.encode() + body)
    return client


def patch_head(path: str, offset: int, length: int) -> str:
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: {OCTET}\r\nContent-Length: {length}\r\n\r\n"
    )


# -- keep-alive (waitress) -------------------------------------------------------------------------


def test_options_and_preflight_keep_the_connection_open(tmp_path: Path) -> None:
    """#10, #130: 200, not 204, after which waitress would close the connection."""
    app = TusFilter(RecordingApp(), tmp_file_dir=str(tmp_path), cors_origins="*")
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"}
    with serve(app) as base_url:
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(base_url).port, timeout=10)
        try:
            for headers in ({}, preflight):
                connection.request("OPTIONS", "/files", headers=headers)
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                assert response.getheader("Connection") is None  # not "close"
                assert not response.will_close
        finally:
            connection.close()


# -- a stalled PATCH is taken over (gunicorn) ------------------------------------------------------


def test_stalled_patch_is_taken_over(live: Live) -> None:
    """#39, #134: a client that went silent mid-PATCH resumes at once from another connection.

    The stalled request stops while waiting for bytes, keeps the half it
    wrote and lets go of the lock; the client's HEAD + PATCH (409, HEAD,
    PATCH, as tus clients retry) complete the upload well within
    ``lock_timeout``, byte for byte.
    """
    data = payload(SIZE)
    path = live.create(SIZE)
    stalled = open_request(live, patch_head(path, 0, SIZE), data[:HALF])
    try:
        live.wait_for_data(path, HALF)
        started = time.monotonic()
        assert live.resume(path, data) == 204
        assert time.monotonic() - started < LOCK_TIMEOUT
    finally:
        stalled.close()
    [record] = live.records()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["size"] == SIZE


def test_a_taken_over_request_frees_its_worker_thread(live: Live) -> None:
    """After the takeover gunicorn drains the stalled body for a while, then drops it.

    The server has two threads.  Once the stalled request was taken over,
    two new stalled PATCHes (other uploads) must both be served at once:
    so the first request's thread is free again, not wedged by the silent
    client.
    """
    data = payload(SIZE)
    path = live.create(SIZE)
    stalled = [open_request(live, patch_head(path, 0, SIZE), data[:HALF])]
    try:
        live.wait_for_data(path, HALF)
        assert live.resume(path, data) == 204
        others = [live.create(SIZE) for _ in range(2)]
        stalled += [open_request(live, patch_head(p, 0, SIZE), data[:HALF]) for p in others]
        for other in others:
            live.wait_for_data(other, HALF)  # each needs a thread of its own
    finally:
        for client in stalled:
            client.close()


def test_delete_during_a_stalled_patch(live: Live) -> None:
    """#102: DELETE stops the stalled PATCH, then terminates the upload: 204, then 404."""
    path = live.create(SIZE)
    stalled = open_request(live, patch_head(path, 0, SIZE), payload(HALF))
    try:
        live.wait_for_data(path, HALF)
        started = time.monotonic()
        assert live.request("DELETE", path, TUS).status == 204
        assert time.monotonic() - started < LOCK_TIMEOUT
        assert live.request("HEAD", path, TUS).status == 404
    finally:
        stalled.close()
    assert live.records() == []


# -- a client that disconnects mid-body (gunicorn) -------------------------------------------------


def test_disconnect_mid_patch_keeps_the_bytes(live: Live) -> None:
    """#51: under a streaming server the bytes that arrived count; the client resumes."""
    data = payload(SIZE)
    path = live.create(SIZE)
    open_request(live, patch_head(path, 0, SIZE), data[:HALF]).close()
    deadline = time.monotonic() + 10
    while live.offset(path) != HALF:  # saved once the filter sees the end of the body
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert live.resume(path, data) == 204
    [record] = live.records()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_disconnect_mid_chunk_does_not_mark_it(live: Live) -> None:
    """A flow.js chunk cut off mid-body is not stored: its test request still says absent."""
    file = ClientFile(payload(3 * 64 * 1024), chunk_size=64 * 1024)
    params = file.params(1)
    content_type, body = multipart(
        params.items(), ("file", file.name, file.chunk(1), "application/octet-stream")
    )
    head = (
        f"POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    open_request(live, head, body[: len(body) // 2]).close()
    query = "&".join(f"{k}={v}" for k, v in params.items()).replace(" ", "%20")
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # give the filter time to (wrongly) mark it
        assert live.request("GET", f"/files?{query}", {}).status == 204
        time.sleep(0.1)
    for number in range(1, file.count + 1):
        content_type, body = multipart(
            file.params(number).items(),
            ("file", file.name, file.chunk(number), "application/octet-stream"),
        )
        response = live.request("POST", "/files", {"Content-Type": content_type}, body)
        assert response.status == 200
    [record] = live.records()
    assert record["sha256"] == hashlib.sha256(file.data).hexdigest()
