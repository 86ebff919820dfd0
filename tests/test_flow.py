"""flow.js 2.14.1 against tus_filter: the server contract F1-F27, through WebTest.

Case ids cite ``chunked-protocols-contract.md`` §5.1.  The default file is
25 bytes in chunks of 10 (flow.js: chunk 1 = 10 bytes, chunk 2 = 15 bytes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.apps import sha256
from tests.support.chunked import PATH, ClientFile, Server, multipart
from tus_filter import Reject, UploadExpired, UploadInfo, UploadNotFound
from tus_filter.errors import StorageFull
from tus_filter.forms import MAX_FIELDS_BYTES
from tus_filter.protocols.chunked import ChunkState
from tus_filter.protocols.flowlike import MULTIPART_ALLOWANCE, record_key
from tus_filter.storage import ChunkLayout

pytestmark = pytest.mark.usefixtures("storage_backend")

FILE = ClientFile.of_size(25)


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return Server(tmp_path / "store")


def body(response: Any) -> Any:
    return json.loads(response.body)


def complete_upload(server: Server, file: ClientFile = FILE) -> None:
    for number in range(1, file.count + 1):
        assert server.send(file, number).status_int == 200


# -- recognition -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "form"),
    [
        pytest.param("GET", {}, None, id="plain-GET"),
        pytest.param("GET", {"chunk": "1"}, None, id="other-query"),
        pytest.param("POST", {}, {"title": "x"}, id="other-form"),
        pytest.param("POST", {}, {"resumableX": "1"}, id="not-a-chunk-number"),
    ],
)
def test_other_requests_pass_through_unchanged(
    server: Server, method: str, query: dict[str, str], form: dict[str, str] | None
) -> None:
    """Not flow.js: the app gets the request, body replayed byte for byte."""
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [b"app"]

    server.filter.app = app
    content_type, raw = multipart((form or {}).items(), ("f", "a.txt", b"payload", "text/plain"))
    response = server.request(
        method, query, body=raw if form is not None else None,
        headers={"Content-Type": content_type} if form is not None else None,
    )
    assert (response.status_int, response.body) == (418, b"app")
    assert seen == [raw if form is not None else b""]


@pytest.mark.parametrize(
    "marker",
    [
        pytest.param("ChunkNumber", id="flowChunkNumber"),
        pytest.param("Identifier", id="flowIdentifier"),
    ],
)
def test_either_marker_claims_the_request(server: Server, marker: str) -> None:
    """A request with only one flow parameter is flow's, and a bad one (F5)."""
    param = "flow" + marker
    response = server.request("GET", {param: FILE.params(1)[param]})
    assert response.status_int == 400
    assert response.headers["Cache-Control"] == "no-store"


def test_parameters_in_form_fields_only_are_recognised(server: Server) -> None:
    response = server.send(FILE, 1)
    assert body(response) == {"chunk": 1, "complete": False}


# -- test requests: F1-F4, F19 -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize(
    ("uploaded", "number", "status", "expected"),
    [
        pytest.param([], 1, 204, None, id="F2-no-record"),
        pytest.param([1], 2, 204, None, id="F2-chunk-absent"),
        pytest.param([1], 1, 200, {"chunk": 1, "complete": False}, id="F1-chunk-present"),
        pytest.param([2], 2, 200, {"chunk": 2, "complete": False}, id="F1-last-chunk-present"),
        pytest.param([1, 2], 1, 200, {"chunk": 1, "complete": True}, id="F3-complete"),
    ],
)
def test_test_request(
    server: Server, method: str, uploaded: list[int], number: int, status: int,
    expected: dict[str, Any] | None,
) -> None:
    """F1-F3; F19: ``testMethod: 'POST'`` sends form fields without a file part."""
    for chunk in uploaded:
        server.send(FILE, chunk)
    response = server.test(FILE.params(number), method=method)
    assert response.status_int == status
    assert response.headers["Cache-Control"] == "no-store"
    if method != "HEAD":
        assert (body(response) if expected else response.body) == (expected or b"")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_test_requests_never_create_anything(server: Server, method: str) -> None:
    """F2: a test leaves no record, however often it is sent."""
    for number in (1, 2, 1):
        assert server.test(FILE.params(number), method=method).status_int == 204
    assert server.upload_dirs() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_test_request_over_max_size_is_413(tmp_path: Path, method: str) -> None:
    """F4: flow.js fails the file during the test phase."""
    server = Server(tmp_path, {"max_size": 24})
    assert server.test(FILE.params(1), method=method).status_int == 413
    assert server.test(ClientFile.of_size(24).params(1), method=method).status_int == 204


# -- bad parameters: F5-F12 --------------------------------------------------------------------

def rows(case: str, suffix: str, values: dict[str, str]) -> list[Any]:
    """One row per ``label: value`` of parameter ``flow<suffix>``, for chunk 1."""
    return [pytest.param(1, {suffix: value}, id=f"{case}-{suffix}-{label}")
            for label, value in values.items()]


BAD_PARAMETERS = [
    *(pytest.param(1, {name: None}, id=f"F5-missing-{name}")
      for name in ("ChunkNumber", "ChunkSize", "TotalSize", "Identifier", "Filename")),
    pytest.param(1, {"ChunkNumber": "1.0"}, id="F6-decimal-chunk-number"),
    pytest.param(1, {"ChunkSize": "-1"}, id="F6-negative-chunk-size"),
    pytest.param(1, {"TotalSize": "1e3"}, id="F6-exponent-total"),
    pytest.param(1, {"TotalChunks": "two"}, id="F6-word-total-chunks"),
    pytest.param(1, {"CurrentChunkSize": " 10"}, id="F6-space-current-size"),
    pytest.param(1, {"TotalSize": "1" * 16}, id="F6-16-digits"),
    pytest.param(1, {"ChunkSize": "0"}, id="F7-chunk-size-0"),
    pytest.param(1, {"ChunkSize": "1", "TotalSize": "100001", "TotalChunks": "100001",
                     "CurrentChunkSize": "1"}, id="F7-over-100000-chunks"),
    pytest.param(1, {"ChunkNumber": "0"}, id="F8-chunk-0"),
    pytest.param(3, {"CurrentChunkSize": "5"}, id="F8-beyond-floor-count"),
    pytest.param(4, {"CurrentChunkSize": "5", "TotalChunks": "3"}, id="F8-beyond-ceil-count"),
    pytest.param(1, {"TotalChunks": "1"}, id="F9-total-chunks-too-small"),
    pytest.param(1, {"TotalChunks": "4"}, id="F9-total-chunks-too-large"),
    pytest.param(1, {"CurrentChunkSize": "9"}, id="F10-short-current-size"),
    pytest.param(2, {"CurrentChunkSize": "10"}, id="F10-ceil-size-with-floor-count"),
    pytest.param(2, {"CurrentChunkSize": "16", "TotalChunks": None}, id="F10-fits-no-layout"),
    *rows("F11", "Identifier", {
        "dot-dot-slash": "../x", "slash": "a/b", "backslash": "a\\b", "nul": "a\x00b",
        "space": "a b", "percent": "a%2Fb", "10kB": "a" * 10_000, "empty": "",
        "non-ascii": "25-\u00fc",
    }),
    *rows("F12", "Filename", {
        "dot-dot-slash": "../../etc/passwd", "slash": "a/b", "nul": "a\x00b",
        "control": "a\x1bb", "10kB": "a" * 10_000, "empty": "", "dot-dot": "..",
    }),
    *rows("F12", "RelativePath", {
        "dot-dot": "dir/../../x", "absolute": "/etc/passwd", "backslash": "dir\\x",
        "nul": "dir/\x00", "empty-segment": "dir//x", "10kB": "a/" * 5_000 + "x",
    }),
]


@pytest.mark.parametrize(("method", "octet"), [("GET", False), ("POST", False), ("POST", True)])
@pytest.mark.parametrize(("number", "overrides"), BAD_PARAMETERS)
def test_bad_parameters_are_400_and_create_nothing(
    server: Server, method: str, octet: bool, number: int, overrides: dict[str, str | None]
) -> None:
    """F5-F12 for test requests and for multipart and octet uploads."""
    params = FILE.params(number, **overrides)
    if method == "GET":
        response = server.test(params)
    else:
        response = server.upload(params, FILE.chunk(min(number, FILE.count)), octet=octet)
    assert response.status_int == 400, response.body
    assert "error" in body(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert server.upload_dirs() == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_string_not_utf8_is_400(tmp_path: Path, method: str) -> None:
    """Undecodable bytes: still flow's (the app's 200 would skip a chunk), and 400.

    Only the chunk clients are enabled: the filter stops at the first protocol
    whose recognizes() refuses the request (the uid protocol does, for POST).
    """
    server = Server(tmp_path, {"protocols": ["flowjs", "resumablejs"]})
    url = "/up?" + urlencode(FILE.params(1)) + "&flowFilename=%FF"
    response = server.app.request(url, method=method, body=b"", expect_errors=True)
    assert response.status_int == 400


@pytest.mark.parametrize(
    ("form_value", "query_value", "status"),
    [
        pytest.param("1", "1", 200, id="agree"),
        pytest.param("1", "2", 400, id="F26-disagree"),
    ],
)
def test_query_and_form_must_agree(
    server: Server, form_value: str, query_value: str, status: int
) -> None:
    """F26: the same parameter in query and form with different values is 400."""
    params = FILE.params(1, ChunkNumber=form_value)
    response = server.upload(params, FILE.chunk(1), query={"flowChunkNumber": query_value})
    assert response.status_int == status


def test_optional_parameters_may_be_missing(server: Server) -> None:
    """F5: TotalChunks, CurrentChunkSize and RelativePath are derived or defaulted.

    Chunk 2 keeps its size: without any it could be 10 or 15 bytes (next test).
    """
    first = FILE.params(1, TotalChunks=None, RelativePath=None, CurrentChunkSize=None)
    last = FILE.params(2, TotalChunks=None, RelativePath=None)
    assert server.upload(first, FILE.chunk(1)).status_int == 200
    assert server.upload(last, FILE.chunk(2)).status_int == 200
    [call] = server.downstream.calls
    assert call["metadata"]["relativePath"] == FILE.name
    assert call["sha256"] == sha256(FILE.data)


def test_chunk_nf_without_size_and_mode_unknown_is_400(server: Server) -> None:
    """The one chunk whose size is either C or C + T%C cannot be placed blind."""
    params = FILE.params(2, TotalChunks=None, CurrentChunkSize=None)
    assert server.upload(params, FILE.chunk(2)).status_int == 400


# -- uploads: F13-F18, F20-F22 -----------------------------------------------------------------


def test_first_chunk_creates_the_record(server: Server) -> None:
    """F13."""
    response = server.send(FILE, 1)
    assert (response.status_int, body(response)) == (200, {"chunk": 1, "complete": False})
    assert response.headers["Cache-Control"] == "no-store"
    assert server.upload_dirs() == [record_key("flowjs", "", "25-dirmyfiletxt", 25, 10)]


def test_resent_chunk_overwrites_its_range(server: Server) -> None:
    """F14: idempotent uploads; the last bytes sent for a chunk win."""
    params = FILE.params(1)
    assert server.upload(params, b"X" * 10).status_int == 200
    assert server.upload(params, FILE.chunk(1)).status_int == 200
    assert body(server.send(FILE, 2)) == {"chunk": 2, "complete": True}
    [call] = server.downstream.calls
    assert call["sha256"] == sha256(FILE.data)


@pytest.mark.parametrize("order", [[1, 2], [2, 1]], ids=["in-order", "reversed"])
def test_last_chunk_completes_and_hands_off_once(tmp_path: Path, order: list[int]) -> None:
    """F15 and the hand-off: one app call with the Upload; the app's body reaches the client."""
    server = Server(tmp_path, app_body=b"stored!")
    first = server.upload(FILE.params(order[0]), FILE.chunk(order[0]), content_type="text/plain")
    assert body(first) == {"chunk": order[0], "complete": False}
    last = server.send(FILE, order[1])
    assert (last.status_int, last.body) == (200, b"stored!")
    assert last.headers["Cache-Control"] == "no-store"
    [call] = server.downstream.calls
    assert call["sha256"] is not None and call["sha256"] == sha256(FILE.data)
    assert {key: call[key] for key in ("protocol", "size", "filename", "content_type")} == {
        "protocol": "flowjs", "size": 25, "filename": "my file.txt", "content_type": "text/plain",
    }
    assert call["metadata"] == {"identifier": "25-dirmyfiletxt", "relativePath": "dir/my file.txt"}
    assert call["upload_id"] == record_key("flowjs", "", "25-dirmyfiletxt", 25, 10)


def test_tombstone_answers_retries_without_writing(server: Server) -> None:
    """F16 and F3: after completion, uploads are drained and tests say 200, no second hand-off."""
    complete_upload(server)
    for number in (1, 2):
        retry = server.upload(FILE.params(number), b"Z" * len(FILE.chunk(number)))
        assert (retry.status_int, body(retry)) == (200, {"chunk": number, "complete": True})
        assert body(server.test(FILE.params(number))) == {"chunk": number, "complete": True}
    [call] = server.downstream.calls
    assert call["sha256"] == sha256(FILE.data)


@pytest.mark.parametrize(
    ("octet", "payload", "status"),
    [
        *(pytest.param(octet, payload, 400, id=f"F17-{label}-{'octet' if octet else 'multipart'}")
          for octet in (False, True)
          for label, payload in [("short", FILE.chunk(1)[:9]), ("long", FILE.chunk(1) + b"!"),
                                 ("empty", b"")]),
        # 20 bytes: longer than any chunk of a 25-byte file (min(T, 2C-1) = 19).
        pytest.param(True, FILE.data[:20], 413, id="F18-octet-longer-than-any-chunk"),
        pytest.param(False, FILE.data[:20], 400, id="F17-multipart-found-while-streaming"),
    ],
)
def test_wrong_byte_count_is_refused_and_not_counted(
    server: Server, octet: bool, payload: bytes, status: int
) -> None:
    """F17: 400 and the chunk stays missing; F18: a declared length no chunk can have is 413.

    A multipart body may be longer than its chunk by the multipart allowance,
    so an oversized part within it is found while streaming: 400.
    """
    assert server.upload(FILE.params(1), payload, octet=octet).status_int == status
    assert server.test(FILE.params(1)).status_int == 204


def test_multipart_body_beyond_the_allowance_is_413(server: Server) -> None:
    """F18: Content-Length > largest chunk + multipart allowance, refused before reading."""
    assert MULTIPART_ALLOWANCE > MAX_FIELDS_BYTES
    payload = b"x" * (MULTIPART_ALLOWANCE + 20)
    assert server.upload(FILE.params(1), payload).status_int == 413


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_upload_over_max_size_is_413(tmp_path: Path, method: str) -> None:
    """F18: T > max_size."""
    server = Server(tmp_path, {"max_size": 24})
    assert server.send(FILE, 1, method=method).status_int == 413
    assert server.upload_dirs() == []


@pytest.mark.parametrize(
    ("content_type", "stored_type"),
    [
        pytest.param(None, None, id="no-content-type"),
        pytest.param("text/plain", "text/plain", id="file-type"),
        pytest.param("application/octet-stream", "application/octet-stream", id="octet-stream"),
    ],
)
def test_octet_uploads(server: Server, content_type: str | None, stored_type: str | None) -> None:
    """F20: parameters in the query string, raw body, any or no Content-Type."""
    for number in (1, 2):
        response = server.upload(FILE.params(number), FILE.chunk(number), octet=True,
                                 content_type=content_type)
        assert response.status_int == 200
    [call] = server.downstream.calls
    assert (call["content_type"], call["sha256"]) == (stored_type, sha256(FILE.data))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "octet"])
def test_upload_methods(server: Server, method: str, octet: bool) -> None:
    """F21: PUT and PATCH are POST."""
    for number in (2, 1):
        assert server.send(FILE, number, method=method, octet=octet).status_int == 200
    assert len(server.downstream.calls) == 1


@pytest.mark.parametrize("method", ["DELETE", "TRACE"])  # OPTIONS is tus discovery
def test_other_methods_are_405(server: Server, method: str) -> None:
    """F21: 405 with Allow."""
    response = server.request(method, FILE.params(1))
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD, POST, PUT, PATCH"


@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "octet"])
def test_empty_file(server: Server, octet: bool) -> None:
    """F22: T = 0 is one empty chunk and completes to a 0-byte file."""
    empty = ClientFile.of_size(0)
    assert empty.params(1)["flowCurrentChunkSize"] == "0"
    assert server.test(empty.params(1)).status_int == 204
    response = server.send(empty, 1, octet=octet, content_type=None)
    assert body(response) == {"chunk": 1, "complete": True}
    [call] = server.downstream.calls
    assert call["size"] == 0 and call["sha256"] == sha256(b"")


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(ClientFile.of_size(26, identifier="25-dirmyfiletxt"), id="other-total"),
        pytest.param(ClientFile.of_size(25, chunk_size=5), id="other-chunk-size"),
    ],
)
def test_other_total_or_chunk_size_is_an_independent_upload(
    server: Server, other: ClientFile
) -> None:
    """F23."""
    server.send(FILE, 1)
    complete_upload(server, other)
    complete_upload(server)
    sizes = sorted(call["size"] for call in server.downstream.calls)
    assert sizes == sorted([FILE.total, other.total]) and len(server.upload_dirs()) == 2


def test_expired_record_starts_afresh(tmp_path: Path) -> None:
    """F24: GET 204 for an expired record, and the next POST starts a new one."""
    server = Server(tmp_path, {"upload_valid_duration": 60})
    server.send(FILE, 1)
    key = server.upload_dirs()[0]
    record = server.filter.storage.load(key)
    record.touched = time.time() - 120
    server.filter.storage.save(record)
    assert server.test(FILE.params(1)).status_int == 204
    assert body(server.send(FILE, 2)) == {"chunk": 2, "complete": False}
    assert body(server.send(FILE, 1)) == {"chunk": 1, "complete": True}
    assert server.downstream.calls[0]["sha256"] == sha256(FILE.data)


def test_lock_timeout_is_503_with_retry_after(tmp_path: Path) -> None:
    """F25: a held lock is temporary; flow.js may retry it."""
    server = Server(tmp_path, {"lock_timeout": 0.05})
    server.send(FILE, 1)
    with server.filter.storage.lock(server.upload_dirs()[0]):
        response = server.send(FILE, 2)
    assert (response.status_int, response.headers["Retry-After"]) == (503, "1")
    assert response.headers["Cache-Control"] == "no-store"
    assert server.test(FILE.params(2)).status_int == 204
    assert body(server.send(FILE, 2)) == {"chunk": 2, "complete": True}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(UploadNotFound(), 503, id="F24-record-deleted-under-the-request"),
        pytest.param(UploadExpired(), 503, id="F24-record-expired-under-the-request"),
        pytest.param(StorageFull(), 507, id="disk-full"),
        pytest.param(RuntimeError("disk on fire"), 500, id="F25-bug"),
    ],
)
def test_storage_errors(
    server: Server, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    """Never 404 (fatal in flow.js) for a record that vanished: a retry starts afresh."""
    def failing(*args: Any) -> int:
        raise error

    monkeypatch.setattr(server.filter.storage.data, "write_chunk", failing)
    response = server.send(FILE, 1)
    assert response.status_int == status and b"fire" not in response.body
    assert response.headers["Cache-Control"] == "no-store"
    assert ("Retry-After" in response.headers) == (status == 503)


# -- crash recovery, partial bodies ------------------------------------------------------------


def test_test_request_completes_after_a_crash(server: Server) -> None:
    """F1: every chunk stored, status still uploading -> the test completes it, once."""
    server.send(FILE, 1)
    key = server.upload_dirs()[0]
    # The crash: chunk 2 written and counted, the process died before completing.
    storage = server.filter.storage
    record = storage.load(key)
    storage.data.write_chunk(record, ChunkLayout(FILE.total, 10, 2), 1, [FILE.chunk(2)])
    state = ChunkState.of(record)
    state.add_chunk(1)
    state.store(record)
    storage.save(record)
    assert server.test(FILE.params(1)).status_int == 200
    assert len(server.downstream.calls) == 1
    assert server.downstream.calls[0]["sha256"] == sha256(FILE.data)
    again = server.test(FILE.params(2))
    assert body(again) == {"chunk": 2, "complete": True} and len(server.downstream.calls) == 1


@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "octet"])
def test_partial_body_then_retry(server: Server, octet: bool) -> None:
    """A client that drops mid-chunk leaves the chunk missing; the retry completes."""
    server.send(FILE, 1)
    params = FILE.params(2)
    if octet:
        request = server.app.RequestClass.blank(
            PATH + "?" + urlencode(params), method="POST", body=FILE.chunk(2)[:7]
        )
        declared = len(FILE.chunk(2))
    else:
        content_type, raw = multipart(params.items(), ("file", "blob", FILE.chunk(2), "text/x"))
        request = server.app.RequestClass.blank(PATH, method="POST", body=raw[:-30])
        request.environ["CONTENT_TYPE"] = content_type
        declared = len(raw)
    request.environ["CONTENT_LENGTH"] = str(declared)  # more than arrives: the client dropped
    assert server.app.do_request(request, expect_errors=True).status_int == 400
    assert server.test(params).status_int == 204 and server.downstream.calls == []
    assert body(server.send(FILE, 2, octet=octet)) == {"chunk": 2, "complete": True}
    assert server.downstream.calls[0]["sha256"] == sha256(FILE.data)


# -- on_create, scope, storage names -----------------------------------------------------------


def test_on_create_runs_once_for_the_first_chunk(tmp_path: Path) -> None:
    seen: list[UploadInfo] = []
    server = Server(tmp_path, {"on_create": lambda environ, info: seen.append(info)})
    server.test(FILE.params(1))
    complete_upload(server)
    server.send(FILE, 1)
    [info] = seen
    assert (info.protocol, info.size, info.filename) == ("flowjs", 25, "my file.txt")
    assert info.upload_id == server.upload_dirs()[0]
    assert dict(info.metadata) == {"identifier": "25-dirmyfiletxt",
                                   "relativePath": "dir/my file.txt"}


def test_on_create_reject_gives_its_status_and_creates_nothing(tmp_path: Path) -> None:
    def refuse(environ: dict[str, Any], info: UploadInfo) -> None:
        raise Reject(415, "no text files")

    server = Server(tmp_path, {"on_create": refuse})
    response = server.send(FILE, 1)
    assert (response.status_int, body(response)) == (415, {"error": "no text files"})
    assert server.upload_dirs() == []


def test_scope_keeps_users_apart(server: Server) -> None:
    """§4 item 14: the same identifier from two users is two uploads."""
    other = ClientFile(bytes(reversed(FILE.data)))
    for number in (1, 2):
        server.send(FILE, number, REMOTE_USER="alice")
        server.send(other, number, REMOTE_USER="bob")
    by_user = {call["upload_id"]: call["sha256"] for call in server.downstream.calls}
    assert by_user == {
        record_key("flowjs", "alice", "25-dirmyfiletxt", 25, 10): sha256(FILE.data),
        record_key("flowjs", "bob", "25-dirmyfiletxt", 25, 10): sha256(other.data),
    }


def test_client_strings_never_reach_the_filesystem(server: Server) -> None:
    """Names below tmp_file_dir are ids and fixed names only."""
    odd = ClientFile.of_size(25, name="..\u2215evil (1).txt", relative_path="a b/..c/evil.txt")
    complete_upload(server, odd)
    allowed = {"uploads", "locks", "info.json", "data"}
    for name in server.stored_names():
        assert name in allowed or name.removesuffix(".lock").isalnum(), name


# -- CORS: F27 ---------------------------------------------------------------------------------


def test_cors_preflight_then_credentialed_upload(tmp_path: Path) -> None:
    """F27: preflight 200 with the methods; every answer carries the origin, 204 and 4xx too."""
    origin = "https://app.example"
    server = Server(tmp_path, {"cors_origins": [origin], "protocols": ["flowjs"]})
    preflight = server.request("OPTIONS", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-csrf-token",
    })
    assert preflight.status_int == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, OPTIONS"
    assert preflight.headers["Access-Control-Allow-Headers"] == "x-csrf-token"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Max-Age" in preflight.headers and "Origin" in preflight.headers["Vary"]
    headers = {"Origin": origin, "Cookie": "session=1"}
    absent = server.test(FILE.params(1), HTTP_ORIGIN=origin)
    bad = server.upload(FILE.params(1, ChunkNumber="0"), b"", headers=headers)
    uploads = [server.send(FILE, number, headers=headers) for number in (1, 2)]
    for response in (absent, bad, *uploads):
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert [absent.status_int, bad.status_int, uploads[1].status_int] == [204, 400, 200]
    denied = server.request("OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
    })
    assert denied.status_int == 403 and "Access-Control-Allow-Origin" not in denied.headers
