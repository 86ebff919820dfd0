"""Downstream WSGI apps that record what tus_filter hands them.

The filter hands a finished upload downstream as
``environ["tus_filter.upload"]``.  ``RecordingApp`` answers such a request
``200`` with a configurable body and records it; any other request gets
``404 no such page``, which proves that it passed through the filter.

A record is a JSON-friendly dict::

    upload_id, path, size, sha256, protocol, filename, metadata,
    content_type     -- from the Upload object; sha256 is the digest of the
                        bytes ``upload.open()`` read when the app ran (None if
                        they are missing)
    request_method, path_info, pid  -- the hand-off request and who served it

Cross-process tests give every worker the same ``record_dir``; each record is
appended to ``record_dir/uploads.jsonl`` with one ``O_APPEND`` write, and
``read_records(record_dir)`` collects them all.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

UPLOAD_KEY = "tus_filter.upload"
RECORD_FILE = "uploads.jsonl"
_BLOCK = 1 << 20


def describe_upload(environ: WSGIEnvironment) -> dict[str, Any] | None:
    """The record for the upload in ``environ``, or None if there is none."""
    upload = environ.get(UPLOAD_KEY)
    if upload is None:
        return None
    path = getattr(upload, "path", None)
    return {
        "upload_id": getattr(upload, "upload_id", None),
        "path": path,
        "size": getattr(upload, "size", None),
        "sha256": _sha256(upload),
        "protocol": getattr(upload, "protocol", None),
        "filename": getattr(upload, "filename", None),
        "metadata": dict(getattr(upload, "metadata", None) or {}),
        "content_type": getattr(upload, "content_type", None),
        "request_method": environ["REQUEST_METHOD"],
        "path_info": environ.get("PATH_INFO", ""),
        "pid": os.getpid(),
    }


def _sha256(upload: Any) -> str | None:
    from tus_filter.errors import UploadNotFound  # late: the harness must not need the package

    digest = hashlib.sha256()
    try:
        with upload.open() as file:
            while block := file.read(_BLOCK):
                digest.update(block)
    except (OSError, UploadNotFound):  # the bytes are gone (moved away by the app)
        return None
    return digest.hexdigest()


class RecordingApp:
    """A WSGI app that records upload hand-offs in ``.calls``.

    ``body`` is the response body for hand-offs.  With ``record_file`` set,
    every record is also appended to that file as one JSON line, so records
    from several processes end up in one place.  Safe to call from many
    threads at once.
    """

    def __init__(self, *, body: bytes = b"", record_file: str | os.PathLike[str] | None = None):
        self.body = body
        self.record_file = record_file
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        record = describe_upload(environ)
        if record is None:
            start_response(
                "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "12")]
            )
            return [b"no such page"]
        with self._lock:
            self.calls.append(record)
        if self.record_file is not None:
            _append_line(self.record_file, json.dumps(record))
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(self.body)))],
        )
        return [self.body]


def _append_line(path: str | os.PathLike[str], line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def recording_app_factory(
    global_conf: Mapping[str, str] | None = None, *, record_dir: str, body: str = ""
) -> RecordingApp:
    """A ``RecordingApp`` appending to ``record_dir/uploads.jsonl``.

    Works as a worker factory (``tests.support.apps:recording_app_factory``
    with ``{"record_dir": ...}``) and as a Paste app factory
    (``use = call:tests.support.apps:recording_app_factory``), which passes
    ``global_conf`` first.
    """
    return RecordingApp(body=body.encode(), record_file=Path(record_dir) / RECORD_FILE)


def filtered_recording_app(*, record_dir: str, body: str = "", **filter_options: Any) -> Any:
    """``tus_filter.TusFilter(recording_app_factory(...), **filter_options)``.

    The worker factory for cross-process tests: every process wraps its own
    recording app with its own filter; ``filter_options`` come from JSON.
    """
    from tus_filter import TusFilter  # late: the harness must not need the package

    return TusFilter(recording_app_factory(record_dir=record_dir, body=body), **filter_options)


def read_records(record_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records appended under ``record_dir``, oldest first ([] if none)."""
    path = Path(record_dir) / RECORD_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def sha256(data: bytes) -> str:
    """The digest a record's ``sha256`` holds for an upload of ``data``."""
    return hashlib.sha256(data).hexdigest()
