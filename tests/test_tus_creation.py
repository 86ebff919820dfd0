"""tus creation, creation-with-upload, creation-defer-length, Upload-Metadata, expiration on POST.

Case numbers ("#18") refer to the tus server contract (sections C, D, G, H, I).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.support.tus import OCTET, Tus, b64, call, sha1_header, stored

pytestmark = pytest.mark.usefixtures("storage_backend")

# -- C. creation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({"Upload-Length": "100"}, b"", 201, id="14-length"),
        pytest.param({"Upload-Length": "0"}, b"", 201, id="16-zero-length"),
        pytest.param({"Upload-Length": "1000"}, b"", 201, id="at-max-size"),
        pytest.param({}, b"", 400, id="17-no-length"),
        pytest.param({"Upload-Length": "-1"}, b"", 400, id="18-negative"),
        pytest.param({"Upload-Length": "abc"}, b"", 400, id="18-letters"),
        pytest.param({"Upload-Length": "1.5"}, b"", 400, id="18-decimal"),
        pytest.param({"Upload-Length": "1e3"}, b"", 400, id="18-exponent"),
        pytest.param({"Upload-Length": ""}, b"", 400, id="18-empty"),
        pytest.param({"Upload-Length": "+5"}, b"", 400, id="18-plus-sign"),
        pytest.param({"Upload-Length": str(2**63)}, b"", 400, id="18-above-int64"),
        pytest.param({"Upload-Length": "9" * 5000}, b"", 400, id="18-absurdly-long"),
        pytest.param({"Upload-Length": "1001"}, b"", 413, id="19-over-max-size"),
        pytest.param(
            {"Upload-Length": "5", "Upload-Defer-Length": "1"},
            b"",
            400,
            id="20-both-length-and-defer",
        ),
        pytest.param(
            {"Upload-Length": "5", "Content-Type": "application/x-www-form-urlencoded"},
            b"",
            201,
            id="21-empty-body-any-content-type",
        ),
        pytest.param({"Upload-Defer-Length": "1"}, b"", 201, id="68-deferred"),
        pytest.param({"Upload-Defer-Length": "0"}, b"", 400, id="69-defer-0"),
        pytest.param({"Upload-Defer-Length": "true"}, b"", 400, id="69-defer-true"),
        pytest.param(
            {"Upload-Length": "5", "Upload-Concat": "nonsense"}, b"", 400, id="114-bad-concat"
        ),
        pytest.param(
            {"Upload-Length": "5", "Content-Type": "text/plain"},
            b"hello",
            415,
            id="62-body-with-other-content-type",
        ),
    ],
)
def test_creation_validation(tus: Tus, headers: dict[str, str], body: bytes, status: int) -> None:
    response = tus.request("POST", "/files", headers, body)
    assert response.status_int == status, response.text
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert stored(tus) == (1 if status == 201 else 0)  # 19, 61: refused means nothing stored
    if status == 201:
        assert response.headers["Location"].startswith("http://localhost/files/")
        assert response.body == b""
    else:
        assert "Location" not in response.headers


def test_creation_returns_an_absolute_location_and_an_empty_upload(tus: Tus) -> None:
    """#14, #34-#35."""
    response = tus.request("POST", "/files", {"Upload-Length": "100"})
    location = response.headers["Location"]
    assert location.rsplit("/", 1)[0] == "http://localhost/files"
    head = tus.head(location.replace("http://localhost", ""))
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "100"
    assert "Upload-Offset" not in response.headers  # only creation-with-upload reports it


def test_zero_length_upload_is_complete_at_once(tus: Tus) -> None:
    """#16: HEAD offset 0 == length 0; the app is called by the POST itself."""
    url = tus.create(0)
    head = tus.head(url)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", "0")
    assert "Upload-Expires" not in head.headers
    [handoff] = tus.handoffs
    assert (handoff["size"], handoff["sha256"]) == (0, _EMPTY_SHA256)


_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_unlimited_when_no_max_size(make_tus: Callable[..., Tus]) -> None:
    server = make_tus()
    assert server.request("POST", "/files", {"Upload-Length": str(2**63 - 1)}).status_int == 201


def test_invalid_content_length_is_400(tus: Tus) -> None:
    answer = call(tus.filter, "POST", "/files", {"Upload-Length": "5", "Content-Length": "x"})
    assert answer.status == 400


def test_content_type_ignored_on_empty_chunked_post(tus: Tus) -> None:
    """#21 with a chunked (length-less) empty body: peeked, found empty, accepted."""

    def post(body: bytes) -> int:
        headers = {"Upload-Length": "5", "Content-Type": "text/plain"}
        return call(tus.filter, "POST", "/files", headers, body, chunked=True).status

    assert post(b"") == 201
    assert post(b"x") == 415


# -- D. Upload-Metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "metadata"),
    [
        pytest.param(
            "filename d29ybGQ=,is_confidential",
            {"filename": "world", "is_confidential": ""},
            id="25-key-without-value",
        ),
        pytest.param("key ", {"key": ""}, id="26-trailing-space-empty-value"),
        pytest.param("", {}, id="27-empty-header-is-no-metadata"),
        pytest.param("   ", {}, id="27-blank-header"),
        pytest.param(
            f"a {b64('a')}, b {b64('b')}", {"a": "a", "b": "b"}, id="28-space-after-comma"
        ),
        pytest.param(
            f"filename {b64('naïve 日本.txt')}", {"filename": "naïve 日本.txt"}, id="utf8-value"
        ),
        pytest.param(f"x-Custom_1.2 {b64('v')}", {"x-Custom_1.2": "v"}, id="punctuation-key"),
        pytest.param(f"empty {b64('')}", {"empty": ""}, id="explicit-empty-value"),
    ],
)
def test_metadata_accepted(tus: Tus, header: str, metadata: dict[str, str]) -> None:
    url = tus.create(5, Upload_Metadata=header)
    assert tus.record(url).metadata == metadata
    head = tus.head(url)
    if header.strip():
        assert head.headers["Upload-Metadata"] == header.strip()  # 32: echoed as received
    else:
        assert "Upload-Metadata" not in head.headers


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("filename d29ybGQ", id="29-bad-base64-padding"),
        pytest.param("filename !!!!", id="29-not-base64"),
        pytest.param("a YQ==,a Yg==", id="30-duplicate-key"),
        pytest.param(", YQ==", id="31-empty-first-pair"),
        pytest.param("a YQ==,,b Yg==", id="31-empty-pair"),
        pytest.param("a YQ==,", id="31-trailing-comma"),
        pytest.param("file name YQ==", id="31-space-in-key"),
        pytest.param("a  YQ==", id="double-space"),
        pytest.param("clé YQ==", id="31-non-ascii-key"),
        pytest.param(f"bin {'/w=='}", id="value-not-utf8"),
        pytest.param("a\tYQ==", id="tab-is-not-a-separator"),
    ],
)
def test_metadata_rejected(tus: Tus, header: str) -> None:
    response = tus.request("POST", "/files", {"Upload-Length": "5", "Upload-Metadata": header})
    assert response.status_int == 400
    assert response.text.startswith("Upload-Metadata")
    assert stored(tus) == 0


@pytest.mark.parametrize(
    ("metadata", "filename", "content_type"),
    [
        pytest.param({"filename": "a.txt", "name": "b.txt"}, "a.txt", None, id="filename-first"),
        pytest.param({"name": "b.txt"}, "b.txt", None, id="name-fallback"),
        pytest.param({"filename": "", "name": "b.txt"}, "b.txt", None, id="empty-filename"),
        pytest.param(
            {"filetype": "image/png", "type": "text/plain"}, None, "image/png", id="filetype-first"
        ),
        pytest.param(
            {"content-type": "Text/CSV", "type": "text/plain"},
            None,
            "text/csv",
            id="content-type-second",
        ),
        pytest.param({"type": "application/pdf"}, None, "application/pdf", id="type-last"),
        pytest.param({"filetype": "text/html\r\nX-Evil: 1"}, None, None, id="33-smuggling-ignored"),
        pytest.param(
            {"filetype": "text/plain; charset=utf-8"}, None, None, id="parameters-ignored"
        ),
        pytest.param(
            {"filetype": "nonsense", "type": "text/plain"},
            None,
            "text/plain",
            id="invalid-falls-through",
        ),
    ],
)
def test_filename_and_content_type_from_metadata(
    tus: Tus, metadata: dict[str, str], filename: str | None, content_type: str | None
) -> None:
    header = ",".join(f"{key} {b64(value)}" for key, value in metadata.items())
    url = tus.create(0, Upload_Metadata=header)
    [handoff] = tus.handoffs
    assert (handoff["filename"], handoff["content_type"]) == (filename, content_type)
    assert handoff["metadata"] == metadata
    assert tus.record(url).filename == filename


# -- G. creation-with-upload -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "body", "offset", "complete"),
    [
        pytest.param("100", b"hello", "5", False, id="59-first-chunk"),
        pytest.param("5", b"hello", "5", True, id="60-whole-upload"),
        pytest.param("5", b"", "0", False, id="empty-body-with-octet-stream"),
    ],
)
def test_creation_with_upload(
    tus: Tus, length: str, body: bytes, offset: str, complete: bool
) -> None:
    response = tus.request("POST", "/files", {"Upload-Length": length, "Content-Type": OCTET}, body)
    assert response.status_int == 201
    assert response.headers["Upload-Offset"] == offset  # 67: tus-js-client needs it
    url = response.headers["Location"].replace("http://localhost", "")
    assert tus.data(url) == body
    assert tus.head(url).headers["Upload-Offset"] == offset
    assert len(tus.handoffs) == (1 if complete else 0)
    assert ("Upload-Expires" in response.headers) is not complete  # 84


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({"Upload-Length": "3"}, b"hello", 413, id="61-body-over-length"),
        pytest.param(
            {"Upload-Length": "5", "Upload-Checksum": sha1_header(b"other")},
            b"hello",
            460,
            id="63-checksum-mismatch",
        ),
        pytest.param(
            {"Upload-Length": "5", "Upload-Checksum": "sha1 YQ=="},
            b"hello",
            460,
            id="63-short-digest-mismatch",
        ),
        pytest.param(
            {"Upload-Length": "5", "Upload-Checksum": "sha3 abc="},
            b"hello",
            400,
            id="63-unsupported-algorithm",
        ),
        pytest.param(
            {"Upload-Length": "5", "Upload-Checksum": sha1_header(b"hello")},
            b"hello",
            201,
            id="63-checksum-ok",
        ),
        pytest.param({"Upload-Defer-Length": "1"}, b"hello", 201, id="65-deferred-with-body"),
        pytest.param({"Upload-Defer-Length": "1"}, b"x" * 1001, 413, id="79-deferred-over-max"),
    ],
)
def test_creation_with_upload_validates_before_creating(
    tus: Tus, headers: dict[str, str], body: bytes, status: int
) -> None:
    """#61: tusd leaves an orphan behind; here a refused POST stores nothing."""
    response = tus.request("POST", "/files", {**headers, "Content-Type": OCTET}, body)
    assert response.status_int == status
    assert stored(tus) == (1 if status == 201 else 0)
    if status == 201:
        assert response.headers["Upload-Offset"] == str(len(body))


def test_chunked_creation_with_upload_over_length_is_refused(tus: Tus) -> None:
    """A chunked first chunk that runs past Upload-Length: 413, nothing left behind."""
    answer = call(
        tus.filter,
        "POST",
        "/files",
        {"Upload-Length": "3", "Content-Type": OCTET},
        b"hello",
        chunked=True,
    )
    assert answer.status == 413
    assert stored(tus) == 0
    answer = call(
        tus.filter,
        "POST",
        "/files",
        {"Upload-Length": "5", "Content-Type": OCTET},
        b"hello",
        chunked=True,
    )
    assert (answer.status, answer.headers["Upload-Offset"]) == (201, "5")
    assert len(tus.handoffs) == 1


# -- I. expiration on creation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "header"),
    [
        pytest.param({"upload_valid_duration": 3600}, True, id="23-82-expiring"),
        pytest.param({"upload_valid_duration": 0}, False, id="never-expires-no-header"),
    ],
)
def test_upload_expires_on_creation(
    make_tus: Callable[..., Tus], options: dict[str, Any], header: bool
) -> None:
    server = make_tus(**options)
    before = time.time()
    response = server.request("POST", "/files", {"Upload-Length": "5"})
    assert ("Upload-Expires" in response.headers) is header
    if header:
        value = response.headers["Upload-Expires"]
        assert value.endswith(" GMT")
        expires = parsedate_to_datetime(value).timestamp()
        assert before + 3600 - 2 <= expires <= time.time() + 3600
