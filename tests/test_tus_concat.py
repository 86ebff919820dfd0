"""tus concatenation and concatenation-unfinished.

Case numbers ("#108") refer to the tus server contract (sections M and N).
Partials never reach the application; the final does, exactly once, from
the request that completes it: its POST when every partial is already
complete, otherwise the PATCH that completes the last partial.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.tus import OCTET, Tus, b64, call, in_thread, stored
from tus_filter import Reject, UploadInfo, UploadNotFound

pytestmark = pytest.mark.usefixtures("storage_backend")


def partial(tus: Tus, data: bytes | None, length: int | None = None, **headers: str) -> str:
    """A partial upload of ``length`` bytes (default ``len(data)``) holding ``data``."""
    size = length if length is not None else len(data or b"")
    url = tus.create(size, Upload_Concat="partial", **headers)
    if data:
        assert tus.patch(url, 0, data).status_int == 204
    return url


def final(tus: Tus, *urls: str, headers: dict[str, str] | None = None) -> Any:
    value = "final;" + " ".join(urls)
    return tus.request("POST", "/files", {"Upload-Concat": value, **(headers or {})})


def location(response: Any) -> str:
    return str(response.headers["Location"]).replace("http://localhost", "")


# -- M. concatenation ------------------------------------------------------------------------------


def test_partial_upload(tus: Tus) -> None:
    """#106, #107: a partial is an upload like any other, but completes without a hand-off."""
    url = tus.create(5, Upload_Concat="partial")
    head = tus.head(url, {"Upload-Concat": "partial"})  # 55: tus-js-client sends it everywhere
    assert head.headers["Upload-Concat"] == "partial"
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", "5")
    response = tus.patch(url, 0, b"hello", {"Upload-Concat": "partial"})
    assert (response.status_int, response.headers["Upload-Offset"]) == (204, "5")
    assert tus.record(url).is_complete
    assert tus.handoffs == []
    with pytest.raises(UploadNotFound):  # not a file of its own, for get_upload either
        tus.filter.get_upload(url[-32:])


@pytest.mark.parametrize("complete", [pytest.param(True, id="final"),
                                      pytest.param(False, id="unfinished-final")])
def test_creation_echoes_upload_concat(tus: Tus, complete: bool) -> None:
    """The 201 of a partial or final POST carries Upload-Concat, as HEAD does."""
    created = tus.request("POST", "/files", {"Upload-Concat": "partial", "Upload-Length": "5"})
    assert (created.status_int, created.headers["Upload-Concat"]) == (201, "partial")
    a = location(created)
    if complete:
        tus.patch(a, 0, b"hello")
    value = f"final;{a} {partial(tus, b'world')}"
    response = final(tus, a, value.split()[-1])
    assert (response.status_int, response.headers["Upload-Concat"]) == (201, value)
    plain = tus.request("POST", "/files", {"Upload-Length": "5"})
    assert "Upload-Concat" not in plain.headers


def test_final_of_complete_partials(tus: Tus) -> None:
    """#108, #110, #117: assembled in order at once; the POST hands the final off."""
    a = partial(tus, b"hello ", Upload_Metadata=f"filename {b64('part-a')}")
    b = partial(tus, b"world")
    value = f"final;{a} {b}"
    response = tus.request(
        "POST",
        "/files",
        {"Upload-Concat": value, "Upload-Metadata": f"filename {b64('hello.txt')}"},
    )
    assert response.status_int == 201
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" not in response.headers
    url = location(response)
    head = tus.head(url)
    assert head.headers["Upload-Concat"] == value  # as received
    assert (head.headers["Upload-Length"], head.headers["Upload-Offset"]) == ("11", "11")
    assert head.headers["Upload-Metadata"] == f"filename {b64('hello.txt')}"
    [handoff] = tus.handoffs
    assert handoff["upload_id"] == url[-32:]
    assert handoff["filename"] == "hello.txt"  # the final's metadata, not a partial's
    assert handoff["metadata"] == {"filename": "hello.txt"}
    assert handoff["size"] == 11
    assert handoff["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert handoff["path_info"] == "/files"
    # partials stay (#110: they may be reused) until they expire or are deleted
    assert tus.head(a).status_int == 200


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(lambda a, b: f"final;{a} {b}", id="relative-paths"),
        pytest.param(
            lambda a, b: f"final;http://localhost{a} http://localhost{b}", id="109-absolute"
        ),
        pytest.param(
            lambda a, b: f"final;https://proxy.example:8443/app{a} //cdn.example{b}",
            id="109-other-host-and-prefix",
        ),
        pytest.param(lambda a, b: f"final; {a}   {b} ", id="109-extra-spaces"),
        pytest.param(lambda a, b: f"final;{a[-32:]} {b[-32:]}", id="bare-ids"),
        pytest.param(lambda a, b: f"final;{a}/ {b}?x=1", id="trailing-slash-and-query"),
    ],
)
def test_partial_urls(tus: Tus, render: Callable[[str, str], str]) -> None:
    a, b = partial(tus, b"ab"), partial(tus, b"cd")
    response = tus.request("POST", "/files", {"Upload-Concat": render(a, b)})
    assert response.status_int == 201, response.text
    assert tus.data(location(response)) == b"abcd"


def test_partials_reused_and_repeated(tus: Tus) -> None:
    """#110: a partial may appear twice, and in several finals."""
    a, b = partial(tus, b"ab"), partial(tus, b"cd")
    first = final(tus, a, b, a)
    second = final(tus, b, a)
    assert tus.data(location(first)) == b"abcdab"
    assert tus.data(location(second)) == b"cdab"
    assert [h["size"] for h in tus.handoffs] == [6, 4]


@pytest.mark.parametrize(
    ("make_value", "headers", "body", "status"),
    [
        pytest.param(
            lambda a, n: f"final;{a}",
            {"Upload-Length": "2"},
            b"",
            400,
            id="111-final-with-upload-length",
        ),
        pytest.param(
            lambda a, n: f"final;{a}",
            {"Upload-Defer-Length": "1"},
            b"",
            400,
            id="final-with-defer-length",
        ),
        pytest.param(
            lambda a, n: f"final;{a}",
            {"Content-Type": OCTET},
            b"xx",
            403,
            id="64-116-final-with-body",
        ),
        pytest.param(
            lambda a, n: f"final;{a} /files/0123456789abcdef0123456789abcdef",
            {},
            b"",
            400,
            id="113-unknown-partial",
        ),
        pytest.param(lambda a, n: f"final;{a} {n}", {}, b"", 400, id="113-not-a-partial"),
        pytest.param(
            lambda a, n: f"final;{a} /elsewhere/{a[-32:]}",
            {},
            b"",
            400,
            id="113-outside-upload-path",
        ),
        pytest.param(lambda a, n: f"final;{a} /files/xyz", {}, b"", 400, id="113-not-an-id"),
        pytest.param(
            lambda a, n: f"final;{a} http://[::1/files/{a[-32:]}", {}, b"", 400,
            id="113-unparsable-url",
        ),
        pytest.param(lambda a, n: "final;", {}, b"", 400, id="114-no-urls"),
        pytest.param(lambda a, n: "final;   ", {}, b"", 400, id="114-blank-urls"),
        pytest.param(lambda a, n: "final", {}, b"", 400, id="114-no-semicolon"),
        pytest.param(lambda a, n: f"foo;{a}", {}, b"", 400, id="114-unknown-kind"),
        pytest.param(
            lambda a, n: f"final;{a} " + " ".join([a] * 600),
            {},
            b"",
            413,
            id="115-sum-over-max-size",
        ),
        pytest.param(
            lambda a, n: f"final;{a}",
            {"Upload-Metadata": "x !"},
            b"",
            400,
            id="final-metadata-validated",
        ),
    ],
)
def test_final_refused(
    tus: Tus,
    make_value: Callable[[str, str], str],
    headers: dict[str, str],
    body: bytes,
    status: int,
) -> None:
    a = partial(tus, b"ab")
    normal = tus.create(2)
    response = tus.request(
        "POST", "/files", {"Upload-Concat": make_value(a, normal), **headers}, body
    )
    assert response.status_int == status, response.text
    assert "Location" not in response.headers
    assert stored(tus) == 2
    assert tus.handoffs == []


def test_expired_partial_cannot_be_concatenated(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(upload_valid_duration=60)
    a = partial(tus, b"ab")
    record = tus.record(a)
    record.completed = (record.completed or 0) - 120
    tus.filter.storage.save(record)
    response = final(tus, a)
    assert response.status_int == 400
    assert "expired" in response.text


def _age(tus: Tus, url: str, seconds: float) -> None:
    """Move ``url``'s clock back: as if its last request was ``seconds`` earlier."""
    record = tus.record(url)
    record.touched -= seconds
    if record.completed is not None:
        record.completed -= seconds
    tus.filter.storage.save(record)


@pytest.mark.parametrize("sweep", [False, True], ids=["no-sweep", "sweep-meanwhile"])
def test_a_finished_partial_lives_as_long_as_the_final_waiting_for_it(
    make_tus: Callable[..., Tus], sweep: bool
) -> None:
    """concatenation-unfinished: the fast partial's time runs out while the final waits."""
    tus = make_tus(upload_valid_duration=60)
    fast = partial(tus, b"fast ")
    slow = partial(tus, b"sl", 4)
    final_url = location(final(tus, fast, slow))
    _age(tus, fast, 120)  # on its own, the finished partial has expired
    if sweep:
        assert tus.filter.cleanup() == 0
    assert tus.head(fast).status_int == 200
    assert tus.patch(slow, 2, b"ow").status_int == 204
    [handoff] = tus.handoffs
    assert handoff["upload_id"] == final_url[-32:]
    assert handoff["sha256"] == hashlib.sha256(b"fast slow").hexdigest()
    assert tus.record(final_url).is_complete


def test_a_partial_expires_with_the_final_waiting_for_it(make_tus: Callable[..., Tus]) -> None:
    """Once the waiting final has expired too (or is assembled), the partial is just expired."""
    tus = make_tus(upload_valid_duration=60)
    fast = partial(tus, b"fast ")
    slow = partial(tus, None, 4)
    final_url = location(final(tus, fast, slow))
    for url in (fast, slow, final_url):
        _age(tus, url, 120)
    assert tus.filter.cleanup() == 3
    assert stored(tus) == 0


def test_an_assembled_final_keeps_its_partials_alive_no_longer(
    make_tus: Callable[..., Tus],
) -> None:
    tus = make_tus(upload_valid_duration=60)
    a = partial(tus, b"ab")
    final_url = location(final(tus, a))
    assert tus.record(final_url).is_complete
    _age(tus, a, 120)
    assert tus.head(a).status_int == 410


def test_patch_to_final_is_forbidden(tus: Tus) -> None:
    """#53, #116, #124: 403; the final and its partials are untouched."""
    a = partial(tus, b"ab")
    unfinished = partial(tus, None, 2)
    for url in (location(final(tus, a)), location(final(tus, unfinished))):
        response = tus.patch(url, 0, b"")
        assert response.status_int == 403
    assert tus.record(unfinished).offset == 0
    assert len(tus.handoffs) == 1


def test_final_creation_hook_and_reject(make_tus: Callable[..., Tus]) -> None:
    """#119: the hook sees the final's size; it tells finals apart through the environ."""
    seen: list[tuple[UploadInfo, str | None]] = []

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        seen.append((info, environ.get("HTTP_UPLOAD_CONCAT")))
        if info.metadata.get("deny"):
            raise Reject(422, "no finals today")

    tus = make_tus(on_create=on_create)
    a = partial(tus, b"ab")
    denied = final(tus, a, headers={"Upload-Metadata": f"deny {b64('1')}"})
    assert (denied.status_int, denied.text) == (422, "no finals today\n")
    assert tus.handoffs == []
    assert final(tus, a, a).status_int == 201
    info, concat = seen[-1]
    assert info.size == 4
    assert concat is not None and concat.startswith("final;")


def test_delete_final(tus: Tus) -> None:
    a = partial(tus, b"ab")
    url = location(final(tus, a))
    assert tus.request("DELETE", url).status_int == 204
    assert tus.head(url).status_int == 404
    assert tus.head(a).status_int == 200


# -- N. concatenation-unfinished -------------------------------------------------------------------


def test_final_of_unfinished_partials(tus: Tus) -> None:
    """#121-#123: the PATCH completing the last partial assembles and hands off the final."""
    a = partial(tus, None, 6)
    b = partial(tus, b"world")
    response = final(tus, a, b, headers={"Upload-Metadata": f"filename {b64('hw.txt')}"})
    assert response.status_int == 201
    assert "Upload-Expires" in response.headers  # the final is unfinished
    url = location(response)
    head = tus.head(url)
    assert "Upload-Offset" not in head.headers  # 122: SHOULD NOT while unfinished
    assert head.headers["Upload-Length"] == "11"  # 122: calculable
    assert head.headers["Upload-Concat"] == f"final;{a} {b}"
    assert tus.patch(url, 0, b"").status_int == 403  # 124
    assert tus.patch(a, 0, b"hel").headers["Upload-Offset"] == "3"
    assert tus.handoffs == []
    done = tus.patch(a, 3, b"lo ")
    assert (done.status_int, done.headers["Upload-Offset"]) == (204, "6")  # the partial's
    [handoff] = tus.handoffs
    assert handoff["upload_id"] == url[-32:]
    assert handoff["filename"] == "hw.txt"
    assert handoff["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert handoff["path_info"] == a
    head = tus.head(url)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("11", "11")  # 123


def test_final_waiting_for_a_deferred_partial(tus: Tus) -> None:
    """#125: the final's length appears once every partial's length is known."""
    a = partial(tus, b"abc")
    b = tus.create(None, Upload_Concat="partial", Upload_Defer_Length="1")
    url = location(final(tus, a, b))
    head = tus.head(url)
    assert "Upload-Length" not in head.headers
    assert "Upload-Defer-Length" not in head.headers
    tus.patch(b, 0, b"de", {"Upload-Length": "4"})
    assert tus.head(url).headers["Upload-Length"] == "7"
    tus.patch(b, 2, b"fg")
    assert tus.data(url) == b"abcdefg"
    assert [h["size"] for h in tus.handoffs] == [7]


def test_deferred_partial_cannot_push_final_over_max(tus: Tus) -> None:
    a = partial(tus, b"x" * 600)
    b = tus.create(None, Upload_Concat="partial", Upload_Defer_Length="1")
    final(tus, a, b)
    assert tus.patch(b, 0, b"", {"Upload-Length": "401"}).status_int == 413
    assert tus.patch(b, 0, b"", {"Upload-Length": "400"}).status_int == 204


def test_one_unfinished_final_per_unfinished_partial(tus: Tus) -> None:
    """The completing PATCH hands off one upload, so an unfinished partial waits for one final."""
    a = partial(tus, None, 2)
    first = location(final(tus, a))
    second = final(tus, a)
    assert second.status_int == 400
    assert stored(tus) == 2
    tus.request("DELETE", first)
    third = final(tus, a)
    assert third.status_int == 201
    tus.patch(a, 0, b"ok")
    assert [h["upload_id"] for h in tus.handoffs] == [location(third)[-32:]]
    assert final(tus, a).status_int == 201  # complete partials are free to reuse
    assert len(tus.handoffs) == 2


def test_busy_partial_makes_final_creation_retryable(make_tus: Callable[..., Tus]) -> None:
    """A partial locked by a long PATCH: 423 (tus-js-client retries), no half-made final."""
    tus = make_tus(lock_timeout=0.2)
    a = partial(tus, None, 2)
    with tus.filter.storage.lock(a[-32:]):
        response = final(tus, a)
    assert response.status_int == 423
    assert tus.record(a).finals == []
    assert stored(tus) == 1
    url = location(final(tus, a))
    tus.patch(a, 0, b"ok")
    assert tus.data(url) == b"ok"


def test_deleted_partial_leaves_final_waiting(tus: Tus) -> None:
    a = partial(tus, None, 2)
    b = partial(tus, None, 2)
    url = location(final(tus, a, b))
    tus.request("DELETE", b)
    response = tus.patch(a, 0, b"ok")
    assert response.status_int == 204  # the partial's PATCH succeeded regardless
    assert tus.handoffs == []
    assert "Upload-Offset" not in tus.head(url).headers


def test_last_partials_completing_together_complete_the_final_once(
    make_tus: Callable[..., Tus],
) -> None:
    """Partials finishing in parallel threads: exactly one of them hands the final off."""
    tus = make_tus(lock_timeout=10)
    headers = {"Upload-Offset": "0", "Content-Type": OCTET}
    for _ in range(5):
        parts = [partial(tus, None, 4) for _ in range(4)]
        url = location(final(tus, *parts))
        threads = [
            in_thread(functools.partial(call, tus.filter, "PATCH", part, headers, data))
            for part, data in zip(parts, (b"AAAA", b"BBBB", b"CCCC", b"DDDD"), strict=True)
        ]
        for thread, results in threads:
            thread.join(10)
            assert results[0].status == 204
        assert tus.data(url) == b"AAAABBBBCCCCDDDD"
    assert len(tus.handoffs) == 5
    assert {h["size"] for h in tus.handoffs} == {16}
