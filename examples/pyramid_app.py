"""A Pyramid view receiving finished uploads (``pip install 'tus_filter[pyramid]'``).

tus_filter answers every upload request below ``/files`` itself.  When an
upload completes, it calls the application once: a ``POST`` to the upload's
URL (``/files`` or below it, depending on the protocol) with
``environ["tus_filter.upload"]``.  So the view is routed at ``/files`` and
everything below it, for ``POST`` only, and answers 404 to a request without
an upload: one that no protocol recognised and the filter passed on.

The view returns a body: the client then gets it instead of its protocol's
own success response (tus keeps its status and headers), which is how an
application hands back, say, a document id.  From the repository root::

    python -m examples.pyramid_app           # http://127.0.0.1:8080/files
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import waitress
from pyramid.config import Configurator  # type: ignore[import-untyped]
from pyramid.httpexceptions import HTTPNotFound  # type: ignore[import-untyped]
from pyramid.request import Request  # type: ignore[import-untyped]

from tus_filter import TusFilter, Upload

DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "var" / "pyramid_app"


def receive_upload(request: Request) -> dict[str, Any]:
    """Move the finished upload into ``uploads_dir``; answer its id."""
    upload: Upload | None = request.environ.get("tus_filter.upload")
    if upload is None:
        raise HTTPNotFound()
    target = Path(request.registry.settings["uploads_dir"]) / upload.upload_id
    os.replace(upload.path, target)
    return {"document": upload.upload_id, "name": upload.filename, "size": upload.size}


def make_application(directory: str | Path) -> TusFilter:
    """The Pyramid app behind tus_filter; files end up in ``<directory>/received``."""
    directory = Path(directory)
    uploads_dir = directory / "received"
    uploads_dir.mkdir(parents=True, exist_ok=True)
    with Configurator(settings={"uploads_dir": str(uploads_dir)}) as config:
        config.add_route("uploads", "/files")
        config.add_route("upload", "/files/{rest:.*}")
        for route in ("uploads", "upload"):
            config.add_view(receive_upload, route_name=route, request_method="POST",
                            renderer="json")
        app = config.make_wsgi_app()
    return TusFilter(app, upload_path="/files", tmp_file_dir=str(directory / "incoming"))


if __name__ == "__main__":
    waitress.serve(make_application(DEFAULT_DIRECTORY), host="127.0.0.1", port=8080)
