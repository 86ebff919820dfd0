"""One request under ``upload_path``, as the protocol strategies see it."""

from __future__ import annotations

import io
import json
from functools import cached_property
from typing import IO, Any
from urllib.parse import parse_qsl

from .errors import BadRequest, PayloadTooLarge, TusFilterError
from .forms import Form, boundary_of, read_form
from .streams import BodyReader, body_length

MAX_JSON_BYTES = 16 * 1024 * 1024  # a JSON body (uid protocol, base64 chunks) is read whole


class _ReplayStream(io.RawIOBase):
    """``wsgi.input`` again: the bytes already consumed, then the rest."""

    def __init__(self, consumed: bytes, rest: IO[bytes]):
        self._consumed = io.BytesIO(consumed)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._consumed.read(size)
        if size < 0:
            return data + self._rest.read()
        if len(data) < size:
            data += self._rest.read(size - len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self._consumed.readline(-1 if size is None else size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        return line + self._rest.readline(-1 if size is None or size < 0 else size - len(line))


class UploadRequest:
    """The WSGI environ plus lazily parsed views of it.

    ``subpath`` is what follows ``upload_path``: ``""`` for the collection,
    ``"<id>"`` for an upload.  ``form()`` and ``json()`` consume the body;
    until a protocol claims the request, :meth:`restore_body` can put the
    consumed bytes back so the request passes through unchanged.
    ``scope`` is the caller's say on whose upload this is (a view's
    authenticated user); ``None`` leaves it to the protocol.
    """

    def __init__(
        self, environ: dict[str, Any], subpath: str, collection_url: str, *,
        scope: str | None = None,
    ):
        self.environ = environ
        self.subpath = subpath
        self.collection_url = collection_url
        self.scope = scope
        self._raw = bytearray()
        self._original_input: IO[bytes] = environ["wsgi.input"]
        self._form: Form | None = None
        self._json: Any = None
        self._body_read = False
        self._body_error: TusFilterError | None = None

    @property
    def method(self) -> str:
        return str(self.environ["REQUEST_METHOD"]).upper()

    def header(self, name: str) -> str | None:
        """A request header by name, case-insensitively; ``None`` when absent."""
        key = "HTTP_" + name.upper().replace("-", "_")
        if key == "HTTP_CONTENT_TYPE":
            key = "CONTENT_TYPE"
        elif key == "HTTP_CONTENT_LENGTH":
            key = "CONTENT_LENGTH"
        value = self.environ.get(key)
        return None if value is None else str(value)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lowercased (``""`` when absent)."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def body_length(self) -> int | None:
        return body_length(self.environ)

    @property
    def body(self) -> IO[bytes]:
        return self._original_input

    @cached_property
    def query(self) -> dict[str, list[str]]:
        """Query parameters (first value first); a query that is not UTF-8 is a bad request."""
        try:
            pairs = parse_qsl(
                self.environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict"
            )
        except UnicodeDecodeError:
            raise BadRequest("query string is not UTF-8") from None
        result: dict[str, list[str]] = {}
        for key, value in pairs:
            result.setdefault(key, []).append(value)
        return result

    def form(self) -> Form | None:
        """The multipart form (fields read, file part not yet), or ``None`` if not multipart."""
        boundary = boundary_of(self.header("Content-Type") or "")
        if boundary is None:
            return None
        if self._form is None:
            self._raise_earlier_failure()
            self._body_read = True
            try:
                self._form = read_form(self._original_input, self.body_length, boundary, self._raw)
            except TusFilterError as error:
                self._body_error = error
                raise
        return self._form

    def json(self) -> Any:
        """The parsed ``application/json`` body, else ``None``.

        A body over ``MAX_JSON_BYTES`` or without ``Content-Length`` raises
        :class:`PayloadTooLarge` before anything is read.
        """
        if self.content_type != "application/json":
            return None
        if not self._body_read:
            length = self.body_length
            if length is None or length > MAX_JSON_BYTES:
                # Refused unread, so the body can still pass through untouched.
                raise PayloadTooLarge("JSON body too large or of unknown length")
            self._body_read = True
            for block in BodyReader(self._original_input, length):
                self._raw += block
            try:
                self._json = json.loads(bytes(self._raw))
            except (UnicodeDecodeError, ValueError, RecursionError):  # too deeply nested
                self._body_error = BadRequest("body is not valid JSON")
        self._raise_earlier_failure()
        return self._json

    def _raise_earlier_failure(self) -> None:
        """A body that failed to parse fails the same way for every protocol that asks."""
        if self._body_error is not None:
            raise self._body_error

    def restore_body(self) -> None:
        """Give the wrapped app the body as it arrived, if a view of it consumed some."""
        if self._body_read:
            self.environ["wsgi.input"] = _ReplayStream(bytes(self._raw), self._original_input)
            # WebOb marks a body it buffered as seekable; this stream is not.
            self.environ.pop("webob.is_body_seekable", None)
