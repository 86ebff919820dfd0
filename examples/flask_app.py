"""A Flask view receiving finished uploads (``pip install 'tus_filter[flask]'``).

tus_filter wraps ``app.wsgi_app``, Flask's place for WSGI middleware, and
answers every upload request below ``/files`` itself.  When an upload
completes, it calls the application once: a ``POST`` to the upload's URL
(``/files`` or below it, depending on the protocol) with
``environ["tus_filter.upload"]``.  So the view is routed at ``/files`` and
everything below it, for ``POST`` only, and answers 404 to a request without
an upload: one that no protocol recognised and the filter passed on.

The view returns a body: the client then gets it instead of its protocol's
own success response (tus keeps its status and headers), which is how an
application hands back, say, a document id.  From the repository root::

    python -m examples.flask_app             # http://127.0.0.1:8080/files
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import waitress
from flask import Flask, abort, current_app, request

from tus_filter import TusFilter, Upload

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "flask_app"


def receive_upload(rest: str = "") -> dict[str, Any]:
    """Move the finished upload into ``UPLOADS_DIR``; answer its id."""
    upload: Upload | None = request.environ.get("tus_filter.upload")
    if upload is None:
        abort(404)
    target = Path(current_app.config["UPLOADS_DIR"]) / upload.upload_id
    os.replace(upload.path, target)
    return {"document": upload.upload_id, "name": upload.filename, "size": upload.size}


def make_application(directory: str | Path) -> Flask:
    """The Flask app, tus_filter around its ``wsgi_app``; files go to ``<directory>/received``."""
    directory = Path(directory)
    app = Flask(__name__)
    app.config["UPLOADS_DIR"] = directory / "received"
    app.config["UPLOADS_DIR"].mkdir(parents=True, exist_ok=True)
    # strict_slashes=False: a tus upload sent whole to "/files/" completes there.
    app.add_url_rule("/files", view_func=receive_upload, methods=["POST"], strict_slashes=False)
    app.add_url_rule("/files/<path:rest>", view_func=receive_upload, methods=["POST"])
    app.wsgi_app = TusFilter(  # type: ignore[method-assign]
        app.wsgi_app, upload_path="/files", tmp_file_dir=str(directory / "incoming")
    )
    return app


if __name__ == "__main__":
    waitress.serve(make_application(DEFAULT_DIRECTORY), host="127.0.0.1", port=8080)
