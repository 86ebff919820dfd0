"""Uploads inside a Pyramid view, behind the app's own permissions.

(``pip install 'tus_filter[pyramid]'``.)  No filter: the routes ``/files``
and ``/files/{rest}`` need the ``upload`` permission, and their view hands
the request to an :class:`tus_filter.UploadHandler` with
``request.authenticated_userid`` as the upload's scope.  Each user only
ever sees their own uploads (``bind_to_scope``): another user's tus URL or
flow.js identifier answers like an unknown one.  When a request completes
an upload, the view makes it a document of that user and names it in a
``Document-Id`` header; ``GET /documents`` lists the user's documents.

The ``on_create`` hook sees the view's request as
``environ["tus_filter.request"]``: it refuses a new upload from a user who
has ``max_documents`` documents already.

Users log in with HTTP Basic (a small dict here; any security policy
works).  From the repository root::

    python -m examples.pyramid_app           # http://127.0.0.1:8080/files
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import waitress
from pyramid.authentication import (  # type: ignore[import-untyped]
    extract_http_basic_credentials,
)
from pyramid.config import Configurator  # type: ignore[import-untyped]
from pyramid.httpexceptions import HTTPUnauthorized  # type: ignore[import-untyped]
from pyramid.request import Request  # type: ignore[import-untyped]
from pyramid.response import Response  # type: ignore[import-untyped]
from pyramid.security import Allowed, Denied, forget  # type: ignore[import-untyped]
from pyramid.view import forbidden_view_config  # type: ignore[import-untyped]

from examples.documents import Documents
from tus_filter import Reject, UploadHandler, UploadInfo

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "pyramid_app"
DEMO_USERS = {"alice": "alice-secret", "bob": "bob-secret"}


class BasicAuthPolicy:
    """HTTP Basic against a dict of users; every logged-in user may upload."""

    def __init__(self, users: Mapping[str, str]):
        self.users = users

    def identity(self, request: Request) -> str | None:
        credentials = extract_http_basic_credentials(request)
        if credentials is None or self.users.get(credentials.username) != credentials.password:
            return None
        return str(credentials.username)

    def authenticated_userid(self, request: Request) -> str | None:
        return self.identity(request)

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        if self.identity(request) is None:
            return Denied("log in first")
        return Allowed("a user")

    def remember(self, request: Request, userid: str, **kw: Any) -> list[tuple[str, str]]:
        return []

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", 'Basic realm="uploads"')]


@forbidden_view_config()
def ask_to_log_in(request: Request) -> Response:
    """Only anonymous requests are forbidden here: ask for credentials."""
    return HTTPUnauthorized(headers=forget(request))


def upload(request: Request) -> Response:
    """Every upload request: the handler answers, the view keeps finished files."""
    handler: UploadHandler = request.registry.settings["upload_handler"]
    result = handler.handle(request, scope=request.authenticated_userid)
    if result.upload is not None:
        documents: Documents = request.registry.settings["documents"]
        document = documents.create(request.authenticated_userid, result.upload)
        result.response.headers["Document-Id"] = document["id"]
    return result.response


def list_documents(request: Request) -> list[dict[str, Any]]:
    documents: Documents = request.registry.settings["documents"]
    return documents.of(request.authenticated_userid)


def quota(max_documents: int, documents: Documents) -> Any:
    """An ``on_create`` hook reading the user from the view's request."""

    def on_create(environ: dict[str, Any], info: UploadInfo) -> None:
        user = environ["tus_filter.request"].authenticated_userid
        if len(documents.of(user)) >= max_documents:
            raise Reject(403, f"{user} has {max_documents} documents already")

    return on_create


def make_application(
    directory: str | Path, users: Mapping[str, str] = DEMO_USERS, max_documents: int = 100
) -> Any:
    """The Pyramid app: uploads in progress in ``<directory>/incoming``, documents in
    ``<directory>/documents/<user>``."""
    directory = Path(directory)
    documents = Documents(directory / "documents")
    handler = UploadHandler(
        upload_path="/files",  # the routes' prefix
        tmp_file_dir=str(directory / "incoming"),
        on_create=quota(max_documents, documents),
        bind_to_scope=True,  # a tus or uid id answers only the user who created it
    )
    settings = {"upload_handler": handler, "documents": documents}
    with Configurator(settings=settings) as config:
        config.set_security_policy(BasicAuthPolicy(users))
        config.add_route("uploads", "/files")
        config.add_route("upload", "/files/{rest:.*}")
        for route in ("uploads", "upload"):
            config.add_view(upload, route_name=route, permission="upload")
        config.add_route("documents", "/documents")
        config.add_view(list_documents, route_name="documents", permission="view",
                        renderer="json")
        config.scan(__name__)
        return config.make_wsgi_app()


if __name__ == "__main__":
    waitress.serve(make_application(DEFAULT_DIRECTORY), host="127.0.0.1", port=8080)
