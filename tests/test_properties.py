"""Property tests: no request of any protocol's shape breaks the filter.

For every protocol and two sets of options, hypothesis draws scripts of
near-valid requests (``tests/support/strategies.py``) and runs them against
one filter in which an upload of every protocol was left in progress before
the fuzzing began.
After every script:

* no response is a 5xx, and the ``tus_filter`` logger logged no error or
  traceback;
* nothing exists outside ``tmp_file_dir``, nothing but ``uploads/`` and
  ``locks/`` inside it, and the script's uploads hold only their record and
  data;
* the uploads in progress have the same record and bytes as before.

At the end the whole store is checked for stray files, and the uploads in
progress are completed normally and handed to the application intact.

The example budget comes from the hypothesis profile (``tests/conftest.py``):
``ci`` by default, ``make fuzz`` for the long run.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import webob
from hypothesis import given
from hypothesis import strategies as st
from webtest import TestApp

from tests.support.apps import RecordingApp
from tests.support.strategies import (
    COLLECTION,
    FIRST,
    OCTET,
    OFFSET,
    UPLOAD,
    UPLOAD_ID,
    Script,
    flowlike_scripts,
    ietf_scripts,
    tus_scripts,
    uid_scripts,
)
from tus_filter import TusFilter

UNKNOWN = f"{COLLECTION}/{'e' * 32}"  # what UPLOAD means before the script created one
_ID = r"[0-9a-f]{2}/[0-9a-f]{32}(?:[0-9a-f]{32})?"  # id[:2]/id
_UPLOAD_FILE = re.compile(rf"uploads/{_ID}/(?:info\.json|data)")
_LOCK_FILE = re.compile(rf"locks/{_ID}w?\.lock")


class Site:
    """A filter in ``parent/store`` with uploads in progress, and the checks around it."""

    def __init__(self, parent: Path, caplog: pytest.LogCaptureFixture, options: dict[str, Any]):
        self.parent = parent
        self.store = parent / "store"
        self.caplog = caplog
        self.app = RecordingApp()
        self.filter = TusFilter(self.app, tmp_file_dir=str(self.store), **options)
        self.web = TestApp(self.filter)
        self.scripts = itertools.count()
        self.in_progress = start_uploads_in_progress(self.web, self.store)
        self.kept = self.snapshot()

    def snapshot(self) -> dict[str, tuple[bytes, bytes]]:
        return {upload_id: (self.file(upload_id, "info.json"), self.file(upload_id, "data"))
                for upload_id in self.in_progress}

    def file(self, upload_id: str, name: str) -> bytes:
        return (self.store / "uploads" / upload_id[:2] / upload_id / name).read_bytes()

    def run(self, script: Script) -> None:
        self.caplog.clear()
        # Each script is its own user, so flow.js and resumable.js uploads of
        # earlier scripts (keyed by user and identifier) never meet it.
        user = {"REMOTE_USER": f"script-{next(self.scripts)}"}
        created: list[str] = []
        offset = "0"
        for request in script.requests:
            headers = {name: fill(value, created).replace(OFFSET, offset)
                       for name, value in request.headers.items()}
            path, body = fill(request.path, created), fill_bytes(request.body, created)
            environ = {"REMOTE_USER": "stranger"} if request.stranger else user
            if request.chunked:
                response = call_chunked(self.filter, request.method, path, headers, body,
                                        environ)
            else:
                response = self.web.request(path, method=request.method, headers=headers,
                                            body=body, environ=environ, expect_errors=True)
            assert response.status_int < 500, (request, response.status, response.body)
            created.extend(uploads_named_in(response))
            offset = response.headers.get("Upload-Offset", offset)
        errors = [record for record in self.caplog.records
                  if record.name.startswith("tus_filter")
                  and (record.levelno >= logging.ERROR or record.exc_info)]
        assert not errors, [self.caplog.text]
        assert sorted(os.listdir(self.parent)) == ["store"]
        assert set(os.listdir(self.store)) <= {"uploads", "locks"}
        for path in created:
            upload_dir = self.store / "uploads" / path[-32:-30] / path[-32:]
            if upload_dir.exists():
                assert set(os.listdir(upload_dir)) <= {"info.json", "data"}
        assert self.snapshot() == self.kept

    def finish(self) -> None:
        """No stray file anywhere; the uploads in progress complete and arrive intact."""
        for path in self.store.rglob("*"):
            relative = path.relative_to(self.store).as_posix()
            if path.is_file():
                assert _UPLOAD_FILE.fullmatch(relative) or _LOCK_FILE.fullmatch(relative), relative
        calls = len(self.app.calls)
        finish_uploads_in_progress(self.web, self.in_progress)
        handed_off = {call["upload_id"]: call["sha256"] for call in self.app.calls[calls:]}
        assert handed_off == {
            upload_id: hashlib.sha256(data).hexdigest()
            for upload_id, data in self.in_progress.items()
        }


def fill(text: str, created: list[str]) -> str:
    """``text`` with the script's placeholders replaced by the uploads it created."""
    last = created[-1] if created else UNKNOWN
    first = created[0] if created else UNKNOWN
    for token, value in ((UPLOAD_ID, last[-32:]), (UPLOAD, last), (FIRST, first)):
        text = text.replace(token, value).replace(quote_plus(token), quote_plus(value))
    return text


def fill_bytes(body: bytes, created: list[str]) -> bytes:
    last = created[-1] if created else UNKNOWN
    return body.replace(UPLOAD_ID.encode(), last[-32:].encode())


def call_chunked(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes,
    environ: dict[str, str],
) -> webob.Response:
    """One request straight through WSGI with a body of unknown length (no lint: WebTest
    always sends a ``Content-Length``)."""
    request = webob.Request.blank(path, method=method, headers=headers, environ=environ)
    request.body_file_raw = io.BytesIO(body)
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ["wsgi.input_terminated"] = True
    return request.get_response(app)


def uploads_named_in(response: Any) -> list[str]:
    """The upload a response handed out: a tus or draft ``Location``, a uid ``uploadUid``."""
    location = response.headers.get("Location")
    if response.status_int == 201 and location:
        return [f"{COLLECTION}/{location[-32:]}"]
    if response.status_int == 200 and response.content_type == "application/json" \
            and response.body:
        uid = response.json.get("uploadUid")
        if isinstance(uid, str):
            return [f"{COLLECTION}/{uid}"]
    return []


# -- uploads in progress ----------------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}
IETF = {"Upload-Draft-Interop-Version": "6"}
DATA = b"0123456789ab"  # the flow.js, resumable.js and uid files: 3 chunks of 4 bytes


def _chunk_query(prefix: str, number: int) -> str:
    return (f"{COLLECTION}?{prefix}ChunkNumber={number}&{prefix}ChunkSize=4&"
            f"{prefix}TotalSize=12&{prefix}Identifier=in-progress&{prefix}Filename=p.bin&"
            f"{prefix}TotalChunks=3&{prefix}CurrentChunkSize=4")


def start_uploads_in_progress(web: TestApp, store: Path) -> dict[str, bytes]:
    """One unfinished upload per protocol: ``{upload_id: the complete file's bytes}``."""
    created = web.post(COLLECTION, headers={**TUS, "Upload-Length": "10"}, status=201)
    tus_id = created.headers["Location"][-32:]
    web.patch(f"{COLLECTION}/{tus_id}", b"0123",
              headers={**TUS, "Upload-Offset": "0", "Content-Type": OCTET}, status=204)
    uid = web.post(f"{COLLECTION}?uploadUid=&chunkNumber=0&chunkCount=3&totalSize=12"
                   "&fileName=p.bin", DATA[:4],
                   headers={"Content-Type": "application/octet-stream"}, status=200)
    draft = web.post(COLLECTION, b"0123", headers={**IETF, "Upload-Complete": "?0",
                                                   "Upload-Length": "10"}, status=201)
    uploads = {tus_id: b"0123456789", uid.json["uploadUid"]: DATA,
               draft.headers["Location"][-32:]: b"0123456789"}
    for prefix in ("flow", "resumable"):
        before = set(_upload_ids(store))
        web.post(_chunk_query(prefix, 1), DATA[:4],
                 headers={"Content-Type": "application/octet-stream"}, status=200)
        [upload_id] = set(_upload_ids(store)) - before
        uploads[upload_id] = DATA
    return uploads


def finish_uploads_in_progress(web: TestApp, uploads: dict[str, bytes]) -> None:
    tus_id, uid, ietf_id, flow_id, resumable_id = uploads
    web.patch(f"{COLLECTION}/{tus_id}", b"456789",
              headers={**TUS, "Upload-Offset": "4", "Content-Type": OCTET}, status=204)
    web.patch(f"{COLLECTION}/{ietf_id}", b"456789",
              headers={**IETF, "Upload-Offset": "4", "Upload-Complete": "?1",
                       "Content-Type": "application/partial-upload"}, status=204)
    for number in (1, 2):
        web.post(f"{COLLECTION}?uploadUid={uid}&chunkNumber={number}&chunkCount=3",
                 DATA[4 * number: 4 * number + 4],
                 headers={"Content-Type": "application/octet-stream"}, status=200)
    for prefix in ("flow", "resumable"):
        for number in (2, 3):
            web.post(_chunk_query(prefix, number), DATA[4 * number - 4: 4 * number],
                     headers={"Content-Type": "application/octet-stream"}, status=200)


def _upload_ids(store: Path) -> list[str]:
    return [path.name for path in store.glob("uploads/*/*")]


# -- the properties ---------------------------------------------------------------------------


SETTINGS = [
    pytest.param({"max_size": 1000, "behind_proxy": 1}, id="limits"),
    pytest.param(
        {"checksum_algorithms": (), "cors_origins": "*", "upload_valid_duration": 0,
         "send_file": True, "behind_proxy": 2, "bind_to_scope": True},
        id="no-checksums-cors-no-expiry-send-file-bound",
    ),
]


@pytest.mark.parametrize("options", SETTINGS)
@pytest.mark.parametrize(
    "scripts",
    [
        pytest.param(tus_scripts(), id="tus-headers-and-bodies"),
        pytest.param(ietf_scripts(), id="ietf-structured-fields-and-bodies"),
        pytest.param(uid_scripts(), id="uid-query-multipart-json"),
        pytest.param(flowlike_scripts("flow"), id="flowjs-query-multipart-raw"),
        pytest.param(flowlike_scripts("resumable"), id="resumablejs-query-multipart-raw"),
    ],
)
def test_no_request_breaks_the_filter_or_another_upload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, scripts: st.SearchStrategy[Script],
    options: dict[str, Any],
) -> None:
    site = Site(tmp_path, caplog, options)

    @given(scripts)
    def fuzz(script: Script) -> None:
        site.run(script)

    with caplog.at_level(logging.WARNING, logger="tus_filter"):
        fuzz()
    site.finish()


def test_the_fill_placeholders() -> None:
    """The harness's own contract: placeholders become the uploads a script created."""
    created = [f"{COLLECTION}/{'a' * 32}", f"{COLLECTION}/{'b' * 32}"]
    assert fill(f"final;{FIRST} {UPLOAD}", created) == f"final;{created[0]} {created[1]}"
    assert fill(f"?uploadUid={quote_plus(UPLOAD_ID)}", created) == f"?uploadUid={'b' * 32}"
    assert fill(UPLOAD, []) == UNKNOWN
