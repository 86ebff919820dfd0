"""The shared tus test harness: a TusFilter driven through WebTest or raw WSGI.

``Tus`` wraps a ``TusFilter`` around a ``RecordingApp`` and drives it through
WebTest with the tus defaults (``Tus-Resumable: 1.0.0``); ``tus_factory``
makes fresh ones, and ``tests/conftest.py`` turns it into the ``make_tus``
and ``tus`` fixtures.  ``call`` sends one request straight through WSGI (chunked
bodies, missing lengths), ``SlowBody`` is a body that stalls, breaks or ends
early, and ``in_thread`` runs a ``call`` concurrently.  ``TUS``, ``OCTET``,
``ALL_EXTENSIONS``, ``b64`` and ``sha1_header`` build headers; ``stored``
counts the upload records in a store.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from wsgiref.util import setup_testing_defaults

import webtest  # type: ignore[import-untyped]

from tests.support import backend
from tests.support.apps import RecordingApp
from tus_filter import TusFilter

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"
ALL_EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,termination,"
    "concatenation,concatenation-unfinished,checksum,expiration"
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sha1_header(data: bytes, algorithm: str = "sha1") -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


@dataclass
class Tus:
    """A TusFilter around a RecordingApp, driven through WebTest."""

    filter: TusFilter
    app: Any
    web: webtest.TestApp
    tmp_path: Path
    calls: list[dict[str, Any]] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str = "/files",
        headers: Mapping[str, str | None] | None = None,
        body: bytes = b"",
        *,
        tus: bool = True,
    ) -> webtest.TestResponse:
        sent = {**(TUS if tus else {}), **(headers or {})}
        sent = {k: v for k, v in sent.items() if v is not None}
        return self.web.request(
            strip_host(path), method=method, headers=sent, body=body, expect_errors=True
        )

    def create(self, length: int | None = 11, **headers: str) -> str:
        """POST a new upload; return its path (``/files/<id>``)."""
        sent = {"Upload-Length": str(length)} if length is not None else {}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        response = self.request("POST", "/files", sent)
        assert response.status_int == 201, response
        return strip_host(response.headers["Location"])

    def patch(
        self, path: str, offset: int, body: bytes, headers: Mapping[str, str | None] | None = None
    ) -> webtest.TestResponse:
        sent = {"Upload-Offset": str(offset), "Content-Type": OCTET, **(headers or {})}
        return self.request("PATCH", path, sent, body)

    def head(
        self, path: str, headers: Mapping[str, str | None] | None = None
    ) -> webtest.TestResponse:
        return self.request("HEAD", path, headers)

    def record(self, path: str) -> Any:
        return self.filter.storage.load(path.rsplit("/", 1)[1], allow_expired=True)

    def data(self, path: str) -> bytes:
        """The upload's bytes as stored (see ``backend.stored_bytes``)."""
        return backend.stored_bytes(self.filter.storage, self.record(path))

    def wait_for_written(self, path: str, data: bytes, timeout: float = 5.0) -> None:
        """Until a PATCH still running has written ``data``, its first bytes, and waits for more.

        On local files they are in the upload's file.  On S3 a request spools
        what it appends (the piece is stored when the request ends): there the
        sign is a spool file of this filter's with ``len(data)`` bytes.
        """
        deadline = time.monotonic() + timeout
        while not self._written(path, data):
            assert time.monotonic() < deadline, f"no PATCH has written {data!r}"
            time.sleep(0.01)

    def _written(self, path: str, data: bytes) -> bool:
        if self.filter.storage.data.capabilities.local_paths:
            return self.data(path) == data
        return len(data) in backend.spooled(self.filter.settings.tmp_file_dir)

    @property
    def handoffs(self) -> list[dict[str, Any]]:
        return list(getattr(self.app, "calls", []))


def stored(tus: Tus) -> int:
    """How many upload records ``tus``'s store holds."""
    return len(list(tus.filter.storage.records.ids()))


def strip_host(url: str) -> str:
    """``url`` without WebTest's ``http://localhost`` host, as the ``Tus`` methods take it."""
    return url.replace("http://localhost", "")


def tus_factory(tmp_path: Path) -> Callable[..., Tus]:
    """``make(app=None, **options)``: a fresh filter in its own directory below ``tmp_path``.

    ``tests/conftest.py`` turns it into the ``make_tus`` and ``tus`` fixtures.
    """
    count = iter(range(1000))

    def make(app: Any = None, **options: Any) -> Tus:
        app = app if app is not None else RecordingApp()
        directory = tmp_path / f"store{next(count)}"
        wrapped = TusFilter(app, tmp_file_dir=str(directory), **{**backend.options(), **options})
        return Tus(wrapped, app, webtest.TestApp(wrapped), tmp_path)

    return make


# -- raw WSGI calls --------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def call(
    wsgi: Any,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | IO[bytes] | io.RawIOBase = b"",
    *,
    content_length: int | None = -1,
    chunked: bool = False,
) -> Answer:
    """One request straight through WSGI.

    ``content_length=-1`` means ``len(body)``; ``None`` sends none.  With
    ``chunked`` the body has no length and ``wsgi.input_terminated`` is set.
    """
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": strip_host(path)}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = stream
    if chunked:
        environ["wsgi.input_terminated"] = True
        content_length = None
    elif content_length == -1:
        content_length = len(body) if isinstance(body, bytes) else None
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    for name, value in {**TUS, **(headers or {})}.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    captured: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc: Any = None
    ) -> Any:
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(response_headers)
        return None

    result = wsgi(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Answer(captured["status"], captured["headers"], data)


class SlowBody(io.RawIOBase):
    """A request body that hands out ``first``, then waits for ``release`` before the rest.

    ``fail`` makes it raise ``OSError`` (a reset connection) instead of
    sending the rest; ``truncate`` makes it end early (EOF).
    """

    def __init__(self, first: bytes, rest: bytes, *, fail: bool = False, truncate: bool = False):
        self._first = first
        self._rest = rest
        self._fail = fail
        self._truncate = truncate
        self.started = threading.Event()
        self.release = threading.Event()
        self._stage = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._stage == 0:
            self._stage = 1
            self.started.set()
            return self._first
        if self._stage == 1:
            self._stage = 2
            if not self.release.wait(10):
                raise AssertionError("SlowBody was never released")
            if self._fail:
                raise OSError("connection reset by peer")
            if self._truncate:
                return b""
            return self._rest
        return b""


class ThreadNotingBody(io.BytesIO):
    """A body the server buffered (seekable), noting which threads read it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.readers: set[str] = set()

    def read(self, size: int | None = -1) -> bytes:
        self.readers.add(threading.current_thread().name)
        return super().read(size)


def in_thread(target: Callable[[], Answer]) -> tuple[threading.Thread, list[Answer]]:
    results: list[Answer] = []
    thread = threading.Thread(target=lambda: results.append(target()))
    thread.start()
    return thread, results
