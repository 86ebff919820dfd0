"""tus 1.0.0: discovery, version negotiation, routing, hooks, hand-off.

Case numbers ("#12") refer to /work/shared/reference/tus-server-contract.md.
The harness (``Tus``, ``call``, ...) lives in ``tests/support/tus.py``; the
``make_tus`` and ``tus`` fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tests.support.apps import sha256
from tests.support.tus import ALL_EXTENSIONS, OCTET, TUS, Tus, b64, stored, strip_host
from tus_filter import Reject, UploadInfo

pytestmark = pytest.mark.usefixtures("storage_backend")

# -- A. version negotiation, common behaviour ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "where", "headers"),
    [
        pytest.param("POST", "collection", {"Upload-Length": "5"}, id="2-post"),
        pytest.param(
            "PATCH", "upload", {"Upload-Offset": "0", "Content-Type": OCTET}, id="2-patch"
        ),
        pytest.param("DELETE", "upload", {}, id="2-delete"),
        pytest.param("HEAD", "upload", {}, id="4-head-is-strict-too"),
    ],
)
@pytest.mark.parametrize(
    "version",
    [
        pytest.param("0.2.2", id="unsupported"),
        pytest.param(None, id="3-missing"),
        pytest.param("", id="empty"),
        pytest.param("1.0", id="prefix"),
    ],
)
def test_unsupported_tus_resumable_is_412_and_processes_nothing(
    tus: Tus, method: str, where: str, headers: dict[str, str], version: str | None
) -> None:
    url = tus.create(5)
    path = "/files" if where == "collection" else url
    response = tus.request(
        method, path, {**headers, "Tus-Resumable": version}, b"hello" if method == "PATCH" else b""
    )
    assert response.status_int == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"  # 6
    if method == "HEAD":
        assert response.body == b""  # 9
    assert tus.record(url).offset == 0
    assert stored(tus) == 1


@pytest.mark.parametrize(
    "version", [pytest.param("0.0.1", id="old"), pytest.param(None, id="none")]
)
@pytest.mark.parametrize(
    "path", ["/files", "/files/0123456789abcdef0123456789abcdef", "/files/x/y"]
)
def test_options_never_412_any_path(tus: Tus, version: str | None, path: str) -> None:
    """#5, #11, #13: OPTIONS ignores Tus-Resumable and works on any URL, even unknown ids."""
    response = tus.request("OPTIONS", path, {"Tus-Resumable": version})
    assert response.status_int == 200
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Extension"] == ALL_EXTENSIONS


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"max_size": 1000},
            {
                "Tus-Extension": ALL_EXTENSIONS,
                "Tus-Max-Size": "1000",
                "Tus-Checksum-Algorithm": "sha1,md5,sha256,sha512",
            },
            id="10-all-enabled",
        ),
        pytest.param(
            {},
            {"Tus-Max-Size": None},
            id="10-no-max-size-header-without-limit",
        ),
        pytest.param(
            {"checksum_algorithms": ()},
            {
                "Tus-Extension": ALL_EXTENSIONS.replace(",checksum", ""),
                "Tus-Checksum-Algorithm": None,
            },
            id="12-no-checksum-when-disabled",
        ),
        pytest.param(
            {"checksum_algorithms": ("sha1", "sha256")},
            {"Tus-Checksum-Algorithm": "sha1,sha256"},
            id="88-configured-algorithms",
        ),
        pytest.param(
            {"upload_valid_duration": 0},
            {"Tus-Extension": ALL_EXTENSIONS.replace(",expiration", "")},
            id="81-no-expiration-when-uploads-never-expire",
        ),
        pytest.param({"max_size": 0}, {"Tus-Max-Size": "0"}, id="zero-limit-advertised"),
    ],
)
def test_options_advertises_what_is_enabled(
    make_tus: Callable[..., Tus], options: dict[str, Any], expected: dict[str, str | None]
) -> None:
    """#10, #12, #81, #88, #120: derived, not hard-coded; checksum-trailer never (#98)."""
    response = make_tus(**options).request("OPTIONS", "/files", tus=False)
    assert response.status_int == 200
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert "checksum-trailer" not in response.headers["Tus-Extension"]
    for name, value in expected.items():
        assert response.headers.get(name) == value, name


def test_header_names_are_case_insensitive(tus: Tus) -> None:
    """#7: tuspy sends lowercase names."""
    response = tus.request(
        "POST",
        "/files",
        {"tus-resumable": "1.0.0", "upload-length": "3", "upload-metadata": ""},
        tus=False,
    )
    assert response.status_int == 201
    url = strip_host(response.headers["Location"])
    patched = tus.request("PATCH", url, {"upload-offset": "0", "content-type": OCTET}, b"abc")
    assert (patched.status_int, patched.headers["Upload-Offset"]) == (204, "3")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("PUT", "upload", "HEAD, PATCH, DELETE, OPTIONS", id="8-put-on-upload"),
        pytest.param("POST", "upload", "HEAD, PATCH, DELETE, OPTIONS", id="24-post-on-upload"),
        pytest.param("PATCH", "/files", "POST, OPTIONS", id="patch-on-collection"),
        pytest.param("HEAD", "/files", "POST, OPTIONS", id="head-on-collection"),
        pytest.param("DELETE", "/files", "POST, OPTIONS", id="delete-on-collection"),
        pytest.param("PUT", "/files", "POST, OPTIONS", id="put-on-collection"),
    ],
)
def test_unsupported_method_is_405_with_allow(tus: Tus, method: str, path: str, allow: str) -> None:
    url = tus.create(5)
    response = tus.request(method, url if path == "upload" else path)
    assert response.status_int == 405
    assert response.headers["Allow"] == allow
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_error_bodies_are_plain_text(tus: Tus) -> None:
    """#9: text/plain, nosniff; no body on HEAD."""
    response = tus.request("POST", "/files", {"Upload-Length": "-1"})
    assert response.status_int == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.text.startswith("Upload-Length must be")
    head = tus.head("/files/0123456789abcdef0123456789abcdef")
    assert (head.status_int, head.body) == (404, b"")
    assert "Upload-Offset" not in head.headers  # 36


# -- O. X-HTTP-Method-Override ---------------------------------------------------------------------


def test_override_post_as_patch(tus: Tus) -> None:
    """#126: tus-js-client's overridePatchMethod."""
    url = tus.create(5)
    response = tus.request(
        "POST",
        url,
        {"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0", "Content-Type": OCTET},
        b"hello",
    )
    assert (response.status_int, response.headers["Upload-Offset"]) == (204, "5")
    assert tus.data(url) == b"hello"
    assert len(tus.handoffs) == 1


@pytest.mark.parametrize(
    ("real", "override", "where", "status"),
    [
        pytest.param("POST", "DELETE", "upload", 204, id="127-post-as-delete"),
        pytest.param("GET", "OPTIONS", "/files", 200, id="128-get-as-options"),
        pytest.param("PUT", "HEAD", "upload", 200, id="any-method-as-head"),
        pytest.param("POST", "patch", "upload", 415, id="case-insensitive-value"),
        pytest.param("POST", "PUT", "upload", 405, id="override-to-unsupported"),
    ],
)
def test_override_on_any_method(
    tus: Tus, real: str, override: str, where: str, status: int
) -> None:
    url = tus.create(5)
    response = tus.request(
        real, url if where == "upload" else where, {"X-HTTP-Method-Override": override}
    )
    assert response.status_int == status


def test_override_applies_before_version_check(tus: Tus) -> None:
    """#129: an overridden OPTIONS needs no Tus-Resumable."""
    response = tus.request("POST", "/files", {"X-HTTP-Method-Override": "OPTIONS"}, tus=False)
    assert response.status_int == 200
    assert "Tus-Version" in response.headers


# -- recognition: what passes through --------------------------------------------------------------

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("method", "path", "headers", "is_tus"),
    [
        pytest.param("POST", "/files", {"Tus-Resumable": "1.0.0"}, True, id="tus-resumable"),
        pytest.param("POST", "/files", {"Upload-Length": "5"}, True, id="creation-header"),
        pytest.param("POST", "/files", {"Upload-Defer-Length": "1"}, True, id="defer-header"),
        pytest.param("POST", "/files", {"Upload-Concat": "partial"}, True, id="concat-header"),
        pytest.param("OPTIONS", "/files", {}, True, id="options"),
        pytest.param("PUT", "/files", {"X-HTTP-Method-Override": "PATCH"}, True, id="override"),
        pytest.param("PATCH", f"/files/{UPLOAD_ID}", {}, True, id="patch-on-id"),
        pytest.param("HEAD", f"/files/{UPLOAD_ID}", {}, True, id="head-on-id"),
        pytest.param("DELETE", f"/files/{UPLOAD_ID}", {}, True, id="delete-on-id"),
        pytest.param("POST", f"/files/{UPLOAD_ID}", {}, True, id="post-on-id"),
        pytest.param(
            "GET", f"/files/{UPLOAD_ID}", {"Tus-Resumable": "1.0.0"}, False, id="get-is-never-tus"
        ),
        pytest.param(
            "GET", "/files", {"X-HTTP-Method-Override": "GET"}, False, id="override-to-get"
        ),
        pytest.param("POST", "/files", {}, False, id="plain-post"),
        pytest.param(
            "POST",
            "/files",
            {"Upload-Metadata": "a YQ=="},
            False,
            id="metadata-alone-is-not-creation",
        ),
        pytest.param("PATCH", "/files/not-an-id", {}, False, id="patch-on-other-path"),
        pytest.param("HEAD", f"/files/{UPLOAD_ID}/x", {}, False, id="nested-path"),
        pytest.param("PUT", f"/files/{UPLOAD_ID}", {}, False, id="non-tus-method-on-id"),
        pytest.param("PATCH", f"/files/{UPLOAD_ID.upper()}", {}, False, id="uppercase-id"),
    ],
)
def test_recognition(
    tus: Tus, method: str, path: str, headers: dict[str, str], is_tus: bool
) -> None:
    """Anything tus does not recognise reaches the app untouched (here: 404 no such page)."""
    response = tus.request(method, path, headers, tus=False)
    if is_tus:
        assert response.headers["Tus-Resumable"] == "1.0.0"
    else:
        assert response.status_int == 404
        assert response.body == b"no such page"
        assert "Tus-Resumable" not in response.headers


def test_pass_through_keeps_the_body(make_tus: Callable[..., Tus]) -> None:
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]

    tus = make_tus(app)
    response = tus.request("POST", "/files", {"Content-Type": "text/plain"}, b"payload", tus=False)
    assert (response.status_int, response.body, seen) == (200, b"app", [b"payload"])


def test_tus_disabled_passes_everything_through(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(protocols=["uid"])
    response = tus.request("POST", "/files", {"Upload-Length": "5"})
    assert (response.status_int, response.body) == (404, b"no such page")


# -- hooks -----------------------------------------------------------------------------------------


def test_on_create_sees_the_upload_before_it_exists(make_tus: Callable[..., Tus]) -> None:
    seen: list[tuple[UploadInfo, bool, str | None]] = []
    holder: list[Tus] = []

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        exists = holder[0].filter.storage.records.exists(info.upload_id)
        seen.append((info, exists, environ.get("HTTP_UPLOAD_CONCAT")))

    tus = make_tus(on_create=on_create)
    holder.append(tus)
    url = tus.create(7, Upload_Metadata=f"filename {b64('a.txt')},filetype {b64('text/plain')}")
    info, existed, concat = seen[0]
    assert not existed
    assert info == UploadInfo(
        protocol="tus",
        upload_id=url.rsplit("/", 1)[1],
        size=7,
        filename="a.txt",
        metadata={"filename": "a.txt", "filetype": "text/plain"},
        content_type="text/plain",
    )
    tus.create(None, Upload_Defer_Length="1", Upload_Concat="partial")
    assert seen[1][0].size is None
    assert seen[1][2] == "partial"  # hooks tell partial from final through the environ (#119)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param({"Upload-Length": "5"}, b"", id="22-creation"),
        pytest.param(
            {"Upload-Length": "5", "Content-Type": OCTET}, b"hello", id="creation-with-upload"
        ),
        pytest.param({"Upload-Length": "0"}, b"", id="empty-upload"),
    ],
)
def test_on_create_reject_stores_nothing(
    make_tus: Callable[..., Tus], headers: dict[str, str], body: bytes
) -> None:
    """#22: a Reject is the client's answer; no resource, no hand-off."""

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        raise Reject(403, "uploads are closed")

    tus = make_tus(on_create=on_create)
    response = tus.request("POST", "/files", headers, body)
    assert (response.status_int, response.text) == (403, "uploads are closed\n")
    assert "Location" not in response.headers
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert stored(tus) == 0
    assert tus.handoffs == []


def test_on_terminate_can_refuse(make_tus: Callable[..., Tus]) -> None:
    """#104."""
    infos: list[UploadInfo] = []

    def on_terminate(environ: dict[str, Any], info: UploadInfo) -> None:
        infos.append(info)
        if "keep" in info.metadata:
            raise Reject(400, "this one stays")

    tus = make_tus(on_terminate=on_terminate)
    kept = tus.create(5, Upload_Metadata="keep")
    gone = tus.create(5)
    assert tus.request("DELETE", kept).status_int == 400
    assert tus.head(kept).status_int == 200
    assert tus.request("DELETE", gone).status_int == 204
    assert tus.head(gone).status_int == 404
    assert [info.upload_id for info in infos] == [kept[-32:], gone[-32:]]


# -- hand-off --------------------------------------------------------------------------------------


def _app(status: str, body: bytes, headers: list[tuple[str, str]] | None = None) -> Any:
    calls: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        upload = environ.get("tus_filter.upload")
        if upload is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such page"]
        calls.append(upload)
        start_response(status, [("Content-Type", "application/json"), *(headers or [])])
        return [body]

    app.calls = calls  # type: ignore[attr-defined]
    return app


def test_handoff_upload_object(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus()
    metadata = f"filename {b64('résumé.pdf')},filetype {b64('application/pdf')},note"
    url = tus.create(11, Upload_Metadata=metadata)
    assert tus.handoffs == []
    tus.patch(url, 0, b"hello ")
    assert tus.handoffs == []
    tus.patch(url, 6, b"world")
    [call_] = tus.handoffs
    assert call_["upload_id"] == url[-32:]
    assert call_["protocol"] == "tus"
    assert call_["size"] == 11
    assert call_["filename"] == "résumé.pdf"
    assert call_["content_type"] == "application/pdf"
    assert call_["metadata"] == {
        "filename": "résumé.pdf",
        "filetype": "application/pdf",
        "note": "",
    }
    assert call_["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert call_["request_method"] == "POST"
    assert call_["sha256"] == sha256(b"hello world")
    assert tus.filter.get_upload(url[-32:]).size == 11


@pytest.mark.parametrize(
    ("app_status", "app_body", "expect_status", "expect_body"),
    [
        pytest.param("200 OK", b"", 204, b"", id="2xx-empty-keeps-tus-status"),
        pytest.param("200 OK", b'{"id":1}', 200, b'{"id":1}', id="2xx-body-is-the-apps"),
        pytest.param("202 Accepted", b"", 204, b"", id="202-empty"),
        pytest.param("400 Bad Request", b'{"e":1}', 400, b'{"e":1}', id="non-2xx-as-sent"),
        pytest.param("500 Internal Server Error", b"", 500, b"", id="500-as-sent"),
    ],
)
def test_handoff_merges_the_apps_answer_on_patch(
    make_tus: Callable[..., Tus],
    app_status: str,
    app_body: bytes,
    expect_status: int,
    expect_body: bytes,
) -> None:
    app = _app(app_status, app_body, [("X-App", "yes")])
    tus = make_tus(app)
    url = tus.create(5)
    response = tus.patch(url, 0, b"hello")
    assert response.status_int == expect_status
    assert response.body == expect_body
    assert response.headers["X-App"] == "yes"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    if 200 <= expect_status < 300:
        assert response.headers["Upload-Offset"] == "5"
    assert len(app.calls) == 1
    # the upload is complete whatever the app said; a retry sees 204, no second hand-off
    retry = tus.patch(url, 5, b"")
    assert (retry.status_int, retry.headers["Upload-Offset"]) == (204, "5")
    assert len(app.calls) == 1


@pytest.mark.parametrize(
    ("app_status", "app_body", "expect_status"),
    [
        pytest.param("200 OK", b"", 201, id="empty-201"),
        pytest.param("200 OK", b"{}", 201, id="body-keeps-201"),
        pytest.param("409 Conflict", b"dup", 409, id="non-2xx"),
    ],
)
def test_handoff_on_creation_keeps_location(
    make_tus: Callable[..., Tus], app_status: str, app_body: bytes, expect_status: int
) -> None:
    """#16/#60: an upload complete at creation is handed off by the POST."""
    app = _app(app_status, app_body)
    tus = make_tus(app)
    for headers, body in (
        ({"Upload-Length": "0"}, b""),
        ({"Upload-Length": "3", "Content-Type": OCTET}, b"abc"),
    ):
        response = tus.request("POST", "/files", headers, body)
        assert response.status_int == expect_status
        assert response.body == app_body
        assert response.headers["Tus-Resumable"] == "1.0.0"
        if expect_status == 201:
            assert response.headers["Location"].startswith("http://localhost/files/")
    assert [upload.size for upload in app.calls] == [0, 3]


def test_cors_exposes_tus_headers(make_tus: Callable[..., Tus]) -> None:
    """#131, #133: expose what tus-js-client reads, on success and on errors."""
    tus = make_tus(cors_origins="https://app.example")
    origin = {"Origin": "https://app.example"}
    created = tus.request("POST", "/files", {"Upload-Length": "5", **origin})
    failed = tus.request("POST", "/files", {"Upload-Length": "x", **origin})
    for response in (created, failed):
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {
            "Location",
            "Upload-Offset",
            "Upload-Length",
            "Upload-Defer-Length",
            "Upload-Expires",
            "Upload-Metadata",
            "Upload-Concat",
            "Tus-Resumable",
            "Tus-Version",
            "Tus-Extension",
            "Tus-Max-Size",
            "Tus-Checksum-Algorithm",
        } <= exposed
    preflight = tus.request(
        "OPTIONS",
        "/files",
        {
            **origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type",
        },
        tus=False,
    )
    methods = {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"POST", "HEAD", "PATCH", "DELETE", "OPTIONS"} <= methods


def test_location_honours_script_name_and_proxy(make_tus: Callable[..., Tus]) -> None:
    """#14: absolute Location = collection URL + id (behind_proxy handled by urls.py)."""
    tus = make_tus(behind_proxy=True)
    response = tus.web.post(
        "/files",
        headers={
            **TUS,
            "Upload-Length": "1",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "up.example",
        },
        extra_environ={"SCRIPT_NAME": "/app"},
    )
    assert response.headers["Location"].startswith("https://up.example/app/files/")
