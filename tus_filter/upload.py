"""The objects the filter hands to the application."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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

    ``path`` is the assembled file on disk.  It stays there until the
    application moves it away (``os.replace(upload.path, target)`` is the
    normal pattern) or the upload expires.  ``filename`` and ``metadata`` are
    client-supplied strings: treat them as untrusted input.
    """

    protocol: str
    upload_id: str
    path: str
    size: int
    filename: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
