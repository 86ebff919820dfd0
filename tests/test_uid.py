"""The uid chunk protocol (chunked contract §3, the GBD WebSuite model made safe).

Most tests run over all three transports (multipart, octet-stream with the
fields in the query string, JSON with base64 content) through one helper,
``post_chunk``.  F-numbers cite the analogous flow.js cases of the contract
(§5.1): F14 re-sent chunks, F15 exactly-once completion, F16 chunks after
completion, F22 the 0-byte file, F25 lock timeouts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from webtest import TestApp, TestResponse

from tests.support import backend
from tests.support.apps import RecordingApp
from tests.support.servers import serve
from tus_filter import TusFilter, UploadIncomplete, UploadInfo, UploadNotFound
from tus_filter.errors import Reject
from tus_filter.protocols.chunked import MAX_CHUNKS, ChunkState
from tus_filter.protocols.uid import MAX_JSON_BODY, MAX_JSON_CONTENT
from tus_filter.storage import UploadRecord

pytestmark = pytest.mark.usefixtures("storage_backend")

TRANSPORTS = ("multipart", "octet", "json")
BOUNDARY = "uid-test-boundary"


# -- helpers ----------------------------------------------------------------------------------


def multipart_body(
    fields: Iterable[tuple[str, str]],
    file: tuple[str, bytes] | None,
    after: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A form: ``fields``, the file part ``(name, bytes)``, then ``after`` (a misplaced field)."""
    out = bytearray()

    def text(name: str, value: str) -> None:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        out.extend(f"--{BOUNDARY}\r\n{disposition}\r\n\r\n".encode())
        out.extend(value.encode() + b"\r\n")

    for name, value in fields:
        text(name, value)
    if file is not None:
        out.extend(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file[0]}"; '
            'filename="blob"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        out.extend(file[1] + b"\r\n")
    for name, value in after:
        text(name, value)
    out.extend(f"--{BOUNDARY}--\r\n".encode())
    return bytes(out)


def encode(transport: str, fields: Mapping[str, Any], content: bytes) -> tuple[str, str, bytes]:
    """``(url, content type, body)`` of one chunk request."""
    if transport == "json":
        data = {**fields, "content": base64.b64encode(content).decode()}
        return "/files", "application/json", json.dumps(data).encode()
    text = {name: str(value) for name, value in fields.items()}
    if transport == "multipart":
        body = multipart_body(text.items(), ("content", content))
        return "/files", f"multipart/form-data; boundary={BOUNDARY}", body
    return "/files?" + urlencode(text), "application/octet-stream", content


def post_chunk(
    app: TestApp, transport: str, fields: Mapping[str, Any], content: bytes
) -> TestResponse:
    url, content_type, body = encode(transport, fields, content)
    return send(app, url, content_type, body)


def send(app: TestApp, url: str, content_type: str, body: bytes) -> TestResponse:
    """POST ``body`` as is (``app.post`` would re-encode a multipart body)."""
    headers = {"Content-Type": content_type} if content_type else {}
    return app.request(url, method="POST", body=body, headers=headers, expect_errors=True)


def first(total: int, count: int, number: int, name: str = "report.pdf") -> dict[str, Any]:
    return {
        "uploadUid": "",
        "fileName": name,
        "totalSize": total,
        "chunkNumber": number,
        "chunkCount": count,
    }


def later(uid: str, count: int, number: int) -> dict[str, Any]:
    return {"uploadUid": uid, "chunkNumber": number, "chunkCount": count}


def chunks_of(data: bytes, count: int) -> list[bytes]:
    """The protocol's layout: ``ceil(len / count)``-byte chunks, the last one the rest."""
    size = max(1, -(-len(data) // count))
    return [data[i * size : (i + 1) * size] for i in range(count)]


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def recorder() -> RecordingApp:
    return RecordingApp()


@pytest.fixture
def make(tmp_path: Path, recorder: RecordingApp) -> Any:
    """``make(**options)``: a filter around ``recorder`` and a TestApp driving it.

    The filters of one test share one store, as they share ``tmp_path``.
    """
    store = backend.options()

    def build(**options: Any) -> tuple[TusFilter, TestApp]:
        wrapped = TusFilter(recorder, tmp_file_dir=str(tmp_path), **{**store, **options})
        built.append(wrapped)
        return wrapped, TestApp(wrapped)

    built: list[TusFilter] = []
    return build


Stored = Callable[[], list[str]]


@pytest.fixture
def stored_ids(make: Any, tmp_path: Path) -> Stored:
    """``stored_ids()``: what the test's store holds (records, bytes), [] when empty."""
    return lambda: backend.contents(make()[0].storage, str(tmp_path))


@pytest.fixture
def app(make: Any) -> TestApp:
    return make()[1]


def start(app: TestApp, data: bytes, count: int, number: int = 0) -> str:
    """Send chunk ``number`` as a first chunk (octet); return the new uploadUid."""
    chunk = chunks_of(data, count)[number]
    response = post_chunk(app, "octet", first(len(data), count, number), chunk)
    assert response.status_int == 200, response.body
    return str(response.json["uploadUid"])


# -- whole uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "count", "order"),
    [
        pytest.param(10, 1, [0], id="single-chunk"),
        pytest.param(300, 3, [0, 1, 2], id="in-order"),
        pytest.param(300, 3, [2, 0, 1], id="first-request-is-the-last-chunk"),
        pytest.param(301, 4, [1, 3, 0, 2], id="shuffled-last-chunk-shorter"),
        pytest.param(300, 3, [1, 1, 0, 0, 2], id="re-sent-chunks-F14"),
        pytest.param(10, 4, [3, 2, 1, 0], id="last-chunk-of-one-byte"),
        pytest.param(0, 1, [0], id="zero-byte-file-F22"),
    ],
)
def test_an_upload_completes_once_with_identical_bytes(
    app: TestApp, recorder: RecordingApp, transport: str, size: int, count: int, order: list[int]
) -> None:
    data = payload(size)
    chunks = chunks_of(data, count)
    uid = ""
    answers = []
    for number in order:
        fields = first(size, count, number) if not uid else later(uid, count, number)
        response = post_chunk(app, transport, fields, chunks[number])
        assert response.status_int == 200, response.body
        assert response.content_type == "application/json"
        uid = uid or response.json["uploadUid"]
        assert response.json["uploadUid"] == uid
        answers.append(response.json["complete"])
    assert len(uid) == 32 and int(uid, 16) >= 0  # a storage id: 128 random bits, hex
    assert answers == [False] * (len(order) - 1) + [True]
    [call] = recorder.calls
    assert call["protocol"] == "uid"
    assert call["upload_id"] == uid
    assert call["filename"] == "report.pdf"
    assert call["size"] == size
    assert call["sha256"] == sha256(data)


def test_a_chunk_after_completion_is_answered_without_writing_F16(
    app: TestApp, recorder: RecordingApp, transport: str
) -> None:
    data = payload(20)
    uid = start(app, data, 2, 0)
    assert post_chunk(app, "octet", later(uid, 2, 1), data[10:]).json["complete"] is True
    changed = bytes(10)  # the right size, other bytes: must not reach the file
    response = post_chunk(app, transport, later(uid, 2, 0), changed)
    assert response.status_int == 200
    assert response.json == {"uploadUid": uid, "complete": True}
    [call] = recorder.calls
    assert call["sha256"] == sha256(data)


@pytest.mark.parametrize(
    ("app_body", "expected"),
    [
        pytest.param(b"", None, id="app-empty-body-protocol-answer"),
        pytest.param(b"stored as #7", b"stored as #7", id="app-body-reaches-client"),
    ],
)
def test_the_completing_response_carries_the_apps_answer(
    make: Any, recorder: RecordingApp, transport: str, app_body: bytes, expected: bytes | None
) -> None:
    recorder.body = app_body
    _, app = make()
    data = payload(8)
    response = post_chunk(app, transport, first(8, 1, 0), data)
    assert response.status_int == 200
    if expected is None:
        assert response.json["complete"] is True
    else:
        assert response.body == expected
    assert len(recorder.calls) == 1


# -- the cut: the client's chunk size or ceil(totalSize / chunkCount) --------------------------


def gws_upload(app: TestApp, transport: str, data: bytes, chunk_size: int) -> list[Any]:
    """The GBD WebSuite client's loop (``gc/lib.ts`` ``uploadFile``), ported.

    ``chunkCount = ceil(total / chunkSize)``; ``chunkSize``-byte slices sent
    one after another, the first without an id; nothing at all for 0 bytes.
    """
    count = -(-len(data) // chunk_size)
    uid = ""
    answers = []
    for number in range(count):
        fields = {
            "uploadUid": uid,
            "fileName": "report.pdf",
            "totalSize": len(data),
            "chunkNumber": number,
            "chunkCount": count,
        }
        response = post_chunk(
            app, transport, fields, data[number * chunk_size : (number + 1) * chunk_size]
        )
        assert response.status_int == 200, response.body
        uid = response.json["uploadUid"]
        answers.append(response.json)
    return answers


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [
        pytest.param(9, 4, id="9-bytes-in-4-4-1"),
        pytest.param(10, 4, id="10-bytes-in-4-4-2"),
        pytest.param(12, 4, id="exact-multiple"),
        pytest.param(3, 4, id="smaller-than-one-chunk"),
        pytest.param(10 * 64 * 1024 + 1, 64 * 1024, id="11-chunks-last-of-one-byte"),
        pytest.param(100, 30, id="30-30-30-10-where-ceil-cuts-25s"),
    ],
)
def test_the_gws_client_loop_uploads_at_its_own_chunk_size(
    app: TestApp, recorder: RecordingApp, transport: str, size: int, chunk_size: int
) -> None:
    data = payload(size)
    answers = gws_upload(app, transport, data, chunk_size)
    assert [answer["complete"] for answer in answers] == [False] * (len(answers) - 1) + [True]
    [call] = recorder.calls
    assert (call["size"], call["sha256"]) == (size, sha256(data))


def test_the_gws_client_sends_nothing_for_a_0_byte_file(
    app: TestApp, recorder: RecordingApp, tmp_path: Path,
    stored_ids: Stored,
) -> None:
    assert gws_upload(app, "octet", b"", 4) == []
    assert recorder.calls == []
    assert stored_ids() == []


def client_cut(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


@pytest.mark.parametrize(
    ("cut", "order"),
    [
        pytest.param("client", [2, 0, 1], id="client-cut-last-chunk-first"),
        pytest.param("client", [1, 2, 0], id="client-cut-middle-chunk-first"),
        pytest.param("ceil", [2, 1, 0], id="ceil-cut-last-chunk-first"),
        pytest.param("client", [0, 2, 2, 1], id="client-cut-last-chunk-re-sent"),
    ],
)
def test_any_uniform_cut_in_any_order(
    app: TestApp, recorder: RecordingApp, transport: str, cut: str, order: list[int]
) -> None:
    data = payload(9)
    chunks = client_cut(data, 4) if cut == "client" else chunks_of(data, 3)
    uid = ""
    for number in order:
        fields = first(9, 3, number) if not uid else later(uid, 3, number)
        response = post_chunk(app, transport, fields, chunks[number])
        assert response.status_int == 200, response.body
        uid = response.json["uploadUid"]
    [call] = recorder.calls
    assert call["sha256"] == sha256(data)


@pytest.mark.parametrize(
    ("pinned_by", "number", "size", "message"),
    [
        pytest.param(0, 1, 3, "fixed its chunk size at 4 bytes", id="other-cut-after-first-chunk"),
        pytest.param(2, 0, 3, "fixed its chunk size at 4 bytes", id="other-cut-after-last-chunk"),
        pytest.param(0, 2, 3, "fixed its chunk size at 4 bytes", id="last-chunk-of-other-cut"),
        pytest.param(1, 0, 5, "fixed its chunk size at 4 bytes", id="larger-than-pinned"),
    ],
)
def test_a_chunk_of_another_cut_is_refused_and_harms_nothing(
    app: TestApp, recorder: RecordingApp, make: Any, transport: str,
    pinned_by: int, number: int, size: int, message: str,
) -> None:
    """The size is pinned by the upload's first request (client cut 4 + 4 + 1)."""
    data = payload(9)
    chunks = client_cut(data, 4)
    uid = post_chunk(app, "octet", first(9, 3, pinned_by), chunks[pinned_by]).json["uploadUid"]
    refused = post_chunk(app, transport, later(uid, 3, number), b"\xff" * size)
    assert refused.status_int == 400, refused.body
    assert message in refused.json["error"]
    for rest in range(3):
        if rest != pinned_by:
            assert post_chunk(app, "octet", later(uid, 3, rest), chunks[rest]).status_int == 200
    [call] = recorder.calls
    assert call["sha256"] == sha256(data)


@pytest.mark.parametrize("size", [3, 5], ids=["shorter", "longer"])
def test_a_wrong_sized_multipart_re_send_leaves_the_stored_chunk_intact(
    app: TestApp, recorder: RecordingApp, size: int
) -> None:
    """A multipart chunk's size is known only once streamed: a stored chunk is not touched."""
    data = payload(9)
    chunks = client_cut(data, 4)
    uid = post_chunk(app, "octet", first(9, 3, 0), chunks[0]).json["uploadUid"]
    assert post_chunk(app, "octet", later(uid, 3, 1), chunks[1]).status_int == 200
    refused = post_chunk(app, "multipart", later(uid, 3, 0), b"\xff" * size)
    assert refused.status_int == 400
    assert post_chunk(app, "octet", later(uid, 3, 2), chunks[2]).json["complete"] is True
    [call] = recorder.calls
    assert call["sha256"] == sha256(data)


@pytest.mark.parametrize(
    ("number", "size", "message"),
    [
        pytest.param(2, 2, "chunk 2 has 2 bytes: ", id="last-chunk-fits-no-cut"),
        pytest.param(0, 2, "chunk 0 has 2 bytes: ", id="chunk-below-every-cut"),
        pytest.param(1, 5, "chunk 1 is larger than 4 bytes: ", id="chunk-above-every-cut"),
    ],
)
def test_a_multipart_first_chunk_that_fits_no_cut_leaves_nothing(
    app: TestApp, tmp_path: Path, number: int, size: int, message: str,
    stored_ids: Stored,
) -> None:
    """Before any size is pinned, a multipart chunk is staged: checked, then placed."""
    refused = post_chunk(app, "multipart", first(9, 3, number), b"\xff" * size)
    assert refused.status_int == 400
    rule = "ceil(totalSize / S) == chunkCount (S from 3 to 4 bytes)"
    assert refused.json["error"].startswith(message) and rule in refused.json["error"]
    assert stored_ids() == []


# -- the first chunk: layout and limits -------------------------------------------------------

MAX_SIZE = 200_000


@pytest.mark.parametrize(
    ("total", "count", "number", "size", "status"),
    [
        pytest.param(10, 4, 3, 1, 200, id="last-chunk-takes-the-rest"),
        pytest.param(10, 3, 2, 2, 200, id="last-chunk-shorter"),
        pytest.param(100, 100, 99, 1, 200, id="one-byte-chunks"),
        pytest.param(10, 0, 0, 10, 400, id="chunk-count-zero"),
        pytest.param(MAX_CHUNKS, MAX_CHUNKS, 0, 1, 200, id="chunk-count-at-maximum"),
        pytest.param(MAX_CHUNKS + 1, MAX_CHUNKS + 1, 0, 1, 400, id="chunk-count-above-maximum"),
        pytest.param(10, 6, 0, 2, 400, id="layout-leaves-last-chunk-empty"),
        pytest.param(10, 11, 0, 1, 400, id="more-chunks-than-bytes"),
        pytest.param(0, 2, 0, 0, 400, id="zero-byte-file-in-two-chunks"),
        pytest.param(10, 2, 2, 5, 400, id="chunk-number-equals-count"),
        pytest.param(10, 2, 1, 4, 200, id="short-last-chunk-implies-a-larger-cut"),
        pytest.param(10, 2, 1, 6, 400, id="last-chunk-too-long-for-any-cut"),
        pytest.param(9, 3, 0, 3, 200, id="even-cut-first-chunk"),
        pytest.param(9, 3, 0, 4, 200, id="client-cut-first-chunk"),
        pytest.param(9, 3, 1, 4, 200, id="client-cut-middle-chunk"),
        pytest.param(9, 3, 2, 1, 200, id="client-cut-last-chunk"),
        pytest.param(9, 3, 2, 3, 200, id="even-cut-last-chunk"),
        pytest.param(9, 3, 0, 2, 400, id="chunk-too-small-for-chunkCount"),
        pytest.param(9, 3, 1, 5, 400, id="chunk-too-large-for-chunkCount"),
        pytest.param(9, 3, 2, 2, 400, id="last-chunk-fits-no-cut"),
        pytest.param(10, 1, 0, 9, 400, id="single-chunk-short-of-the-file"),
        pytest.param(10, 2, 0, 0, 400, id="chunk-empty"),
        pytest.param(MAX_SIZE, 1, 0, MAX_SIZE, 200, id="total-equals-max-size"),
        pytest.param(MAX_SIZE + 1, 2, 0, MAX_SIZE // 2 + 1, 413, id="total-above-max-size"),
    ],
)
def test_first_chunk_layout_and_limits(
    make: Any, tmp_path: Path, transport: str, total: int, count: int, number: int, size: int,
    status: int,
    stored_ids: Stored,
) -> None:
    _, app = make(max_size=MAX_SIZE)
    response = post_chunk(app, transport, first(total, count, number), bytes(size))
    assert response.status_int == status, response.body
    if status != 200:
        assert response.json["error"]
        assert stored_ids() == []  # a refused first chunk leaves nothing behind


# -- parameters -------------------------------------------------------------------------------

BAD_TEXT_INTEGERS = ["abc", "-1", "1.0", "1e3", " 1", "", "0x1", "1" * 16, "١"]


@pytest.mark.parametrize(
    ("name", "value"),
    [pytest.param("chunkNumber", v, id=f"chunkNumber={v!r}") for v in BAD_TEXT_INTEGERS]
    + [pytest.param("chunkCount", "1.0", id="chunkCount-float")]
    + [pytest.param("totalSize", "-10", id="totalSize-negative")],
)
@pytest.mark.parametrize("text_transport", ["multipart", "octet"])
def test_integers_in_text_transports_are_plain_digits(
    app: TestApp, tmp_path: Path, text_transport: str, name: str, value: str,
    stored_ids: Stored,
) -> None:
    fields = {**first(10, 1, 0), name: value}
    response = post_chunk(app, text_transport, fields, bytes(10))
    assert response.status_int == 400
    assert name in response.json["error"]
    assert stored_ids() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("chunkNumber", True, id="bool-true-chunkNumber"),
        pytest.param("chunkNumber", False, id="bool-false-chunkNumber"),
        pytest.param("chunkCount", True, id="bool-chunkCount"),
        pytest.param("totalSize", "10", id="string-totalSize"),
        pytest.param("chunkNumber", 0.0, id="float-chunkNumber"),
        pytest.param("chunkNumber", -1, id="negative-chunkNumber"),
        pytest.param("totalSize", 10**15, id="totalSize-above-15-digits"),
        pytest.param("chunkCount", None, id="null-chunkCount"),
        pytest.param("uploadUid", None, id="null-uploadUid"),
        pytest.param("uploadUid", 0, id="number-uploadUid"),
        pytest.param("fileName", ["a"], id="list-fileName"),
    ],
)
def test_json_types_are_strict(
    app: TestApp, tmp_path: Path, name: str, value: Any, stored_ids: Stored
) -> None:
    response = post_chunk(app, "json", {**first(10, 1, 0), name: value}, bytes(10))
    assert response.status_int == 400
    assert name in response.json["error"]
    assert stored_ids() == []


@pytest.mark.parametrize(
    ("missing", "status"),
    [
        pytest.param("fileName", 400, id="first-chunk-without-fileName"),
        pytest.param("totalSize", 400, id="first-chunk-without-totalSize"),
        pytest.param("uploadUid", 404, id="without-uploadUid-passes-through"),
        pytest.param("chunkNumber", 404, id="without-chunkNumber-passes-through"),
        pytest.param("chunkCount", 404, id="without-chunkCount-passes-through"),
    ],
)
def test_missing_parameters(
    app: TestApp, recorder: RecordingApp, transport: str, missing: str, status: int
) -> None:
    """The three marker fields make a uid request: without one, the app answers (its 404)."""
    fields = first(10, 1, 0)
    del fields[missing]
    response = post_chunk(app, transport, fields, bytes(10))
    assert response.status_int == status
    if status == 400:
        assert missing in response.json["error"]
    else:
        assert response.body == b"no such page"
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("name", "status"),
    [
        pytest.param("../etc/passwd", 400, id="dot-dot-slash"),
        pytest.param("/etc/passwd", 400, id="absolute"),
        pytest.param("dir/file.txt", 400, id="slash"),
        pytest.param("dir\\file.txt", 400, id="backslash"),
        pytest.param("a\x00b", 400, id="nul"),
        pytest.param("a\nb", 400, id="newline"),
        pytest.param("a\x7fb", 400, id="del"),
        pytest.param("a\x85b", 400, id="c1-control"),
        pytest.param("", 400, id="empty"),
        pytest.param(".", 400, id="dot"),
        pytest.param("..", 400, id="dot-dot"),
        pytest.param("x" * 10_000, 400, id="10-kB"),
        pytest.param("é" * 128, 400, id="256-utf8-bytes"),
        pytest.param("é" * 127 + "x", 200, id="255-utf8-bytes"),
        pytest.param("my file (1).tar.gz", 200, id="spaces-and-dots"),
        pytest.param("日本語.txt", 200, id="non-ascii"),
        pytest.param("..hidden", 200, id="leading-dots"),
    ],
)
def test_file_names(
    app: TestApp, recorder: RecordingApp, tmp_path: Path, transport: str, name: str, status: int,
    stored_ids: Stored,
) -> None:
    response = post_chunk(app, transport, first(3, 1, 0, name=name), b"abc")
    assert response.status_int == status, response.body
    if status == 200:
        assert recorder.calls[0]["filename"] == name
        assert name not in str(recorder.calls[0]["path"])  # metadata only, never a path
    else:
        assert "fileName" in response.json["error"]
        assert stored_ids() == []


def test_lone_surrogate_in_a_json_file_name_is_refused(app: TestApp) -> None:
    body = b'{"uploadUid":"","fileName":"a\\ud800","totalSize":0,"chunkNumber":0,' \
        b'"chunkCount":1,"content":""}'
    response = send(app, "/files", "application/json", body)
    assert response.status_int == 400
    assert "fileName" in response.json["error"]


@pytest.mark.parametrize(
    "uid",
    [
        pytest.param("../../etc", id="dot-dot"),
        pytest.param("a" * 10_000, id="10-kB"),
        pytest.param("0123456789ABCDEF0123456789ABCDEF", id="uppercase-hex"),
        pytest.param("0123456789abcdef0123456789abcdef/..", id="id-then-path"),
        pytest.param("0123456789abcdef0123456789abcdef", id="well-formed-unknown"),
        pytest.param(" ", id="blank"),
    ],
)
def test_unknown_upload_uids_are_404(
    app: TestApp, tmp_path: Path, transport: str, uid: str,
    stored_ids: Stored,
) -> None:
    response = post_chunk(app, transport, later(uid, 1, 0), bytes(10))
    assert response.status_int == 404
    assert response.json == {"error": "upload not found"}
    assert stored_ids() == []
    assert not (tmp_path / "locks").exists() or not list((tmp_path / "locks").rglob("*.lock"))


def test_an_expired_upload_is_404_with_a_reason(make: Any, transport: str) -> None:
    wrapped, app = make()
    data = payload(20)
    uid = start(app, data, 2)
    record = wrapped.storage.load(uid)
    record.touched -= 2 * 86400
    wrapped.storage.save(record)
    response = post_chunk(app, transport, later(uid, 2, 1), data[10:])
    assert response.status_int == 404
    assert response.json == {"error": "upload expired"}


def test_another_protocols_upload_is_not_writable(make: Any, transport: str) -> None:
    wrapped, app = make()
    uid = wrapped.storage.new_id()
    record = UploadRecord(upload_id=uid, protocol="flowjs", length=10)
    ChunkState(chunk_size=10, chunk_count=1).store(record)
    wrapped.storage.create(record)
    before = backend.snapshot(wrapped.storage, uid)
    response = post_chunk(app, transport, later(uid, 1, 0), bytes(10))
    assert response.status_int == 404
    assert backend.snapshot(wrapped.storage, uid) == before


@pytest.mark.parametrize(
    ("changed", "status"),
    [
        pytest.param({}, 200, id="repeated-values-match"),
        pytest.param({"fileName": "report.pdf", "totalSize": 20}, 200, id="all-repeated"),
        pytest.param({"fileName": "other.pdf"}, 400, id="other-fileName"),
        pytest.param({"fileName": "../x"}, 400, id="bad-fileName"),
        pytest.param({"totalSize": 21}, 400, id="other-totalSize"),
        pytest.param({"chunkCount": 4}, 400, id="other-chunkCount"),
        pytest.param({"chunkNumber": 2}, 400, id="chunk-number-out-of-range"),
    ],
)
def test_later_chunks_must_agree_with_the_first(
    app: TestApp, recorder: RecordingApp, transport: str, changed: dict[str, Any], status: int
) -> None:
    data = payload(20)
    uid = start(app, data, 2)
    fields = {**later(uid, 2, 1), **changed}
    response = post_chunk(app, transport, fields, data[10:])
    assert response.status_int == status, response.body
    assert len(recorder.calls) == (status == 200)
    if status == 400:
        name = next(iter(changed))
        assert name in response.json["error"]


# -- transport details ------------------------------------------------------------------------


def json_request(app: TestApp, data: Any) -> TestResponse:
    return send(app, "/files", "application/json", json.dumps(data).encode())


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        pytest.param(None, 400, "content", id="null"),
        pytest.param(123, 400, "content", id="number"),
        pytest.param("aGVsbG8gd29ybGQ", 400, "base64", id="unpadded"),
        pytest.param("aGVs bG8=", 400, "base64", id="whitespace"),
        pytest.param("aGVs*G8=", 400, "base64", id="bad-alphabet"),
        pytest.param("é", 400, "base64", id="non-ascii"),
        pytest.param("A" * (4 * -(-MAX_JSON_CONTENT // 3) + 4), 413, "at most", id="too-large"),
    ],
)
def test_json_content_is_padded_base64_within_the_limit(
    app: TestApp, tmp_path: Path, content: Any, status: int, message: str,
    stored_ids: Stored,
) -> None:
    response = json_request(app, {**first(10, 1, 0), "content": content})
    assert response.status_int == status
    assert message in response.json["error"]
    assert stored_ids() == []


def test_json_chunk_of_the_maximum_size_is_accepted(app: TestApp, recorder: RecordingApp) -> None:
    data = payload(MAX_JSON_CONTENT)
    response = post_chunk(app, "json", first(len(data), 1, 0), data)
    assert response.status_int == 200
    assert recorder.calls[0]["sha256"] == sha256(data)


def test_json_without_content_is_refused(app: TestApp) -> None:
    response = json_request(app, first(10, 1, 0))
    assert response.status_int == 400
    assert response.json == {"error": "missing content"}


@pytest.mark.parametrize(
    ("fields", "file", "after", "message"),
    [
        pytest.param(first(10, 1, 0), None, [], "content", id="no-file-part"),
        pytest.param(first(10, 1, 0), ("file", bytes(10)), [], "content", id="file-part-misnamed"),
        pytest.param(
            first(10, 1, 0), ("content", bytes(10)), [("note", "x")], "before",
            id="field-after-file-part",
        ),
    ],
)
def test_multipart_shape(
    app: TestApp, recorder: RecordingApp, tmp_path: Path, fields: dict[str, Any],
    file: tuple[str, bytes] | None, after: list[tuple[str, str]], message: str,
    stored_ids: Stored,
) -> None:
    body = multipart_body(((k, str(v)) for k, v in fields.items()), file, after)
    response = send(app, "/files", f"multipart/form-data; boundary={BOUNDARY}", body)
    assert response.status_int == 400
    assert message in response.json["error"]
    assert recorder.calls == []
    assert stored_ids() == []


def test_multipart_body_cut_before_its_closing_delimiter_is_400(
    app: TestApp, recorder: RecordingApp, tmp_path: Path,
    stored_ids: Stored,
) -> None:
    """Found by the property tests: the end of the form after the file part was a 500."""
    fields = ((k, str(v)) for k, v in first(10, 1, 0).items())
    body = multipart_body(fields, ("content", bytes(10)))
    cut = body.removesuffix(f"--{BOUNDARY}--\r\n".encode()) + f"--{BOUNDARY}\r\n".encode()
    response = send(app, "/files", f"multipart/form-data; boundary={BOUNDARY}", cut)
    assert response.status_int == 400
    assert "malformed multipart body" in response.json["error"]
    assert recorder.calls == []
    assert stored_ids() == []


@pytest.mark.parametrize("body_transport", ["multipart", "json"])
def test_parameters_travel_in_one_place_only(
    app: TestApp, tmp_path: Path, body_transport: str,
    stored_ids: Stored,
) -> None:
    url, content_type, body = encode(body_transport, first(10, 1, 0), bytes(10))
    response = send(app, url + "?chunkNumber=0", content_type, body)
    assert response.status_int == 400
    assert "query string" in response.json["error"]
    assert stored_ids() == []


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/octet-stream", id="octet-stream"),
        pytest.param("image/png", id="file-type"),
        pytest.param("", id="no-content-type"),
    ],
)
def test_raw_bodies_need_no_particular_content_type(
    app: TestApp, recorder: RecordingApp, content_type: str
) -> None:
    response = send(app, "/files?" + urlencode(first(3, 1, 0)), content_type, b"abc")
    assert response.json["complete"] is True
    assert recorder.calls[0]["sha256"] == sha256(b"abc")


# -- recognition and pass-through -------------------------------------------------------------


class EchoApp:
    """Answers 200 with the body it received: proves a request passed through unchanged."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


MARKERS = "uploadUid=&fileName=a&totalSize=3&chunkNumber=0&chunkCount=1"


@pytest.mark.parametrize(
    ("method", "url", "content_type", "body"),
    [
        pytest.param("GET", "/files?" + MARKERS, "", b"", id="get-with-markers"),
        pytest.param("PUT", "/files?" + MARKERS, "application/octet-stream", b"abc",
                     id="put-with-markers"),
        pytest.param("POST", "/files/abc?" + MARKERS, "application/octet-stream", b"abc",
                     id="below-the-collection"),
        pytest.param("POST", "/files", "application/json", b'{"chunkNumber": 0}',
                     id="json-without-all-markers"),
        pytest.param("POST", "/files", "application/json", b'[{"uploadUid": ""}]',
                     id="json-array"),
        pytest.param("POST", "/files", "application/json", b'{"uploadUid": ',
                     id="json-invalid"),
        pytest.param(
            "POST", "/files", "application/json",
            json.dumps({**first(3, 1, 0), "pad": "x" * MAX_JSON_BODY}).encode(),
            id="json-too-large-to-read-even-with-markers",
        ),
        pytest.param("POST", "/files", "application/x-www-form-urlencoded", MARKERS.encode(),
                     id="urlencoded-body"),
        pytest.param("POST", "/files?" + MARKERS + "&note=%FF", "application/octet-stream",
                     b"abc", id="query-not-utf8"),
        pytest.param(
            "POST", "/files", f"multipart/form-data; boundary={BOUNDARY}",
            multipart_body([("title", "x")], ("content", b"abc")),
            id="multipart-without-markers",
        ),
    ],
)
def test_requests_that_are_not_uid_chunks_pass_through(
    tmp_path: Path, method: str, url: str, content_type: str, body: bytes,
) -> None:
    wrapped = TusFilter(
        EchoApp(), tmp_file_dir=str(tmp_path), protocols=["uid"], **backend.options()
    )
    headers = {"Content-Type": content_type} if content_type else {}
    response = TestApp(wrapped).request(url, method=method, body=body, headers=headers)
    assert response.status_int == 200
    assert response.body == body
    assert backend.contents(wrapped.storage, str(tmp_path)) == []


# -- hooks, locks, get_upload -----------------------------------------------------------------


def test_on_create_runs_once_before_the_upload_exists(
    make: Any, tmp_path: Path, stored_ids: Stored
) -> None:
    seen: list[UploadInfo] = []

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        seen.append(info)
        assert stored_ids() == []
        if info.filename == "forbidden.exe":
            raise Reject(403, "no executables")

    _, app = make(on_create=on_create)
    refused = post_chunk(app, "octet", first(4, 2, 0, name="forbidden.exe"), b"ab")
    assert refused.status_int == 403
    assert refused.json == {"error": "no executables"}
    assert stored_ids() == []
    uid = start(app, b"abcd", 2)
    post_chunk(app, "octet", later(uid, 2, 1), b"cd")
    assert [(i.protocol, i.filename, i.size) for i in seen] == [
        ("uid", "forbidden.exe", 4),
        ("uid", "report.pdf", 4),
    ]
    assert seen[1].upload_id == uid


@pytest.mark.parametrize("sized_transport", ["octet", "json"])
def test_a_chunk_of_known_wrong_size_is_refused_before_anything_happens(
    make: Any, sized_transport: str
) -> None:
    """Octet and JSON chunks have a known size: no hook call, no record, no byte written."""
    seen: list[UploadInfo] = []
    wrapped, app = make(on_create=lambda environ, info: seen.append(info))
    refused = post_chunk(app, sized_transport, first(10, 2, 0), b"\xff" * 4)
    assert refused.status_int == 400
    assert "ceil(totalSize / S) == chunkCount (S from 5 to 9 bytes)" in refused.json["error"]
    assert seen == []
    uid = start(app, bytes(10), 2, 1)
    before = backend.snapshot(wrapped.storage, uid)
    refused = post_chunk(app, sized_transport, later(uid, 2, 0), b"\xff" * 4)
    assert refused.status_int == 400
    assert "fixed its chunk size at 5 bytes" in refused.json["error"]
    assert backend.snapshot(wrapped.storage, uid) == before


def test_a_lock_timeout_is_503_with_retry_after_F25(
    make: Any, recorder: RecordingApp, transport: str
) -> None:
    wrapped, app = make(lock_timeout=0.2)
    data = payload(20)
    uid = start(app, data, 2)
    with wrapped.storage.lock(uid):
        response = post_chunk(app, transport, later(uid, 2, 1), data[10:])
    assert response.status_int == 503
    assert response.headers["Retry-After"] == "1"
    assert "retry" in response.json["error"]
    assert recorder.calls == []
    retried = post_chunk(app, transport, later(uid, 2, 1), data[10:])
    assert retried.json == {"uploadUid": uid, "complete": True}
    assert recorder.calls[0]["sha256"] == sha256(data)


def test_get_upload(make: Any) -> None:
    wrapped, app = make()
    data = payload(20)
    uid = start(app, data, 2)
    with pytest.raises(UploadIncomplete):
        wrapped.get_upload(uid)
    post_chunk(app, "octet", later(uid, 2, 1), data[10:])
    upload = wrapped.get_upload(uid)
    assert (upload.protocol, upload.upload_id, upload.filename, upload.size) == (
        "uid", uid, "report.pdf", 20,
    )
    with upload.open() as file:
        assert file.read() == data
    with pytest.raises(UploadNotFound):
        wrapped.get_upload("0" * 32)
    with pytest.raises(UploadNotFound):
        wrapped.get_upload("../" + uid)


# -- concurrency (F15) ------------------------------------------------------------------------

ROUNDS = 6
CHUNKS = 8
CHUNK_SIZE = 64 * 1024


def send_live(base: str, transport: str, fields: Mapping[str, Any], content: bytes) -> Any:
    url, content_type, body = encode(transport, fields, content)
    with requests.post(base + url, data=body, headers={"Content-Type": content_type},
                       timeout=30) as response:
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def live(tmp_path: Path, recorder: RecordingApp) -> Iterator[str]:
    with serve(TusFilter(recorder, tmp_file_dir=str(tmp_path), **backend.options())) as base:
        yield base


def send_at_once(base: str, transport: str, uid: str, chunks: dict[int, bytes]) -> list[Any]:
    """Send ``chunks`` (number → bytes) from one thread each, released together."""
    barrier = threading.Barrier(len(chunks))
    answers: list[Any] = []
    errors: list[BaseException] = []

    def send_one(number: int) -> None:
        try:
            barrier.wait(10)
            fields = later(uid, CHUNKS, number)
            answers.append(send_live(base, transport, fields, chunks[number]))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=send_one, args=(number,)) for number in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return answers


def test_last_chunks_sent_at_once_complete_exactly_once_F15(
    live: str, recorder: RecordingApp
) -> None:
    for round_number in range(ROUNDS):
        transport = TRANSPORTS[round_number % len(TRANSPORTS)]
        data = payload(CHUNKS * CHUNK_SIZE - 123, seed=round_number)
        chunks = chunks_of(data, CHUNKS)
        uid = send_live(live, transport, first(len(data), CHUNKS, 0), chunks[0])["uploadUid"]
        answers = send_at_once(live, transport, uid, {n: chunks[n] for n in range(1, CHUNKS)})
        assert len(answers) == CHUNKS - 1
        assert any(answer["complete"] for answer in answers)
        calls = [call for call in recorder.calls if call["upload_id"] == uid]
        assert len(calls) == 1, f"round {round_number}: {len(calls)} hand-offs"
        assert calls[0]["sha256"] == sha256(data)
    assert len(recorder.calls) == ROUNDS


def test_both_cuts_in_parallel_give_byte_identical_files(
    live: str, recorder: RecordingApp
) -> None:
    """Two uploads of one file, at the client's chunk size and at ceil(total / count).

    Each starts with its last chunk (which pins the size; multipart for one of
    them, so it is staged), then every other chunk of both is sent at once.
    """
    data = payload(CHUNKS * CHUNK_SIZE - 123, seed=7)
    client_size = CHUNK_SIZE + 1000
    count = -(-len(data) // client_size)
    cuts = {"client": client_cut(data, client_size), "ceil": chunks_of(data, count)}
    assert len(cuts["client"]) == len(cuts["ceil"]) == count
    assert len(cuts["client"][0]) != len(cuts["ceil"][0])
    uids = {}
    for name, transport in (("client", "multipart"), ("ceil", "octet")):
        chunks = cuts[name]
        answer = send_live(live, transport, first(len(data), count, count - 1), chunks[-1])
        uids[name] = answer["uploadUid"]
    jobs = [
        (name, number, TRANSPORTS[(number + index) % len(TRANSPORTS)])
        for index, name in enumerate(cuts)
        for number in range(count - 1)
    ]
    random.Random(3).shuffle(jobs)
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def send_one(name: str, number: int, transport: str) -> None:
        try:
            barrier.wait(10)
            send_live(live, transport, later(uids[name], count, number), cuts[name][number])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=send_one, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    by_id = {call["upload_id"]: call for call in recorder.calls}
    assert sorted(by_id) == sorted(uids.values()) and len(recorder.calls) == 2
    for uid in uids.values():
        assert by_id[uid]["sha256"] == sha256(data)
