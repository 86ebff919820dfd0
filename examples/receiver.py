"""The smallest useful application behind tus_filter: it keeps every finished upload.

tus_filter calls the application once per completed upload: a ``POST`` to
the upload's URL, with no body and with ``environ["tus_filter.upload"]`` (a
:class:`tus_filter.Upload`).  This one moves the file out of the filter's
directory into its own with ``os.replace`` (atomic, and no copy on one
filesystem), names it by the upload id (a client's file name never becomes
a path), and answers 204 with no body, so each client gets its protocol's
own success response.  ``GET /`` names the process that answered (see
``workers.py``); everything else is 404.

Used by ``pipeline.ini``, ``filter_with.ini``, ``wsgi_app.py`` and ``workers.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webob import Request, Response
from webob.exc import HTTPNotFound

from tus_filter import Upload

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


class Receiver:
    """WSGI app keeping finished uploads in ``directory`` (created if missing)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body: Iterable[bytes] = self.respond(Request(environ))(environ, start_response)
        return body

    def respond(self, request: Request) -> Any:
        upload: Upload | None = request.environ.get("tus_filter.upload")
        if upload is not None:
            target = self.directory / upload.upload_id
            os.replace(upload.path, target)
            log.info("received %r (%s, %d bytes) as %s",
                     upload.filename, upload.protocol, upload.size, target)
            return Response(status=204)
        if request.method == "GET" and request.path_info == "/":
            return Response(f"tus_filter example, process {os.getpid()}: upload to /files\n",
                            content_type="text/plain")
        return HTTPNotFound()


def app_factory(global_conf: Mapping[str, str], *, directory: str) -> Receiver:
    """Paste app factory: ``use = call:examples.receiver:app_factory``, option ``directory``."""
    return Receiver(directory)
