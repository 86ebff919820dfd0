"""Isolation: between protocols, between scopes, and refusals that stop the client.

* **Protocols.** An upload answers only the protocol that created it
  (``Protocol.own_record``).  Every upload is created with one protocol and
  then addressed with each verb of every other protocol that can name an id
  (tus and the IETF draft: HEAD, PATCH, DELETE; tus concatenation; uid's
  ``uploadUid``): the
  answer must be the one an unknown id of the same shape gets, and the bytes
  and record on disk must not change.  flow.js and resumable.js cannot name
  an id: their keys are hashes over their own protocol name.
* **Scopes.** The ``scope`` hook (here: the ``X-User`` header, as an app that
  authenticates inside itself would decide; ``REMOTE_USER`` stays empty)
  keys flow.js and resumable.js uploads, and with ``bind_to_scope`` a tus,
  IETF-draft or uid upload answers only its creator's scope.
* **Refusals.** A hook's ``Reject`` is answered with a status the client
  gives up on; an unreadable multipart body with chunk markers is a 400.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import webtest  # type: ignore[import-untyped]

from tests.paste.apps import user_header as user_of
from tests.support import backend
from tests.support.apps import sha256
from tests.support.chunked import ClientFile, multipart
from tests.support.tus import OCTET, Tus
from tus_filter import Reject, UploadInfo
from tus_filter.config import remote_user
from tus_filter.protocols.flowlike import record_key

pytestmark = pytest.mark.usefixtures("storage_backend")

FLOW = ClientFile.of_size(25, prefix="flow")
RESUMABLE = ClientFile.of_size(25, prefix="resumable")
CLIENT_FILES = {"flowjs": FLOW, "resumablejs": RESUMABLE}


# -- creating an upload with each protocol -----------------------------------------------------


def as_user(user: str | None) -> dict[str, str]:
    return {} if user is None else {"X-User": user}


def create_tus(tus: Tus, user: str | None = None) -> str:
    """A tus upload of 10 bytes holding ``hello``; its id."""
    path = tus.create(10, **({"X_User": user} if user is not None else {}))
    assert tus.patch(path, 0, b"hello", as_user(user)).status_int == 204
    return path.rsplit("/", 1)[1]


def uid_request(
    tus: Tus, fields: dict[str, Any], chunk: bytes, user: str | None = None
) -> webtest.TestResponse:
    return tus.request(
        "POST", "/files?" + urlencode(fields),
        {"Content-Type": "application/octet-stream", **as_user(user)}, chunk, tus=False,
    )


DRAFT = {"Upload-Draft-Interop-Version": "6"}
PARTIAL_UPLOAD = "application/partial-upload"


def create_ietf(tus: Tus, user: str | None = None) -> str:
    """An IETF-draft upload of 10 bytes holding ``hello``; its id."""
    headers = {**DRAFT, "Upload-Complete": "?0", "Upload-Length": "10", **as_user(user)}
    response = tus.request("POST", "/files", headers, b"hello", tus=False)
    assert response.status_int == 201, response.body
    return str(response.headers["Location"]).rsplit("/", 1)[1]


def create_uid(tus: Tus, user: str | None = None) -> str:
    """A uid upload of 10 bytes in 2 chunks, chunk 0 (``hello``) stored; its id."""
    fields = {"uploadUid": "", "fileName": "a.txt", "totalSize": 10,
              "chunkNumber": 0, "chunkCount": 2}
    response = uid_request(tus, fields, b"hello", user)
    assert response.status_int == 200, response.body
    return str(response.json["uploadUid"])


def send_chunk(
    tus: Tus, file: ClientFile, number: int, user: str | None = None, data: bytes | None = None
) -> webtest.TestResponse:
    """Chunk ``number`` of ``file`` as flow.js / resumable.js send it (multipart POST)."""
    payload = file.chunk(number) if data is None else data
    content_type, body = multipart(
        file.params(number).items(), ("file", "blob", payload, "application/octet-stream")
    )
    return tus.request(
        "POST", "/files", {"Content-Type": content_type, **as_user(user)}, body, tus=False
    )


def create_chunked(protocol: str) -> Callable[[Tus], str]:
    def create(tus: Tus) -> str:
        file = CLIENT_FILES[protocol]
        assert send_chunk(tus, file, 1).status_int == 200
        params = file.params(1)
        prefix = file.prefix
        return record_key(protocol, "", params[prefix + "Identifier"], file.total, 10)

    return create


CREATE: dict[str, Callable[[Tus], str]] = {
    "tus": create_tus,
    "ietf": create_ietf,
    "uid": create_uid,
    "flowjs": create_chunked("flowjs"),
    "resumablejs": create_chunked("resumablejs"),
}


# -- addressing an id with each verb that can name one ------------------------------------------


def tus_head(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.head(f"/files/{upload_id}", as_user(user))


def tus_patch(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.patch(f"/files/{upload_id}", 5, b"XXXXX", as_user(user))


def tus_patch_at_0(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.patch(f"/files/{upload_id}", 0, b"XXXXX", as_user(user))


def tus_delete(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.request("DELETE", f"/files/{upload_id}", as_user(user))


def tus_concat(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    header = f"final;/files/{upload_id}"
    return tus.request("POST", "/files", {"Upload-Concat": header, **as_user(user)})


def ietf_head(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.request("HEAD", f"/files/{upload_id}", {**DRAFT, **as_user(user)}, tus=False)


def ietf_patch(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    headers = {
        **DRAFT,
        "Upload-Offset": "5",
        "Upload-Complete": "?0",
        "Content-Type": PARTIAL_UPLOAD,
        **as_user(user),
    }
    return tus.request("PATCH", f"/files/{upload_id}", headers, b"XXXXX", tus=False)


def ietf_delete(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    return tus.request("DELETE", f"/files/{upload_id}", {**DRAFT, **as_user(user)}, tus=False)


def uid_post(tus: Tus, upload_id: str, user: str | None = None) -> webtest.TestResponse:
    fields = {"uploadUid": upload_id, "chunkNumber": 1, "chunkCount": 2}
    return uid_request(tus, fields, b"XXXXX", user)


VERBS: dict[str, tuple[str, Callable[..., webtest.TestResponse]]] = {
    "tus-HEAD": ("tus", tus_head),
    "tus-PATCH": ("tus", tus_patch),
    "tus-PATCH-offset-0": ("tus", tus_patch_at_0),
    "tus-DELETE": ("tus", tus_delete),
    "tus-concat-partial": ("tus", tus_concat),
    "ietf-HEAD": ("ietf", ietf_head),
    "ietf-PATCH": ("ietf", ietf_patch),
    "ietf-DELETE": ("ietf", ietf_delete),
    "uid-POST-uploadUid": ("uid", uid_post),
}


def answer(response: webtest.TestResponse, upload_id: str) -> tuple[int, bytes]:
    """Status and body, the id written as ``<id>`` (a concatenation error names it)."""
    return response.status_int, response.body.replace(upload_id.encode(), b"<id>")


def stored(tus: Tus, upload_id: str) -> Any:
    """The upload's record and bytes, exactly as stored."""
    return backend.snapshot(tus.filter.storage, upload_id)


def unknown_like(upload_id: str) -> str:
    return secrets.token_hex(len(upload_id) // 2)


@pytest.mark.parametrize(
    ("owner", "verb"),
    [
        pytest.param(owner, verb, id=f"{owner}-upload-{verb}-is-unknown")
        for owner in CREATE
        for verb, (protocol, _) in VERBS.items()
        if protocol != owner
    ],
)
def test_another_protocols_upload_answers_like_an_unknown_id(
    make_tus: Callable[..., Tus], owner: str, verb: str
) -> None:
    tus = make_tus()
    upload_id = CREATE[owner](tus)
    before = stored(tus, upload_id)
    send = VERBS[verb][1]
    unknown = unknown_like(upload_id)
    expected = answer(send(tus, unknown), unknown)
    assert expected[0] in (400, 404)  # concatenation names a bad partial with 400
    assert answer(send(tus, upload_id), upload_id) == expected
    assert stored(tus, upload_id) == before
    assert tus.handoffs == []


@pytest.mark.parametrize(("owner", "other"), [("flowjs", "resumablejs"), ("resumablejs", "flowjs")])
def test_the_other_chunk_client_with_the_same_file_meets_nothing(
    make_tus: Callable[..., Tus], owner: str, other: str
) -> None:
    """Same identifier, name, size and chunk size: the other client starts an upload of its own."""
    tus = make_tus()
    upload_id = CREATE[owner](tus)
    before = stored(tus, upload_id)
    file = CLIENT_FILES[other]
    query = "/files?" + urlencode(file.params(1))
    assert tus.request("GET", query, tus=False).status_int == 204
    assert send_chunk(tus, file, 2, data=b"X" * 15).json == {"chunk": 2, "complete": False}
    assert stored(tus, upload_id) == before


@pytest.mark.parametrize("verb", ["tus-PATCH", "tus-DELETE", "ietf-PATCH", "ietf-DELETE"])
def test_a_stranger_is_refused_without_waiting_for_the_uploads_lock(
    make_tus: Callable[..., Tus], verb: str
) -> None:
    """404 as for an unknown id, not the 423 of a busy upload: nothing to learn from the lock."""
    tus = make_tus(lock_timeout=0.05)
    upload_id = create_uid(tus)
    with tus.filter.storage.lock(upload_id):
        assert VERBS[verb][1](tus, upload_id).status_int == 404


@pytest.mark.parametrize("owner", ["flowjs", "resumablejs"])
def test_a_chunk_upload_is_still_its_own_after_strangers_knocked(
    make_tus: Callable[..., Tus], owner: str
) -> None:
    """The refused requests above leave the upload intact: its own client completes it."""
    tus = make_tus()
    upload_id = CREATE[owner](tus)
    for _, send in VERBS.values():
        send(tus, upload_id)
    assert send_chunk(tus, CLIENT_FILES[owner], 2).json == {"chunk": 2, "complete": True}
    [call] = tus.handoffs
    assert call["upload_id"] == upload_id
    assert call["sha256"] == sha256(CLIENT_FILES[owner].data)


# -- scopes: flow.js and resumable.js -----------------------------------------------------------


@pytest.mark.parametrize("protocol", ["flowjs", "resumablejs"])
def test_two_scopes_one_identifier_get_their_own_files(
    make_tus: Callable[..., Tus], protocol: str
) -> None:
    """Same identifier, name and size, different bytes, chunks interleaved, REMOTE_USER empty."""
    tus = make_tus(scope=user_of)
    mine = CLIENT_FILES[protocol]
    theirs = ClientFile(bytes(reversed(mine.data)), prefix=mine.prefix)
    assert mine.params(1) == theirs.params(1)  # one identifier for both
    assert mine.count == 2
    assert send_chunk(tus, mine, 2, "alice").json == {"chunk": 2, "complete": False}
    assert send_chunk(tus, theirs, 2, "bob").json == {"chunk": 2, "complete": False}
    assert send_chunk(tus, theirs, 1, "bob").json == {"chunk": 1, "complete": True}
    assert send_chunk(tus, mine, 1, "alice").json == {"chunk": 1, "complete": True}
    files = {call["upload_id"]: call["sha256"] for call in tus.handoffs}
    identifier = mine.params(1)[mine.prefix + "Identifier"]
    assert files == {
        record_key(protocol, "alice", identifier, 25, 10): sha256(mine.data),
        record_key(protocol, "bob", identifier, 25, 10): sha256(theirs.data),
    }


@pytest.mark.parametrize("protocol", ["flowjs", "resumablejs"])
def test_a_test_request_sees_only_its_scopes_chunks(
    make_tus: Callable[..., Tus], protocol: str
) -> None:
    tus = make_tus(scope=user_of)
    file = CLIENT_FILES[protocol]
    send_chunk(tus, file, 1, "alice")
    query = "/files?" + urlencode(file.params(1))
    assert tus.request("GET", query, as_user("alice"), tus=False).status_int == 200
    assert tus.request("GET", query, as_user("bob"), tus=False).status_int == 204


def test_the_default_scope_is_remote_user() -> None:
    assert remote_user({"REMOTE_USER": "alice"}) == "alice"
    assert remote_user({}) == ""


# -- scopes: tus and uid with bind_to_scope -----------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "verb"),
    [
        pytest.param("tus", verb, id=f"tus-{verb}")
        for verb in ("tus-HEAD", "tus-PATCH", "tus-DELETE", "tus-concat-partial")
    ]
    + [
        pytest.param("ietf", verb, id=verb)
        for verb in ("ietf-HEAD", "ietf-PATCH", "ietf-DELETE")
    ]
    + [pytest.param("uid", "uid-POST-uploadUid", id="uid-POST-uploadUid")],
)
def test_bound_upload_answers_another_scope_like_an_unknown_id(
    make_tus: Callable[..., Tus], owner: str, verb: str
) -> None:
    tus = make_tus(scope=user_of, bind_to_scope=True)
    create = {"tus": create_tus, "ietf": create_ietf, "uid": create_uid}[owner]
    upload_id = create(tus, "alice")
    send = VERBS[verb][1]
    before = stored(tus, upload_id)
    unknown = unknown_like(upload_id)
    assert answer(send(tus, upload_id, "bob"), upload_id) == answer(
        send(tus, unknown, "bob"), unknown
    )
    assert answer(send(tus, upload_id, ""), upload_id) == answer(send(tus, unknown, ""), unknown)
    assert stored(tus, upload_id) == before
    if verb != "tus-concat-partial":  # a whole upload is no partial: see the next test
        assert send(tus, upload_id, "alice").status_int in (200, 204)


def test_bound_tus_partial_concatenates_for_its_scope(make_tus: Callable[..., Tus]) -> None:
    tus = make_tus(scope=user_of, bind_to_scope=True)
    partial = tus.create(5, Upload_Concat="partial", X_User="alice")
    tus.patch(partial, 0, b"hello", as_user("alice"))
    assert tus_concat(tus, partial.rsplit("/", 1)[1], "bob").status_int == 400
    response = tus_concat(tus, partial.rsplit("/", 1)[1], "alice")
    assert response.status_int == 201
    [call] = tus.handoffs
    assert call["sha256"] == sha256(b"hello")


@pytest.mark.parametrize("create", [create_tus, create_uid], ids=["tus", "uid"])
def test_without_binding_a_server_issued_id_is_a_capability(
    make_tus: Callable[..., Tus], create: Callable[..., str]
) -> None:
    """The default: whoever holds a tus or uid id may continue it; its scope is recorded."""
    tus = make_tus(scope=user_of)
    upload_id = create(tus, "alice")
    assert tus.filter.storage.load(upload_id).scope == "alice"
    if create is create_tus:
        assert tus_head(tus, upload_id, "bob").status_int == 200
    else:
        assert uid_post(tus, upload_id, "bob").json == {"uploadUid": upload_id, "complete": True}


# -- a broken scope hook ------------------------------------------------------------------------


def raising(environ: dict[str, Any]) -> str:
    raise KeyError("session")


def not_a_str(environ: dict[str, Any]) -> str:
    return 42  # type: ignore[return-value]


def refusing(environ: dict[str, Any]) -> str:
    raise Reject(403, "log in first")


CREATE_REQUEST: dict[str, Callable[[Tus], webtest.TestResponse]] = {
    "tus": lambda tus: tus.request("POST", "/files", {"Upload-Length": "5"}),
    "uid": lambda tus: uid_request(
        tus, {"uploadUid": "", "fileName": "a", "totalSize": 5, "chunkNumber": 0,
              "chunkCount": 1}, b"hello"),
    "flowjs": lambda tus: send_chunk(tus, FLOW, 1),
    "resumablejs": lambda tus: send_chunk(tus, RESUMABLE, 1),
}


@pytest.mark.parametrize("protocol", list(CREATE_REQUEST))
@pytest.mark.parametrize(
    ("hook", "why"),
    [
        pytest.param(raising, "raised", id="hook-raises"),
        pytest.param(not_a_str, "returned 42, not a str", id="hook-returns-an-int"),
    ],
)
def test_a_broken_scope_hook_is_a_logged_500(
    make_tus: Callable[..., Tus], caplog: pytest.LogCaptureFixture,
    protocol: str, hook: Callable[..., str], why: str,
) -> None:
    tus = make_tus(scope=hook)
    with caplog.at_level(logging.ERROR, logger="tus_filter"):
        response = CREATE_REQUEST[protocol](tus)
    assert response.status_int == 500
    assert b"the server's upload configuration failed" in response.body
    assert f"the scope hook {hook!r} {why}" in caplog.text
    assert tus.handoffs == [] and not list(tus.filter.storage.records.ids())


@pytest.mark.parametrize(
    ("protocol", "status"),
    [("tus", 403), ("uid", 403), ("flowjs", 415), ("resumablejs", 400)],
)
def test_a_scope_hook_may_refuse_with_reject(
    make_tus: Callable[..., Tus], protocol: str, status: int
) -> None:
    response = CREATE_REQUEST[protocol](make_tus(scope=refusing))
    assert response.status_int == status
    assert b"log in first" in response.body


# -- refusals that stop the client --------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "given", "answered"),
    [
        pytest.param("flowjs", 403, 415, id="flowjs-403-would-be-retried-becomes-415"),
        pytest.param("flowjs", 400, 415, id="flowjs-400-would-be-retried-becomes-415"),
        pytest.param("flowjs", 422, 415, id="flowjs-422-would-be-retried-becomes-415"),
        pytest.param("flowjs", 404, 404, id="flowjs-404-is-final-kept"),
        pytest.param("flowjs", 413, 413, id="flowjs-413-is-final-kept"),
        pytest.param("flowjs", 415, 415, id="flowjs-415-is-final-kept"),
        pytest.param("resumablejs", 403, 400, id="resumablejs-403-would-be-retried-becomes-400"),
        pytest.param("resumablejs", 400, 400, id="resumablejs-400-is-final-kept"),
        pytest.param("tus", 403, 403, id="tus-keeps-the-hooks-status"),
        pytest.param("tus", 422, 422, id="tus-keeps-422"),
        pytest.param("uid", 403, 403, id="uid-keeps-the-hooks-status"),
    ],
)
def test_on_create_refusal_gets_a_status_the_client_gives_up_on(
    make_tus: Callable[..., Tus], protocol: str, given: int, answered: int
) -> None:
    def refuse(environ: dict[str, Any], info: UploadInfo) -> None:
        raise Reject(given, "uploads are closed")

    tus = make_tus(on_create=refuse)
    response = CREATE_REQUEST[protocol](tus)
    assert response.status_int == answered
    assert b"uploads are closed" in response.body
    assert not list(tus.filter.storage.records.ids())


def test_tus_termination_refusal_keeps_the_hooks_status(make_tus: Callable[..., Tus]) -> None:
    def refuse(environ: dict[str, Any], info: UploadInfo) -> None:
        raise Reject(403, "keep it")

    tus = make_tus(on_terminate=refuse)
    upload_id = create_tus(tus)
    response = tus_delete(tus, upload_id)
    assert (response.status_int, response.text) == (403, "keep it\n")


# -- markers in the query, an unreadable multipart body ------------------------------------------


BROKEN_BODIES = {
    "no-closing-boundary": b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nvalue",
    "not-multipart-at-all": b"this is not a form",
    "field-not-utf-8": (
        b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\xff\xfe\r\n--b--\r\n"
    ),
}


@pytest.mark.parametrize("protocol", ["flowjs", "resumablejs"])
@pytest.mark.parametrize("broken", list(BROKEN_BODIES))
def test_query_markers_with_an_unreadable_form_are_a_400(
    make_tus: Callable[..., Tus], protocol: str, broken: str
) -> None:
    tus = make_tus()
    file = CLIENT_FILES[protocol]
    response = tus.request(
        "POST", "/files?" + urlencode(file.params(1)),
        {"Content-Type": "multipart/form-data; boundary=b"}, BROKEN_BODIES[broken], tus=False,
    )
    assert response.status_int == 400
    assert "error" in response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert tus.handoffs == []


def test_an_unreadable_form_without_query_markers_still_passes_through(
    make_tus: Callable[..., Tus],
) -> None:
    """Nothing says it is an upload: the application answers (RecordingApp's 404)."""
    tus = make_tus()
    response = tus.request(
        "POST", "/files", {"Content-Type": "multipart/form-data; boundary=b"},
        BROKEN_BODIES["no-closing-boundary"], tus=False,
    )
    assert response.status_int == 404 and response.body == b"no such page"


def test_octet_chunk_content_type_is_not_a_form(make_tus: Callable[..., Tus]) -> None:
    """Guard: the query-first recognition leaves octet-mode chunks alone."""
    tus = make_tus()
    response = tus.request(
        "POST", "/files?" + urlencode(FLOW.params(1)),
        {"Content-Type": OCTET}, FLOW.chunk(1), tus=False,
    )
    assert response.json == {"chunk": 1, "complete": False}
