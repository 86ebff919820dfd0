"""Request builders for the flow.js / resumable.js suites.

``ClientFile`` cuts and describes a file exactly as flow.js 2.14.1 and
resumable.js 1.1.0 do (chunk bounds and parameters); ``Server`` is a
``TusFilter`` mounted at ``PATH`` over a ``RecordingApp``, driven through
WebTest, with helpers for test requests, chunk uploads and the storage
directory; ``multipart`` builds a browser-like ``multipart/form-data`` body.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import webtest  # type: ignore[import-untyped]

from tests.support import backend
from tests.support.apps import RecordingApp
from tus_filter import TusFilter

PATH = "/up"
SEED_DATA = bytes((index * 7 + 3) & 255 for index in range(100_000))


@dataclass(frozen=True)
class ClientFile:
    """A file as flow.js 2.14.1 / resumable.js 1.1.0 cut and describe it.

    The chunk bounds follow the clients' own formula (``flow.js:947-951``,
    ``flow.js:1182-1190``), not tus_filter's, so the suites check the server
    against the clients.  ``prefix`` is ``flow`` or ``<namespace>resumable``.
    """

    data: bytes
    chunk_size: int = 10
    force: bool = False
    prefix: str = "flow"
    name: str = "my file.txt"
    relative_path: str = "dir/my file.txt"
    identifier: str = ""  # default: the clients' "<size>-<name without punctuation>"
    type: str | None = None  # resumableType

    @classmethod
    def of_size(cls, size: int, **options: Any) -> ClientFile:
        return cls(SEED_DATA[:size], **options)

    @property
    def total(self) -> int:
        return len(self.data)

    def bounds(self) -> list[tuple[int, int]]:
        round_ = math.ceil if self.force else math.floor
        count = max(round_(self.total / self.chunk_size), 1)
        result = []
        for offset in range(count):
            start = offset * self.chunk_size
            end = min(self.total, (offset + 1) * self.chunk_size)
            if self.total - end < self.chunk_size and not self.force:
                end = self.total
            result.append((start, end))
        return result

    @property
    def count(self) -> int:
        return len(self.bounds())

    def chunk(self, number: int) -> bytes:
        start, end = self.bounds()[number - 1]
        return self.data[start:end]

    def params(self, number: int, **overrides: str | None) -> dict[str, str]:
        """The parameters of chunk ``number``, in the clients' order.

        ``overrides`` replace values by suffix (``Identifier="x"``); ``None`` drops one.
        """
        identifier = self.identifier or f"{self.total}-" + re.sub(
            "[^0-9a-zA-Z_-]", "", self.relative_path
        )
        values: dict[str, str | None] = {
            "ChunkNumber": str(number),
            "ChunkSize": str(self.chunk_size),
            "CurrentChunkSize": str(len(self.chunk(number))) if number <= self.count else "0",
            "TotalSize": str(self.total),
            "Type": self.type,
            "Identifier": identifier,
            "Filename": self.name,
            "RelativePath": self.relative_path,
            "TotalChunks": str(self.count),
        }
        values.update(overrides)
        return {self.prefix + key: value for key, value in values.items() if value is not None}


def multipart(
    fields: Iterable[tuple[str, str]], file: tuple[str, str, bytes, str] | None
) -> tuple[str, bytes]:
    """``(content_type, body)`` like a browser's FormData: fields, then ``file``.

    ``file`` is ``(field name, filename, payload, content type)``.
    """
    boundary = "----formdata-test-" + secrets.token_hex(8)
    body = bytearray()
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    if file is not None:
        name, filename, payload, content_type = file
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        body += payload + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(body)


@dataclass
class Server:
    """A ``TusFilter`` over a :class:`RecordingApp`, driven through WebTest."""

    root: Path
    options: dict[str, Any] = field(default_factory=dict)
    app_body: bytes = b""

    def __post_init__(self) -> None:
        self.downstream = RecordingApp(body=self.app_body)
        self.filter = TusFilter(
            self.downstream, upload_path=PATH, tmp_file_dir=str(self.root),
            **{**backend.options(), **self.options},
        )
        self.app = webtest.TestApp(self.filter)

    def request(
        self, method: str, query: dict[str, str] | None = None, *, body: bytes | None = None,
        headers: dict[str, str] | None = None, environ: dict[str, str] | None = None,
    ) -> webtest.TestResponse:
        """One request to the upload URL; ``environ`` adds WSGI keys (``REMOTE_USER``...)."""
        url = PATH + ("?" + urlencode(query) if query else "")
        return self.app.request(
            url, method=method, body=body, headers=headers or {},
            environ=environ or {}, expect_errors=True,
        )

    def test(self, params: dict[str, str], *, method: str = "GET",
             **environ: str) -> webtest.TestResponse:
        """A test request: GET/HEAD with a query string, else multipart fields (flow.js)."""
        if method in ("GET", "HEAD"):
            return self.request(method, params, environ=environ)
        content_type, body = multipart(params.items(), None)
        return self.request(method, body=body, headers={"Content-Type": content_type},
                            environ=environ)

    def upload(
        self, params: dict[str, str], payload: bytes, *, method: str = "POST",
        octet: bool = False, content_type: str | None = "application/octet-stream",
        query: dict[str, str] | None = None, file_field: str = "file",
        headers: dict[str, str] | None = None, **environ: str,
    ) -> webtest.TestResponse:
        """A chunk upload: multipart (parameters as fields) or octet (in the query string)."""
        headers = dict(headers or {})
        if octet:
            if content_type is not None:
                headers["Content-Type"] = content_type
            return self.request(method, {**(query or {}), **params}, body=payload,
                                headers=headers, environ=environ)
        part_type = content_type or "application/octet-stream"
        form_type, body = multipart(params.items(), (file_field, "blob", payload, part_type))
        headers["Content-Type"] = form_type
        return self.request(method, query, body=body, headers=headers, environ=environ)

    def send(self, file: ClientFile, number: int, **options: Any) -> webtest.TestResponse:
        """Upload chunk ``number`` of ``file`` as the client would (multipart POST)."""
        return self.upload(file.params(number), file.chunk(number), **options)

    def upload_dirs(self) -> list[str]:
        """Ids of the stored upload records (on any backend)."""
        return sorted(self.filter.storage.records.ids())

    def stored_names(self) -> set[str]:
        """Every file and directory name below the storage root."""
        return {name for _, dirs, files in os.walk(self.root) for name in (*dirs, *files)}
