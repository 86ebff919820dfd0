"""Expiry: a request that finds its upload expired removes it; the background sweep.

The request that finds an upload expired answers as its protocol says (tus
410, uid 404 "upload expired", a flow.js test request 204) and removes the
upload's bytes at once; the next request finds no upload (tus 404).  The
sweep runs every ``sweep_interval`` seconds, the first time one interval
after the filter's first request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from webtest import TestApp, TestResponse

from tests.support import backend
from tests.support.apps import RecordingApp
from tests.support.chunked import ClientFile
from tus_filter import TusFilter, UploadExpired, UploadNotFound
from tus_filter.protocols.flowlike import record_key
from tus_filter.storage import UploadRecord

pytestmark = pytest.mark.usefixtures("storage_backend")

TUS = {"Tus-Resumable": "1.0.0"}
FLOW = ClientFile.of_size(25)


def make_filter(tmp_path: Path, **options: Any) -> tuple[TusFilter, TestApp]:
    wrapped = TusFilter(
        RecordingApp(), tmp_file_dir=str(tmp_path), **{**backend.options(), **options}
    )
    return wrapped, TestApp(wrapped)


def kept(wrapped: TusFilter) -> list[str]:
    """The uploads whose record or bytes ``wrapped``'s store holds."""
    return backend.upload_ids(wrapped.storage, wrapped.settings.tmp_file_dir)


def expire(wrapped: TusFilter, upload_id: str) -> None:
    record = wrapped.storage.load(upload_id, allow_expired=True)
    record.touched -= 2 * wrapped.settings.upload_valid_duration
    wrapped.storage.save(record)


# -- one protocol each: how to start an upload, and a request that finds it -------------------


def start_tus(app: TestApp) -> str:
    response = app.post("/files", headers={**TUS, "Upload-Length": "10"})
    return str(response.headers["Location"].rsplit("/", 1)[1])


def tus_patch(app: TestApp, upload_id: str) -> TestResponse:
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    return app.patch(f"/files/{upload_id}", b"abc", headers=headers, expect_errors=True)


def tus_head(app: TestApp, upload_id: str) -> TestResponse:
    return app.head(f"/files/{upload_id}", headers=TUS, expect_errors=True)


def tus_delete(app: TestApp, upload_id: str) -> TestResponse:
    return app.delete(f"/files/{upload_id}", headers=TUS, expect_errors=True)


UID_FIELDS = {"fileName": "a.txt", "totalSize": 4, "chunkCount": 2}


def start_uid(app: TestApp) -> str:
    query = urlencode({**UID_FIELDS, "uploadUid": "", "chunkNumber": 0})
    response = app.post(f"/files?{query}", b"ab", headers={"Content-Type": "text/plain"})
    return str(response.json["uploadUid"])


def uid_chunk(app: TestApp, upload_id: str) -> TestResponse:
    query = urlencode({**UID_FIELDS, "uploadUid": upload_id, "chunkNumber": 1})
    return app.post(
        f"/files?{query}", b"cd", headers={"Content-Type": "text/plain"}, expect_errors=True
    )


def start_flow(app: TestApp) -> str:
    app.post(f"/files?{urlencode(FLOW.params(1))}", FLOW.chunk(1),
             headers={"Content-Type": "application/octet-stream"})
    return record_key("flowjs", "", FLOW.params(1)["flowIdentifier"], FLOW.total, 10)


def flow_test(app: TestApp, upload_id: str) -> TestResponse:
    return app.get(f"/files?{urlencode(FLOW.params(1))}", expect_errors=True)


Start = Callable[[TestApp], str]
Probe = Callable[[TestApp, str], TestResponse]


@pytest.mark.parametrize(
    ("start", "probe", "found", "then"),
    [
        pytest.param(start_tus, tus_patch, (410, b""), (404, b""), id="tus-PATCH-410-then-404"),
        pytest.param(start_tus, tus_head, (410, b""), (404, b""), id="tus-HEAD-410-then-404"),
        pytest.param(start_tus, tus_delete, (410, b""), (404, b""), id="tus-DELETE-410-then-404"),
        pytest.param(
            start_uid, uid_chunk, (404, b"upload expired"), (404, b"upload not found"),
            id="uid-404-expired-then-not-found",
        ),
        pytest.param(start_flow, flow_test, (204, b""), (204, b""), id="flow-test-request-204"),
    ],
)
def test_the_request_that_finds_an_upload_expired_removes_it(
    tmp_path: Path, start: Start, probe: Probe,
    found: tuple[int, bytes], then: tuple[int, bytes],
) -> None:
    wrapped, app = make_filter(tmp_path)
    upload_id = start(app)
    assert kept(wrapped) == [upload_id]
    expire(wrapped, upload_id)
    first = probe(app, upload_id)
    assert first.status_int == found[0]
    assert found[1] in first.body
    assert kept(wrapped) == []
    second = probe(app, upload_id)
    assert second.status_int == then[0]
    assert then[1] in second.body


def test_get_upload_removes_an_expired_upload(tmp_path: Path) -> None:
    wrapped, app = make_filter(tmp_path)
    upload_id = start_tus(app)
    expire(wrapped, upload_id)
    with pytest.raises(UploadExpired):
        wrapped.get_upload(upload_id)
    assert kept(wrapped) == []
    with pytest.raises(UploadNotFound) as second:
        wrapped.get_upload(upload_id)
    assert not isinstance(second.value, UploadExpired)


@pytest.mark.parametrize(
    "held",
    [
        pytest.param("lock"),
        # Only where chunks are written in place: elsewhere a late chunk is
        # staged apart and never joins a later upload (tests/test_s3_data.py).
        pytest.param("chunk-write", marks=pytest.mark.filesystem),
    ],
)
def test_an_upload_held_by_a_request_is_not_removed_under_it(tmp_path: Path, held: str) -> None:
    """Removal never waits: a request holding the lock, or writing a chunk, keeps the upload."""
    wrapped, app = make_filter(tmp_path)
    upload_id = start_flow(app)
    expire(wrapped, upload_id)
    holding = (
        wrapped.storage.lock(upload_id) if held == "lock"
        else wrapped.storage.chunk_writers(upload_id, exclusive=False)
    )
    with holding:
        assert wrapped.storage.discard_expired(upload_id) is False
    assert kept(wrapped) == [upload_id]
    assert wrapped.storage.discard_expired(upload_id) is True
    assert kept(wrapped) == []


def test_bytes_are_gone_once_a_short_lifetime_is_over(tmp_path: Path) -> None:
    """``upload_valid_duration = 1``, in real time (no sweep due: the request removes it)."""
    wrapped, app = make_filter(tmp_path, upload_valid_duration=1, cleanup_interval=3600)
    upload_id = start_tus(app)
    assert tus_patch(app, upload_id).status_int == 204
    time.sleep(1.2)
    assert tus_head(app, upload_id).status_int == 410
    assert kept(wrapped) == []


# -- the background sweep ----------------------------------------------------------------------


def seed_expired(wrapped: TusFilter) -> str:
    """An expired upload put straight into storage, as an earlier process left it."""
    upload_id = wrapped.storage.new_id()
    wrapped.storage.create(UploadRecord(upload_id=upload_id, protocol="tus", length=10))
    expire(wrapped, upload_id)
    return upload_id


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_sweep_runs_one_interval_after_the_first_request_then_every_interval(
    tmp_path: Path,
) -> None:
    interval = 1.0
    wrapped, app = make_filter(tmp_path, cleanup_interval=interval)
    stale = seed_expired(wrapped)
    before = time.monotonic()
    app.get("/files/elsewhere", status=404)  # passes through: touches no upload
    after = time.monotonic()  # the first sweep is due between before and after + interval
    time.sleep(0.2)
    if time.monotonic() - before < interval:  # a slow machine cannot prove "not yet"
        assert kept(wrapped) == [stale], "swept during the first requests"
    time.sleep(max(0.0, after + interval - time.monotonic()))
    app.get("/files/elsewhere", status=404)
    assert wait_until(lambda: kept(wrapped) == [])
    again = seed_expired(wrapped)
    app.get("/files/elsewhere", status=404)  # before the next sweep is due
    time.sleep(interval)
    app.get("/files/elsewhere", status=404)
    assert wait_until(lambda: again not in kept(wrapped))


def test_a_filter_never_sweeps_under_the_request_that_expires_an_upload(tmp_path: Path) -> None:
    """The default interval: the request sees its own 410, every time."""
    for _ in range(20):
        wrapped, app = make_filter(tmp_path)
        stale = seed_expired(wrapped)
        upload_id = start_tus(app)  # the first request: formerly a sweep started here
        expire(wrapped, upload_id)
        assert tus_patch(app, upload_id).status_int == 410
        assert kept(wrapped) == [stale]
        wrapped.storage.discard_expired(stale)
