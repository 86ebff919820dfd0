"""resumable.js 1.1.0 against tus_filter: the server contract R1-R12, through WebTest.

Case ids cite ``chunked-protocols-contract.md`` §5.2 (R-cases are the F-cases
of ``test_flow.py`` with resumable.js's names, request shapes and retry table).
The default file is 25 bytes in chunks of 10.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.apps import sha256
from tests.support.chunked import PATH, ClientFile, Server, multipart
from tests.support.tus import SlowBody
from tus_filter import Reject, UploadInfo, UploadNotFound
from tus_filter.errors import PayloadTooLarge

pytestmark = pytest.mark.usefixtures("storage_backend")

FILE = ClientFile.of_size(25, prefix="resumable", type="text/plain", relative_path="my file.txt")


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return Server(tmp_path / "store")


def body(response: Any) -> Any:
    return json.loads(response.body)


def send(server: Server, file: ClientFile, number: int, *, octet: bool = False,
         params: dict[str, str] | None = None, **options: Any) -> Any:
    """Upload a chunk as resumable.js does (``res.js:770-795``).

    Multipart: the parameters in the form *and* the query string, the file
    part named ``<namespace>file`` with type ``application/octet-stream``.
    Octet: the parameters in the query string, ``Content-Type:
    application/octet-stream``.
    """
    params = file.params(number) if params is None else params
    namespace = file.prefix.removesuffix("resumable")
    return server.upload(
        params, file.chunk(number), octet=octet, query=None if octet else params,
        file_field=namespace + "file", **options,
    )


def complete_upload(server: Server, file: ClientFile = FILE, **options: Any) -> None:
    for number in range(1, file.count + 1):
        assert send(server, file, number, **options).status_int == 200


# -- R1, R2: names, namespace, sources ---------------------------------------------------------


@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "octet"])
@pytest.mark.parametrize("namespace", ["", "ns_", "x-"])
def test_parameter_namespace(server: Server, namespace: str, octet: bool) -> None:
    """R1: every name, the file field included, carries ``parameterNamespace``."""
    file = ClientFile.of_size(25, prefix=namespace + "resumable", type="")
    assert server.test(file.params(1)).status_int == 204
    complete_upload(server, file, octet=octet)
    [call] = server.downstream.calls
    assert call["protocol"] == "resumablejs" and call["sha256"] == sha256(file.data)


def test_several_namespaces_are_400(server: Server) -> None:
    params = {**FILE.params(1), "ns_resumableChunkNumber": "1"}
    assert server.test(params).status_int == 400


@pytest.mark.parametrize("name", ["ChunkSize", "TotalSize", "Identifier", "Filename"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_missing_required_parameter_is_400(server: Server, name: str, method: str) -> None:
    """R1: the required names besides the marker ``resumableChunkNumber``."""
    params = FILE.params(1, **{name: None})
    response = server.test(params) if method == "GET" else send(server, FILE, 1, params=params)
    assert response.status_int == 400
    assert server.upload_dirs() == []


@pytest.mark.parametrize("name", ["resumableChunk", "resumableChunkNumberX", "chunkNumber"])
def test_without_the_marker_the_app_answers(server: Server, name: str) -> None:
    """Recognition: only a name *ending in* ``resumableChunkNumber`` makes it resumable's."""
    params = {**FILE.params(1, ChunkNumber=None), name: "1"}
    assert server.test(params).body == b"no such page"


@pytest.mark.parametrize(
    ("type_param", "content_type", "metadata_type"),
    [
        pytest.param(None, "application/octet-stream", None, id="absent"),
        pytest.param("", "application/octet-stream", "", id="empty"),
        pytest.param("image/png", "image/png", "image/png", id="file-type"),
    ],
)
def test_resumable_type_is_optional(
    server: Server, type_param: str | None, content_type: str, metadata_type: str | None
) -> None:
    """R1: resumableType may be absent or empty; when given it is the content type."""
    file = ClientFile.of_size(25, prefix="resumable", type=type_param)
    complete_upload(server, file)
    [call] = server.downstream.calls
    assert call["content_type"] == content_type
    assert call["metadata"].get("type") == metadata_type
    assert call["filename"] == "my file.txt"
    assert call["metadata"]["identifier"] == "25-dirmyfiletxt"
    assert call["metadata"]["relativePath"] == "dir/my file.txt"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        pytest.param(FILE.params(1), 200, id="both-agree"),
        pytest.param({}, 200, id="form-only"),
        pytest.param(FILE.params(1, Identifier="25-other"), 400, id="R2-conflict"),
    ],
)
def test_form_and_query(server: Server, query: dict[str, str], status: int) -> None:
    """R2: multipart parameters arrive in both; they must agree."""
    response = server.upload(FILE.params(1), FILE.chunk(1), query=query, file_field="file")
    assert response.status_int == status


# -- R3, R4, R12: test requests ----------------------------------------------------------------


def post_test(server: Server, params: dict[str, str]) -> Any:
    """``testMethod: 'POST'``: the query string, no body, no Content-Type (R4)."""
    return server.request("POST", params)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("uploaded", "number", "status", "expected"),
    [
        pytest.param([], 1, 204, None, id="R3-no-record"),
        pytest.param([1], 2, 204, None, id="R3-chunk-absent"),
        pytest.param([1], 1, 200, {"chunk": 1, "complete": False}, id="R3-chunk-present"),
        pytest.param([1, 2], 2, 200, {"chunk": 2, "complete": True}, id="R3-complete"),
    ],
)
def test_test_request(
    server: Server, method: str, uploaded: list[int], number: int, status: int,
    expected: dict[str, Any] | None,
) -> None:
    """R3 (GET) and R4 (empty POST)."""
    for chunk in uploaded:
        send(server, FILE, chunk)
    params = FILE.params(number)
    response = server.test(params) if method == "GET" else post_test(server, params)
    assert response.status_int == status
    assert response.headers["Cache-Control"] == "no-store"
    assert (body(response) if expected else response.body) == (expected or b"")
    assert len(server.upload_dirs()) == (1 if uploaded else 0)


def test_duplicate_query_keys_first_wins(server: Server) -> None:
    """R12: a custom query key shadowing a standard name comes first and wins."""
    send(server, FILE, 1)
    url = "/up?resumableChunkNumber=2&" + "&".join(f"{k}={v}" for k, v in FILE.params(1).items())
    response = server.app.get(url.replace(" ", "%20"), expect_errors=True)
    assert response.status_int == 204  # chunk 2 asked, chunk 2 absent


# -- R5-R8: uploads ----------------------------------------------------------------------------


@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "R8-octet"])
def test_accepted_upload_is_exactly_200(server: Server, octet: bool) -> None:
    """R5: 200, never 201/202/204 (only 200 and 201 are success; 202/204 are retried)."""
    responses = [send(server, FILE, number, octet=octet) for number in (1, 2)]
    assert [(r.status_int, body(r)) for r in responses] == [
        (200, {"chunk": 1, "complete": False}), (200, {"chunk": 2, "complete": True}),
    ]
    assert all(r.headers["Cache-Control"] == "no-store" for r in responses)


@pytest.mark.parametrize(
    "upload",
    [
        pytest.param(False, id="R6-test-GET-over-max-size"),
        pytest.param(True, id="R6-upload-over-max-size"),
    ],
)
def test_too_large_is_400_not_413(tmp_path: Path, upload: bool) -> None:
    """R6: resumable.js would retry a 413 a hundred times."""
    server = Server(tmp_path, {"max_size": 24})
    response = send(server, FILE, 1) if upload else server.test(FILE.params(1))
    assert response.status_int == 400 and "larger" in body(response)["error"]


def test_body_longer_than_any_chunk_is_400(server: Server) -> None:
    """R6: a declared length no chunk can have, refused before reading."""
    response = server.upload(FILE.params(1), FILE.data[:20], octet=True)
    assert response.status_int == 400 and server.upload_dirs() == []


def says_one(count: int) -> dict[int, str]:
    """Every chunk claims the file has one chunk."""
    return dict.fromkeys(range(1, count + 1), "1")


FLOOR_FILE = ClientFile.of_size(25, prefix="resumable")  # chunks of 10 and 15
CEIL_FILE = ClientFile.of_size(25, prefix="resumable", force=True)  # chunks of 10, 10 and 5


@pytest.mark.parametrize(
    ("file", "total_chunks"),
    [
        pytest.param(FLOOR_FILE, {1: "1"}, id="floor-first-says-1"),
        pytest.param(FLOOR_FILE, says_one(2), id="floor-all-say-1"),
        pytest.param(CEIL_FILE, {1: "1", 2: "2"}, id="ceil-undercount-equal-to-floor-count"),
        pytest.param(CEIL_FILE, says_one(3), id="ceil-all-say-1"),
        pytest.param(ClientFile.of_size(39, prefix="resumable", force=True), {1: "2", 2: "3"},
                     id="ceil-growing"),
    ],
)
def test_too_small_total_chunks_is_tolerated(
    server: Server, file: ClientFile, total_chunks: dict[int, str]
) -> None:
    """R7: npm 1.1.0 may send a too-small, growing resumableTotalChunks (#567)."""
    for number in range(1, file.count + 1):
        params = file.params(number, TotalChunks=total_chunks.get(number, str(file.count)))
        assert server.test(params).status_int == 204
        assert send(server, file, number, params=params).status_int == 200
    [call] = server.downstream.calls
    assert call["sha256"] == sha256(file.data)


def test_impossible_total_chunks_is_logged_and_ignored(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """R7: "ignore it, log it"."""
    caplog.set_level(logging.DEBUG, "tus_filter")
    params = FLOOR_FILE.params(1, TotalChunks="7")
    assert send(server, FLOOR_FILE, 1, params=params).status_int == 200
    assert "totalChunks=7" in caplog.text


@pytest.mark.parametrize(
    ("number", "size"),
    [
        pytest.param(4, "5", id="beyond-ceil-count"),
        pytest.param(3, "6", id="ceil-chunk-of-a-size-no-layout-has"),
        pytest.param(2, "11", id="chunk-Nf-of-a-size-no-layout-has"),
    ],
)
def test_chunks_outside_every_layout_are_400(server: Server, number: int, size: str) -> None:
    """R7: a too-small totalChunks is ignored, but n > Nc and impossible sizes are not."""
    params = FLOOR_FILE.params(number, CurrentChunkSize=size, TotalChunks="1")
    assert server.test(params).status_int == 400


def test_base64_chunk_format_is_refused(server: Server) -> None:
    """R9 (feature off): the chunk as a ``data:`` text field, no file part -> 400, not 204."""
    fields = {**FILE.params(1), "file": "data:text/plain;base64,AAAA"}
    content_type, raw = multipart(fields.items(), None)
    response = server.request(
        "POST", FILE.params(1), body=raw, headers={"Content-Type": content_type}
    )
    assert response.status_int == 400 and server.upload_dirs() == []


def test_a_chunk_begun_before_the_layout_was_learnt_completes_with_the_learnt_one(
    server: Server,
) -> None:
    """R7: chunk 1 starts while 25 bytes in 10s may be 2 chunks or 3 (its totalChunks is no
    proof); chunk 2, of 15 bytes, then says 2.  Chunk 1, counted last, completes 2 chunks."""
    slow = SlowBody(FLOOR_FILE.chunk(1)[:5], FLOOR_FILE.chunk(1)[5:])
    request = server.app.RequestClass.blank(
        PATH + "?" + urlencode(FLOOR_FILE.params(1)), method="POST",
        content_type="application/octet-stream",
    )
    request.environ.update({"wsgi.input": slow, "CONTENT_LENGTH": "10"})
    answers: list[Any] = []
    first = threading.Thread(
        target=lambda: answers.append(server.app.do_request(request, expect_errors=True))
    )
    first.start()
    assert slow.started.wait(5)
    assert body(send(server, FLOOR_FILE, 2, octet=True)) == {"chunk": 2, "complete": False}
    slow.release.set()
    first.join(10)
    [answer] = answers
    assert answer.status_int == 200, answer
    [call] = server.downstream.calls
    assert (call["size"], call["sha256"]) == (FLOOR_FILE.total, sha256(FLOOR_FILE.data))


# -- R10: empty files --------------------------------------------------------------------------


@pytest.mark.parametrize("octet", [False, True], ids=["multipart", "octet"])
def test_empty_file_with_min_file_size_0(server: Server, octet: bool) -> None:
    """R10: a 0-byte octet chunk has a Content-Type, so it is an upload, not an R4 test."""
    empty = ClientFile.of_size(0, prefix="resumable", type="")
    assert post_test(server, empty.params(1)).status_int == 204
    assert body(send(server, empty, 1, octet=octet)) == {"chunk": 1, "complete": True}
    [call] = server.downstream.calls
    assert call["size"] == 0 and call["sha256"] == sha256(b"")
    assert post_test(server, empty.params(1)).status_int == 200


# -- R11, status table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "answered"),
    [
        pytest.param(400, 400, id="400-is-final-kept"),
        pytest.param(404, 404, id="404-is-final-kept"),
        pytest.param(415, 415, id="415-is-final-kept"),
        pytest.param(403, 400, id="403-would-be-retried-becomes-400"),
        pytest.param(413, 400, id="413-would-be-retried-becomes-400"),
    ],
)
def test_on_create_reject_gets_a_final_status(tmp_path: Path, status: int, answered: int) -> None:
    """R11: resumable.js retries all but 400, 404, 415, 500, 501: a refusal must be one of them."""
    def refuse(environ: dict[str, Any], info: UploadInfo) -> None:
        assert (info.protocol, info.size, info.content_type) == ("resumablejs", 25, "text/plain")
        raise Reject(status, "not you")

    server = Server(tmp_path, {"on_create": refuse})
    response = send(server, FILE, 1)
    assert (response.status_int, body(response)) == (answered, {"error": "not you"})
    assert server.upload_dirs() == []


def test_lock_timeout_is_503(tmp_path: Path) -> None:
    """Temporary: 503 is retried by resumable.js (500 would be permanent)."""
    server = Server(tmp_path, {"lock_timeout": 0.05})
    send(server, FILE, 1)
    with server.filter.storage.lock(server.upload_dirs()[0]):
        response = send(server, FILE, 2)
    assert (response.status_int, response.headers["Retry-After"]) == (503, "1")
    assert body(send(server, FILE, 2)) == {"chunk": 2, "complete": True}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(UploadNotFound(), 503, id="record-deleted-under-the-request"),
        pytest.param(PayloadTooLarge(), 400, id="R6-too-large"),
    ],
)
def test_errors_map_to_resumables_table(
    server: Server, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    """404 and 413 would be fatal or retried a hundred times: 503 (retried) and 400 (fatal)."""
    def failing(*args: Any) -> int:
        raise error

    monkeypatch.setattr(server.filter.storage.data, "write_chunk", failing)
    assert send(server, FILE, 1).status_int == status


def test_wrong_method_is_405(server: Server) -> None:
    response = server.request("DELETE", FILE.params(1))
    assert (response.status_int, response.headers["Allow"]) == (405, "GET, HEAD, POST, PUT, PATCH")


def test_tombstone_and_hand_off(tmp_path: Path) -> None:
    """After completion: retried chunks and tests answer 200, the app is called once."""
    server = Server(tmp_path, app_body=b'{"saved": true}')
    send(server, FILE, 2)
    last = send(server, FILE, 1)
    assert (last.status_int, last.body) == (200, b'{"saved": true}')
    assert body(send(server, FILE, 1)) == {"chunk": 1, "complete": True}
    assert body(post_test(server, FILE.params(2))) == {"chunk": 2, "complete": True}
    [call] = server.downstream.calls
    assert call["sha256"] == sha256(FILE.data)


def test_flow_and_resumable_with_one_identifier_are_separate(server: Server) -> None:
    """The protocol is part of the record key."""
    flow = ClientFile(FILE.data, relative_path=FILE.relative_path)
    send(server, FILE, 1)
    assert server.test(flow.params(1)).status_int == 204
