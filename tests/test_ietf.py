"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload) through WebTest.

One row per rule of the draft the ``ietf`` protocol claims, built from the
draft's own examples (sizes scaled down), run for every interop version it
applies to.  Interop 3 says ``Upload-Incomplete`` with inverted values; the
``Draft`` helper hides that so one row serves every version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import webtest  # type: ignore[import-untyped]

from tests.support.tus import OCTET, SlowBody, Tus, call, in_thread, stored, strip_host
from tus_filter import Reject, UploadInfo
from tus_filter.protocols.structured import parse_dictionary

pytestmark = pytest.mark.usefixtures("storage_backend")

PARTIAL = "application/partial-upload"
PROBLEM = "https://iana.org/assignments/http-problem-types#"
VERSIONS = [3, 4, 5, 6, 7, 8, 9]
WITH_LIMITS = [6, 7, 8, 9]
WITH_PROBLEMS = [6, 7, 8, 9]


@dataclass
class Draft:
    """An ``ietf`` filter driven by one interop version's client."""

    tus: Tus
    version: int

    @property
    def field(self) -> str:
        return "Upload-Incomplete" if self.version == 3 else "Upload-Complete"

    def complete(self, flag: bool) -> dict[str, str]:
        """The completeness field saying ``flag``, as this version spells it."""
        return {self.field: "?1" if flag != (self.version == 3) else "?0"}

    def is_complete(self, response: webtest.TestResponse) -> bool | None:
        value = response.headers.get(self.field)
        if value is None:
            return None
        return (value == "?1") != (self.version == 3)

    def request(
        self,
        method: str,
        path: str = "/files",
        headers: Mapping[str, str | None] | None = None,
        body: bytes = b"",
    ) -> webtest.TestResponse:
        sent = {"Upload-Draft-Interop-Version": str(self.version), **(headers or {})}
        return self.tus.request(method, path, sent, body, tus=False)

    def create(
        self, body: bytes = b"", *, complete: bool = False, **headers: str
    ) -> webtest.TestResponse:
        sent = {**self.complete(complete), **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.request("POST", "/files", sent, body)

    def new(self, length: int | None = 10, body: bytes = b"") -> str:
        """Create an unfinished upload; return its path."""
        headers = {} if length is None else {"Upload_Length": str(length)}
        response = self.create(body, **headers)
        assert response.status_int == 201, response
        return strip_host(response.headers["Location"])

    def append(
        self,
        path: str,
        offset: int,
        body: bytes,
        *,
        complete: bool = False,
        headers: Mapping[str, str | None] | None = None,
    ) -> webtest.TestResponse:
        sent: dict[str, str | None] = {"Upload-Offset": str(offset), **self.complete(complete)}
        if self.version >= 6:
            sent["Content-Type"] = PARTIAL
        sent.update(headers or {})
        return self.request("PATCH", path, sent, body)

    def head(self, path: str) -> webtest.TestResponse:
        return self.request("HEAD", path)


@pytest.fixture(params=VERSIONS, ids=lambda v: f"interop-{v}")
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def make_draft(make_tus: Callable[..., Tus], version: int) -> Callable[..., Draft]:
    return lambda **options: Draft(make_tus(**options), version)


@pytest.fixture
def draft(make_draft: Callable[..., Draft]) -> Draft:
    return make_draft(max_size=1000)


def problem(response: webtest.TestResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/problem+json"
    result: dict[str, Any] = json.loads(response.body)
    return result


def limits(response: webtest.TestResponse) -> dict[str, Any] | None:
    return parse_dictionary(response.headers.get("Upload-Limit"))


# -- upload creation -------------------------------------------------------------------------------


def test_creation_without_content_returns_the_upload_url(draft: Draft) -> None:
    """"Upload-Complete set to false is also valid ... to retrieve the upload resource's URI"."""
    response = draft.create(Upload_Length="10")
    assert response.status_int == 201  # "Servers are RECOMMENDED to use 201"
    assert response.headers["Location"].startswith("http://localhost/files/")
    assert draft.is_complete(response) is False
    assert response.headers["Upload-Offset"] == "0"
    assert draft.tus.handoffs == []


def test_creation_with_part_of_the_content(draft: Draft) -> None:
    """Creation example B: the first bytes of a longer upload; 201, Location, not complete."""
    response = draft.create(b"first", Upload_Length="12")
    assert response.status_int == 201
    assert draft.is_complete(response) is False
    assert response.headers["Upload-Offset"] == "5"
    path = strip_host(response.headers["Location"])
    assert draft.tus.data(path) == b"first"
    assert draft.head(path).headers["Upload-Offset"] == "5"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Upload-Length": "11"}, id="upload-length-and-content-length"),
        pytest.param({}, id="content-length-alone-gives-the-length"),
    ],
)
def test_creation_with_the_whole_content_completes_it(
    draft: Draft, headers: dict[str, str]
) -> None:
    """Creation example A: ``Upload-Complete: ?1`` and the whole body; the app answers."""
    headers = {
        "Content-Disposition": "inline; filename=\"file name.jpg\"; "
        "filename*=UTF-8''file%20name.jpg",
        **headers,
    }
    response = draft.create(b"hello world", complete=True, **headers)
    assert response.status_int == 201
    assert draft.is_complete(response) is True  # the response comes from the target resource
    [handoff] = draft.tus.handoffs
    assert (handoff["size"], handoff["protocol"], handoff["filename"]) == (
        11,
        "ietf",
        "file name.jpg",
    )
    assert draft.tus.data(response.headers["Location"]) == b"hello world"


def test_empty_complete_creation_hands_off_an_empty_file(draft: Draft) -> None:
    """"If the Upload-Complete header field is then set to true, ... an empty representation"."""
    response = draft.create(complete=True)
    assert (response.status_int, draft.is_complete(response)) == (201, True)
    assert [call["size"] for call in draft.tus.handoffs] == [0]


def test_known_length_reached_completes_the_upload(draft: Draft) -> None:
    """tus-js-client creates an empty file with ``?0`` and ``Upload-Length: 0``, then stops:
    an upload whose offset reaches its known length is complete (the server marks it so)."""
    response = draft.create(Upload_Length="0")
    assert (response.status_int, draft.is_complete(response)) == (201, True)
    assert [call["size"] for call in draft.tus.handoffs] == [0]


@pytest.mark.parametrize(
    ("headers", "body", "complete", "status", "problem_type"),
    [
        pytest.param(
            {"Upload-Length": "12"}, b"hello world", True, 400, "inconsistent-upload-length",
            id="upload-length-disagrees-with-the-complete-body",
        ),
        pytest.param(
            {"Upload-Length": "1001"}, b"", False, 413, None, id="length-over-max-size",
        ),
        pytest.param({}, b"x" * 1001, True, 413, None, id="body-over-max-size"),
        pytest.param(
            {"Upload-Length": "3"}, b"four", False, 413, None, id="body-longer-than-the-length",
        ),
    ],
)
def test_creation_refusals_leave_no_upload(
    draft: Draft,
    headers: dict[str, str],
    body: bytes,
    complete: bool,
    status: int,
    problem_type: str | None,
) -> None:
    response = draft.request("POST", "/files", {**draft.complete(complete), **headers}, body)
    assert response.status_int == status
    assert "Location" not in response.headers
    assert draft.is_complete(response) is False  # the upload protocol answers, not the app
    if status == 413 and draft.version in WITH_LIMITS:
        # "A server responding with a 413 ... SHOULD include the Upload-Limit header field"
        assert limits(response) == {"max-size": 1000}
    if problem_type is not None and draft.version >= 7:
        assert problem(response)["type"] == PROBLEM + problem_type
    assert stored(draft.tus) == 0
    assert draft.tus.handoffs == []


def test_a_body_too_large_is_refused_before_the_hook_runs(
    make_draft: Callable[..., Draft],
) -> None:
    seen: list[UploadInfo] = []
    draft = make_draft(max_size=10, on_create=lambda environ, info: seen.append(info))
    response = draft.create(b"x" * 11)
    assert (response.status_int, seen) == (413, [])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1", id="integer"),
        pytest.param("true", id="token"),
        pytest.param("", id="empty"),
    ],
)
def test_creation_needs_a_valid_completeness_field(draft: Draft, value: str) -> None:
    """"Other values MUST cause the entire header field to be ignored": no creation without it."""
    response = draft.request("POST", "/files", {draft.field: value}, b"data")
    assert response.status_int == 400
    assert draft.field in response.text
    assert stored(draft.tus) == 0


def test_an_invalid_upload_length_is_ignored(draft: Draft) -> None:
    """A non-Integer ``Upload-Length`` is ignored: the length stays unknown."""
    path = strip_host(draft.create(Upload_Length="ten").headers["Location"])
    head = draft.head(path)
    assert head.status_int == 204
    assert "Upload-Length" not in head.headers


def test_creation_cut_short_leaves_no_upload(make_tus: Callable[..., Tus], version: int) -> None:
    """No 104 under WSGI: a creation whose body was cut never told anyone its URL."""
    tus = make_tus()
    body = SlowBody(b"first", b"", truncate=True)
    body.release.set()
    field = {"Upload-Incomplete": "?1"} if version == 3 else {"Upload-Complete": "?0"}
    answer = call(
        tus.filter,
        "POST",
        "/files",
        {"Tus-Resumable": None, "Upload-Draft-Interop-Version": str(version), **field},
        body,
        content_length=10,
    )
    assert answer.status == 400
    assert stored(tus) == 0


def test_metadata_from_content_disposition_and_upload_metadata(draft: Draft) -> None:
    """The draft carries a filename in ``Content-Disposition``, a media type in
    ``Content-Type``; tus-js-client sends tus's ``Upload-Metadata`` too."""
    draft.create(
        b"abc",
        complete=True,
        Upload_Metadata="filename bWV0YS50eHQ=,note aGk=",
        Content_Type="image/png",
    )
    draft.create(
        b"abc",
        complete=True,
        Upload_Metadata="filename bWV0YS50eHQ=",
        Content_Disposition="inline; filename*=UTF-8''gr%C3%BC%C3%9Fe.txt",
    )
    first, second = draft.tus.handoffs
    assert (first["filename"], first["content_type"], first["metadata"]) == (
        "meta.txt",
        "image/png",
        {"filename": "meta.txt", "note": "hi"},
    )
    assert second["filename"] == "grüße.txt"  # Content-Disposition wins


def test_on_create_hook_sees_the_upload_and_may_refuse(make_draft: Callable[..., Draft]) -> None:
    seen: list[UploadInfo] = []

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        seen.append(info)
        if info.filename == "evil.exe":
            raise Reject(403, "no executables")

    draft = make_draft(on_create=on_create)
    ok = draft.create(Upload_Length="3", Content_Disposition='inline; filename="a.txt"')
    refused = draft.create(Upload_Length="3", Content_Disposition='inline; filename="evil.exe"')
    assert (ok.status_int, refused.status_int) == (201, 403)
    assert refused.text == "no executables\n"
    assert [(info.protocol, info.size, info.filename) for info in seen] == [
        ("ietf", 3, "a.txt"),
        ("ietf", 3, "evil.exe"),
    ]
    assert stored(draft.tus) == 1


# -- offset retrieval ------------------------------------------------------------------------------


def test_offset_retrieval(draft: Draft) -> None:
    """Offset retrieval example: offset, completeness, length, limits, no-store; 204."""
    path = draft.new(10, b"12345")
    head = draft.head(path)
    assert head.status_int == 204
    assert head.headers["Upload-Offset"] == "5"
    assert draft.is_complete(head) is False
    assert head.headers["Upload-Length"] == "10"
    assert head.headers["Cache-Control"] == "no-store"
    if draft.version in WITH_LIMITS:
        assert limits(head) is not None
    else:
        assert "Upload-Limit" not in head.headers  # interop 6 added Upload-Limit


def test_offset_retrieval_of_a_completed_upload(draft: Draft) -> None:
    path = strip_host(draft.create(b"abc", complete=True).headers["Location"])
    head = draft.head(path)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("3", "3")
    assert draft.is_complete(head) is True


def test_offset_retrieval_without_a_known_length(draft: Draft) -> None:
    """"MUST include the length ... unless the client has not supplied one"."""
    head = draft.head(draft.new(None))
    assert (head.status_int, head.headers.get("Upload-Length")) == (204, None)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/files/0123456789abcdef0123456789abcdef", id="unknown-id"),
        pytest.param("/files/not-an-id", id="not-an-id"),
    ],
)
def test_offset_retrieval_of_an_unknown_upload_is_404(draft: Draft, path: str) -> None:
    head = draft.head(path)
    assert (head.status_int, head.body) == (404, b"")


@pytest.mark.parametrize("version", WITH_LIMITS, ids=lambda v: f"interop-{v}")
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"max_size": 1000}, {"max-size": 1000, "max-age": 86400}, id="both"),
        pytest.param({"upload_valid_duration": 0}, {"min-size": 0}, id="no-limits-min-size-0"),
        pytest.param({"upload_valid_duration": 60}, {"max-age": 60}, id="lifetime-only"),
    ],
)
def test_upload_limit_members(
    make_draft: Callable[..., Draft], options: dict[str, Any], expected: dict[str, int]
) -> None:
    """``max-size`` from ``max_size``, the lifetime from ``upload_valid_duration``; interop 6
    calls the lifetime ``expires`` (renamed ``max-age`` in draft -06, interop 7)."""
    draft = make_draft(**options)
    if draft.version == 6 and "max-age" in expected:
        expected = {("expires" if k == "max-age" else k): v for k, v in expected.items()}
    created = draft.create(Upload_Length="5")
    head = draft.head(strip_host(created.headers["Location"]))
    for response in (created, head):
        found = limits(response)
        assert found is not None
        age = "expires" if draft.version == 6 else "max-age"
        if age in found:  # a second may have passed
            assert expected[age] - 2 <= found[age] <= expected[age]
            found[age] = expected[age]
        assert found == expected


# -- upload append ---------------------------------------------------------------------------------


def test_append_without_completing(draft: Draft) -> None:
    """Append example A: 2xx with ``Upload-Complete: ?0`` and the new offset."""
    path = draft.new(10, b"12345")
    response = draft.append(path, 5, b"678")
    assert response.status_int == 204
    assert draft.is_complete(response) is False
    assert response.headers["Upload-Offset"] == "8"  # tus-js-client reads it
    assert draft.tus.handoffs == []


def test_append_completing_the_upload_returns_the_app_answer(
    make_draft: Callable[..., Draft],
) -> None:
    """Append example B: the final response is the target resource's, with ``?1``."""
    from tests.support.apps import RecordingApp

    draft = make_draft(app=RecordingApp(body=b'{"metadata": {}}'))
    path = draft.new(10, b"12345")
    response = draft.append(path, 5, b"67890", complete=True)
    assert response.status_int == 200
    assert response.body == b'{"metadata": {}}'
    assert draft.is_complete(response) is True
    [handoff] = draft.tus.handoffs
    assert (handoff["size"], handoff["protocol"]) == (10, "ietf")


def test_an_app_refusing_the_file_still_says_the_upload_is_complete(
    make_draft: Callable[..., Draft],
) -> None:
    """"4xx ... indicate in this case that the representation was fully transmitted, but an
    error occurred while processing it": ``Upload-Complete: ?1`` tells the client not to resume."""

    def refusing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("422 Unprocessable Entity", [("Content-Type", "text/plain")])
        return [b"not an image"]

    draft = make_draft(app=refusing_app)
    path = draft.new(6, b"abc")
    response = draft.append(path, 3, b"def", complete=True)
    assert (response.status_int, response.body) == (422, b"not an image")
    assert draft.is_complete(response) is True
    created = draft.create(b"abc", complete=True)
    assert (created.status_int, draft.is_complete(created)) == (422, True)


def test_offset_mismatch_is_409_with_the_right_offset(draft: Draft) -> None:
    """Mismatching Offset: 409, ``Upload-Complete: ?0``, the correct ``Upload-Offset``."""
    path = draft.new(100, b"x" * 25)
    response = draft.append(path, 50, b"abc")
    assert response.status_int == 409
    assert response.headers["Upload-Offset"] == "25"
    assert draft.is_complete(response) is False
    if draft.version in WITH_PROBLEMS:
        assert problem(response) == {
            "type": PROBLEM + "mismatching-upload-offset",
            "title": "offset from request does not match offset of resource",
            "detail": "Upload-Offset is 50, the upload is at 25",
            "expected-offset": 25,
            "provided-offset": 50,
        }
    else:
        assert response.headers["Content-Type"].startswith("text/plain")
    assert draft.tus.data(path) == b"x" * 25


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Content-Type": None}, 415, id="partial-upload-media-type-required"),
        pytest.param({"Content-Type": OCTET}, 415, id="tus-media-type-refused"),
        pytest.param({"Upload-Offset": None}, 400, id="upload-offset-required"),
        pytest.param({"Upload-Offset": "-1"}, 400, id="upload-offset-not-negative"),
        pytest.param({"Upload-Offset": "1.0"}, 400, id="upload-offset-an-integer"),
        pytest.param({"Upload-Complete": None, "Upload-Incomplete": None}, 400,
                     id="completeness-required"),
    ],
)
def test_append_request_rules(draft: Draft, headers: dict[str, str | None], status: int) -> None:
    path = draft.new(10)
    if draft.version < 6 and "Content-Type" in headers:
        # Before interop 6 a PATCH needs no media type: the same request is accepted.
        status = 204
    response = draft.append(path, 0, b"abc", headers=headers)
    assert response.status_int == status, response.text
    if status != 204:
        assert draft.tus.record(path).offset == 0


def test_append_beyond_the_length_is_refused(draft: Draft) -> None:
    """"the server MUST prevent the offset from exceeding the upload length"."""
    path = draft.new(5, b"123")
    response = draft.append(path, 3, b"456")
    assert response.status_int == 413
    assert draft.tus.record(path).offset == 3


def test_append_with_a_length_inconsistent_with_the_recorded_one(draft: Draft) -> None:
    path = draft.new(10, b"123")
    response = draft.append(path, 3, b"45", complete=True)  # 3 + 2 != 10
    assert response.status_int == 400
    assert draft.is_complete(response) is False
    if draft.version >= 7:
        assert problem(response)["type"] == PROBLEM + "inconsistent-upload-length"
    assert draft.tus.record(path).offset == 3


def test_a_completing_body_of_unknown_length_short_of_the_length(
    make_tus: Callable[..., Tus], version: int
) -> None:
    """``?1`` with a chunked body that ends before ``Upload-Length``: inconsistent, but the
    bytes that arrived count (the offset never goes back)."""
    tus = make_tus()
    draft = Draft(tus, version)
    path = draft.new(10, b"123")
    headers = {
        "Tus-Resumable": None,
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Offset": "3",
        "Content-Type": PARTIAL,
        **draft.complete(True),
    }
    answer = call(tus.filter, "PATCH", path, headers, b"45", chunked=True)
    assert answer.status == 400
    head = draft.head(path)
    assert (head.headers["Upload-Offset"], draft.is_complete(head)) == ("5", False)
    assert tus.handoffs == []


def test_append_of_unknown_length_completes_at_the_last_byte(draft: Draft) -> None:
    """Length unknown until ``Upload-Complete: ?1`` with a ``Content-Length``."""
    path = draft.new(None, b"abc")
    assert draft.is_complete(draft.append(path, 3, b"def")) is False
    done = draft.append(path, 6, b"gh", complete=True)
    assert draft.is_complete(done) is True
    assert draft.head(path).headers["Upload-Length"] == "8"
    assert [call["size"] for call in draft.tus.handoffs] == [8]


def test_empty_append_completes_an_upload_of_unknown_length(draft: Draft) -> None:
    """"the request has no content ... the upload is complete"."""
    path = draft.new(None, b"abc")
    done = draft.append(path, 3, b"", complete=True)
    assert draft.is_complete(done) is True
    assert [call["size"] for call in draft.tus.handoffs] == [3]


def test_append_to_a_completed_upload(draft: Draft) -> None:
    """Data is refused (``completed-upload`` in interop 6 to 8); an empty ``?1`` retry of a
    lost final response is acknowledged without a second hand-off."""
    path = strip_host(draft.create(b"abc", complete=True).headers["Location"])
    refused = draft.append(path, 3, b"more", complete=True)
    assert refused.status_int == 400
    if draft.version in (6, 7, 8):
        assert problem(refused)["type"] == PROBLEM + "completed-upload"
    retried = draft.append(path, 3, b"", complete=True)
    assert (retried.status_int, draft.is_complete(retried)) == (204, True)
    assert len(draft.tus.handoffs) == 1


def test_append_cut_short_keeps_what_arrived(make_tus: Callable[..., Tus], version: int) -> None:
    """"the server SHOULD append as much of the patch document as possible"; not complete."""
    tus = make_tus()
    draft = Draft(tus, version)
    path = draft.new(10)
    body = SlowBody(b"12345", b"", fail=True)
    body.release.set()
    headers = {
        "Tus-Resumable": None,
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Offset": "0",
        "Content-Type": PARTIAL,
        **draft.complete(True),
    }
    call(tus.filter, "PATCH", path, headers, body, content_length=10)
    head = draft.head(path)
    assert (head.headers["Upload-Offset"], draft.is_complete(head)) == ("5", False)
    assert tus.handoffs == []


@pytest.mark.parametrize("method", ["HEAD", "PATCH", "DELETE"])
def test_an_expired_upload_is_410_once_then_gone(
    make_draft: Callable[..., Draft], method: str
) -> None:
    """After ``max-age`` "the server might make the upload resource inaccessible"."""
    draft = make_draft(upload_valid_duration=60)
    path = draft.new(10, b"abc")
    record = draft.tus.record(path)
    record.touched -= 120
    draft.tus.filter.storage.save(record)

    def send() -> webtest.TestResponse:
        return draft.append(path, 3, b"d") if method == "PATCH" else draft.request(method, path)

    first = send()
    assert first.status_int == 410
    assert draft.is_complete(first) is False
    assert send().status_int == 404
    assert stored(draft.tus) == 0


@pytest.mark.parametrize("second", ["PATCH", "DELETE"])
def test_a_newer_request_stops_a_stalled_append(
    make_tus: Callable[..., Tus], version: int, second: str
) -> None:
    """Concurrency: the RECOMMENDED approach, "terminating the previous request before
    processing the new request"; what the stalled append wrote stays."""
    tus = make_tus(lock_timeout=5)
    draft = Draft(tus, version)
    path = draft.new(10)
    headers = {
        "Tus-Resumable": None,
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Offset": "0",
        "Content-Type": PARTIAL,
        **draft.complete(True),
    }
    slow = SlowBody(b"AAAAA", b"AAAAA")
    first, first_result = in_thread(
        lambda: call(tus.filter, "PATCH", path, headers, slow, content_length=10)
    )
    tus.wait_for_written(path, b"AAAAA")
    started = time.monotonic()
    if second == "PATCH":
        answer = draft.append(path, 5, b"BBBBB", complete=True)
        assert answer.status_int == 204
    else:
        assert draft.request("DELETE", path).status_int == 204
    assert time.monotonic() - started < 2  # not after lock_timeout
    first.join(5)
    slow.release.set()  # lets the helper thread's read return
    assert first_result[0].status == 204
    if second == "PATCH":
        assert tus.data(path) == b"AAAAABBBBB"
        assert len(tus.handoffs) == 1
    else:
        assert stored(tus) == 0 and tus.handoffs == []


# -- cancellation ----------------------------------------------------------------------------------


def test_cancellation(make_draft: Callable[..., Draft]) -> None:
    terminated: list[str] = []
    draft = make_draft(on_terminate=lambda environ, info: terminated.append(info.protocol))
    path = draft.new(10, b"abc")
    response = draft.request("DELETE", path)
    assert response.status_int == 204
    assert terminated == ["ietf"]
    assert draft.head(path).status_int == 404
    assert stored(draft.tus) == 0


# -- versions, recognition, discovery --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        pytest.param("2", 400, id="interop-2-not-served"),
        pytest.param("10", 400, id="future-version-not-served"),
        pytest.param("six", 400, id="not-an-integer"),
    ],
)
def test_unserved_interop_version_is_400(tus: Tus, value: str, status: int) -> None:
    response = tus.request(
        "POST", "/files", {"Upload-Draft-Interop-Version": value, "Upload-Complete": "?0"},
        tus=False,
    )
    assert response.status_int == status
    assert "3 to 9" in response.text
    assert stored(tus) == 0


def test_without_interop_version_the_newest_text_applies(tus: Tus) -> None:
    """A client of the final RFC sends no ``Upload-Draft-Interop-Version``."""
    response = tus.request(
        "POST", "/files", {"Upload-Complete": "?0", "Upload-Length": "3"}, tus=False
    )
    assert response.status_int == 201
    path = strip_host(response.headers["Location"])
    patched = tus.request(
        "PATCH", path, {"Upload-Complete": "?1", "Upload-Offset": "0", "Content-Type": OCTET},
        b"abc", tus=False,
    )
    assert patched.status_int == 415  # interop 6 on: application/partial-upload


def test_tus_resumable_means_tus(tus: Tus) -> None:
    """A request with ``Tus-Resumable`` is tus's even if it also carries a draft field."""
    response = tus.request("POST", "/files", {"Upload-Length": "3", "Upload-Complete": "?0"})
    assert response.status_int == 201
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert tus.record(response.headers["Location"]).protocol == "tus"


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("HEAD", {}, id="head"),
        pytest.param("PATCH", {"Upload-Offset": "0", "Content-Type": OCTET}, id="patch"),
        pytest.param("DELETE", {}, id="delete"),
    ],
)
def test_an_ietf_upload_is_invisible_to_tus(
    draft: Draft, method: str, headers: dict[str, str]
) -> None:
    path = draft.new(10, b"abc")
    response = draft.tus.request(method, path, headers, b"x" if method == "PATCH" else b"")
    assert response.status_int == 404
    assert draft.tus.record(path).offset == 3


@pytest.mark.parametrize(
    "method",
    [pytest.param("HEAD", id="head"), pytest.param("PATCH", id="patch"),
     pytest.param("DELETE", id="delete")],
)
def test_a_tus_upload_is_invisible_to_the_draft(draft: Draft, method: str) -> None:
    path = draft.tus.create(10)
    patch = method == "PATCH"
    response = draft.append(path, 0, b"abc") if patch else draft.request(method, path)
    assert response.status_int == 404
    assert draft.tus.record(path).offset == 0


def test_get_on_an_upload_reaches_the_app(draft: Draft) -> None:
    """Downloads are the application's business, as for tus."""
    response = draft.request("GET", draft.new(10))
    assert (response.status_int, response.body) == (404, b"no such page")


@pytest.mark.parametrize(
    ("options", "headers", "expected"),
    [
        pytest.param({"max_size": 1000}, {"Upload-Draft-Interop-Version": "8"},
                     {"Upload-Limit": "max-size=1000", "Tus-Resumable": None},
                     id="draft-options-has-the-limits"),
        pytest.param({}, {"Upload-Draft-Interop-Version": "8"},
                     {"Upload-Limit": "min-size=0"}, id="no-limits-is-min-size-0"),
        pytest.param({"max_size": 1000}, {},
                     {"Upload-Limit": "max-size=1000", "Tus-Resumable": "1.0.0"},
                     id="plain-options-answers-for-both"),
        pytest.param({"protocols": ["tus"]}, {}, {"Upload-Limit": None, "Tus-Resumable": "1.0.0"},
                     id="no-limits-when-ietf-is-off"),
        pytest.param({"protocols": ["ietf"]}, {}, {"Upload-Limit": "min-size=0",
                                                   "Tus-Resumable": None},
                     id="plain-options-is-the-drafts-when-tus-is-off"),
    ],
)
def test_options(
    make_tus: Callable[..., Tus],
    options: dict[str, Any],
    headers: dict[str, str],
    expected: dict[str, str | None],
) -> None:
    """"When responding to an OPTIONS request ... the server MUST include Upload-Limit"."""
    response = make_tus(**options).request("OPTIONS", "/files", headers, tus=False)
    assert response.status_int in (200, 204)  # the draft's answer is 200, tus's its own
    for name, value in expected.items():
        assert response.headers.get(name) == value, name


def test_with_ietf_disabled_draft_requests_reach_the_app(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(protocols=["tus"])
    response = tus.request(
        "POST", "/files", {"Upload-Draft-Interop-Version": "6", "Upload-Complete": "?1"}, b"abc",
        tus=False,
    )
    assert (response.status_int, response.body) == (404, b"no such page")
    assert stored(tus) == 0


# -- the differences between interop versions, one row each ----------------------------------------


def _unfinished_head(draft: Draft) -> webtest.TestResponse:
    return draft.head(draft.new(10, b"abc"))


def _patch_without_media_type(draft: Draft) -> webtest.TestResponse:
    return draft.append(draft.new(10), 0, b"abc", headers={"Content-Type": None})


def _mismatch(draft: Draft) -> webtest.TestResponse:
    return draft.append(draft.new(10), 5, b"abc")


def _append_to_completed(draft: Draft) -> webtest.TestResponse:
    path = strip_host(draft.create(b"abc", complete=True).headers["Location"])
    return draft.append(path, 3, b"more", complete=True)


def _inconsistent_creation(draft: Draft) -> webtest.TestResponse:
    return draft.create(b"abc", complete=True, Upload_Length="4")


def _problem_type(response: webtest.TestResponse) -> str | None:
    if response.headers.get("Content-Type") != "application/problem+json":
        return None
    return str(json.loads(response.body)["type"]).removeprefix(PROBLEM)


@pytest.mark.parametrize(
    ("version", "act", "observe", "expected"),
    [
        pytest.param(3, _unfinished_head, lambda r: r.headers.get("Upload-Incomplete"), "?1",
                     id="3-upload-incomplete-inverted"),
        pytest.param(4, _unfinished_head, lambda r: r.headers.get("Upload-Complete"), "?0",
                     id="4-upload-complete-replaces-it"),
        pytest.param(5, _unfinished_head, lambda r: r.headers.get("Upload-Limit"), None,
                     id="5-no-upload-limit-yet"),
        pytest.param(6, _unfinished_head, lambda r: sorted(limits(r) or {}), ["expires"],
                     id="6-upload-limit-lifetime-is-expires"),
        pytest.param(7, _unfinished_head, lambda r: sorted(limits(r) or {}), ["max-age"],
                     id="7-expires-renamed-max-age"),
        pytest.param(5, _patch_without_media_type, lambda r: r.status_int, 204,
                     id="5-any-patch-media-type"),
        pytest.param(6, _patch_without_media_type, lambda r: r.status_int, 415,
                     id="6-patch-needs-partial-upload"),
        pytest.param(5, _mismatch, _problem_type, None, id="5-no-problem-types-yet"),
        pytest.param(6, _mismatch, _problem_type, "mismatching-upload-offset",
                     id="6-mismatching-offset-problem"),
        pytest.param(6, _inconsistent_creation, _problem_type, None,
                     id="6-no-inconsistent-length-type-yet"),
        pytest.param(7, _inconsistent_creation, _problem_type, "inconsistent-upload-length",
                     id="7-inconsistent-length-problem"),
        pytest.param(8, _append_to_completed, _problem_type, "completed-upload",
                     id="8-completed-upload-problem"),
        pytest.param(9, _append_to_completed, _problem_type, None,
                     id="9-completed-upload-type-dropped"),
    ],
)
def test_interop_differences(
    make_tus: Callable[..., Tus],
    version: int,
    act: Callable[[Draft], webtest.TestResponse],
    observe: Callable[[webtest.TestResponse], object],
    expected: object,
) -> None:
    assert observe(act(Draft(make_tus(), version))) == expected
