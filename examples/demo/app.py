"""The demo application: a page with three uploaders side by side, behind tus_filter.

``examples/demo.ini`` wraps this app in the filter (``filter-with``).  The
filter answers every upload request below ``upload_path``; this app only sees

* ``GET /``: the page (tus through Uppy, flow.js, resumable.js);
* ``GET /static/<file>``, ``GET /vendor/<file>``: the page's script and
  stylesheet, and the client libraries from ``node_modules``;
* ``GET /received``: JSON, the files received so far (the page polls it);
* the filter's hand-off, once per finished upload: a ``POST`` below
  ``upload_path`` with ``environ["tus_filter.upload"]``.  The file is moved
  into ``uploads_dir`` and hashed, and the answer is 204 with no body, so
  each client gets its own protocol's success response.

Everything else is 404.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from webob import Request, Response
from webob.exc import HTTPNotFound
from webob.static import FileApp

from tus_filter import Upload

from .assets import asset_files, content_type
from .inbox import Inbox

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

UPLOAD_KEY = "tus_filter.upload"
PAGE = Path(__file__).resolve().parent / "static" / "index.html"
MiB = 1024 * 1024


class DemoApp:
    """The WSGI app behind the filter (routes in the module docstring).

    ``tus_chunk_size`` is the size of each tus ``PATCH``: tus clients send a
    whole file in one request unless told otherwise, and waitress refuses
    request bodies over ``max_request_body_size`` (1 GB by default).
    ``chunk_size`` is flow.js's and resumable.js's chunk size (their last
    chunk can be up to twice that).
    """

    def __init__(
        self,
        *,
        uploads_dir: str | Path,
        node_modules: str | Path,
        upload_path: str = "/files",
        tus_chunk_size: int = 50 * MiB,
        chunk_size: int = 5 * MiB,
    ):
        self.inbox = Inbox(uploads_dir)
        self.assets = asset_files(node_modules)
        self.page = Template(PAGE.read_text()).substitute(
            {
                name: html.escape(str(value))
                for name, value in {
                    "upload_path": upload_path,
                    "tus_chunk_size": tus_chunk_size,
                    "chunk_size": chunk_size,
                    "tus_chunk_mib": f"{tus_chunk_size / MiB:g}",
                    "chunk_mib": f"{chunk_size / MiB:g}",
                    "uploads_dir": self.inbox.directory,
                }.items()
            }
        ).encode()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body: Iterable[bytes] = self.respond(Request(environ))(environ, start_response)
        return body

    def respond(self, request: Request) -> Any:
        """The response (a WSGI app) for ``request``."""
        upload: Upload | None = request.environ.get(UPLOAD_KEY)
        if upload is not None:
            self.inbox.receive(upload)
            return Response(status=204)
        if request.method not in ("GET", "HEAD"):
            return HTTPNotFound()
        if request.path_info == "/":
            return Response(body=self.page, content_type="text/html", charset="utf-8")
        if request.path_info == "/received":
            return Response(
                json={"directory": str(self.inbox.directory), "files": self.inbox.received()},
                cache_control="no-store",
            )
        path = self.assets.get(request.path_info)
        if path is None:
            return HTTPNotFound()
        return FileApp(str(path), content_type=content_type(path))


def main(global_conf: Mapping[str, str], **settings: str) -> DemoApp:
    """Paste app factory (``use = call:examples.demo.app:main``).

    Settings: ``uploads_dir``, ``node_modules``, ``upload_path`` (the
    filter's), ``tus_chunk_mib`` and ``chunk_mib``.  Prints where to point a
    browser and where finished files land.
    """
    app = DemoApp(
        uploads_dir=settings["uploads_dir"],
        node_modules=settings["node_modules"],
        upload_path=settings.get("upload_path", "/files"),
        tus_chunk_size=int(settings.get("tus_chunk_mib", "50")) * MiB,
        chunk_size=int(settings.get("chunk_mib", "5")) * MiB,
    )
    host = global_conf.get("http_host", "127.0.0.1")
    port = global_conf.get("http_port", "8080")
    url_host = f"[{host}]" if ":" in host else host
    print(
        f"tus_filter demo: open http://{url_host}:{port}/ in a browser\n"
        f"finished uploads are moved to {app.inbox.directory}",
        flush=True,
    )
    return app
