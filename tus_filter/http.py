"""HTTP values with no WSGI in them: what a protocol answers is a :class:`Response`."""

from __future__ import annotations

import json
import wsgiref.headers
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

# Statuses ``http.HTTPStatus`` does not know.
_EXTRA_REASONS = {460: "Checksum Mismatch"}

HeaderSource = Mapping[str, str] | Iterable[tuple[str, str]] | wsgiref.headers.Headers


def status_line(status: int) -> str:
    """``"204 No Content"``; also knows the tus-only ``460 Checksum Mismatch``."""
    if status in _EXTRA_REASONS:
        return f"{status} {_EXTRA_REASONS[status]}"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class Headers(wsgiref.headers.Headers):
    """Header lines in order, names compared case-insensitively.

    The dict-like calls protocols use (``headers[name] = value``, ``get``,
    ``update``, ``pop``, ``del``) act on every line of a name; ``add_header``
    appends one more line, so a header sent several times (an app's two
    ``Set-Cookie`` lines) keeps every line.
    """

    def __init__(self, lines: HeaderSource | None = None):
        pairs: Iterable[tuple[str, str]] = (
            lines.items() if isinstance(lines, Mapping | wsgiref.headers.Headers) else lines or ()
        )
        super().__init__([(str(name), str(value)) for name, value in pairs])

    def update(self, other: HeaderSource) -> None:
        """Set each header of ``other``, replacing the lines of that name here."""
        for name, value in Headers(other).items():
            self[name] = value

    def pop(self, name: str, default: str | None = None) -> str | None:
        """Remove every line of ``name``; return its first value, else ``default``."""
        value = self.get(name, default)
        del self[name]
        return value

    def without(self, *names: str) -> Headers:
        """A copy without the lines of ``names``."""
        dropped = {name.lower() for name in names}
        return Headers([(k, v) for k, v in self.items() if k.lower() not in dropped])


class Response:
    """A status, headers and a small body (protocol answers are never large)."""

    def __init__(self, status: int, headers: HeaderSource | None = None, body: bytes = b""):
        self.status = status
        self.headers = Headers(headers)
        self.body = body

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.headers.items()!r}, {self.body!r})"

    @classmethod
    def json(cls, status: int, data: Any, headers: HeaderSource | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        response = cls(status, {"Content-Type": "application/json"}, body)
        response.headers.update(headers or {})
        return response

    @classmethod
    def text(cls, status: int, text: str, headers: HeaderSource | None = None) -> Response:
        response = cls(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())
        response.headers.update(headers or {})
        return response

    def header_list(self) -> list[tuple[str, str]]:
        """WSGI header list with a ``Content-Length`` that matches the body."""
        headers = self.headers.without("Content-Length").items()
        if self.status not in (204, 304) and not (100 <= self.status < 200):
            headers.append(("Content-Length", str(len(self.body))))
        return headers
