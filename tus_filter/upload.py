"""The objects the filter hands to the application."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass(frozen=True)
class UploadInfo:
    """An upload as the hooks see it: possibly not (or not yet) stored.

    ``size`` is ``None`` while a tus upload's length is deferred.
    ``upload_id`` is the id the upload has (or will have once created).
    """

    protocol: str
    upload_id: str
    size: int | None
    filename: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True)
class Upload:
    """A completed upload, handed downstream as ``environ["tus_filter.upload"]``.

    ``location`` is where the assembled bytes are: the file's path with
    ``storage = file``, ``s3://bucket/key`` of the object with S3.  ``path``
    is the local file (``None`` with S3).  The bytes stay there until the
    application moves them away (``os.replace(upload.path, target)``, or a
    server-side copy of the object) or the upload expires.  :meth:`open`
    reads them on every backend.  ``filename`` and ``metadata`` are
    client-supplied strings: treat them as untrusted input.
    """

    protocol: str
    upload_id: str
    path: str | None
    size: int
    filename: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    location: str = ""
    opener: Callable[[], BinaryIO] | None = field(default=None, repr=False, compare=False)

    def open(self) -> BinaryIO:
        """A streaming binary reader of the bytes; close it (``with upload.open() as f:``)."""
        if self.opener is None:
            if self.path is None:
                raise ValueError("this Upload has neither a path nor an opener")
            return open(self.path, "rb")
        return self.opener()
