"""The view examples (Pyramid, Flask): uploads behind the app's own login, scoped per user.

Each example serves ``/files`` from a view that checks the user and calls
``UploadHandler.handle(request, scope=user)``.  These tests upload through
them with tuspy over a live waitress server and with WebTest, and check
that a finished upload becomes a document of the user who sent it, that
anonymous requests store nothing, and that two users' uploads never meet.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import webtest  # type: ignore[import-untyped]
from tusclient.client import TusClient

from examples import flask_app, pyramid_app
from tests.support.chunked import ClientFile
from tests.support.servers import serve

EXAMPLES: dict[str, Callable[..., Any]] = {
    "pyramid": pyramid_app.make_application,
    "flask": flask_app.make_application,
}
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
TUS = {"Tus-Resumable": "1.0.0"}


def basic(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def documents(directory: Path, user: str) -> dict[str, bytes]:
    """``user``'s document files by id."""
    folder = directory / "documents" / user
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.suffix != ".json"}


@pytest.fixture(params=list(EXAMPLES))
def example(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return EXAMPLES[request.param]


def test_tuspy_uploads_become_documents_of_their_users(
    example: Callable[..., Any], tmp_path: Path
) -> None:
    sent = {"alice": os.urandom(300_001), "bob": os.urandom(123_456)}
    with serve(example(tmp_path, users=USERS)) as base:
        for user, data in sent.items():
            client = TusClient(base + "/files", headers=basic(user))
            uploader = client.uploader(
                file_stream=io.BytesIO(data), chunk_size=100_000,
                metadata={"filename": f"{user}.bin"},
            )
            uploader.upload()
        listed = {
            user: requests.get(base + "/documents", headers=basic(user), timeout=10).json()
            for user in sent
        }
    for user, data in sent.items():
        [(document_id, stored)] = documents(tmp_path, user).items()
        assert stored == data
        assert listed[user] == [{"id": document_id, "name": f"{user}.bin", "size": len(data)}]


def test_completing_request_names_the_document(
    example: Callable[..., Any], tmp_path: Path
) -> None:
    app = webtest.TestApp(example(tmp_path, users=USERS))
    created = app.post("/files", headers={**TUS, "Upload-Length": "5", **basic("alice")},
                       status=201)
    assert "Document-Id" not in created.headers
    location = urlsplit(created.headers["Location"])
    assert location.path.startswith("/files/")
    done = app.patch(location.path, b"hello", content_type="application/offset+octet-stream",
                     headers={**TUS, "Upload-Offset": "0", **basic("alice")}, status=204)
    assert documents(tmp_path, "alice") == {done.headers["Document-Id"]: b"hello"}


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("POST", {**TUS, "Upload-Length": "5"}, id="tus-creation"),
        pytest.param("OPTIONS", TUS, id="tus-options"),
        pytest.param("GET", {}, id="flow-test-request"),
    ],
)
def test_anonymous_requests_store_nothing(
    example: Callable[..., Any], tmp_path: Path, method: str, headers: dict[str, str]
) -> None:
    app = webtest.TestApp(example(tmp_path, users=USERS))
    response = app.request("/files", method=method, headers=headers, status=401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    incoming = tmp_path / "incoming"
    assert not incoming.exists() or not any(incoming.rglob("*.json"))


def test_equal_flow_identifiers_of_two_users_never_meet(
    example: Callable[..., Any], tmp_path: Path
) -> None:
    """The view's user is the scope: without it both would share one upload."""
    app = webtest.TestApp(example(tmp_path, users=USERS))
    file = ClientFile.of_size(25, identifier="same-id")

    def send(user: str, number: int) -> Any:
        return app.post("/files", file.params(number),
                        upload_files=[("file", "blob", file.chunk(number))],
                        headers=basic(user))

    def has(user: str, number: int) -> int:
        response = app.get("/files", file.params(number), headers=basic(user), status="*")
        return int(response.status_int)

    send("alice", 1)
    assert (has("alice", 1), has("bob", 1)) == (200, 204)
    send("bob", 1)
    send("bob", 2)
    assert documents(tmp_path, "bob") != {} and documents(tmp_path, "alice") == {}
    assert has("alice", 2) == 204  # bob's chunk 2 is not alice's


def test_a_tus_url_answers_only_its_user(example: Callable[..., Any], tmp_path: Path) -> None:
    """``bind_to_scope`` with the view's user: another user's URL is an unknown id."""
    app = webtest.TestApp(example(tmp_path, users=USERS))
    created = app.post("/files", headers={**TUS, "Upload-Length": "5", **basic("alice")},
                       status=201)
    path = urlsplit(created.headers["Location"]).path
    patch = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    app.head(path, headers={**TUS, **basic("bob")}, status=404)
    app.patch(path, b"hello", headers={**patch, **basic("bob")}, status=404)
    app.delete(path, headers={**TUS, **basic("bob")}, status=404)
    app.patch(path, b"hello", headers={**patch, **basic("alice")}, status=204)
    assert list(documents(tmp_path, "alice").values()) == [b"hello"]


def test_hook_sees_the_view_request(tmp_path: Path) -> None:
    """pyramid_app's on_create reads the user from environ["tus_filter.request"]."""
    app = webtest.TestApp(pyramid_app.make_application(tmp_path, users=USERS, max_documents=1))
    headers = {**TUS, "Upload-Length": "3", "Content-Type": "application/offset+octet-stream"}
    app.post("/files", b"abc", headers={**headers, **basic("alice")}, status=201)
    refused = app.post("/files", b"abc", headers={**headers, **basic("alice")}, status=403)
    assert refused.text == "alice has 1 documents already\n"
    app.post("/files", b"abc", headers={**headers, **basic("bob")}, status=201)
    assert len(documents(tmp_path, "alice")) == len(documents(tmp_path, "bob")) == 1
