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
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from .http import Response, merge_headers
from .upload import Upload

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

_BODY_HEADERS = ("content-type", "content-length")


def call_app(
    app: WSGIApplication, environ: dict[str, Any], upload: Upload, *, send_file: bool
) -> Response:
    """Call ``app`` once for ``upload``; return its complete (small) answer."""
    downstream = dict(environ)
    downstream["tus_filter.upload"] = upload
    downstream["tus_filter.original_method"] = environ["REQUEST_METHOD"]
    downstream["REQUEST_METHOD"] = "POST"
    body_file = open(upload.path, "rb") if send_file else None  # noqa: SIM115 - closed below
    try:
        if body_file is not None:
            downstream["wsgi.input"] = body_file
            downstream["CONTENT_LENGTH"] = str(upload.size)
            downstream["CONTENT_TYPE"] = upload.content_type or "application/octet-stream"
        else:
            downstream["wsgi.input"] = io.BytesIO(b"")
            downstream["CONTENT_LENGTH"] = "0"
            downstream.pop("CONTENT_TYPE", None)
        captured: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = headers
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = app(downstream, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    finally:
        if body_file is not None:
            body_file.close()
    headers: dict[str, str] = {}
    repeated: list[tuple[str, str]] = []
    for name, value in captured["headers"]:
        if any(name.lower() == known.lower() for known in headers):
            repeated.append((name, value))  # e.g. a second Set-Cookie: keep every line
        else:
            headers[name] = value
    return Response(captured["status"], headers, b"".join(chunks), repeated)


def merge(
    protocol_response: Response, app_response: Response, essential: dict[str, str]
) -> Response:
    """Combine the protocol's and the app's answers (rules in the module docstring)."""
    app_headers = {k: v for k, v in app_response.headers.items() if k.lower() != "content-length"}
    if not 200 <= app_response.status < 300:
        merged = Response(app_response.status, app_headers, app_response.body,
                          _repeated(app_response, essential))
        merge_headers(merged.headers, essential)
        return merged
    if not app_response.body:
        headers = {k: v for k, v in app_headers.items() if k.lower() not in _BODY_HEADERS}
        merge_headers(headers, protocol_response.headers)
        repeated = [(k, v) for k, v in _repeated(app_response, protocol_response.headers)
                    if k.lower() not in _BODY_HEADERS]
        return Response(protocol_response.status, headers, protocol_response.body, repeated)
    status = 201 if protocol_response.status == 201 else app_response.status
    headers = dict(app_headers)
    protocol_headers = {
        k: v for k, v in protocol_response.headers.items() if k.lower() not in _BODY_HEADERS
    }
    merge_headers(headers, protocol_headers)
    return Response(status, headers, app_response.body, _repeated(app_response, protocol_headers))


def _repeated(app_response: Response, winners: dict[str, str]) -> list[tuple[str, str]]:
    """The app's repeated header lines, except those of a header the protocol sets."""
    overridden = {name.lower() for name in winners}
    return [(k, v) for k, v in app_response.repeated if k.lower() not in overridden]
