"""tus HEAD, PATCH, creation-defer-length, checksum, termination, expiration, locking.

Case numbers ("#45") refer to the tus server contract (sections E, F, H, I, J, L, Q).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.paste.apps import user_header
from tests.support import backend
from tests.support.tus import (
    OCTET,
    SlowBody,
    ThreadNotingBody,
    Tus,
    call,
    in_thread,
    sha1_header,
    stored,
)

pytestmark = pytest.mark.usefixtures("storage_backend")

# -- E. HEAD ---------------------------------------------------------------------------------------


def test_head_reports_progress(tus: Tus) -> None:
    """#34, #35, #40."""
    url = tus.create(100, Upload_Metadata="b YQ==,a")
    tus.patch(url, 0, b"x" * 70)
    head = tus.head(url)
    assert head.status_int == 200
    assert head.body == b""
    assert head.headers["Upload-Offset"] == "70"
    assert head.headers["Upload-Length"] == "100"
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    assert head.headers["Upload-Metadata"] == "b YQ==,a"  # 32: as the client sent it
    assert "Upload-Expires" in head.headers
    assert "Upload-Concat" not in head.headers
    assert "Upload-Defer-Length" not in head.headers
    tus.patch(url, 70, b"y" * 30)
    done = tus.head(url)
    assert (done.headers["Upload-Offset"], done.headers["Upload-Length"]) == ("100", "100")
    assert "Upload-Expires" not in done.headers


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/files/0123456789abcdef0123456789abcdef", 404, id="36-unknown-id"),
        pytest.param("/files/not-an-id", 404, id="36-not-even-an-id"),
        pytest.param("/files/../../etc/passwd", 404, id="138-traversal"),
    ],
)
def test_head_unknown(tus: Tus, path: str, status: int) -> None:
    head = tus.head(path)
    assert head.status_int == status
    assert "Upload-Offset" not in head.headers
    assert head.headers["Tus-Resumable"] == "1.0.0"


def test_head_deferred_length(tus: Tus) -> None:
    """#37, #71."""
    url = tus.create(None, Upload_Defer_Length="1")
    head = tus.head(url)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert head.headers["Upload-Offset"] == "0"


def test_head_does_not_wait_for_a_running_patch(make_tus: Callable[..., Tus]) -> None:
    """#39: no lock on HEAD; it reports the last saved offset, the PATCH is not disturbed."""
    tus = make_tus(lock_timeout=5)
    url = tus.create(10)
    body = SlowBody(b"12345", b"67890")
    thread, results = in_thread(
        lambda: call(
            tus.filter,
            "PATCH",
            url,
            {"Upload-Offset": "0", "Content-Type": OCTET},
            body,
            content_length=10,
        )
    )
    assert body.started.wait(5)
    started = time.monotonic()
    head = tus.head(url)
    assert time.monotonic() - started < 1
    assert head.headers["Upload-Offset"] == "0"
    body.release.set()
    thread.join(10)
    assert results[0].status == 204
    assert tus.head(url).headers["Upload-Offset"] == "10"


def test_a_body_the_server_buffered_is_read_in_the_request_thread(tus: Tus) -> None:
    """waitress hands over a seekable file: no helper thread is needed to stop waiting."""
    url = tus.create(10)
    body = ThreadNotingBody(b"0123456789")
    answer = call(tus.filter, "PATCH", url, {"Upload-Offset": "0", "Content-Type": OCTET}, body,
                  content_length=10)
    assert answer.status == 204
    assert body.readers == {threading.current_thread().name}


# -- F. PATCH --------------------------------------------------------------------------------------


def test_patch_appends(tus: Tus) -> None:
    """#41, #49."""
    url = tus.create(100)
    tus.patch(url, 0, b"a" * 70)
    response = tus.patch(url, 70, b"b" * 30)
    assert response.status_int == 204
    assert response.headers["Upload-Offset"] == "100"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.body == b""
    assert tus.data(url) == b"a" * 70 + b"b" * 30
    [handoff] = tus.handoffs
    assert handoff["sha256"] == hashlib.sha256(b"a" * 70 + b"b" * 30).hexdigest()


def test_empty_patch_keeps_offset_and_refreshes_expiry(tus: Tus) -> None:
    """#49, #83: sliding expiry."""
    url = tus.create(10)
    record = tus.record(url)
    record.touched -= 100
    tus.filter.storage.save(record)
    before = parsedate_to_datetime(tus.head(url).headers["Upload-Expires"])
    response = tus.patch(url, 0, b"")
    assert (response.status_int, response.headers["Upload-Offset"]) == (204, "0")
    after = parsedate_to_datetime(response.headers["Upload-Expires"])
    assert (after - before).total_seconds() >= 99


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({"Content-Type": None}, b"abc", 415, id="42-missing-content-type"),
        pytest.param(
            {"Content-Type": "application/octet-stream"}, b"abc", 415, id="42-wrong-content-type"
        ),
        pytest.param({"Upload-Offset": None}, b"abc", 400, id="43-missing-offset"),
        pytest.param({"Upload-Offset": "-1"}, b"abc", 400, id="44-negative-offset"),
        pytest.param({"Upload-Offset": "abc"}, b"abc", 400, id="44-letters-offset"),
        pytest.param({"Upload-Offset": "4"}, b"abc", 409, id="45-offset-ahead"),
        pytest.param({"Upload-Offset": "1"}, b"abc", 409, id="45-offset-mid"),
        pytest.param({}, b"x" * 11, 413, id="47-body-longer-than-remaining"),
        pytest.param({"Upload-Length": "10"}, b"abc", 400, id="54-length-not-deferred"),
        pytest.param({"Upload-Checksum": "sha3 abc="}, b"abc", 400, id="91-unsupported-algorithm"),
        pytest.param(
            {"Upload-Checksum": "SHA1 " + sha1_header(b"abc")[5:]},
            b"abc",
            400,
            id="92-uppercase-algorithm",
        ),
        pytest.param({"Upload-Checksum": "sha1"}, b"abc", 400, id="92-no-digest"),
        pytest.param({"Upload-Checksum": "sha1 !!!"}, b"abc", 400, id="92-bad-base64"),
        pytest.param({"Upload-Checksum": "sha1 YQ=="}, b"abc", 460, id="90-short-digest-mismatch"),
        pytest.param(
            {"Upload-Checksum": "sha1 " + sha1_header(b"abc", "sha256").split()[1]},
            b"abc",
            460,
            id="90-long-digest-mismatch",
        ),
        pytest.param({"Upload-Checksum": sha1_header(b"abd")}, b"abc", 460, id="90-mismatch"),
        pytest.param({"Upload-Checksum": sha1_header(b"abc", "md5")}, b"abc", 204, id="89-md5"),
        pytest.param({"Upload-Concat": "partial"}, b"abc", 204, id="55-concat-ignored"),
        pytest.param(
            {"Content-Type": OCTET + "; charset=x"},
            b"abc",
            204,
            id="content-type-parameters-tolerated",
        ),
    ],
)
def test_patch_validation_leaves_upload_untouched(
    tus: Tus, headers: dict[str, str | None], body: bytes, status: int
) -> None:
    url = tus.create(10)
    tus.patch(url, 0, b"123")
    response = tus.patch(url, 3, body, headers={"Upload-Offset": "3", **headers})
    assert response.status_int == status, response.text
    assert response.headers["Tus-Resumable"] == "1.0.0"
    if status == 204:
        assert tus.data(url) == b"123" + body
        assert response.headers["Upload-Offset"] == "6"
    else:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert tus.record(url).offset == 3
        assert tus.data(url) == b"123"  # 90: nothing of the refused chunk is kept


def test_patch_check_order(tus: Tus) -> None:
    """#58: Content-Type → Upload-Offset syntax → lookup → final → offset."""
    unknown = "/files/0123456789abcdef0123456789abcdef"
    assert tus.patch(unknown, 0, b"", {"Content-Type": "text/plain"}).status_int == 415
    assert tus.patch(unknown, 0, b"", {"Upload-Offset": "x"}).status_int == 400
    assert tus.patch(unknown, 0, b"").status_int == 404  # 46


def test_patch_completed_upload(tus: Tus) -> None:
    """#50: 204 for an empty body at offset == length, 413 for more; no second hand-off."""
    url = tus.create(3)
    tus.patch(url, 0, b"abc")
    again = tus.patch(url, 3, b"")
    assert (again.status_int, again.headers["Upload-Offset"]) == (204, "3")
    assert tus.patch(url, 3, b"d").status_int == 413
    assert tus.patch(url, 0, b"abc").status_int == 409
    assert len(tus.handoffs) == 1
    assert tus.data(url) == b"abc"


@pytest.mark.parametrize(
    ("body", "status", "offset"),
    [
        pytest.param(b"abcde", 204, 5, id="exactly-the-rest"),
        pytest.param(b"abc", 204, 3, id="less"),
        pytest.param(b"abcdef", 413, 0, id="48-overrun-refused-whole"),
        pytest.param(b"x" * (3 * 256 * 1024), 413, 0, id="48-overrun-by-many-blocks"),
    ],
)
def test_chunked_patch_is_capped_at_the_remaining_length(
    tus: Tus, body: bytes, status: int, offset: int
) -> None:
    """#48: a body without Content-Length is read at most up to the length."""
    url = tus.create(5)
    answer = call(
        tus.filter, "PATCH", url, {"Upload-Offset": "0", "Content-Type": OCTET}, body, chunked=True
    )
    assert answer.status == status
    assert tus.record(url).offset == offset
    assert tus.data(url) == body[:offset]


def test_large_patch_streams(make_tus: Callable[..., Tus]) -> None:
    """#56: a multi-block body in one PATCH (tus-js-client's default chunkSize is Infinity)."""
    tus = make_tus()
    data = bytes(range(256)) * 8192  # 2 MiB, 8 blocks
    url = tus.create(len(data))
    response = tus.patch(url, 0, data)
    assert response.headers["Upload-Offset"] == str(len(data))
    assert tus.data(url) == data


# -- client went away (#51, #93) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "checksum", "offset"),
    [
        pytest.param("reset", False, 5, id="51-reset-keeps-what-arrived"),
        pytest.param("eof", False, 5, id="51-early-eof-keeps-what-arrived"),
        pytest.param("reset", True, 0, id="93-checksum-discards-unverifiable-chunk"),
        pytest.param("eof", True, 0, id="93-checksum-discards-on-eof"),
    ],
)
def test_disconnect_mid_patch(tus: Tus, how: str, checksum: bool, offset: int) -> None:
    url = tus.create(10)
    body = SlowBody(b"12345", b"67890", fail=how == "reset", truncate=how == "eof")
    body.release.set()
    headers = {"Upload-Offset": "0", "Content-Type": OCTET}
    if checksum:
        headers["Upload-Checksum"] = sha1_header(b"1234567890")
    answer = call(tus.filter, "PATCH", url, headers, body, content_length=10)
    assert tus.record(url).offset == offset
    assert tus.data(url) == b"12345"[:offset]
    if checksum:
        assert answer.status == 400
    else:
        assert (answer.status, answer.headers["Upload-Offset"]) == (204, "5")
    # the client resumes from the offset a HEAD reports
    resumed = tus.patch(url, offset, b"1234567890"[offset:])
    assert resumed.headers["Upload-Offset"] == "10"
    assert tus.data(url) == b"1234567890"
    assert len(tus.handoffs) == 1


# -- H. deferred length ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "final_offset", "final_length", "complete"),
    [
        pytest.param(
            [(0, b"abcde", None, 204), (5, b"x" * 15, "20", 204)],
            20,
            20,
            True,
            id="72-declare-on-final-chunk",
        ),
        pytest.param(
            [(0, b"abcde", None, 204), (5, b"fghij", "20", 204)],
            10,
            20,
            False,
            id="73-declare-on-non-final-chunk",
        ),
        pytest.param(
            [(0, b"x" * 20, None, 204), (20, b"", "20", 204)],
            20,
            20,
            True,
            id="74-declare-after-final-chunk",
        ),
        pytest.param(
            [(0, b"abcde", None, 204), (5, b"", "4", 400)],
            5,
            None,
            False,
            id="75-length-below-offset",
        ),
        pytest.param([(0, b"", "1001", 413)], 0, None, False, id="76-length-over-max"),
        pytest.param(
            [(0, b"abcde", "3", 413)], 0, None, False, id="77-body-beyond-declared-length"
        ),
        pytest.param(
            [(0, b"abc", "3", 204), (3, b"", "3", 204)],
            3,
            3,
            True,
            id="78-second-length-after-completion-is-204",
        ),
        pytest.param(
            [(0, b"abc", "10", 204), (3, b"", "10", 400)],
            3,
            10,
            False,
            id="78-second-length-same-value",
        ),
        pytest.param([(0, b"x" * 1001, None, 413)], 0, None, False, id="79-body-over-max"),
        pytest.param(
            [(0, b"x" * 1000, None, 204), (1000, b"", "1000", 204)],
            1000,
            1000,
            True,
            id="79-body-up-to-max",
        ),
    ],
)
def test_deferred_length(
    tus: Tus,
    steps: list[tuple[int, bytes, str | None, int]],
    final_offset: int,
    final_length: int | None,
    complete: bool,
) -> None:
    url = tus.create(None, Upload_Defer_Length="1")
    for offset, body, length, status in steps:
        extra = {"Upload-Length": length} if length is not None else {}
        response = tus.patch(url, offset, body, extra)
        assert response.status_int == status, response.text
    record = tus.record(url)
    assert (record.offset, record.length, record.is_complete) == (
        final_offset,
        final_length,
        complete,
    )
    head = tus.head(url)
    if final_length is None:
        assert head.headers["Upload-Defer-Length"] == "1"
    else:
        assert head.headers["Upload-Length"] == str(final_length)
        assert "Upload-Defer-Length" not in head.headers
    assert len(tus.handoffs) == (1 if complete else 0)
    if complete:
        assert tus.handoffs[0]["size"] == final_length


def test_deferred_unlimited_without_max_size(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus()
    url = tus.create(None, Upload_Defer_Length="1")
    answer = call(
        tus.filter,
        "PATCH",
        url,
        {"Upload-Offset": "0", "Content-Type": OCTET},
        b"x" * 5000,
        chunked=True,
    )
    assert answer.headers["Upload-Offset"] == "5000"


# -- J. checksum -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "sha512"])
def test_checksum_verified(tus: Tus, algorithm: str) -> None:
    """#89, #94: a mismatch is 460 with the offset unchanged; the resent chunk is accepted."""
    url = tus.create(11)
    bad = tus.patch(url, 0, b"hello world", {"Upload-Checksum": sha1_header(b"hello", algorithm)})
    assert bad.status_int == 460
    assert bad.status == "460 Checksum Mismatch"
    assert tus.head(url).headers["Upload-Offset"] == "0"
    good = tus.patch(
        url, 0, b"hello world", {"Upload-Checksum": sha1_header(b"hello world", algorithm)}
    )
    assert (good.status_int, good.headers["Upload-Offset"]) == (204, "11")
    assert len(tus.handoffs) == 1


def test_checksum_on_second_chunk_keeps_first(tus: Tus) -> None:
    url = tus.create(10)
    tus.patch(url, 0, b"12345")
    bad = tus.patch(url, 5, b"67890", {"Upload-Checksum": sha1_header(b"nope")})
    assert bad.status_int == 460
    assert tus.data(url) == b"12345"
    assert tus.record(url).offset == 5


def test_checksum_disabled_rejects_the_header(make_tus: Callable[..., Tus]) -> None:
    """The client asked for verification the server cannot give: 400, not silent acceptance."""
    tus = make_tus(checksum_algorithms=())
    url = tus.create(3)
    response = tus.patch(url, 0, b"abc", {"Upload-Checksum": sha1_header(b"abc")})
    assert response.status_int == 400
    assert tus.patch(url, 0, b"abc").status_int == 204


def test_checksum_configured_subset(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(checksum_algorithms=["sha1"])
    url = tus.create(3)
    assert (
        tus.patch(url, 0, b"abc", {"Upload-Checksum": sha1_header(b"abc", "md5")}).status_int == 400
    )


# -- L. termination --------------------------------------------------------------------------------


@pytest.mark.parametrize("done", [False, True], ids=["99-unfinished", "99-finished"])
def test_delete(tus: Tus, done: bool) -> None:
    url = tus.create(3)
    if done:
        tus.patch(url, 0, b"abc")
    record = tus.record(url)
    assert backend.leftovers(tus.filter.storage, record) != []
    response = tus.request("DELETE", url)
    assert (response.status_int, response.body) == (204, b"")  # 105: exactly 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert backend.leftovers(tus.filter.storage, record) == []  # 99: resources freed
    for method in ("HEAD", "DELETE"):  # 100
        assert tus.request(method, url).status_int == 404
    assert tus.patch(url, 0, b"abc").status_int == 404


def test_delete_unknown(tus: Tus) -> None:
    """#101."""
    assert tus.request("DELETE", "/files/0123456789abcdef0123456789abcdef").status_int == 404


# -- I. expiration ---------------------------------------------------------------------------------


def _expire(tus: Tus, url: str) -> None:
    record = tus.record(url)
    record.touched -= 2 * tus.filter.settings.upload_valid_duration
    if record.completed is not None:
        record.completed -= 2 * tus.filter.settings.upload_valid_duration
    tus.filter.storage.save(record)


@pytest.mark.parametrize("method", ["HEAD", "PATCH", "DELETE"])
def test_expired_upload_is_410(make_tus: Callable[..., Tus], method: str) -> None:
    """#85: 410 Gone, never with Upload-Offset."""
    tus = make_tus(upload_valid_duration=60)
    url = tus.create(5)
    _expire(tus, url)
    response = tus.patch(url, 0, b"abc") if method == "PATCH" else tus.request(method, url)
    assert response.status_int == 410
    assert "Upload-Offset" not in response.headers
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_upload_expires_header_only_while_unfinished(make_tus: Callable[..., Tus]) -> None:
    """#57, #83, #84; nothing at all when uploads never expire."""
    tus = make_tus(upload_valid_duration=60)
    url = tus.create(6)
    first = tus.patch(url, 0, b"abc")
    expires = parsedate_to_datetime(first.headers["Upload-Expires"]).timestamp()
    assert time.time() + 55 < expires <= time.time() + 60
    last = tus.patch(url, 3, b"def")
    assert "Upload-Expires" not in last.headers
    forever = make_tus(upload_valid_duration=0)
    url = forever.create(6)
    assert "Upload-Expires" not in forever.patch(url, 0, b"abc").headers
    assert "Upload-Expires" not in forever.head(url).headers


# -- Q. locking and concurrency --------------------------------------------------------------------


def test_newer_patch_takes_over_a_stalled_one(make_tus: Callable[..., Tus]) -> None:
    """#134: the second PATCH asks the first to stop; it keeps what it wrote and lets go.

    The first is stuck waiting for body bytes (a client that went silent).
    The second then sees the saved offset (409: HEAD, then resume) at once,
    not a 423 after ``lock_timeout``; the resumed PATCH completes the upload.
    """
    tus = make_tus(lock_timeout=5)
    url = tus.create(10)
    headers = {"Upload-Offset": "0", "Content-Type": OCTET}
    slow = SlowBody(b"AAAAA", b"AAAAA")
    first, first_result = in_thread(
        lambda: call(tus.filter, "PATCH", url, headers, slow, content_length=10)
    )
    tus.wait_for_written(url, b"AAAAA")
    started = time.monotonic()
    second = call(tus.filter, "PATCH", url, headers, b"BBBBBBBBBB")
    assert time.monotonic() - started < 2
    first.join(5)
    slow.release.set()  # lets the helper thread's read return
    assert second.status == 409
    assert (first_result[0].status, first_result[0].headers["Upload-Offset"]) == (204, "5")
    assert tus.head(url).headers["Upload-Offset"] == "5"
    resumed = tus.patch(url, 5, b"BBBBB")
    assert (resumed.status_int, resumed.headers["Upload-Offset"]) == (204, "10")
    assert tus.data(url) == b"AAAAABBBBB"
    assert len(tus.handoffs) == 1


def test_takeover_discards_an_unverified_chunk(make_tus: Callable[..., Tus]) -> None:
    """#93 holds for a stopped PATCH too: with Upload-Checksum, nothing of it counts."""
    tus = make_tus(lock_timeout=5)
    url = tus.create(10)
    headers = {"Upload-Offset": "0", "Content-Type": OCTET,
               "Upload-Checksum": sha1_header(b"A" * 10)}
    slow = SlowBody(b"AAAAA", b"AAAAA")
    first, first_result = in_thread(
        lambda: call(tus.filter, "PATCH", url, headers, slow, content_length=10)
    )
    tus.wait_for_written(url, b"AAAAA")
    second = call(tus.filter, "PATCH", url, {"Upload-Offset": "0", "Content-Type": OCTET},
                  b"BBBBBBBBBB")
    first.join(5)
    slow.release.set()
    assert first_result[0].status == 400
    assert (second.status, second.headers["Upload-Offset"]) == (204, "10")
    assert tus.data(url) == b"B" * 10


def test_delete_takes_over_a_running_patch(make_tus: Callable[..., Tus]) -> None:
    """#102: DELETE stops the PATCH (which saves and answers), then terminates: 204."""
    tus = make_tus(lock_timeout=5)
    url = tus.create(10)
    slow = SlowBody(b"AAAAA", b"AAAAA")
    first, first_result = in_thread(
        lambda: call(tus.filter, "PATCH", url, {"Upload-Offset": "0", "Content-Type": OCTET},
                     slow, content_length=10)
    )
    tus.wait_for_written(url, b"AAAAA")
    assert tus.request("DELETE", url).status_int == 204
    first.join(5)
    slow.release.set()
    assert first_result[0].status == 204
    assert tus.head(url).status_int == 404
    assert stored(tus) == 0


def test_a_strangers_patch_does_not_stop_the_owners(make_tus: Callable[..., Tus]) -> None:
    """With ``bind_to_scope`` another scope gets 404 before asking for the lock."""
    tus = make_tus(lock_timeout=5, scope=user_header, bind_to_scope=True)
    url = tus.create(10, X_User="alice")
    headers = {"Upload-Offset": "0", "Content-Type": OCTET}
    slow = SlowBody(b"AAAAA", b"AAAAA")
    owner, owner_result = in_thread(
        lambda: call(tus.filter, "PATCH", url, {**headers, "X-User": "alice"}, slow,
                     content_length=10)
    )
    tus.wait_for_written(url, b"AAAAA")
    assert call(tus.filter, "PATCH", url, {**headers, "X-User": "bob"}, b"B" * 10).status == 404
    assert call(tus.filter, "DELETE", url, {"X-User": "bob"}).status == 404
    slow.release.set()
    owner.join(5)
    assert (owner_result[0].status, owner_result[0].headers["Upload-Offset"]) == (204, "10")
    assert tus.data(url) == b"A" * 10


def test_lock_held_by_anything_else_is_423(make_tus: Callable[..., Tus]) -> None:
    """#135: a holder that does not poll for requests (assembly, sweep) is waited for: 423."""
    tus = make_tus(lock_timeout=0.3)
    url = tus.create(10)
    with tus.filter.storage.lock(url[-32:]):
        second = call(tus.filter, "PATCH", url, {"Upload-Offset": "0", "Content-Type": OCTET},
                      b"BBBBBBBBBB")
        assert tus.request("DELETE", url).status_int == 423
    assert second.status == 423  # retried by tus-js-client and kept by tuspy
    assert second.headers["Tus-Resumable"] == "1.0.0"
    assert tus.record(url).offset == 0


def test_racing_patches_complete_exactly_once(make_tus: Callable[..., Tus]) -> None:
    """Many threads send the same last chunk: one completes it and hands it off.

    The others get 409, or, when a newer one stopped them before they wrote
    their block, 204 at the old offset (the client then resumes: 409, HEAD).
    """
    tus = make_tus(lock_timeout=10)
    url = tus.create(8)
    tus.patch(url, 0, b"1234")
    threads = [
        in_thread(
            lambda: call(
                tus.filter, "PATCH", url, {"Upload-Offset": "4", "Content-Type": OCTET}, b"5678"
            )
        )
        for _ in range(8)
    ]
    answers = []
    for thread, results in threads:
        thread.join(10)
        answers.append((results[0].status, results[0].headers.get("Upload-Offset")))
    assert answers.count((204, "8")) == 1
    assert {answer for answer in answers if answer != (204, "8")} <= {(409, None), (204, "4")}
    assert len(tus.handoffs) == 1
    assert tus.data(url) == b"12345678"


def test_options_and_hooks_see_environ(make_tus: Callable[..., Tus]) -> None:
    seen: list[Any] = []
    tus = make_tus(on_terminate=lambda environ, info: seen.append(environ["REQUEST_METHOD"]))
    url = tus.create(1)
    tus.request("POST", url, {"X-HTTP-Method-Override": "DELETE"})
    assert seen == ["POST"]
