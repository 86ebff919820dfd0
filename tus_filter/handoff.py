"""Calling the wrapped application for a completed upload, and merging its answer.

The downstream request is the completing request with its body replaced:
``REQUEST_METHOD`` is ``POST`` (the original method is kept in
``tus_filter.original_method``), the path and query are unchanged, the body
is empty (``CONTENT_LENGTH`` ``0``) unless ``send_file`` is on, and
``environ["tus_filter.upload"]`` is the :class:`~tus_filter.upload.Upload`.

Merging (the protocol's response is what the client would get without an app):
  * app 2xx, empty body → the protocol's response, the app's headers added;
  * app 2xx with a body → the app's status and body with the protocol's
    headers added; a creation (protocol status 201) keeps 201;
  * anything else → the app's response as sent, plus the protocol's
    essential headers.
Headers the protocol sets win over the app's, except the body's own
``Content-Type``; an app header sent several times (``Set-Cookie``) keeps
every line; CORS is added afterwards by the filter.

Calling the app follows PEP 3333 as a server would: ``start_response`` may
come late (while the iterable is consumed), may be called again with
``exc_info`` until the first body bytes (then the app's exception is
re-raised), and the iterable is always closed.  An app that never calls it
gets a logged 500.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .http import Response
from .upload import Upload

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("tus_filter")

_BODY_HEADERS = ("Content-Type", "Content-Length")


def call_app(
    app: WSGIApplication, environ: dict[str, Any], upload: Upload, *, send_file: bool
) -> Response:
    """Call ``app`` once for ``upload``; return its complete (small) answer."""
    downstream = dict(environ)
    downstream["tus_filter.upload"] = upload
    downstream["tus_filter.original_method"] = environ["REQUEST_METHOD"]
    downstream["REQUEST_METHOD"] = "POST"
    body_file = upload.open() if send_file else None
    try:
        if body_file is not None:
            downstream["wsgi.input"] = body_file
            downstream["CONTENT_LENGTH"] = str(upload.size)
            downstream["CONTENT_TYPE"] = upload.content_type or "application/octet-stream"
        else:
            downstream["wsgi.input"] = io.BytesIO(b"")
            downstream["CONTENT_LENGTH"] = "0"
            downstream.pop("CONTENT_TYPE", None)
        answer = _Answer()
        result = app(downstream, answer.start_response)
        try:
            for data in result:
                answer.write(data)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    finally:
        if body_file is not None:
            body_file.close()
    return answer.response()


class _Answer:
    """The app's status, headers and body, collected as a WSGI server would."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[1] is not None:
            if self.chunks:  # the headers would be on the wire already (PEP 3333)
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        self.status, self.headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if data:
            if self.status is None:
                raise RuntimeError("application sent a body before start_response")
            self.chunks.append(data)

    def response(self) -> Response:
        if self.status is None:
            log.error("tus_filter: the application never called start_response")
            return Response.text(500, "the application did not answer\n")
        return Response(int(self.status.split(" ", 1)[0]), self.headers, b"".join(self.chunks))


def merge(
    protocol_response: Response, app_response: Response, essential: dict[str, str]
) -> Response:
    """Combine the protocol's and the app's answers (rules in the module docstring)."""
    app_headers = app_response.headers.without("Content-Length")
    if not 200 <= app_response.status < 300:
        merged = Response(app_response.status, app_headers, app_response.body)
        merged.headers.update(essential)
        return merged
    if not app_response.body:
        headers = app_headers.without(*_BODY_HEADERS)
        headers.update(protocol_response.headers)
        return Response(protocol_response.status, headers, protocol_response.body)
    status = 201 if protocol_response.status == 201 else app_response.status
    app_headers.update(protocol_response.headers.without(*_BODY_HEADERS))
    return Response(status, app_headers, app_response.body)
