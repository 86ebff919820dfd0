"""Uploads inside a Flask view, behind the app's own login check.

(``pip install 'tus_filter[flask]'``.)  No middleware: the view routed at
``/files`` and below checks the user (HTTP Basic against a small dict; a
Flask-Login ``current_user`` works the same), then hands the request to an
:class:`tus_filter.UploadHandler` as ``webob.Request(request.environ)``
with the user as the upload's scope, and answers with the handler's
``webob.Response`` as a Flask response.  With ``bind_to_scope`` another
user's tus URL answers like an unknown one.  When a request completes an
upload, the view makes it a document of that user and names it in a
``Document-Id`` header; ``GET /documents`` lists the user's documents.
From the repository root::

    python -m examples.flask_app             # http://127.0.0.1:8080/files
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any

import waitress
import webob
from flask import Flask, Response, current_app, g, request
from werkzeug.datastructures import Headers

from examples.documents import Documents
from tus_filter import UploadHandler

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "flask_app"
DEMO_USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 unless HTTP Basic names a known user, who is then ``g.user``."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        auth = request.authorization
        users: Mapping[str, str] = current_app.config["USERS"]
        if auth is None or auth.username is None or users.get(auth.username) != auth.password:
            return Response("log in first\n", 401,
                            {"WWW-Authenticate": 'Basic realm="uploads"'})
        g.user = auth.username
        return view(*args, **kwargs)

    return checked


@login_required
def upload(rest: str = "") -> Any:
    """Every upload request: the handler answers, the view keeps finished files."""
    handler: UploadHandler = current_app.config["UPLOAD_HANDLER"]
    result = handler.handle(webob.Request(request.environ), scope=g.user)
    if result.upload is not None:
        document = current_app.config["DOCUMENTS"].create(g.user, result.upload)
        result.response.headers["Document-Id"] = document["id"]
    return flask_response(result.response)


def flask_response(response: webob.Response) -> Response:
    """The handler's answer as Flask's own, headers exactly as given (no default
    ``Content-Type`` on a ``204``)."""
    adapted = Response(response.app_iter, status=response.status)
    adapted.headers = Headers(response.headerlist)
    return adapted


@login_required
def list_documents() -> Any:
    return current_app.config["DOCUMENTS"].of(g.user)


def make_application(directory: str | Path, users: Mapping[str, str] = DEMO_USERS) -> Flask:
    """The Flask app; uploads in progress in ``<directory>/incoming``, documents in
    ``<directory>/documents/<user>``."""
    directory = Path(directory)
    app = Flask(__name__)
    app.config["USERS"] = users
    app.config["DOCUMENTS"] = Documents(directory / "documents")
    app.config["UPLOAD_HANDLER"] = UploadHandler(
        upload_path="/files",  # the rules' prefix
        tmp_file_dir=str(directory / "incoming"),
        bind_to_scope=True,  # a tus or uid id answers only the user who created it
    )
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    # strict_slashes=False: a tus upload sent whole to "/files/" completes there.
    app.add_url_rule("/files", view_func=upload, methods=methods, strict_slashes=False)
    app.add_url_rule("/files/<path:rest>", view_func=upload, methods=methods)
    app.add_url_rule("/documents", view_func=list_documents)
    return app


if __name__ == "__main__":
    waitress.serve(make_application(DEFAULT_DIRECTORY), host="127.0.0.1", port=8080)
