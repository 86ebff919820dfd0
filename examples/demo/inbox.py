"""Where the demo keeps finished uploads: its own directory and a log of what arrived.

``Inbox.receive`` takes the :class:`~tus_filter.Upload` the filter hands
over, moves the file out of the filter's directory with ``os.replace``
(atomic and free on one filesystem), hashes it in blocks (never the whole
file in memory) and appends one JSON line to ``received.jsonl``.  The stored
file is named by the upload id: the client's file name is only recorded,
never used as a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from tus_filter import Upload

LOG_NAME = "received.jsonl"
BLOCK = 1024 * 1024


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read in ``BLOCK``-sized pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class Inbox:
    """Finished uploads in ``directory`` (created if missing), with a log of them."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / LOG_NAME

    def receive(self, upload: Upload) -> dict[str, Any]:
        """Move ``upload``'s file here, hash it, log it; return the log entry."""
        target = self.directory / upload.upload_id
        os.replace(upload.path, target)
        entry = {
            "id": upload.upload_id,
            "name": upload.filename or upload.upload_id,
            "size": upload.size,
            "protocol": upload.protocol,
            "sha256": sha256_of(target),
            "stored_as": target.name,
            "received": time.time(),
        }
        # One write per line with O_APPEND: whole lines even with several
        # threads or worker processes appending at once.
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)
        return entry

    def received(self) -> list[dict[str, Any]]:
        """Every logged upload, newest first."""
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in reversed(lines)]
