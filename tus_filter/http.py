"""HTTP values with no WSGI in them: what a protocol answers is a :class:`Response`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

# Statuses ``http.HTTPStatus`` does not know.
_EXTRA_REASONS = {460: "Checksum Mismatch"}


def status_line(status: int) -> str:
    """``"204 No Content"``; also knows the tus-only ``460 Checksum Mismatch``."""
    if status in _EXTRA_REASONS:
        return f"{status} {_EXTRA_REASONS[status]}"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def merge_headers(target: dict[str, str], source: dict[str, str]) -> None:
    """``target.update(source)`` with header names compared case-insensitively."""
    for name, value in source.items():
        for existing in [key for key in target if key.lower() == name.lower()]:
            del target[existing]
        target[name] = value


@dataclass
class Response:
    """A status, headers and a small body (protocol answers are never large)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Further lines of a header already in ``headers`` (an app's second ``Set-Cookie``).
    repeated: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        return cls(status, merged, body)

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "text/plain; charset=utf-8"}
        merged.update(headers or {})
        return cls(status, merged, text.encode())

    def header_list(self) -> list[tuple[str, str]]:
        """WSGI header list with a ``Content-Length`` that matches the body."""
        headers = [
            (k, v)
            for k, v in [*self.headers.items(), *self.repeated]
            if k.lower() != "content-length"
        ]
        if self.status not in (204, 304) and not (100 <= self.status < 200):
            headers.append(("Content-Length", str(len(self.body))))
        return headers
