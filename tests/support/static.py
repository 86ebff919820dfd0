"""Serve browser-test pages and the pinned client libraries next to an app.

``with_static(app, {"/flow.html": html})`` answers ``/flow.html`` with that
HTML, ``/node_modules/...`` with files from the repository's ``node_modules``
(read-only: GET and HEAD, no directory listings, nothing outside it), and
hands every other request to ``app`` unchanged.  Pages thus load scripts such
as ``/node_modules/@flowjs/flow.js/dist/flow.js`` from the same origin as the
upload endpoint, so no CORS is involved.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.util import FileWrapper

from .node import NODE_MODULES, require_node_modules

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

NODE_MODULES_PREFIX = "/node_modules/"

# Deterministic types for what test pages load; mimetypes for the rest.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
}
_BLOCK = 64 * 1024


def _content_type(path: Path) -> str:
    known = _CONTENT_TYPES.get(path.suffix)
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class StaticFiles:
    """WSGI app serving the files under ``root`` at URLs under ``prefix``.

    ``prefix`` must start and end with ``/``.  Requests for anything that is
    not a regular file inside ``root`` (after resolving symlinks and ``..``)
    get 404; methods other than GET and HEAD get 405.
    """

    def __init__(self, root: Path, prefix: str):
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError(f"prefix must start and end with '/': {prefix!r}")
        self.root = root.resolve()
        self.prefix = prefix

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")]
            )
            return []
        path = self._resolve(environ.get("PATH_INFO", ""))
        if path is None:
            return _plain(start_response, "404 Not Found", "not found")
        start_response(
            "200 OK",
            [
                ("Content-Type", _content_type(path)),
                ("Content-Length", str(path.stat().st_size)),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        if method == "HEAD":
            return []
        file_wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        body: Iterable[bytes] = file_wrapper(path.open("rb"), _BLOCK)  # the server closes it
        return body

    def _resolve(self, path_info: str) -> Path | None:
        """The file ``path_info`` names, or None if it names none we serve."""
        if not path_info.startswith(self.prefix):
            return None
        try:  # WSGI hands over the raw URL bytes decoded as latin-1
            relative = path_info[len(self.prefix) :].encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        segments = relative.split("/")
        if any(s in ("", ".", "..") or "\\" in s or "\0" in s for s in segments):
            return None
        path = self.root.joinpath(*segments).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


def node_modules_app(prefix: str = NODE_MODULES_PREFIX) -> StaticFiles:
    """Serve the repository's ``node_modules`` at ``prefix``.

    Raises ``RuntimeError`` if ``node_modules`` is missing (run ``make test``).
    """
    require_node_modules()
    return StaticFiles(NODE_MODULES, prefix)


def with_static(app: WSGIApplication, pages: Mapping[str, str] | None = None) -> WSGIApplication:
    """Wrap ``app``: serve ``pages`` (path -> HTML) and ``/node_modules/``.

    Page paths match ``PATH_INFO`` exactly; ``/node_modules/`` matches on a
    segment boundary.  Everything else reaches ``app`` untouched.
    """
    html = {path: text.encode() for path, text in (pages or {}).items()}
    static = node_modules_app()

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path_info = environ.get("PATH_INFO", "")
        body = html.get(path_info)
        if body is not None:
            start_response(
                "200 OK",
                [("Content-Type", _CONTENT_TYPES[".html"]), ("Content-Length", str(len(body)))],
            )
            return [body] if environ["REQUEST_METHOD"] != "HEAD" else []
        if path_info.startswith(NODE_MODULES_PREFIX):
            return static(environ, start_response)
        return app(environ, start_response)

    return wrapped
